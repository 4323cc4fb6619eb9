"""One gate case (a rule applied to one model), decided from what the session measured.

The session supplies evaluations, fresh latencies and stored baselines (:class:`CaseSource`);
this module gathers the evidence, applies the baseline-writing policy (create a missing one,
update or regenerate on request) and asks the one judge for the verdict.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qagate.gating.clusters import with_clusters
from qagate.gating.evidence import baseline_evidence, evaluation_evidence, timing_note
from qagate.gating.gatefile import DatasetRequest, GateCase, GateFile
from qagate.gating.judge import Evidence, judge
from qagate.gating.outcome import CaseOutcome, CaseSource  # noqa: F401 (also imported from here)
from qagate.scoring.registry import METRICS

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset
    from qagate.gating.rules import Rule
    from qagate.scoring.evaluation import EvalResult
    from qagate.timing.compare import ComparedRun


@dataclass(frozen=True)
class BaselinePolicy:
    """What the run was told to do with baselines (``--qagate-update-baselines``, ``--regen-all``)."""

    update: bool = False
    regenerate_all: bool = False


def decide_case(
    source: CaseSource,
    gate: GateFile,
    case: GateCase,
    *,
    models: Path,
    policy: BaselinePolicy = BaselinePolicy(),
    nodeid: str = "",
    compared: "ComparedRun | None" = None,
    siblings: "Sequence[GateCase]" = (),
) -> CaseOutcome:
    """Measure what ``case`` needs, judge it, and write baselines as the policy says;
    ``compared`` is the ``--benchmark-compare`` run that timing rules against ``baseline`` use.
    ``siblings``: the cases of the same model in the same gate file (a sequential case is
    judged together with those on its schedule: the model stops when all are decided)."""
    folder = gate.models or models
    request = source.request(gate.dataset)
    rule = case.rule
    if case.sequential is not None:
        return sequential_case(source, case, siblings, folder, request)
    held, note = _family_rule(source, rule)
    if held is not rule:  # --qagate-family-alpha: judged at the family's level, reported as written
        held_case = replace(case, rule=held)
        outcome = decide_case(
            source, gate, held_case, models=models, policy=policy, nodeid=nodeid, compared=compared
        )
        outcome.verdict = replace(outcome.verdict, rule=rule, notes=(*outcome.verdict.notes, note))
        return outcome
    if rule.perturb:  # a robustness rule (f1@addsent >= 0.8 * clean): clean vs perturbed runs
        from qagate.gating.robustness import robustness_case

        verdict, copy, perturbed, teacher_eval = robustness_case(source, case.model, rule, folder, request)
        return CaseOutcome(verdict, copy, perturbed, teacher_eval)
    dataset = source.dataset(request)
    if METRICS[rule.metric].timing:
        evidence = timing_evidence(source, rule, case.model, folder, request, compared)
        return CaseOutcome(judge(rule, case.model, evidence), dataset, None)
    if rule.slice is not None:  # f1[question=how_many] >= ...: judged on that slice's questions
        from qagate.gating.slicing import slice_case

        def on_baseline(full: "Dataset", whole: "EvalResult", table: Any) -> CaseOutcome:
            return _baseline_case(source, case, folder, full, whole, policy, nodeid, table)

        return slice_case(source, gate, case, folder, request, baseline=on_baseline)
    result = source.evaluation(case.model, folder, request)
    if rule.reference == "baseline":
        from qagate.gating.slicing import gate_labels

        table = gate_labels(gate, request, dataset)  # a baseline keeps every slice's values
        return _baseline_case(source, case, folder, dataset, result, policy, nodeid, table)
    teacher_result = None
    teacher = None
    if rule.reference == "teacher":
        teacher = source.teacher_name(folder)
        teacher_result = source.evaluation(teacher, folder, request)
    ids = [example.id for example in dataset.examples]
    evidence = evaluation_evidence(
        rule, case.model, result, teacher_result, ids=ids, teacher_name=teacher or "teacher"
    )
    evidence = with_clusters(evidence, rule, dataset.examples, ids)
    return CaseOutcome(judge(rule, case.model, evidence), dataset, result, teacher_result)


def _family_rule(source: CaseSource, rule: "Rule") -> tuple["Rule", str]:
    """``rule`` at the level ``--qagate-family-alpha`` asks of it (:mod:`qagate.gating.family`)
    and the note that says so, or ``rule`` itself when that is not stricter than its own."""
    from qagate.gating.family import family_level

    alpha = getattr(getattr(source, "settings", None), "family_alpha", None)
    if alpha is None or rule.confidence is None:
        return rule, ""
    size = int(getattr(source, "family_size", 0) or 0)
    level = family_level(rule.confidence, alpha, size)
    if level <= rule.confidence:
        return rule, ""
    note = f"judged at {level:.4%} (--qagate-family-alpha {alpha:g} over {size} confidence rules, Bonferroni)"
    return replace(rule, confidence=level), note


def sequential_case(
    source: CaseSource,
    case: GateCase,
    siblings: "Sequence[GateCase]",
    folder: Path,
    request: DatasetRequest,
) -> CaseOutcome:
    """A sequential rule: judged on the questions its decision needed, in the seeded order
    (:mod:`qagate.gating.sequential`); the evidence is that prefix's, the interval the one the
    loop decided on, and the verdict says how many questions it used."""
    from qagate.scoring.evaluation import subset

    rule, spec = case.rule, case.sequential
    group = [c.rule for c in siblings if c.sequential == spec and c.model == case.model]
    if rule not in group:
        group.append(rule)
    run = source.sequential(case.model, folder, request, group, spec)
    decision = run.decisions[rule.id]
    ids = run.order[: decision.used]
    result = source.evaluation_on(case.model, folder, request, ids)
    teacher_result = None
    teacher = "teacher"
    if rule.reference == "teacher":
        teacher = source.teacher_name(folder)
        teacher_result = source.evaluation_on(teacher, folder, request, ids)
    evidence = evaluation_evidence(rule, case.model, result, teacher_result, ids=ids, teacher_name=teacher)
    how = spec.describe(run.seed) if spec is not None else ""
    decided = "decided" if decision.status != "undecided" else "still undecided"
    note = (
        f"sequential: {decided} after {decision.used} of {run.available} questions in a seeded "
        f"random order ({how}); {case.model} answered {run.used}"
    )
    evidence = replace(
        evidence, interval=decision.interval, units=decision.units, notes=evidence.notes + (note,)
    )
    verdict = replace(
        judge(rule, case.model, evidence),
        questions_used=decision.used,
        questions_available=run.available,
        looks=decision.looks,
    )
    # the questions the verdict is about: reports count and rank these
    return CaseOutcome(verdict, subset(source.dataset(request), ids), result, teacher_result)


def _baseline_case(
    source: CaseSource,
    case: GateCase,
    folder: Path,
    dataset: "Dataset",
    result: "EvalResult",
    policy: BaselinePolicy,
    nodeid: str,
    table: Any = None,
) -> CaseOutcome:
    """A rule against the stored baseline; ``table``: the questions' slice labels, so that the
    baseline written keeps every slice's values and a slice rule reads its own."""
    from qagate.data.slices import slice_ids
    from qagate.gating.slicing import baseline_numbers
    from qagate.store.questions import QuestionScores

    rule = case.rule
    path = source.baseline_path(dataset, case.model)
    fingerprint = str(source.model(case.model, folder).fingerprint())
    provenance = source.provenance(case.model, folder, dataset, fingerprint)
    numbers = baseline_numbers(result.metrics, table, result.scores)
    questions = QuestionScores.from_scores(result.scores, [example.id for example in dataset.examples])
    if policy.regenerate_all and source.baseline_action(path) is None:
        source.write_baseline(path, numbers, provenance, "regenerated", questions)
    stored = source.stored_baseline(path)  # as it was when the session first read it
    written = False
    if stored is None:
        if source.baseline_action(path) is None:
            source.write_baseline(path, numbers, provenance, "created", questions)
        written = True
    command = (
        f"pytest {shlex.quote(nodeid)} --qagate-update-baselines"
        if nodeid
        else "pytest --qagate-update-baselines"
    )
    evidence = baseline_evidence(
        rule,
        result.metrics.get(rule.metric) if rule.slice is None else numbers.get(rule.stored_key),
        stored,
        path=path,
        written=written,
        write_command=command,
        dataset_fingerprint=dataset.fingerprint,
        model_fingerprint=fingerprint,
        scores=result.scores,
        ids=slice_ids(table, *rule.slice) if rule.slice is not None and table is not None else None,
        model=case.model,
    )
    if rule.slice is not None and table is not None:  # the order baseline_evidence pairs them in
        order = list(slice_ids(table, *rule.slice))
    else:
        order = sorted(result.scores.per_question_f1)
    evidence = with_clusters(evidence, rule, dataset.examples, order)
    verdict = judge(rule, case.model, evidence)
    action = source.baseline_action(path)
    if verdict.status == "fail" and policy.update and stored is not None:
        if action is None:
            source.write_baseline(path, numbers, provenance, "updated", questions)
            action = "updated"
        if action == "updated":
            verdict = replace(
                verdict,
                notes=verdict.notes
                + (
                    f"updated baseline {path} with the obtained numbers (--qagate-update-baselines); "
                    f"run again to verify",
                ),
            )
    return CaseOutcome(verdict, dataset, result, baseline_action=action, baseline_path=path)


def timing_evidence(
    source: CaseSource,
    rule: Any,
    model: str,
    folder: Path,
    request: DatasetRequest,
    compared: "ComparedRun | None" = None,
) -> Evidence:
    """Evidence for a speed rule, from the rounds timed in this run (pytest-benchmark's records).

    ``speedup`` and teacher-relative timings come from rounds that alternate with the teacher's;
    absolute ``seconds_per_question`` / ``questions_per_second`` / ``tokens_per_second`` from the
    model timed alone; ``latency_p50`` / ``latency_p95`` from questions answered one at a time;
    ``baseline`` from the run that ``--benchmark-compare`` names.
    """
    from qagate.scoring import stats
    from qagate.timing import speed
    from qagate.timing.latency import percentile

    teacher = (
        source.teacher_name(folder) if (rule.reference == "teacher" or rule.metric == "speedup") else None
    )
    level = rule.confidence
    if rule.reference == "baseline":
        return _compared_evidence(source, rule, model, folder, request, compared)
    if rule.metric in ("latency_p50", "latency_p95"):
        q = 50 if rule.metric == "latency_p50" else 95
        value = percentile(source.serving_latency(model, folder, request).rounds, q)
        reference = (
            percentile(source.serving_latency(teacher, folder, request).rounds, q)
            if teacher is not None
            else None
        )
        return Evidence(
            value,
            reference,
            notes=(f"{model}: {q}th percentile of seconds per question answered alone (batch size 1)",),
        )
    if teacher is not None:
        paired = source.paired_timing(model, folder, request)
        note = timing_note(model, paired.model, teacher, paired.reference)
        note += f"; rounds interleaved with the teacher's; stopped: {paired.stopped_because}"
        if rule.metric == "speedup":
            interval = _shift(paired.interval(level), rule.offset) if level else None
            return Evidence(paired.speedup, None, notes=(note,), interval=interval)
        if rule.metric in ("seconds_per_question", "questions_per_second"):
            mine_value = speed.timing_value(rule.metric, paired.model.rounds)
            theirs_value = speed.timing_value(rule.metric, paired.reference.rounds)
            interval = None
            if level:  # from the speed-up's interval, the teacher's mean held: one definition
                ratio = speed.relative_interval(rule.metric, paired.interval(level), theirs_value, rule.coef)
                interval = _shift(ratio, rule.offset)
            return Evidence(mine_value, theirs_value, notes=(note,), interval=interval)
        mine, theirs = _in_units(rule.metric, paired.model), _in_units(rule.metric, paired.reference)
        if not mine or not theirs:
            return _no_tokens(model if not mine else str(teacher))
        interval = None
        if level:
            raw = stats.paired_bootstrap(mine, theirs, coef=rule.coef, level=level)
            interval = _shift(raw, rule.offset)
        return Evidence(_mean(mine), _mean(theirs), notes=(note,), interval=interval)
    timing = source.latency(model, folder, request)
    if rule.metric in ("seconds_per_question", "questions_per_second"):
        interval = None
        if level:
            spq = speed.mean_interval(timing.rounds, level)
            interval = _shift(
                spq if rule.metric == "seconds_per_question" else speed.reciprocal(spq), rule.offset
            )
        value = speed.timing_value(rule.metric, timing.rounds)
        return Evidence(value, notes=(timing_note(model, timing),), interval=interval)
    values = _in_units(rule.metric, timing)
    if not values:
        return _no_tokens(model)
    interval = _shift(stats.bootstrap_ci(values, level=level), rule.offset) if level else None
    return Evidence(_mean(values), notes=(timing_note(model, timing),), interval=interval)


def time_for_comparison(source: CaseSource, gate: GateFile, case: GateCase, *, models: Path) -> None:
    """Measure what ``case`` (a timing rule against ``baseline``) would compare, so that a run
    stored with ``--benchmark-autosave`` holds it for the next ``--benchmark-compare``."""
    folder, request = gate.models or models, source.request(gate.dataset)
    if case.rule.metric in ("latency_p50", "latency_p95"):
        source.serving_latency(case.model, folder, request)
    else:
        source.latency(case.model, folder, request)


def _compared_evidence(
    source: CaseSource,
    rule: Any,
    model: str,
    folder: Path,
    request: DatasetRequest,
    compared: "ComparedRun | None",
) -> Evidence:
    """This run's timing against the same model's in the ``--benchmark-compare`` run."""
    from qagate.timing import speed
    from qagate.timing.latency import percentile

    if compared is None or compared.unavailable:
        reason = (compared.unavailable if compared else None) or "no --benchmark-compare run"
        return Evidence(None, problems=(reason,))
    dataset = source.dataset(request).name
    reference, problems = compared.reference(rule.metric, dataset, model)
    if problems:
        return Evidence(None, problems=tuple(problems))
    if rule.metric in ("latency_p50", "latency_p95"):
        rounds = source.serving_latency(model, folder, request).rounds
        value = percentile(rounds, 50 if rule.metric == "latency_p50" else 95)
        note = f"{model}: {len(rounds)} questions answered alone (batch size 1)"
    else:
        timing = source.latency(model, folder, request)
        values = _in_units(rule.metric, timing)
        if not values:
            return _no_tokens(model)
        value, note = _mean(values), timing_note(model, timing)
        if rule.metric in ("seconds_per_question", "questions_per_second"):
            value = speed.timing_value(rule.metric, timing.rounds)
    return Evidence(value, reference, notes=(note + f"; compared with run {compared.label}",))


def _in_units(metric: str, timing: Any) -> list[float]:
    """A timing's rounds in the metric's units: tokens per second of each round, or its
    seconds per question (questions per second is one over their mean, never a mean of
    reciprocals: :func:`qagate.timing.speed.questions_per_second`)."""
    if metric == "tokens_per_second":
        return timing.tokens_per_second()
    return list(timing.rounds)


def _no_tokens(model: str) -> Evidence:
    return Evidence(
        None, problems=(f"{model} generates no tokens: tokens_per_second is for kind: generative models",)
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _shift(interval: Any, offset: float) -> Any:
    """An interval of the left side as an interval of (left - right) for ``op number`` rules."""
    from qagate.scoring.stats import Interval

    return Interval(interval.estimate - offset, interval.low - offset, interval.high - offset, interval.level)
