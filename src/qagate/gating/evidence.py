"""Evidence for the judge: where each value comes from, one function per decision.

Both front ends (gate items and ``assert_gate``) gather evidence here, so a metric's value,
the per-question values of a confidence interval, the treatment of questions a model did not
answer, and the baseline policy are the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from qagate.gating.judge import Evidence
from qagate.gating.rules import Rule
from qagate.scoring.registry import METRICS

if TYPE_CHECKING:  # pragma: no cover
    from qagate.scoring.evaluation import EvalResult
    from qagate.store.baselines import Baseline

TIMINGS_FROM_LATENCY = ("seconds_per_question", "questions_per_second", "speedup")


def metric_value(
    metric: str, metrics: Mapping[str, Any] | None, *, latency: Any = None, teacher_latency: Any = None
) -> float | None:
    """The value of ``metric``: timings from latencies measured in this run, the rest from the
    evaluation's metrics. ``latency`` is a ``Timing`` or a number of seconds per question."""
    if metric in TIMINGS_FROM_LATENCY and (latency is not None or metric == "speedup"):
        mine = seconds_per_question(latency)
        if metric == "speedup":
            teacher = seconds_per_question(teacher_latency)
            if mine is None or teacher is None:
                return _from(metrics, metric)
            return teacher / mine
        if mine is None:
            return None
        return mine if metric == "seconds_per_question" else 1.0 / mine
    return _from(metrics, metric)


def seconds_per_question(latency: Any) -> float | None:
    """Seconds per question of a ``Timing`` (or a plain number); None when not measured."""
    if latency is None:
        return None
    return float(getattr(latency, "seconds_per_question", latency))


def _from(metrics: Mapping[str, Any] | None, metric: str) -> float | None:
    value = None if metrics is None else metrics.get(metric)
    return None if value is None else float(value)


def per_question(scores: Any, metric: str, ids: Sequence[str]) -> list[float]:
    """Per-question values of ``metric`` in its units (percent), in the order of ``ids``.

    A question the model did not answer counts 0, as in the official script; this is the one
    place that decides it, for the pytest items and ``assert_gate`` alike.
    """
    table = scores.per_question_em if metric == "exact_match" else scores.per_question_f1
    return [100.0 * float(table.get(qid, 0.0)) for qid in ids]


def missing_note(model: str, scores: Any) -> tuple[str, ...]:
    """A note when ``model`` left questions unanswered (they count as wrong)."""
    missing = list(getattr(scores, "missing", None) or ())
    if not missing:
        return ()
    total = getattr(scores, "total", None)
    of = f" of {total}" if total else ""
    return (
        f"{model} has no prediction for {len(missing)}{of} questions (e.g. {missing[0]}); "
        f"they count as wrong, as in the official script",
    )


def timing_note(model: str, latency: Any, teacher: str | None = None, teacher_latency: Any = None) -> str:
    """How a timing was measured: seconds per question, questions, rounds and device."""

    def one(name: str, value: Any) -> str:
        if not hasattr(value, "questions"):
            return f"{name} {seconds_per_question(value):.5f} s/question"
        rounds = getattr(value, "rounds", None)
        repeats = len(rounds) if isinstance(rounds, list) else getattr(value, "repeats", None)
        env = getattr(value, "environment", None) or {"device": getattr(value, "device", "?")}
        where = ", ".join(
            f"{k} {env[k]}"
            for k in ("device", "dtype", "batch_size", "threads", "torch")
            if env.get(k) is not None
        )
        return (
            f"{name} {value.seconds_per_question:.5f} s/question over {value.questions} "
            f"questions" + (f" x {repeats} rounds" if repeats else "") + f" ({where})"
        )

    parts = [one(model, latency)]
    if teacher is not None and teacher_latency is not None:
        parts.insert(0, one(teacher, teacher_latency))
    return "timed in this run: " + "; ".join(parts)


def evaluation_evidence(
    rule: Rule,
    model: str,
    result: "EvalResult",
    teacher_result: "EvalResult | None",
    *,
    ids: Sequence[str],
    teacher_name: str = "teacher",
) -> Evidence:
    """:func:`quality_evidence` of a model's evaluation against the teacher's (None for a rule
    that names no teacher), on the questions ``ids`` in order: the whole dataset, a sequential
    rule's prefix of the order, or a slice."""
    return quality_evidence(
        rule,
        model,
        result.metrics,
        result.scores,
        teacher_metrics=teacher_result.metrics if teacher_result else None,
        teacher_scores=teacher_result.scores if teacher_result else None,
        ids=ids,
        teacher_name=teacher_name,
    )


def quality_evidence(
    rule: Rule,
    model: str,
    metrics: Mapping[str, Any] | None,
    scores: Any = None,
    *,
    latency: Any = None,
    teacher_latency: Any = None,
    teacher_metrics: Mapping[str, Any] | None = None,
    teacher_scores: Any = None,
    ids: Sequence[str] | None = None,
    teacher_name: str = "teacher",
) -> Evidence:
    """Evidence for an absolute or teacher-relative rule (not a baseline rule)."""
    value = metric_value(rule.metric, metrics, latency=latency, teacher_latency=teacher_latency)
    reference = None
    if rule.reference == "teacher":
        reference = metric_value(rule.metric, teacher_metrics, latency=teacher_latency)
    notes: tuple[str, ...] = ()
    if METRICS[rule.metric].timing and latency is not None:
        notes = (timing_note(model, latency, teacher_name, teacher_latency),)
    values = reference_values = None
    problems: tuple[str, ...] = ()
    if METRICS[rule.metric].per_question and scores is not None:
        notes = missing_note(model, scores)
        if rule.reference == "teacher" and teacher_scores is not None:
            notes += missing_note(teacher_name, teacher_scores)
            problems = pairing_problems(rule, model, scores, teacher_name, teacher_scores)
        if rule.confidence is not None:
            order = list(ids) if ids is not None else list(scores.per_question_f1)
            values = per_question(scores, rule.metric, order)
            if teacher_scores is not None:
                reference_values = per_question(teacher_scores, rule.metric, order)
    return Evidence(value, reference, values, reference_values, problems=problems, notes=notes)


def pairing_problems(
    rule: Rule, model: str, scores: Any, teacher: str, teacher_scores: Any
) -> tuple[str, ...]:
    """Why a teacher-relative rule cannot pass on these two score tables (empty: it can).

    Both must be scored on the same questions. A question without an answer counts 0 (as in
    the official script), so the teacher's missing answers lower the bar of a ``>=`` rule (and
    the model's its own value under a ``<=`` rule): where they favour the rule, the verdict
    cannot be a pass. Missing answers that only make the rule harder are just noted.
    """
    mine, theirs = set(scores.per_question_f1), set(teacher_scores.per_question_f1)
    if mine != theirs:
        return (
            f"{model} and {teacher} were scored on different questions ({len(mine - theirs)} only "
            f"{model}'s, {len(theirs - mine)} only {teacher}'s): {rule.text} compares the same "
            f"questions, so it cannot pass",
        )
    model_missing = set(getattr(scores, "missing", None) or ())
    teacher_missing = set(getattr(teacher_scores, "missing", None) or ())
    if rule.op in (">=", ">"):
        favouring, lacking, answered = teacher_missing - model_missing, teacher, model
    else:
        favouring, lacking, answered = model_missing - teacher_missing, model, teacher
    if not favouring:
        return ()
    example = sorted(favouring)[0]
    return (
        f"{lacking} has no answer for {len(favouring)} question(s) that {answered} answered "
        f"(e.g. {example}); they count 0 and would make {rule.text} easier to pass, so it cannot "
        f"pass: answer every question with both models",
    )


def baseline_evidence(
    rule: Rule,
    value: float | None,
    stored: "Baseline | None",
    *,
    path: Any,
    written: bool,
    write_command: str,
    dataset_fingerprint: str | None = None,
    model_fingerprint: str | None = None,
    scores: Any = None,
    ids: Sequence[str] | None = None,
    model: str = "model",
) -> Evidence:
    """Evidence for a ``baseline`` rule: the one baseline policy.

    No baseline: when this run ``written`` one, the verdict is NEW (written, needs review);
    otherwise the rule fails with ``write_command``, the command that writes it. A baseline
    recorded on other data (or on data it does not name) cannot pass; other weights are only
    noted (that is what a baseline rule exists to judge). ``scores``: the model's per-question
    scores on the whole dataset, ``ids``: the questions the rule is about (default all; a slice
    rule's slice). Where the baseline keeps per-question scores, the model and the baseline
    are paired on the same questions as a teacher is (:func:`pairing_problems`, and the
    per-question values of a ``confidence:`` rule); a baseline without them is a point
    comparison, and a confidence rule says so.
    """
    from qagate.core.errors import QagateError
    from qagate.store.baselines import provenance_notes

    if stored is None:
        if written:
            return Evidence(
                value,
                new_baseline=True,
                notes=(
                    f"no baseline yet: wrote {path} from this run's numbers; review it and commit it "
                    f"to make it the reference",
                ),
            )
        return Evidence(value, problems=(f"no baseline at {path}; write it with: {write_command}",))
    problems, notes = provenance_notes(
        stored, dataset_fingerprint=dataset_fingerprint, model_fingerprint=model_fingerprint
    )
    reference = stored.metrics.get(rule.stored_key)  # a slice rule: f1[question=how_many]
    if reference is None:
        problems.append(f"baseline {path} has no {rule.stored_key}; write it with: {write_command}")
    values = reference_values = None
    if METRICS[rule.metric].per_question and scores is not None and not problems:
        if stored.questions is None:
            if rule.confidence is not None:
                notes.append(
                    f"baseline {path} keeps no per-question scores (written before qagate kept them), "
                    f"so {rule.id} is a point comparison without an interval; rewrite it with "
                    f"{write_command} to judge it paired per question"
                )
        else:
            theirs = None
            try:
                theirs = stored.question_scores(scores.per_question_f1)
            except QagateError as exc:  # other questions than this run's: same questions or no verdict
                problems.append(f"{exc}: {rule.text} compares the same questions, so it cannot pass")
            if theirs is not None:
                who = "the baseline"
                notes += list(missing_note(model, scores) + missing_note(who, theirs))
                problems += list(pairing_problems(rule, model, scores, who, theirs))
                order = list(ids) if ids is not None else list(theirs.ids)
                if rule.confidence is not None and order:  # an empty slice: undecided by its size
                    values = per_question(scores, rule.metric, order)
                    reference_values = per_question(theirs, rule.metric, order)
    return Evidence(value, reference, values, reference_values, problems=tuple(problems), notes=tuple(notes))


def baseline_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The metrics a baseline stores (the registry says which), without missing values."""
    return {
        name: value
        for name, value in metrics.items()
        if name in METRICS and METRICS[name].baseline and value is not None
    }
