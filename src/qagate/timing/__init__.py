"""Timing: paired, interleaved rounds on the same questions, recorded as pytest-benchmark runs."""
