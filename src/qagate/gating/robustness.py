"""Robustness rules (``f1@addsent >= 0.8 * clean``, ``drop(f1@addsent) <= teacher + 5``,
``invariance@question_noise >= 0.9``): evidence from paired clean and perturbed runs.

The perturbed copy keeps every question id, so each question has a clean and a perturbed
value; the interval of a confidence rule pairs them (against ``clean``) or pairs the
model's per-question drops with the teacher's (against ``teacher``). The copy is the gate's data
with the rule's perturbations at the gate's ``perturb_seed``; "clean" is the gate's data without
any perturbation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qagate.gating.clusters import with_clusters
from qagate.gating.evidence import missing_note, per_question
from qagate.gating.judge import Evidence, Verdict, judge
from qagate.gating.rules import Rule

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset
    from qagate.gating.gatefile import DatasetRequest
    from qagate.gating.outcome import CaseSource
    from qagate.scoring.evaluation import EvalResult


@dataclass(frozen=True)
class Measured:
    """One model's value of a robustness rule's left side, overall and per question."""

    value: float | None
    per_question: list[float]
    clean: float | None  # the same metric on the clean data (None for invariance)
    clean_per_question: list[float] | None = None


def invariance(clean: dict[str, str], perturbed: dict[str, str], ids: Sequence[str]) -> list[float]:
    """1.0 per question whose normalised answer is the same on both copies, else 0.0."""
    from qagate.scoring.squad import normalize_answer

    return [
        1.0 if normalize_answer(clean.get(q, "")) == normalize_answer(perturbed.get(q, "")) else 0.0
        for q in ids
    ]


def measure(rule: Rule, clean: "EvalResult", perturbed: "EvalResult", ids: Sequence[str]) -> Measured:
    """The rule's left side for one model: perturbed value, drop, or invariance rate."""
    if rule.metric == "invariance":
        values = invariance(clean.predictions.answers, perturbed.predictions.answers, ids)
        return Measured(sum(values) / len(values) if values else None, values, None)
    after = per_question(perturbed.scores, rule.metric, ids)
    before = per_question(clean.scores, rule.metric, ids)
    clean_value, perturbed_value = clean.metrics.get(rule.metric), perturbed.metrics.get(rule.metric)
    if rule.drop:
        value = None if clean_value is None or perturbed_value is None else clean_value - perturbed_value
        return Measured(value, [b - a for b, a in zip(before, after)], clean_value, before)
    return Measured(perturbed_value, after, clean_value, before)


def robustness_evidence(
    rule: Rule, model: Measured, teacher: Measured | None = None, notes: tuple[str, ...] = ()
) -> Evidence:
    """Evidence pairing the model's values with its own clean values or with the teacher's."""
    if rule.reference == "clean":
        return Evidence(model.value, model.clean, model.per_question, model.clean_per_question, notes=notes)
    if rule.reference == "teacher" and teacher is not None:
        return Evidence(model.value, teacher.value, model.per_question, teacher.per_question, notes=notes)
    return Evidence(model.value, None, model.per_question, None, notes=notes)


def judge_robustness(rule: Rule, model: str, evidence: Evidence) -> Verdict:
    """The one judge, with ``clean`` as the paired reference (it pairs only with "teacher")."""
    as_paired = replace(rule, reference="teacher") if rule.reference == "clean" else rule
    return replace(judge(as_paired, model, evidence), rule=rule)


def robustness_case(
    source: "CaseSource", model: str, rule: Rule, folder: Path, request: "DatasetRequest"
) -> tuple[Verdict, "Dataset", "EvalResult", "EvalResult | None"]:
    """Evaluate ``model`` (and the teacher, if the rule names it) clean and perturbed; judge."""
    clean_request = replace(request, perturb=(), perturb_seed=0)
    perturbed_request = replace(request, perturb=rule.perturb)
    dataset = source.dataset(perturbed_request)
    ids = [example.id for example in dataset.examples]

    def both(name: str) -> tuple[Measured, "EvalResult", "EvalResult"]:
        clean = source.evaluation(name, folder, clean_request)
        perturbed = source.evaluation(name, folder, perturbed_request)
        return measure(rule, clean, perturbed, ids), clean, perturbed

    mine, _, perturbed = both(model)
    notes = _notes(model, rule, mine, perturbed)
    teacher_result = None
    if rule.reference == "teacher":
        teacher = source.teacher_name(folder)
        theirs, _, teacher_result = both(teacher)
        notes += _notes(teacher, rule, theirs, teacher_result)
        evidence = robustness_evidence(rule, mine, theirs, notes)
    else:
        evidence = robustness_evidence(rule, mine, None, notes)
    evidence = with_clusters(evidence, rule, dataset.examples, ids)
    return judge_robustness(rule, model, evidence), dataset, perturbed, teacher_result


def _notes(model: str, rule: Rule, measured: Measured, perturbed: Any) -> tuple[str, ...]:
    """What the report says about one model: clean and perturbed values, unanswered questions."""
    kinds = "+".join(rule.perturb)
    if rule.metric == "invariance":
        text = f"{model}: same answer on {kinds} for {measured.value or 0:.1%} of the questions"
    else:
        after = perturbed.metrics.get(rule.metric)
        text = f"{model}: {rule.metric} clean {_num(measured.clean)} -> {kinds} {_num(after)}"
    return (text,) + missing_note(model, perturbed.scores)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
