"""``assert_gate``: the gate-file rules for plain Python tests, judged by the same judge.

from qagate.assertions import assert_gate

def test_students_keep_95_percent(students, teacher, qagate_eval):
    for student in students:
        assert_gate("exact_match >= 0.95 * teacher", qagate_eval(student),
                    teacher=qagate_eval(teacher))
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qagate.gating.evidence import baseline_evidence, baseline_metrics, quality_evidence
from qagate.gating.judge import Evidence, Verdict, judge
from qagate.gating.rules import parse_rule
from qagate.scoring.registry import METRICS

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset


class GateAssertionError(AssertionError):
    """A rule that did not pass; the message is the same report a gate file prints."""

    def __init__(self, message: str, verdict: Verdict) -> None:
        super().__init__(message)
        self.verdict = verdict


class NewBaselineWarning(UserWarning):
    """A baseline was missing and has been written from this run's numbers: review it."""


def assert_gate(
    rule: str,
    result: Any,
    *,
    teacher: Any = None,
    baseline: Any = None,
    latency: Any = None,
    teacher_latency: Any = None,
    confidence: float | None = None,
    dataset: "Dataset | None" = None,
    model: str | None = None,
    undecided: str = "fail",
    strict: bool = False,
    cluster: str | None = None,
) -> Verdict:
    """Check one rule (``"f1 >= baseline - 0.5"``, ``"speedup >= 4"``, ...) and fail like a gate.

    ``result`` and ``teacher`` are ``EvalResult`` objects (from the ``qagate_eval`` fixture) or
    plain mappings of metric -> value. ``baseline`` is a mapping of metrics, a
    :class:`qagate.store.baselines.Baseline`, or the path of a baseline file, which needs
    ``dataset`` (the baseline records its fingerprint, and one recorded on other data is refused);
    a missing file is written from ``result`` with its per-question scores (verdict NEW, a
    :class:`NewBaselineWarning`; with ``strict=True`` it fails), as gate files do, and a stored
    one with them judges ``confidence`` paired per question. Timing rules take ``latency`` /
    ``teacher_latency`` (``Timing`` objects from ``qagate_latency``, rounds timed in this
    session); ``speedup`` is teacher latency / model latency. ``confidence`` (e.g. 0.95) decides
    exact_match/f1 rules on an interval valid at every n (paired per question with the teacher
    or the baseline), which needs
    EvalResults; a verdict the sample cannot decide raises too (``undecided="skip"`` skips the
    test instead, except with ``strict=True``). ``dataset`` orders the questions and adds the
    worst-scoring ones to the report. ``cluster`` (``"article"``, ``"paragraph"`` or ``"none"``,
    the default) makes the dataset's articles or paragraphs the interval's sampling unit, as
    the gate-file key ``cluster:`` does (it needs ``dataset``). Returns the :class:`Verdict`.
    """
    __tracebackhide__ = True
    from qagate.reports import terminal as report

    parsed = parse_rule(rule, confidence=confidence)
    if cluster is not None:
        from dataclasses import replace

        from qagate.core.argtypes import did_you_mean
        from qagate.gating.clusters import CLUSTERS

        if cluster not in CLUSTERS:
            hint = did_you_mean(str(cluster), CLUSTERS)
            raise ValueError(f"cluster={cluster!r}{hint}; choose from {', '.join(CLUSTERS)}")
        if cluster != "none" and dataset is None:
            raise ValueError(f"cluster={cluster!r} needs dataset=... (its questions' {cluster}s)")
        parsed = replace(parsed, cluster=cluster)
    if parsed.slice is not None:
        raise ValueError(f"rule {rule!r} is a slice rule: write it in a gate file, which labels questions")
    name = model or getattr(result, "model", None) or "model"
    metrics = _metrics(result, "result")
    if parsed.reference == "teacher" and teacher is None:
        raise ValueError(f"rule {rule!r} compares with the teacher: pass teacher=...")
    if parsed.reference == "baseline" and METRICS[parsed.metric].timing:
        raise ValueError(
            f"rule {rule!r} compares with a stored pytest-benchmark run: write it in a gate file "
            f"and run pytest --benchmark-compare"
        )
    if (
        parsed.metric == "speedup"
        and (latency is None or teacher_latency is None)
        and metrics.get("speedup") is None
    ):
        raise ValueError(
            "speedup needs latency=... and teacher_latency=... (from the qagate_latency fixture)"
        )
    scores = getattr(result, "scores", None)
    if parsed.confidence is not None and (
        scores is None or (parsed.reference == "teacher" and getattr(teacher, "scores", None) is None)
    ):
        raise TypeError(
            "a confidence rule needs per-question scores: pass EvalResults "
            "(from the qagate_eval fixture) as result and teacher"
        )
    if parsed.reference == "baseline":
        evidence = _baseline(parsed, name, metrics, baseline, rule, dataset, scores)
    else:
        evidence = quality_evidence(
            parsed,
            name,
            metrics,
            scores,
            latency=latency,
            teacher_latency=teacher_latency,
            teacher_metrics=_metrics(teacher, "teacher") if teacher is not None else None,
            teacher_scores=getattr(teacher, "scores", None),
            ids=[ex.id for ex in dataset.examples] if dataset is not None else None,
        )
        if dataset is not None:
            from qagate.gating.clusters import with_clusters

            evidence = with_clusters(evidence, parsed, dataset.examples, [ex.id for ex in dataset.examples])
    verdict = judge(parsed, name, evidence)
    if verdict.passed or (verdict.status == "new" and not strict):
        if verdict.status == "new":
            warnings.warn(NewBaselineWarning(" ".join(verdict.notes)), stacklevel=2)
        return verdict
    text = report.failure_report(
        verdict,
        dataset=getattr(dataset, "name", None),
        questions=len(dataset) if dataset is not None else None,
        decide=_decide(parsed, verdict, evidence),
    )
    if dataset is not None and scores is not None and not METRICS[parsed.metric].timing:
        text += "\n" + report.worst_questions(
            dataset, result, teacher=teacher if hasattr(teacher, "scores") else None
        )
    if verdict.status == "undecided" and undecided == "skip" and not strict:
        import pytest

        raise pytest.skip.Exception(text.replace("\n", " "), _use_item_location=True)
    raise GateAssertionError(text, verdict)


def _decide(rule: Any, verdict: Any, evidence: Any) -> str | None:
    """How many questions would decide an undecided confidence verdict (the gate items' line)."""
    if verdict.status != "undecided" or evidence.interval is not None or evidence.per_question is None:
        return None
    if getattr(rule, "cluster", None) not in (None, "none"):  # its search counts questions, not clusters
        return None
    from qagate.gating.judge import rule_values
    from qagate.reports.explain import decide_line, what_decides

    values = rule_values(rule, evidence.per_question, evidence.reference_per_question)
    return decide_line(what_decides(rule, values), rule.confidence)


def _metrics(source: Any, what: str) -> Mapping[str, Any]:
    metrics = source if isinstance(source, Mapping) else getattr(source, "metrics", None)
    if source is None:
        return {}
    if metrics is None:
        raise TypeError(f"expected an EvalResult or a mapping of metrics as {what}, got {source!r}")
    return metrics


def _baseline(
    rule: Any,
    name: str,
    metrics: Mapping[str, Any],
    baseline: Any,
    text: str,
    dataset: "Dataset | None",
    scores: Any = None,
) -> Evidence:
    """The same baseline policy as gate files: a missing file is written (with the per-question
    scores) and judged NEW; a stored one is compared on the data it names, paired per question
    where it keeps them. Plain numbers given in the test are a point comparison."""
    from qagate.store.baselines import Baseline, load_baseline, make_provenance, write_baseline
    from qagate.store.questions import QuestionScores

    if baseline is None:
        raise ValueError(f"rule {text!r} compares with a baseline: pass baseline=...")
    value = metrics.get(rule.metric)
    value = None if value is None else float(value)
    command = "assert_gate(..., baseline=<path>, dataset=...) writes a missing baseline file"
    if isinstance(baseline, Mapping):  # numbers written in the test: no file, no data to check
        reference = baseline.get(rule.metric)
        return Evidence(
            value,
            None if reference is None else float(reference),
            problems=() if reference is not None else (f"the given baseline has no {rule.metric}",),
            notes=("the given baseline is numbers, without per-question scores: a point comparison",)
            if rule.confidence is not None
            else (),
        )
    if dataset is None:
        raise ValueError(
            f"rule {text!r} compares with a stored baseline: pass dataset=... (the Dataset the result "
            f"was scored on), so that the baseline is written, and compared, on known questions"
        )
    ids = [example.id for example in dataset.examples]
    written = False
    stored: Baseline | None
    if isinstance(baseline, Baseline):
        path: Any = baseline.path
        stored = baseline
    else:
        path = Path(baseline)
        stored = load_baseline(path)
        if stored is None:
            provenance = make_provenance(
                dataset_name=dataset.name,
                dataset_fingerprint=dataset.fingerprint,
                dataset_size=len(dataset),
                model_name=name,
                model_fingerprint="",
            )
            questions = QuestionScores.from_scores(scores, ids) if scores is not None else None
            write_baseline(path, baseline_metrics(metrics), provenance, questions)
            written = True
    return baseline_evidence(
        rule,
        value,
        stored,
        path=path,
        written=written,
        write_command=command,
        dataset_fingerprint=dataset.fingerprint,
        scores=scores,
        model=name,
    )
