"""The one metric registry: every metric qagate knows, declared once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    name: str
    unit: str
    baseline: bool        # may be stored as a baseline (quality and size, never timings)
    per_question: bool    # has per-question scores, so a rule on it may ask for confidence
    timing: bool          # measured fresh in this session (never from the prediction cache)


METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    MetricInfo("exact_match", "%", baseline=True, per_question=True, timing=False),
    MetricInfo("f1", "%", baseline=True, per_question=True, timing=False),
    MetricInfo("bertscore_f1", "", baseline=True, per_question=False, timing=False),
    MetricInfo("parameter_count", "", baseline=True, per_question=False, timing=False),
    MetricInfo("size_on_disk_mb", "MB", baseline=True, per_question=False, timing=False),
    MetricInfo("seconds_per_question", "s", baseline=False, per_question=False, timing=True),
    MetricInfo("questions_per_second", "q/s", baseline=False, per_question=False, timing=True),
    MetricInfo("speedup", "x", baseline=False, per_question=False, timing=True),
)}
