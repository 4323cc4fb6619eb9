"""Gating: gate files and rules, and the one judge that turns numbers into verdicts."""
