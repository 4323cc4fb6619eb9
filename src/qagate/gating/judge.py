"""The judge: the one function that decides a rule, for gate items and ``assert_gate`` alike.

:func:`judge` takes a rule and its :class:`Evidence` (the value, the reference value, the
per-question values for a confidence rule's interval, and any problem that forbids a pass) and returns
a :class:`Verdict`. It is pure: gathering the evidence (evaluations, timings, baselines) is
:mod:`qagate.gating.evidence`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from qagate.gating.rules import OPERATORS, Rule
from qagate.scoring.stats import Interval  # numpy-free at import time

if TYPE_CHECKING:  # pragma: no cover
    from qagate.scoring.confseq import ConfidenceSequence


@dataclass(frozen=True)
class Verdict:
    """The outcome of one rule on one model, with the numbers a report needs."""

    status: str  # "pass" | "fail" | "undecided" | "new"
    model: str
    rule: Rule
    obtained: float | None
    reference_value: float | None  # the teacher's or the baseline's value of the metric
    threshold: float | None
    interval: Interval | None = None
    notes: tuple[str, ...] = ()
    questions_used: int | None = None  # a sequential rule: the questions its decision used
    questions_available: int | None = None  # ... of the dataset's
    looks: tuple[tuple[int, float, float, float], ...] = ()  # its looks: (n, estimate, low, high)
    cluster: str | None = None  # a per-question interval's sampling unit: article | paragraph | none
    clusters: int | None = None  # ... and how many of them the interval saw

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def delta(self) -> float | None:
        if self.obtained is None or self.reference_value is None:
            return None
        return self.obtained - self.reference_value


STATUSES = ("pass", "fail", "undecided", "new")
"""What a rule can come to: ``new`` is a baseline rule whose baseline this run wrote (review it)."""


@dataclass(frozen=True)
class Evidence:
    """Everything a rule is judged on.

    ``value``: the model's value of the metric. ``reference``: the teacher's or the stored
    baseline's value (None for an absolute rule). ``per_question`` / ``reference_per_question``:
    per-question values in the metric's units, on the same questions in the same order (a
    question without a prediction counts 0, as in the official script); confidence rules need
    them. ``problems``: reasons the rule cannot pass (say, a baseline recorded on other data).
    ``notes``: information for the report. ``new_baseline``: the baseline was missing and has
    just been written from this run's numbers, so there is nothing to compare with yet.
    ``clusters``: each question's cluster (article or paragraph) for a rule with ``cluster:``
    (:mod:`qagate.gating.clusters`), in the order of ``per_question``.
    """

    value: float | None
    reference: float | None = None
    per_question: Sequence[float] | None = None
    reference_per_question: Sequence[float] | None = None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    new_baseline: bool = False
    interval: Interval | None = None  # of (left - right), when it comes from timed rounds
    clusters: Sequence[str] | None = None  # each question's cluster (rule.cluster), in order
    units: int | None = None  # with ``interval``: how many clusters (or questions) it saw


def judge(rule: Rule, model: str, evidence: Evidence, *, seed: int = 0) -> Verdict:
    """Decide ``rule`` for ``model`` on ``evidence``: pass, fail, undecided, or new."""
    if evidence.new_baseline:
        return Verdict(
            "new", model, rule, _number(evidence.value), None, None, notes=evidence.problems + evidence.notes
        )
    problems = list(evidence.problems)
    if rule.reference is not None and evidence.reference is None:
        problems.append(f"no {rule.reference} value of {rule.metric} to compare with")
    interval = None
    units = evidence.units
    clustered = rule.cluster not in (None, "none")
    if rule.confidence is not None and not problems and evidence.interval is not None:
        interval = evidence.interval
    elif rule.confidence is not None and not problems and not point_baseline(rule, evidence):
        if evidence.per_question is None or (
            rule.reference in PAIRED and evidence.reference_per_question is None
        ):
            problems.append(f"{rule.id} needs per-question {rule.metric} values for its confidence interval")
        elif clustered and evidence.clusters is None:
            problems.append(
                f"{rule.id} asks for cluster: {rule.cluster}, but its questions carry no {rule.cluster}: "
                "judge it on a dataset (assert_gate: pass dataset=...)"
            )
        else:
            labels = evidence.clusters if clustered else None
            interval = rule_interval(
                rule, evidence.per_question, evidence.reference_per_question, seed=seed, clusters=labels
            )
            units = len(set(labels)) if labels is not None else len(evidence.per_question)
    sampling: dict[str, Any] = {}
    if interval is not None and _per_question_interval(rule):
        from qagate.gating.clusters import describe

        kind = rule.cluster or "none"
        sampling = {"cluster": kind, "clusters": units}
        evidence = replace(evidence, notes=evidence.notes + (describe(kind, units if clustered else None),))
    if problems:
        verdict = check(
            rule,
            model,
            evidence.value,
            reference_value=evidence.reference,
            notes=tuple(problems) + evidence.notes,
        )
        return replace(verdict, status="fail")
    verdict = check(
        rule,
        model,
        evidence.value,
        reference_value=evidence.reference,
        interval=interval,
        notes=evidence.notes,
    )
    return replace(verdict, **sampling)


def _per_question_interval(rule: Rule) -> bool:
    """Whether ``rule``'s interval is over questions (not timed rounds): where ``cluster:`` applies."""
    from qagate.scoring.registry import METRICS

    info = METRICS.get(rule.metric)
    return info is None or not info.rounds


#: References a confidence rule is paired with question by question: ``model - coef * reference``.
PAIRED = ("teacher", "baseline")


def point_baseline(rule: Rule, evidence: Evidence) -> bool:
    """A baseline rule whose baseline keeps no per-question scores (a file written before qagate
    kept them): judged as a point comparison, as its evidence's note says, instead of failing."""
    return (
        rule.reference == "baseline"
        and evidence.interval is None
        and (evidence.per_question is None or evidence.reference_per_question is None)
    )


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)


def check(
    rule: Rule,
    model: str,
    obtained: float | None,
    *,
    reference_value: float | None = None,
    interval: Interval | None = None,
    notes: Sequence[str] = (),
) -> Verdict:
    """Decide ``obtained op threshold``; with ``interval`` (a confidence rule), decide on it.

    A confidence rule passes only when the whole interval of (left - right) lies on the passing
    side of 0, fails only when the whole interval lies on the failing side, and is "undecided"
    otherwise: the sample cannot tell, so the verdict is never a silent pass.
    """
    notes = tuple(notes)
    if obtained is None or (isinstance(obtained, float) and math.isnan(obtained)):
        return Verdict(
            "fail",
            model,
            rule,
            None,
            reference_value,
            None,
            interval,
            notes + (f"{model} has no value for {rule.metric}",),
        )
    if rule.reference is not None and reference_value is None:
        return Verdict("fail", model, rule, float(obtained), None, None, interval, notes)
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


def rule_interval(
    rule: Rule,
    scores: Sequence[float],
    teacher_scores: Sequence[float] | None,
    *,
    seed: int = 0,
    bounds: tuple[float, float] | None = None,
    clusters: Sequence[str] | None = None,
) -> Interval:
    """The interval of (left - right) for a confidence rule, in the metric's units.

    Against the teacher: mean(student) - coef * mean(teacher) over the same questions, minus
    the offset; against a number: the mean minus it. The interval is one look of the
    anytime-valid confidence sequence of :mod:`qagate.scoring.confseq` (:func:`rule_sequence`)
    on the per-question values (:func:`rule_values`), so each one-sided error is at most
    (1 - confidence) / 2 at every number of questions. ``bounds``: the range of one
    question's value (default: the metric's, from the registry). The questions are taken in a
    permutation drawn from ``seed``, so the verdict does not depend on the dataset's order.
    ``clusters``: each question's cluster (:mod:`qagate.gating.clusters`): the clusters are
    the draws, each its questions' mean weighted by its size over the largest, in a permutation
    of clusters drawn from ``seed``.
    """
    import numpy as np  # numpy only when a confidence rule runs

    values = rule_values(rule, scores, teacher_scores)
    sequence = rule_sequence(rule, horizon=values.size, bounds=bounds)
    if clusters is None:
        order = np.random.default_rng(seed).permutation(values.size)
        raw = sequence.update(values[order])
    else:
        from qagate.gating.clusters import group

        grouped = group(values, clusters)
        order = np.random.default_rng(seed).permutation(grouped.means.size)
        sequence = rule_sequence(rule, horizon=grouped.means.size, bounds=bounds)
        raw = sequence.update(grouped.means[order], grouped.weights[order])
    estimate = float(values.mean())
    return Interval(estimate - rule.offset, raw.low - rule.offset, raw.high - rule.offset, raw.level)


def rule_values(rule: Rule, scores: Sequence[float], teacher_scores: Sequence[float] | None) -> Any:
    """The per-question quantity a confidence rule is about, as a numpy array: the model's
    values, or against the teacher (or a baseline that keeps per-question scores) the paired
    differences ``model - coef * reference`` on the same questions."""
    import numpy as np

    mine = np.asarray(scores, dtype=np.float64)
    if mine.ndim != 1 or mine.size == 0:
        raise ValueError("a confidence rule needs a non-empty sequence of per-question values")
    if rule.reference not in PAIRED:
        return mine
    if teacher_scores is None:
        raise ValueError(f"a {rule.reference}-relative confidence rule needs the {rule.reference}'s scores")
    theirs = np.asarray(teacher_scores, dtype=np.float64)
    if theirs.shape != mine.shape:
        raise ValueError(f"paired samples need equal lengths, got {mine.size} and {theirs.size}")
    return mine - rule.coef * theirs


def rule_sequence(
    rule: Rule, *, horizon: int | None = None, bounds: tuple[float, float] | None = None
) -> "ConfidenceSequence":
    """The confidence sequence of ``rule``'s per-question quantity (:func:`rule_values`), at the
    rule's level, over the range that quantity can take: feed it chunks of questions and
    compare its interval minus ``rule.offset`` with 0 (:func:`decide_interval`) after each one.
    ``horizon``: the number of questions the bets are tuned for (None: open-ended)."""
    from qagate.scoring.confseq import ConfidenceSequence

    if rule.confidence is None:
        raise ValueError(f"{rule.id} has no confidence level")
    lo, hi = bounds if bounds is not None else value_bounds(rule)
    if rule.reference in PAIRED:
        scaled = (rule.coef * lo, rule.coef * hi)
        lo, hi = lo - max(scaled), hi - min(scaled)
    return ConfidenceSequence(lo, hi, rule.confidence, horizon=horizon)


def value_bounds(rule: Rule) -> tuple[float, float]:
    """The range of one question's value of ``rule``'s left side (a drop: clean - perturbed)."""
    from qagate.scoring.registry import METRICS

    info = METRICS.get(rule.metric)
    if info is None or info.bounds is None:
        raise ValueError(f"{rule.metric} declares no per-question range for a confidence interval")
    lo, hi = info.bounds
    return (lo - hi, hi - lo) if rule.drop else (lo, hi)


def updating_can_pass(rule: Rule, obtained: float) -> bool:
    """Whether a baseline rule would pass if the baseline were set to ``obtained``.

    Accepting the obtained numbers as the new baseline helps only then: ``f1 >= baseline + 1``
    can never pass against itself, so suggesting ``--qagate-update-baselines`` would mislead.
    """
    threshold = rule.coef * obtained + rule.offset
    return OPERATORS[rule.op](round(float(obtained), 6), round(threshold, 6))
