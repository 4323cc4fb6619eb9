"""``assert_gate``: the gate-file rules for plain Python tests, with the same failure report.

    from qagate.gating.assertions import assert_gate

    def test_students_keep_95_percent(students, teacher, qagate_eval):
        for student in students:
            assert_gate("exact_match >= 0.95 * teacher", qagate_eval(student),
                        teacher=qagate_eval(teacher))
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from qagate.gating.judge import Verdict, check, rule_interval
from qagate.gating.rules import parse_rule
from qagate.scoring.registry import METRICS

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset


class GateAssertionError(AssertionError):
    """A rule that did not pass; the message is the same report a gate file prints."""

    def __init__(self, message: str, verdict: Verdict) -> None:
        super().__init__(message)
        self.verdict = verdict


def assert_gate(rule: str, result: Any, *, teacher: Any = None, baseline: Any = None,
                latency: Any = None, teacher_latency: Any = None,
                confidence: float | None = None, dataset: "Dataset | None" = None,
                model: str | None = None, undecided: str = "fail") -> Verdict:
    """Check one rule (``"f1 >= baseline - 0.5"``, ``"speedup >= 4"``, ...) and fail like a gate.

    ``result`` and ``teacher`` are ``EvalResult`` objects (from the ``qagate_eval`` fixture) or
    plain mappings of metric -> value. ``baseline`` is a mapping of metrics, a
    :class:`qagate.store.baselines.Baseline`, or the path of a stored baseline file. Timing rules take
    ``latency`` / ``teacher_latency`` (``Latency`` objects from ``qagate_latency``, measured in
    this session); ``speedup`` is teacher latency / model latency. ``confidence`` (e.g. 0.95)
    decides exact_match/f1 rules with the bootstrap, which needs EvalResults; a verdict the
    sample cannot decide raises too (``undecided="skip"`` skips the test instead). ``dataset``
    adds the worst-scoring questions to the report. Returns the passing :class:`Verdict`.
    """
    __tracebackhide__ = True
    from qagate.reports import terminal as report

    parsed = parse_rule(rule, confidence=confidence)
    name = model or getattr(result, "model", None) or "model"
    obtained = _metric(parsed.metric, result, latency, teacher_latency)
    reference = None
    notes: list[str] = []
    if parsed.reference == "teacher":
        if teacher is None:
            raise ValueError(f"rule {rule!r} compares with the teacher: pass teacher=...")
        reference = _metric(parsed.metric, teacher, teacher_latency, None)
    elif parsed.reference == "baseline":
        stored = _baseline_metrics(baseline, rule)
        reference = stored.get(parsed.metric)
        if reference is None:
            notes.append(f"the baseline has no {parsed.metric}")
    interval = None
    if parsed.confidence is not None:
        scores = _per_question(result, parsed.metric, "result")
        teacher_scores = (_per_question(teacher, parsed.metric, "teacher")
                          if parsed.reference == "teacher" else None)
        if teacher_scores is not None:
            ids = [qid for qid in scores if qid in teacher_scores]
            teacher_values = [teacher_scores[qid] for qid in ids]
        else:
            ids, teacher_values = list(scores), None
        interval = rule_interval(parsed, [scores[qid] for qid in ids], teacher_values)
    verdict = check(parsed, name, obtained, reference_value=reference, interval=interval,
                    notes=notes)
    if parsed.reference == "baseline" and reference is None:
        from dataclasses import replace

        verdict = replace(verdict, status="fail")
    if verdict.passed:
        return verdict
    text = report.failure_report(verdict, dataset=getattr(dataset, "name", None),
                                 questions=len(dataset) if dataset is not None else None)
    if dataset is not None and hasattr(result, "scores") and not METRICS[parsed.metric].timing:
        text += "\n" + report.worst_questions(
            dataset, result, teacher=teacher if hasattr(teacher, "scores") else None)
    if verdict.status == "undecided" and undecided == "skip":
        import pytest

        pytest.skip(text.replace("\n", " "))
    raise GateAssertionError(text, verdict)


def _metric(metric: str, source: Any, latency: Any, other_latency: Any) -> float | None:
    if metric == "speedup":
        mine = _seconds(latency)
        teacher = _seconds(other_latency)
        if mine is None or teacher is None:
            if isinstance(source, Mapping) and source.get("speedup") is not None:
                return float(source["speedup"])
            raise ValueError("speedup needs latency=... and teacher_latency=... "
                             "(from the qagate_latency fixture)")
        return teacher / mine
    if metric in ("seconds_per_question", "questions_per_second") and latency is not None:
        seconds = float(getattr(latency, "seconds_per_question", latency))
        return seconds if metric == "seconds_per_question" else 1.0 / seconds
    metrics = source if isinstance(source, Mapping) else getattr(source, "metrics", None)
    if metrics is None:
        raise TypeError(f"expected an EvalResult or a mapping of metrics, got {source!r}")
    value = metrics.get(metric)
    return None if value is None else float(value)


def _seconds(latency: Any) -> float | None:
    if latency is not None:
        return float(getattr(latency, "seconds_per_question", latency))
    return None


def _baseline_metrics(baseline: Any, rule: str) -> Mapping[str, float]:
    from qagate.store.baselines import Baseline, load_baseline

    if baseline is None:
        raise ValueError(f"rule {rule!r} compares with a baseline: pass baseline=...")
    if isinstance(baseline, Baseline):
        return baseline.metrics
    if isinstance(baseline, (str, Path)):
        stored = load_baseline(Path(baseline))
        if stored is None:
            raise FileNotFoundError(f"no baseline at {baseline}")
        return stored.metrics
    return baseline


def _per_question(result: Any, metric: str, what: str) -> dict[str, float]:
    scores = getattr(result, "scores", None)
    if scores is None:
        raise TypeError(f"a confidence rule needs per-question scores: pass an EvalResult as "
                        f"{what}")
    table = scores.per_question_em if metric == "exact_match" else scores.per_question_f1
    return {qid: 100.0 * float(value) for qid, value in table.items()}
