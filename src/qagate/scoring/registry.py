"""The one metric registry: every metric qagate knows, declared once.

Gates (which rules are valid), the terminal report, ``qagate evaluate``, baselines, the run
history, the dashboard and model cards all read what a metric is from here. Adding a metric is
one :class:`Metric` entry plus the function that computes it. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """What qagate knows about one metric.

    ``higher_is_better``: the direction a regression goes. ``per_question``: the metric has
    per-question values, so a ``confidence:`` rule on it is decided by the interval engine of
    :mod:`qagate.scoring.confseq`, which needs ``bounds``, the range of one question's value.
    ``baseline``: it may be stored in a baseline (quality and size; never timings, which do not
    carry across machines). ``timing``: measured afresh in the run, never read from a cache.
    ``decimals``/``suffix``/``thousands`` say how a value is printed; ``label`` is the short
    column heading and ``description`` the one-line meaning for reports and model cards.
    """

    name: str
    label: str
    unit: str
    description: str
    higher_is_better: bool
    per_question: bool = False
    baseline: bool = False
    timing: bool = False
    decimals: int = 4
    suffix: str = ""
    thousands: bool = False
    summary: bool = True  # shown in the terminal's per-model metrics table
    rounds: bool = False  # timed in repeated rounds: a rule on it can be decided by the bootstrap
    bounds: tuple[float, float] | None = None  # range of one question's value (confidence intervals)

    @property
    def bootstrappable(self) -> bool:
        """Whether ``confidence:`` works for it (per-question values or timed rounds)."""
        return self.per_question or self.rounds

    def format(self, value: float | None) -> str:
        """The value as every report prints it (``-`` when there is none)."""
        if value is None:
            return "-"
        if self.thousands:
            return f"{int(round(value)):,}"
        return f"{value:.{self.decimals}f}{self.suffix}"


# Kept for code that still says MetricInfo.
MetricInfo = Metric


def _squad_v2(name: str, label: str, description: str) -> Metric:
    """A SQuAD v2.0 group metric, named as the official script prints it (v2.0 datasets only)."""
    return Metric(
        name,
        label,
        "%",
        f"{description}, SQuAD v2.0 only",
        higher_is_better=True,
        baseline=True,
        summary=False,
    )


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "exact_match",
            "EM",
            "%",
            "exact match with a reference answer (official SQuAD script)",
            higher_is_better=True,
            per_question=True,
            baseline=True,
            bounds=(0.0, 100.0),
        ),
        Metric(
            "f1",
            "F1",
            "%",
            "token-overlap F1 with the best reference (official SQuAD script)",
            higher_is_better=True,
            per_question=True,
            baseline=True,
            bounds=(0.0, 100.0),
        ),
        Metric(
            "bertscore_f1",
            "BERTScore",
            "",
            "mean BERTScore F1 of the answer against the references",
            higher_is_better=True,
            baseline=True,
        ),
        _squad_v2("HasAns_exact", "HasAns EM", "exact match on the answerable questions"),
        _squad_v2("HasAns_f1", "HasAns F1", "F1 on the answerable questions"),
        _squad_v2("NoAns_exact", "NoAns EM", 'exact match on the unanswerable questions (answer "")'),
        _squad_v2("NoAns_f1", "NoAns F1", "F1 on the unanswerable questions (equal to NoAns EM)"),
        Metric(
            "parameter_count",
            "params",
            "",
            "number of parameters",
            higher_is_better=False,
            baseline=True,
            thousands=True,
        ),
        Metric(
            "size_on_disk_mb",
            "MB",
            "MB",
            "size of the weights on disk",
            higher_is_better=False,
            baseline=True,
            decimals=2,
        ),
        Metric(
            "seconds_per_question",
            "s/question",
            "s",
            "wall time per question in batches, measured in this run (pytest-benchmark rounds)",
            higher_is_better=False,
            timing=True,
            rounds=True,
            decimals=5,
        ),
        Metric(
            "questions_per_second",
            "q/s",
            "q/s",
            "questions answered per second, measured in this run",
            higher_is_better=True,
            timing=True,
            rounds=True,
            decimals=2,
        ),
        Metric(
            "tokens_per_second",
            "tok/s",
            "tok/s",
            "answer tokens generated per second (generative models), measured in this run",
            higher_is_better=True,
            timing=True,
            decimals=1,
        ),
        Metric(
            "speedup",
            "speedup",
            "x",
            "the teacher's seconds per question / the model's, timed in alternating rounds",
            higher_is_better=True,
            timing=True,
            rounds=True,
            decimals=2,
            suffix="x",
        ),
        Metric(
            "latency_p50",
            "p50 latency",
            "s",
            "median seconds to answer one question alone (batch size 1): serving latency",
            higher_is_better=False,
            timing=True,
            decimals=5,
            summary=False,
        ),
        Metric(
            "latency_p95",
            "p95 latency",
            "s",
            "95th percentile of the seconds to answer one question alone (batch size 1)",
            higher_is_better=False,
            timing=True,
            decimals=5,
            summary=False,
        ),
        Metric(
            "invariance",
            "invariance",
            "",
            "share of questions answered the same on a perturbed copy as on the clean data (0-1)",
            higher_is_better=True,
            summary=False,  # only in robustness rules (invariance@KIND), which pair their own values
            bounds=(0.0, 1.0),
        ),
    )
}


def metric(name: str) -> Metric:
    """The registered metric called ``name`` (KeyError for an unknown one)."""
    return METRICS[name]


def fmt(value: float | None, name: str | None = None) -> str:
    """Format ``value`` as metric ``name`` prints (4 decimals for an unknown or no metric)."""
    if value is None:
        return "-"
    info = METRICS.get(name) if name else None
    return info.format(value) if info else f"{value:.4f}"


def names(**where: bool) -> tuple[str, ...]:
    """Metric names whose flags match, e.g. ``names(baseline=True)`` or ``names(timing=False)``."""
    return tuple(m.name for m in _matching(where))


def _matching(where: dict[str, bool]) -> Iterator[Metric]:
    for info in METRICS.values():
        if all(getattr(info, key) == value for key, value in where.items()):
            yield info
