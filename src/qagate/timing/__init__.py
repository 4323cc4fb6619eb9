"""Timing: latency measured afresh in the session (never from a cache)."""
