"""Slice rules (``f1[question=how_many] >= 0.9 * teacher``): a rule judged by the one judge on
the questions of one slice (:mod:`qagate.data.slices`).

The model's (and the teacher's) answers are the whole dataset's, evaluated once; a slice rule
scores them on the slice's questions only, so its value, its interval (``confidence:``) and
its report are the slice's. A slice with fewer questions than the rule's ``min_slice``
(default 30) is undecided with the reason, never a pass. Baselines keep every slice's values
(``f1[question=how_many]``), written with the rest of the baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qagate.data.loaders import read_label_file
from qagate.data.slices import check_label_ids, dataset_labels, present, slice_ids

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset
    from qagate.gating.gatefile import DatasetRequest, GateCase, GateFile
    from qagate.gating.outcome import CaseOutcome, CaseSource
    from qagate.scoring.evaluation import EvalResult

_LABEL_FILES: dict[tuple[Path, float], dict[str, dict[str, str]]] = {}


def label_file(path: Path) -> dict[str, dict[str, str]]:
    """A gate file's ``labels:`` side file, read once per session (and again when it changes)."""
    try:
        stamp = path.stat().st_mtime
    except OSError:
        stamp = -1.0
    key = (path, stamp)
    if key not in _LABEL_FILES:
        _LABEL_FILES[key] = read_label_file(path)
    return _LABEL_FILES[key]


def gate_labels(gate: "GateFile", request: "DatasetRequest", dataset: "Dataset") -> dict[str, dict[str, str]]:
    """question id -> labels of ``dataset`` as ``gate`` sees it: computed, the records' own, and
    the gate file's ``labels:`` side file."""
    extra = None
    if gate.labels is not None:
        extra = label_file(gate.labels)
        subset = request.limit is not None or request.articles is not None
        check_label_ids(extra, dataset, gate.labels, subset=subset)
    return dataset_labels(dataset, extra)


def present_values(source: "CaseSource", gate: "GateFile") -> dict[str, list[str]]:
    """The slice labels (key -> values) the questions of ``gate``'s dataset carry: what
    ``key=*`` expands to and what a key that is not built in is checked against."""
    request = source.request(gate.dataset)
    return present(gate_labels(gate, request, source.dataset(request)))


def slice_metrics(table: Mapping[str, Mapping[str, str]], scores: Any) -> dict[str, float]:
    """Every slice's exact_match and f1 (``f1[question=how_many]``), for a baseline: the mean of
    the per-question values on the slice's questions (a missing answer counts 0)."""
    from qagate.data.slices import slice_table
    from qagate.gating.evidence import per_question

    out: dict[str, float] = {}
    for name, ids in slice_table(table).items():
        if not ids:
            continue
        for metric in ("exact_match", "f1"):
            values = per_question(scores, metric, ids)
            out[f"{metric}[{name}]"] = sum(values) / len(values)
    return out


def on_slice(result: "EvalResult", part: "Dataset") -> "EvalResult":
    """``result`` scored on the questions of ``part`` only (its answers, not re-run)."""
    from qagate.scoring.evaluation import EvalResult, squad_v2_metrics
    from qagate.scoring.squad import score

    ids = {ex.id for ex in part.examples}
    answers = {qid: text for qid, text in result.predictions.answers.items() if qid in ids}
    scores = score(part, answers)
    metrics: dict[str, float] = {"exact_match": scores.exact_match, "f1": scores.f1}
    metrics.update(squad_v2_metrics(scores))
    return EvalResult(result.model, part.name, result.predictions, scores, metrics, result.from_cache)


def slice_case(
    source: "CaseSource",
    gate: "GateFile",
    case: "GateCase",
    folder: Path,
    request: "DatasetRequest",
    *,
    baseline: Any = None,
) -> "CaseOutcome":
    """Judge a slice rule on its slice's questions. ``baseline``: a callable that judges a
    baseline rule (the case module's baseline policy) given the slice's value."""
    from qagate.gating.clusters import with_clusters
    from qagate.gating.evidence import evaluation_evidence
    from qagate.gating.judge import Verdict, judge
    from qagate.gating.outcome import CaseOutcome
    from qagate.scoring.evaluation import subset

    rule = case.rule
    assert rule.slice is not None and rule.slice_name is not None
    dataset = source.dataset(request)
    table = gate_labels(gate, request, dataset)
    ids = slice_ids(table, *rule.slice)
    part = subset(dataset, ids)
    result = source.evaluation(case.model, folder, request)
    mine = on_slice(result, part) if ids else None
    size_note = f"slice {rule.slice_name}: {len(ids)} of {len(dataset)} questions"
    if rule.reference == "baseline":
        outcome = baseline(dataset, result, table)
        outcome.verdict = replace(outcome.verdict, notes=(size_note, *outcome.verdict.notes))
        outcome.dataset, outcome.result = part, mine
    else:
        teacher_result = teacher_part = None
        teacher = "teacher"
        if rule.reference == "teacher":
            teacher = source.teacher_name(folder)
            teacher_result = source.evaluation(teacher, folder, request)
            teacher_part = on_slice(teacher_result, part) if ids else None
        if mine is None:
            verdict = Verdict("undecided", case.model, rule, None, None, None, notes=(size_note,))
            return _too_small(CaseOutcome(verdict, part, None), len(ids))
        evidence = evaluation_evidence(rule, case.model, mine, teacher_part, ids=ids, teacher_name=teacher)
        evidence = replace(evidence, notes=(size_note, *evidence.notes))
        evidence = with_clusters(evidence, rule, part.examples, ids)
        outcome = CaseOutcome(judge(rule, case.model, evidence), part, mine, teacher_part)
    return _too_small(outcome, len(ids))


def _too_small(outcome: "CaseOutcome", size: int) -> "CaseOutcome":
    """A slice below the rule's ``min_slice`` is undecided, whatever its numbers say."""
    rule = outcome.verdict.rule
    least = rule.least_slice
    if size >= least:
        return outcome
    why = (
        f"slice {rule.slice_name} has {size} question{'s' if size != 1 else ''}, fewer than "
        f"min_slice {least}: too few to judge; gate more questions, or lower min_slice in the "
        f"gate file (for the file, or on the rule)"
    )
    outcome.verdict = replace(outcome.verdict, status="undecided", notes=(*outcome.verdict.notes, why))
    return outcome


def baseline_numbers(
    metrics: Mapping[str, Any], table: Mapping[str, Mapping[str, str]] | None, scores: Any
) -> dict[str, float]:
    """What a baseline stores: the registry's baseline metrics and every slice's values."""
    from qagate.gating.evidence import baseline_metrics

    numbers = baseline_metrics(metrics)
    if table is not None and scores is not None and hasattr(scores, "per_question_f1"):
        numbers.update(slice_metrics(table, scores))
    return numbers
