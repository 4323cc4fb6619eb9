"""Percentiles of per-question latencies (``latency_p50``, ``latency_p95``), numpy's definition."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), ``q`` in [0, 100] to 0.01."""
    if not values:
        raise ValueError("no values")
    steps = round(q * 100)  # statistics.quantiles' "inclusive" method interpolates
    if len(values) == 1 or steps <= 0:  # linearly, as numpy does
        return min(values)
    if steps >= 10_000:
        return max(values)
    return statistics.quantiles(values, n=10_000, method="inclusive")[steps - 1]
