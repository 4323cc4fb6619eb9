"""Gate files and rules: parsing, validation with file:line errors, and deciding verdicts."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from qagate.core.argtypes import expand_vars
from qagate.core.errors import QagateError
from qagate.gating.gatefile import load_gate_file, resolve_cases
from qagate.gating.judge import check, decide_interval
from qagate.gating.rules import parse_rule
from qagate.scoring.stats import Interval

ROLES = {"big": "teacher", "small": "student", "tiny": "student"}


def write(tmp_path: Path, text: str, name: str = "gate_x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, metric, op, ref, coef, offset, canonical",
    [
        ("f1 >= 80", "f1", ">=", None, 1.0, 80.0, "f1>=80"),
        (
            "exact_match >= 0.95 * teacher",
            "exact_match",
            ">=",
            "teacher",
            0.95,
            0.0,
            "exact_match>=0.95*teacher",
        ),
        ("f1 >= teacher - 2", "f1", ">=", "teacher", 1.0, -2.0, "f1>=teacher-2"),
        ("f1 >= baseline - 0.5", "f1", ">=", "baseline", 1.0, -0.5, "f1>=baseline-0.5"),
        (
            "exact_match>=baseline*0.98",
            "exact_match",
            ">=",
            "baseline",
            0.98,
            0.0,
            "exact_match>=baseline*0.98",
        ),
        ("speedup >= 4", "speedup", ">=", None, 1.0, 4.0, "speedup>=4"),
        (
            "seconds_per_question < 0.5 * teacher",
            "seconds_per_question",
            "<",
            "teacher",
            0.5,
            0.0,
            "seconds_per_question<0.5*teacher",
        ),
        ("parameter_count <= 2.5e7", "parameter_count", "<=", None, 1.0, 2.5e7, "parameter_count<=2.5e7"),
    ],
)
def test_rule_forms(text, metric, op, ref, coef, offset, canonical):
    rule = parse_rule(text)
    assert (rule.metric, rule.op, rule.reference, rule.coef, rule.offset) == (metric, op, ref, coef, offset)
    assert rule.text == canonical == rule.id


def test_rule_id_carries_the_confidence_level():
    assert parse_rule("f1 >= 0.9 * teacher", confidence=0.95).id == "f1>=0.9*teacher@95%"


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "f2 >= 80",
            "unknown metric 'f2' in rule 'f2 >= 80' (did you mean 'f1'?); valid metrics: exact_match, f1",
        ),
        ("f1 == 80", "unsupported operator '=='"),
        ("f1 >= teacher * 0.9 * 2", "malformed right-hand side"),
        ("f1 >= student - 1", "unknown reference 'student'"),
        ("f1 80", "malformed rule"),
        ("speedup >= 2 * teacher", "speedup is already relative to the teacher"),
        ("speedup >= 0.9 * baseline", "speedup is already relative to the teacher"),
        (
            "em >= 0.95 * teacher",
            "unknown metric 'em' in rule 'em >= 0.95 * teacher' (did you mean "
            "'exact_match'?); valid metrics: exact_match, f1",
        ),
        ("EM >= 80", "unknown metric 'EM' in rule 'EM >= 80' (did you mean 'exact_match'?)"),
        ("F1 >= 80", "(did you mean 'f1'?)"),
        ("latency <= 0.1", "(did you mean 'seconds_per_question'?)"),
        ("speed_up >= 2", "(did you mean 'speedup'?)"),
        (
            "exact-match >= 0.95 * teacher",
            "metric 'exact-match' in rule 'exact-match >= 0.95 * teacher' "
            "has a hyphen; metric names use underscores (did you mean "
            "'exact_match'?)",
        ),
        (
            "f1 => 80",
            "unsupported operator '=>' in rule 'f1 => 80' (did you mean '>='?); use one of >=, >, <=, <",
        ),
        ("f1=<teacher", "unsupported operator '=<' in rule 'f1=<teacher' (did you mean '<='?)"),
        ("f1 = 80", "unsupported operator '=' in rule 'f1 = 80'; use one of"),
    ],
)
def test_bad_rules_name_the_problem(text, message):
    with pytest.raises(QagateError) as info:
        parse_rule(text)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text, meant",
    [
        ("f1 >= 0.9", "would pass almost any model; did you mean 'f1 >= 90'?"),
        ("exact_match<.5", "would fail almost any model; did you mean 'exact_match < 50'?"),
        ("f1@question_noise >= 0.8", "did you mean 'f1@question_noise >= 80'?"),
    ],
)
def test_a_fraction_threshold_on_a_percent_metric_is_refused(text, meant):
    with pytest.raises(QagateError, match="is in percent \\(0-100\\)") as error:
        parse_rule(text)
    assert meant in str(error.value)
    for fine in ("f1 >= 1", "f1 >= 0", "drop(f1@addsent) <= 0.5", "invariance@question_noise >= 0.9"):
        parse_rule(fine)


def test_confidence_needs_per_question_scores():
    with pytest.raises(QagateError, match="confidence needs per-question scores"):
        parse_rule("size_on_disk_mb <= 10", confidence=0.95)
    assert parse_rule("f1 >= baseline - 1", confidence=0.95).confidence == 0.95  # paired per question
    with pytest.raises(QagateError, match="keeps no per-question values"):
        parse_rule("seconds_per_question <= 1.1 * baseline", confidence=0.95)


def test_timing_rules_against_the_compared_run_parse():
    rule = parse_rule("seconds_per_question <= 1.10 * baseline")
    assert (rule.reference, rule.coef, rule.id) == ("baseline", 1.10, "seconds_per_question<=1.10*baseline")
    assert parse_rule("latency_p95 <= baseline + 0.002").offset == 0.002


def test_gate_file_round_trip(tmp_path):
    path = write(
        tmp_path,
        """\
        description: example
        dataset: {source: data.json, limit: 10, articles: 38-47}
        models: models
        requires: [missing-dir]
        rules:
          - apply_to: students
            require:
              - exact_match >= 0.95 * teacher
              - rule: f1 >= 0.9 * teacher
                confidence: true
          - apply_to: [big, tiny]
            confidence: 0.9
            require: f1 >= 10
        """,
    )
    gate = load_gate_file(path, default_level=0.99)
    assert gate.dataset.spec == str(tmp_path / "data.json")
    assert (gate.dataset.limit, gate.dataset.articles) == (10, (38, 47))
    assert gate.models == tmp_path / "models"
    assert gate.missing_requirements() == [tmp_path / "missing-dir"]
    cases = resolve_cases(gate, ROLES, models_source="models")
    assert [(c.model, c.rule.id, c.rule.line) for c in cases] == [
        ("small", "exact_match>=0.95*teacher", 8),
        ("tiny", "exact_match>=0.95*teacher", 8),
        ("small", "f1>=0.9*teacher@99%", 9),
        ("tiny", "f1>=0.9*teacher@99%", 9),
        ("big", "f1>=10@90%", 13),
        ("tiny", "f1>=10@90%", 13),
    ]


def test_teacher_relative_rules_skip_the_teacher_in_groups(tmp_path):
    gate = load_gate_file(
        write(
            tmp_path,
            """\
        rules:
          - apply_to: all
            require: [speedup >= 2, f1 >= 0.9 * teacher, f1 >= 1]
        """,
        )
    )
    cases = resolve_cases(gate, ROLES, models_source="models")
    assert sorted((c.model, c.rule.id) for c in cases) == [
        ("big", "f1>=1"),
        ("small", "f1>=0.9*teacher"),
        ("small", "f1>=1"),
        ("small", "speedup>=2"),
        ("tiny", "f1>=0.9*teacher"),
        ("tiny", "f1>=1"),
        ("tiny", "speedup>=2"),
    ]


@pytest.mark.parametrize(
    "body, where, message",
    [
        ("rules:\n  - apply_to: students\n    require: [f2 >= 1]\n", 3, "unknown metric 'f2'"),
        (
            "rules:\n  - apply_to: [smal]\n    require: [f1 >= 1]\n",
            2,
            "unknown model 'smal' (did you mean 'small'?) in apply_to; models declared in models: big, "
            "small, tiny",
        ),
        (
            "rules:\n  - apply_to: studnets\n    require: [f1 >= 1]\n",
            2,
            "unknown model 'studnets' (did you mean 'students'?) in apply_to",
        ),
        ("rules:\n  - apply_to: students\n    require:\n      - f1 >>= 1\n", 4, "malformed"),
        (
            "rules:\n  - apply_to: students\n    requires: [f1 >= 1]\n",
            3,
            "unknown key 'requires' in rule block (did you mean 'require'?); valid keys: apply_to, "
            "require, confidence",
        ),
        ("rules:\n  - apply_to: students\n    require: [f1 >= 1\n", 4, "invalid YAML"),
        ("rule:\n  - apply_to: students\n", 1, "unknown key 'rule' in gate file"),
        ("rules: []\n", 1, "'rules' must be a non-empty list"),
        ("rules:\n  - apply_to: [big]\n    require: [f1 >= 0.9 * teacher]\n", 3, "compares big with itself"),
        (
            "rules:\n  - apply_to: students\n    require:\n      - rule: f1 >= 1\n        confidence: 2\n",
            5,
            "confidence must be a level between 0 and 1",
        ),
        ("rules:\n  - apply_to: students\n    require: [f1 >= 1, f1>=1]\n", 3, "applied to small twice"),
        (
            "dataset: {source: sample, articles: 47-38}\nrules:\n  - apply_to: all\n    require: [f1 >= 1]\n",
            1,
            "dataset articles: article range '47-38' ends before it starts",
        ),
        (
            "dataset:\n  source: sample\n  limit: 0\nrules:\n  - apply_to: all\n    require: [f1 >= 1]\n",
            3,
            "dataset limit: expected a positive integer, got '0'",
        ),
        (
            "dataset:\n  source: sample\n  seed: x\nrules:\n  - apply_to: all\n    require: [f1 >= 1]\n",
            3,
            "dataset seed: expected an integer, got 'x'",
        ),
        (
            "dataset: {source: sample, perturb: [tpyo]}\nrules:\n  - apply_to: all\n    require: [f1 >= 1]\n",
            1,
            "got ['tpyo'] (did you mean 'typo'?)",
        ),
        (
            "dataset: 'hf:'\nrules:\n  - apply_to: all\n    require: [f1 >= 1]\n",
            1,
            "dataset: 'hf:' needs a hub id, e.g. hf:squad",
        ),
        (
            "rules:\n  - apply_to: students\n    require:\n      - em >= 0.9 * teacher\n",
            4,
            "unknown metric 'em' in rule 'em >= 0.9 * teacher' (did you mean 'exact_match'?)",
        ),
        (
            "marks: [full, 'not full']\nrules:\n  - apply_to: all\n    require: [f1 >= 1]\n",
            1,
            "marks: 'not full' is not a pytest marker name",
        ),
    ],
)
def test_bad_gate_files_name_file_and_line(tmp_path, body, where, message):
    path = write(tmp_path, body)
    with pytest.raises(QagateError) as info:
        resolve_cases(load_gate_file(path), ROLES, models_source="models")
    text = str(info.value)
    assert text.startswith(f"{path}:{where}: "), text
    assert message in text


def test_gate_paths_expand_variables_and_home(tmp_path, monkeypatch):
    monkeypatch.setenv("QAGATE_TEST_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    gate = load_gate_file(
        write(
            tmp_path,
            """\
        dataset: ${QAGATE_TEST_DATA}/dev.json
        models: ~/models
        rules:
          - apply_to: all
            require: [f1 >= 1]
    """,
        )
    )
    assert gate.dataset.spec == str(tmp_path / "data/dev.json")
    assert gate.models == tmp_path / "home/models"


def test_rules_needing_a_teacher_need_exactly_one(tmp_path):
    gate = load_gate_file(write(tmp_path, "rules:\n  - apply_to: all\n    require: [speedup >= 2]\n"))
    with pytest.raises(
        QagateError,
        match="exactly one model in models needs 'role: teacher' "
        r"\(found: none\)",
    ):
        resolve_cases(gate, {"a": "student", "b": "student"}, models_source="models")


def test_environment_variables_with_defaults(monkeypatch):
    monkeypatch.delenv("QAGATE_TEST_UNSET", raising=False)
    monkeypatch.setenv("QAGATE_TEST_SET", "/data")
    assert expand_vars("${QAGATE_TEST_SET}/x") == "/data/x"
    assert expand_vars("${QAGATE_TEST_UNSET:-../shared}/x") == "../shared/x"
    with pytest.raises(QagateError, match="QAGATE_TEST_UNSET is not set"):
        expand_vars("${QAGATE_TEST_UNSET}/x")


@pytest.mark.parametrize(
    "rule, obtained, reference, status",
    [
        ("f1 >= 80", 80.0, None, "pass"),
        ("f1 >= 80", 79.9999, None, "fail"),
        ("f1 > 80", 80.0, None, "fail"),
        ("exact_match >= 0.95 * teacher", 81.9, 86.2, "pass"),  # 0.95 * 86.2 = 81.89
        ("exact_match >= 0.95 * teacher", 81.8, 86.2, "fail"),
        ("f1 >= baseline - 0.5", 79.5, 80.0, "pass"),
        ("f1 >= baseline - 0.5", 79.4, 80.0, "fail"),
        ("seconds_per_question <= 0.5 * teacher", 0.01, 0.03, "pass"),
        ("size_on_disk_mb < 10", 10.0, None, "fail"),
    ],
)
def test_point_verdicts(rule, obtained, reference, status):
    verdict = check(parse_rule(rule), "m", obtained, reference_value=reference)
    assert verdict.status == status


def test_baseline_equal_up_to_stored_rounding_passes():
    verdict = check(parse_rule("f1 >= baseline"), "m", 80.12345649, reference_value=80.123456)
    assert verdict.passed


def test_missing_value_fails_with_a_note():
    verdict = check(parse_rule("bertscore_f1 >= 0.5"), "m", None)
    assert verdict.status == "fail" and "no value for bertscore_f1" in verdict.notes[0]


@pytest.mark.parametrize(
    "op, low, high, status",
    [
        (">=", 0.1, 2.0, "pass"),
        (">=", 0.0, 2.0, "pass"),
        (">=", -0.1, 2.0, "undecided"),
        (">=", -2.0, -0.1, "fail"),
        (">", 0.0, 2.0, "undecided"),
        (">", -1.0, 0.0, "fail"),
        ("<=", -2.0, 0.0, "pass"),
        ("<=", -2.0, 0.1, "undecided"),
        ("<=", 0.1, 1.0, "fail"),
        ("<", -2.0, -0.1, "pass"),
        ("<", 0.0, 1.0, "fail"),
    ],
)
def test_interval_decisions(op, low, high, status):
    assert decide_interval(op, low, high) == status


def test_confidence_verdict_uses_the_interval_not_the_point():
    rule = parse_rule("f1 >= 0.9 * teacher", confidence=0.95)
    undecided = check(rule, "m", 91.0, reference_value=100.0, interval=Interval(1.0, -0.5, 2.5, 0.95))
    assert undecided.status == "undecided" and not undecided.passed


def test_marks_are_read_in_order_without_repeats(tmp_path):
    path = write(
        tmp_path, "marks: [full, nightly, full]\nrules:\n  - apply_to: all\n    require: [f1 >= 1]\n"
    )
    assert load_gate_file(path).marks == ("full", "nightly")
    assert load_gate_file(
        write(tmp_path, "marks: full\nrules: [{apply_to: all, require: [f1 >= 1]}]\n")
    ).marks == ("full",)
