"""The judge: decide one rule from observed numbers (and per-question scores) into a Verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from qagate.gating.rules import OPERATORS, Rule
from qagate.scoring.stats import Interval  # numpy-free at import time

# --- deciding a rule --------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The outcome of one rule on one model, with the numbers a report needs."""

    status: str                 # "pass" | "fail" | "undecided"
    model: str
    rule: Rule
    obtained: float | None
    reference_value: float | None   # the teacher's or the baseline's value of the metric
    threshold: float | None
    interval: Interval | None = None
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def delta(self) -> float | None:
        if self.obtained is None or self.reference_value is None:
            return None
        return self.obtained - self.reference_value


def check(rule: Rule, model: str, obtained: float | None, *, reference_value: float | None = None,
          interval: Interval | None = None, notes: Sequence[str] = ()) -> Verdict:
    """Decide ``obtained op threshold``; with ``interval`` (a confidence rule), decide on it.

    A confidence rule passes only when the whole interval of (left - right) lies on the passing
    side of 0, fails only when the whole interval lies on the failing side, and is "undecided"
    otherwise: the sample cannot tell, so the verdict is never a silent pass.
    """
    notes = tuple(notes)
    if obtained is None or (isinstance(obtained, float) and math.isnan(obtained)):
        return Verdict("fail", model, rule, None, reference_value, None, interval,
                       notes + (f"{model} has no value for {rule.metric}",))
    threshold = rule.threshold(reference_value)
    if interval is not None:
        status = decide_interval(rule.op, interval.low, interval.high)
    else:
        holds = OPERATORS[rule.op](round(float(obtained), 6), round(threshold, 6))
        status = "pass" if holds else "fail"
    return Verdict(status, model, rule, float(obtained), reference_value, threshold, interval, notes)


def decide_interval(op: str, low: float, high: float) -> str:
    """Where the interval of (left - right) lies with respect to 0 under ``op``."""
    if op == ">=":
        return "pass" if low >= 0 else "fail" if high < 0 else "undecided"
    if op == ">":
        return "pass" if low > 0 else "fail" if high <= 0 else "undecided"
    if op == "<=":
        return "pass" if high <= 0 else "fail" if low > 0 else "undecided"
    return "pass" if high < 0 else "fail" if low >= 0 else "undecided"


def rule_interval(rule: Rule, scores: Sequence[float], teacher_scores: Sequence[float] | None,
                  *, seed: int = 0) -> Interval:
    """The bootstrap interval of (left - right) for a confidence rule, in the metric's units.

    Against the teacher: the paired bootstrap of mean(student) - coef * mean(teacher) over the
    same questions, minus the offset. Against a number: the bootstrap of the mean, minus it.
    """
    from qagate.scoring import stats  # numpy lives there, imported only when a confidence rule runs

    assert rule.confidence is not None
    if rule.reference == "teacher":
        if teacher_scores is None:
            raise ValueError("a teacher-relative confidence rule needs the teacher's scores")
        raw = stats.paired_bootstrap(scores, teacher_scores, coef=rule.coef, level=rule.confidence,
                                     seed=seed)
    else:
        raw = stats.bootstrap_ci(scores, level=rule.confidence, seed=seed)
    return Interval(raw.estimate - rule.offset, raw.low - rule.offset, raw.high - rule.offset,
                    rule.confidence)


