"""Robustness rules: ``f1@addsent >= 0.8 * clean``, ``drop(f1@addsent) <= teacher + 5``,
``invariance@question_noise >= 0.9``: parsing, paired evidence, verdicts, and a gate file."""

from __future__ import annotations

from pathlib import Path

import pytest

from qagate.core.errors import QagateError
from qagate.data import load_dataset
from qagate.data.perturb import perturb_dataset
from qagate.data.predictions import Predictions
from qagate.gating.case import decide_case
from qagate.gating.gatefile import DatasetRequest, GateCase, GateFile
from qagate.gating.robustness import invariance
from qagate.gating.rules import parse_rule
from qagate.scoring.evaluation import EvalResult
from qagate.scoring.squad import score
from test_plugin import Project

SAMPLE = load_dataset("sample")


@pytest.mark.parametrize(
    "text, metric, reference, coef, offset, perturb, drop",
    [
        ("f1@addsent >= 0.8 * clean", "f1", "clean", 0.8, 0.0, ("addsent",), False),
        ("drop(f1@addsent) <= teacher + 5", "f1", "teacher", 1.0, 5.0, ("addsent",), True),
        ("invariance@question_noise >= 0.9", "invariance", None, 1.0, 0.9, ("question_noise",), False),
        (
            "exact_match@reorder+addsent >= clean - 10",
            "exact_match",
            "clean",
            1.0,
            -10.0,
            ("reorder", "addsent"),
            False,
        ),
        ("drop(exact_match@swap_entities) < 3", "exact_match", None, 1.0, 3.0, ("swap_entities",), True),
        ("f1@typo >= teacher - 2", "f1", "teacher", 1.0, -2.0, ("typo",), False),
    ],
)
def test_robustness_rules_parse(text, metric, reference, coef, offset, perturb, drop):
    rule = parse_rule(text)
    assert (rule.metric, rule.reference, rule.coef, rule.offset, rule.perturb, rule.drop) == (
        metric,
        reference,
        coef,
        offset,
        perturb,
        drop,
    )
    assert rule.text == text.replace(" ", "")


@pytest.mark.parametrize(
    "text, message",
    [
        ("invariance >= 0.9", "name the perturbation, e.g. 'invariance@question_noise >= 0.9'"),
        ("f1@addsnt >= 50", "unknown perturbation 'addsnt'"),
        ("drop(f1@addsent) <= clean", "compare with a number or teacher (not 'clean')"),
        ("invariance@reorder >= clean", "compare with a number or teacher"),
        ("drop(invariance@reorder) < 1", "drop() is for f1 and exact_match"),
        ("bleu@reorder > 1", "unknown robustness metric 'bleu'"),
        ("f1@addsent >= baseline", "not 'baseline'"),
        ("f1@addsent == 50", "unsupported operator '=='"),
        ("drop(f1@addsent <= 5", "malformed robustness rule"),
    ],
)
def test_bad_robustness_rules_say_what_is_wrong(text, message):
    with pytest.raises(QagateError, match=None) as info:
        parse_rule(text)
    assert message in str(info.value)


def test_invariance_compares_normalised_answers():
    assert invariance({"a": "The Cat", "b": "x"}, {"a": "cat!", "b": "y"}, ["a", "b", "c"]) == [1.0, 0.0, 1.0]


class Source:
    """Stands in for the session: the sample, clean or perturbed, and scripted answers."""

    def __init__(self, answers):
        self.answers = answers  # (model, perturbed?) -> function(example) -> answer
        self.asked = []

    def request(self, gate_request=None):
        return gate_request or DatasetRequest("sample")

    def dataset(self, request=None):
        request = request or DatasetRequest("sample")
        return perturb_dataset(SAMPLE, request.perturb, request.perturb_seed) if request.perturb else SAMPLE

    def evaluation(self, name, folder=None, request=None):
        dataset = self.dataset(request)
        self.asked.append((name, request.perturb))
        answer = self.answers[(name, bool(request.perturb))]
        answers = {ex.id: answer(ex) for ex in dataset.examples}
        scores = score(dataset, answers)
        metrics = {"exact_match": scores.exact_match, "f1": scores.f1}
        return EvalResult(name, dataset.name, Predictions(answers), scores, metrics, False)

    def teacher_name(self, folder=None):
        return "teacher"


def right(ex):
    return ex.answers[0]


def wrong_on_first(n):
    ids = {ex.id for ex in SAMPLE.examples[:n]}
    return lambda ex: "nothing like it" if ex.id in ids else ex.answers[0]


def decide(source, text, model="student", confidence=None):
    gate = GateFile(Path("gate_x.yaml"), "", DatasetRequest("sample"), None, (), ())
    rule = parse_rule(text, confidence=confidence)
    return decide_case(source, gate, GateCase(model, rule), models=Path("."))


def test_perturbed_f1_relative_to_the_models_own_clean_f1():
    source = Source({("student", False): right, ("student", True): wrong_on_first(13)})  # 20% wrong
    outcome = decide(source, "f1@addsent >= 0.85 * clean")
    verdict = outcome.verdict
    assert verdict.status == "fail" and verdict.rule.reference == "clean"
    assert verdict.obtained == pytest.approx(80.0) and verdict.reference_value == pytest.approx(100.0)
    assert verdict.threshold == pytest.approx(85.0)
    assert outcome.dataset.name == "sample+addsent-s0"
    assert any("clean 100.00 -> addsent 80.00" in note for note in verdict.notes)
    assert decide(source, "f1@addsent >= 0.75 * clean").verdict.status == "pass"
    assert set(source.asked) == {("student", ()), ("student", ("addsent",))}


def test_a_confidence_rule_pairs_clean_and_perturbed_values_per_question():
    source = Source({("student", False): right, ("student", True): wrong_on_first(2)})  # 96.9%
    undecided = decide(source, "f1@reorder >= 0.95 * clean", confidence=0.95).verdict
    assert undecided.status == "undecided" and undecided.interval is not None
    assert undecided.rule.reference == "clean"  # the verdict names the rule as written
    assert decide(source, "f1@reorder >= 0.5 * clean", confidence=0.95).verdict.status == "pass"


def test_the_students_drop_against_the_teachers_drop():
    source = Source(
        {
            ("student", False): right,
            ("student", True): wrong_on_first(13),  # drop 20 points
            ("teacher", False): right,
            ("teacher", True): wrong_on_first(7),  # drop ~10.8 points
        }
    )
    verdict = decide(source, "drop(f1@addsent) <= teacher + 5").verdict
    assert verdict.status == "fail"
    assert verdict.obtained == pytest.approx(20.0) and verdict.reference_value == pytest.approx(700 / 65)
    assert decide(source, "drop(f1@addsent) <= teacher + 10").verdict.status == "pass"
    paired = decide(source, "drop(f1@addsent) <= teacher + 30", confidence=0.95).verdict
    assert paired.status == "pass" and paired.interval is not None
    assert decide(source, "drop(f1@addsent) <= 25").verdict.status == "pass"


def test_invariance_rate_is_the_share_of_unchanged_answers():
    source = Source({("student", False): right, ("student", True): wrong_on_first(13)})
    verdict = decide(source, "invariance@question_noise >= 0.9").verdict
    assert verdict.status == "fail" and verdict.obtained == pytest.approx(0.8)
    assert decide(source, "invariance@question_noise >= 0.8").verdict.status == "pass"
    assert decide(source, "invariance@question_noise >= 0.5", confidence=0.95).verdict.status == "pass"


def test_a_gate_file_with_robustness_rules(pytester):
    project = Project(pytester)
    project.model("teacher", "teacher", 1.0)
    project.model("student", "student", 0.9)
    project.gate(
        "dataset: {source: data.json, limit: 40, perturb: [question_noise, addsent]}\n"
        "rules:\n  - apply_to: students\n    require:\n"
        "      - f1 >= 0.8 * teacher\n"
        "      - f1@addsent >= 0.5 * clean\n"
        "      - drop(f1@question_noise) <= teacher + 1\n"
        "      - invariance@reorder >= 0.99\n"
    )
    result = project.run("-rA", "-v", "--qagate-history", "none")  # this test is about the verdicts
    result.assert_outcomes(passed=4)
    out = result.stdout.str()
    assert "data-first-40+question_noise+addsent-s0" in out
    assert "f1@addsent>=0.5*clean" in out and "invariance@reorder>=0.99" in out
