"""The one judge and its evidence: pure functions, the same for gate items and assert_gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from qagate.gating.evidence import (
    baseline_evidence,
    baseline_metrics,
    metric_value,
    per_question,
    quality_evidence,
)
from qagate.gating.judge import Evidence, judge, updating_can_pass
from qagate.gating.rules import parse_rule
from qagate.scoring.registry import METRICS, fmt, names
from qagate.store.baselines import Baseline
from qagate.timing.paired import Timing


class FakeScores:
    def __init__(self, em: dict[str, float], missing: tuple[str, ...] = ()) -> None:
        self.per_question_em = em
        self.per_question_f1 = em
        self.missing = list(missing)
        self.total = len(em) + len(missing)


def test_absolute_and_relative_rules():
    assert judge(parse_rule("f1 >= 80"), "m", Evidence(80.0)).status == "pass"
    assert judge(parse_rule("f1 >= 80"), "m", Evidence(79.99)).status == "fail"
    rule = parse_rule("exact_match >= 0.95 * teacher")
    verdict = judge(rule, "m", Evidence(95.0, reference=100.0))
    assert verdict.status == "pass" and verdict.threshold == pytest.approx(95.0)


def test_a_missing_reference_or_value_fails_with_a_reason():
    rule = parse_rule("f1 >= teacher - 1")
    verdict = judge(rule, "m", Evidence(90.0))
    assert verdict.status == "fail" and "no teacher value of f1" in verdict.notes[0]
    verdict = judge(parse_rule("f1 >= 1"), "m", Evidence(None))
    assert verdict.status == "fail" and "m has no value for f1" in verdict.notes


def test_problems_forbid_a_pass_even_when_the_numbers_hold():
    verdict = judge(parse_rule("f1 >= 1"), "m", Evidence(50.0, problems=("recorded on other data",)))
    assert verdict.status == "fail" and verdict.notes[0] == "recorded on other data"


def test_new_baseline_is_its_own_status():
    verdict = judge(parse_rule("f1 >= baseline - 1"), "m", Evidence(50.0, new_baseline=True))
    assert verdict.status == "new" and not verdict.passed and verdict.obtained == 50.0


def test_confidence_rules_need_per_question_values():
    rule = parse_rule("f1 >= 0.9 * teacher", confidence=0.95)
    verdict = judge(rule, "m", Evidence(90.0, reference=95.0))
    assert verdict.status == "fail" and "needs per-question f1" in verdict.notes[0]
    mine, theirs = [100.0] * 50 + [0.0] * 50, [100.0] * 52 + [0.0] * 48
    # +3.2 points on 100 questions is within what a valid interval cannot exclude; on 400 it is decided
    verdict = judge(rule, "m", Evidence(50.0, 52.0, mine, theirs))
    assert verdict.status == "undecided" and verdict.interval is not None
    verdict = judge(rule, "m", Evidence(50.0, 52.0, mine * 4, theirs * 4))
    assert verdict.status == "pass" and verdict.interval is not None
    assert verdict.interval.low >= 0 and verdict.interval.estimate == pytest.approx(3.2)


def test_a_question_without_a_prediction_counts_zero_and_is_noted():
    scores = FakeScores({"a": 1.0, "b": 0.5}, missing=("c",))
    assert per_question(scores, "f1", ["a", "b", "c"]) == [100.0, 50.0, 0.0]
    evidence = quality_evidence(
        parse_rule("f1 >= 10", confidence=0.9), "m", {"f1": 50.0}, scores, ids=["a", "b", "c"]
    )
    assert evidence.per_question == [100.0, 50.0, 0.0]
    assert "m has no prediction for 1 of 3 questions (e.g. c)" in evidence.notes[0]


def test_timings_come_only_from_latencies_measured_in_the_run():
    latency = Timing("s", [0.02, 0.02, 0.02], 32, {"device": "cpu"})
    teacher = Timing("t", [0.05, 0.05, 0.05], 32, {"device": "cpu"})
    assert metric_value("speedup", {}, latency=latency, teacher_latency=teacher) == pytest.approx(2.5)
    assert metric_value("questions_per_second", {}, latency=latency) == pytest.approx(50.0)
    assert metric_value("seconds_per_question", {"seconds_per_question": 9.0}) == 9.0
    evidence = quality_evidence(
        parse_rule("speedup >= 4"), "s", {}, latency=latency, teacher_latency=teacher, teacher_name="t"
    )
    verdict = judge(parse_rule("speedup >= 4"), "s", evidence)
    assert verdict.status == "fail"
    note = verdict.notes[0]
    assert "t 0.05000 s/question over 32 questions x 3 rounds (device cpu)" in note
    assert "s 0.02000 s/question over 32 questions x 3 rounds (device cpu)" in note


def test_the_baseline_policy():
    rule = parse_rule("f1 >= baseline - 0.5")
    missing = baseline_evidence(rule, 70.0, None, path="b.json", written=False, write_command="CMD")
    assert judge(rule, "m", missing).status == "fail" and "write it with: CMD" in missing.problems[0]
    written = baseline_evidence(rule, 70.0, None, path="b.json", written=True, write_command="CMD")
    assert judge(rule, "m", written).status == "new"
    stored = Baseline(Path("b.json"), {"f1": 70.2}, {"dataset": {"fingerprint": "aaa"}})
    same = baseline_evidence(
        rule, 70.0, stored, path="b.json", written=False, write_command="CMD", dataset_fingerprint="aaa"
    )
    assert judge(rule, "m", same).status == "pass"
    other = baseline_evidence(
        rule, 70.0, stored, path="b.json", written=False, write_command="CMD", dataset_fingerprint="bbb"
    )
    assert judge(rule, "m", other).status == "fail"
    no_metric = baseline_evidence(
        parse_rule("exact_match >= baseline"),
        70.0,
        stored,
        path="b.json",
        written=False,
        write_command="CMD",
        dataset_fingerprint="aaa",
    )
    assert "has no exact_match" in no_metric.problems[0]


def test_updating_a_baseline_helps_only_where_it_can_change_the_verdict():
    assert updating_can_pass(parse_rule("f1 >= baseline - 0.5"), 70.0)
    assert updating_can_pass(parse_rule("f1 >= 0.98 * baseline"), 70.0)
    assert not updating_can_pass(parse_rule("f1 >= baseline + 1"), 70.0)
    assert not updating_can_pass(parse_rule("f1 > baseline"), 70.0)


def test_the_registry_declares_each_metric_once():
    assert set(names(baseline=True)) == {
        "exact_match",
        "f1",
        "bertscore_f1",
        "HasAns_exact",
        "HasAns_f1",
        "NoAns_exact",
        "NoAns_f1",
        "parameter_count",
        "size_on_disk_mb",
    }
    assert {"seconds_per_question", "questions_per_second", "speedup", "latency_p50", "latency_p95"} <= set(
        names(timing=True)
    )
    assert not set(names(timing=True)) & set(names(baseline=True))
    assert set(names(per_question=True)) == {"exact_match", "f1"}
    assert baseline_metrics({"f1": 1.0, "speedup": 2.0, "seconds_per_question": 0.1, "x": 3}) == {"f1": 1.0}
    assert fmt(1234567, "parameter_count") == "1,234,567" and fmt(2.0, "speedup") == "2.00x"
    assert fmt(None, "f1") == "-" and METRICS["seconds_per_question"].higher_is_better is False


def test_a_teacher_relative_rule_on_different_questions_never_passes():
    rule = parse_rule("exact_match >= 0.95 * teacher")
    student = FakeScores({"a": 1.0, "b": 1.0, "c": 0.0})
    other_questions = FakeScores({"a": 1.0, "x": 1.0, "y": 1.0})
    evidence = quality_evidence(
        rule,
        "s",
        {"exact_match": 66.7},
        student,
        teacher_metrics={"exact_match": 10.0},
        teacher_scores=other_questions,
    )
    verdict = judge(rule, "s", evidence)
    assert (
        verdict.status == "fail"
        and "were scored on different questions (2 only s's, 2 only teacher's)" in (verdict.notes[0])
    )


def test_missing_teacher_answers_that_lower_the_bar_forbid_a_pass():
    """3 of 4 answers missing make the teacher's EM 25: without the check 'EM >= 0.95 * teacher' passes."""
    student = FakeScores({"a": 1.0, "b": 1.0, "c": 1.0, "d": 0.0})
    teacher = FakeScores({"a": 1.0, "b": 0.0, "c": 0.0, "d": 0.0}, missing=("b", "c", "d"))
    teacher.total = 4
    for confidence in (None, 0.95):
        rule = parse_rule("exact_match >= 0.95 * teacher", confidence=confidence)
        evidence = quality_evidence(
            rule,
            "s",
            {"exact_match": 75.0},
            student,
            teacher_metrics={"exact_match": 25.0},
            teacher_scores=teacher,
            ids=["a", "b", "c", "d"],
            teacher_name="t",
        )
        verdict = judge(rule, "s", evidence)
        assert verdict.status == "fail"
        assert "t has no answer for 3 question(s) that s answered (e.g. b)" in verdict.notes[0]
        assert any("t has no prediction for 3 of 4 questions" in note for note in verdict.notes)
    # the student's own missing answers only make '>=' harder: noted, the rule is judged
    rule = parse_rule("exact_match >= 0.5 * teacher")
    lacking = FakeScores({"a": 1.0, "b": 0.0}, missing=("b",))
    full = FakeScores({"a": 1.0, "b": 1.0})
    evidence = quality_evidence(
        rule, "s", {"exact_match": 50.0}, lacking, teacher_metrics={"exact_match": 100.0}, teacher_scores=full
    )
    assert not evidence.problems and judge(rule, "s", evidence).status == "pass"


def test_assert_gate_undecided_skips_only_when_not_strict():
    from types import SimpleNamespace

    from qagate.assertions import GateAssertionError, assert_gate

    ids = [f"q{i}" for i in range(20)]
    student = SimpleNamespace(
        metrics={"exact_match": 90.0}, scores=FakeScores({q: float(i < 18) for i, q in enumerate(ids)})
    )
    with pytest.raises(pytest.skip.Exception, match="UNDECIDED"):
        assert_gate("exact_match >= 85", student, confidence=0.95, undecided="skip")
    with pytest.raises(GateAssertionError, match="UNDECIDED"):
        assert_gate("exact_match >= 85", student, confidence=0.95, undecided="skip", strict=True)
