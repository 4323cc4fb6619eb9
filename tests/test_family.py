"""The release as a family (issue 29, item 5): how many confidence rules a run judged, the bound
on any wrong verdict among them, and --qagate-family-alpha holding it (Bonferroni)."""

from __future__ import annotations

import json

import pytest

from qagate.gating.family import Family, family_level, family_of
from test_plugin import Project

GATE = """\
rules:
  - apply_to: [good, bad]
    confidence: 0.95
    require: [exact_match >= 0.8 * teacher]
  - apply_to: [good]
    require: [f1 >= 50]
"""


def test_the_bound_is_the_sum_of_each_rules_one_sided_error():
    rows = [
        {"status": "pass", "level": 0.95, "interval_low": 1.0, "interval_high": 2.0},
        {"status": "undecided", "level": 0.9, "interval_low": -1.0, "interval_high": 2.0},
        {"status": "fail", "level": 0.95, "interval_low": -3.0, "interval_high": -2.0},
        {"status": "pass", "obtained": 80.0},  # a point comparison: not a confidence verdict
        {"status": "skipped", "level": 0.95},  # never judged: no interval
    ]
    family = family_of(rows)
    assert (family.judged, family.decided) == (3, 2)
    assert family.bound == pytest.approx(0.025 + 0.05 + 0.025)
    assert "3 confidence rules judged (2 decided)" in family.line() and "10.0%" in family.line()
    assert "--qagate-family-alpha 0.05 holds it to 5%" in family.line()
    assert family_of([]).line() == ""
    assert family_of(rows * 100).bound == 1.0


def test_bonferroni_levels_hold_the_family_and_never_loosen_a_rule():
    assert family_level(0.95, None, 10) == 0.95
    assert family_level(0.95, 0.05, 10) == pytest.approx(0.99)
    assert family_level(0.999, 0.05, 10) == 0.999  # a stricter rule keeps its own level
    assert family_level(0.95, 0.05, 1) == 0.95
    held = Family(10, 7, 10 * (1 - 0.99) / 2, alpha=0.05)
    assert "held to 0.05 by --qagate-family-alpha (Bonferroni)" in held.line()


@pytest.fixture
def project(pytester: pytest.Pytester) -> Project:
    p = Project(pytester)
    p.model("teacher", "teacher", 1.0)
    p.model("good", "student", 0.99)
    p.model("bad", "student", 0.70)
    p.gate(GATE)
    return p


def test_a_run_reports_its_family_in_the_summary_the_history_and_the_markdown(project):
    result = project.run("-rA", "--qagate-history=h.jsonl", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert "family: 2 confidence rules judged (2 decided)" in out and "at most 5.0%" in out
    run = json.loads((project.root / "h.jsonl").read_text().splitlines()[-1])
    assert run["family"] == {"judged": 2, "decided": 2, "bound": 0.05, "alpha": None}
    from qagate.reports.markdown import summary

    assert "Family: 2 confidence rules judged (2 decided)" in summary([run], 0)


def test_family_alpha_judges_each_confidence_rule_at_the_bonferroni_level(project):
    result = project.run("-rA", "--qagate-history=h.jsonl", "--qagate-family-alpha", "0.01", "-v")
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert "at most 1.0%" in out and "held to 0.01 by --qagate-family-alpha (Bonferroni)" in out
    run = json.loads((project.root / "h.jsonl").read_text().splitlines()[-1])
    judged = [row for row in run["results"] if row.get("level") is not None]
    assert [row["level"] for row in judged] == [pytest.approx(0.99)] * 2
    assert {row["rule"] for row in judged} == {"exact_match>=0.8*teacher@95%"}  # ids as written
    assert run["family"]["alpha"] == 0.01 and run["family"]["bound"] == pytest.approx(0.01)
    assert "judged at 99.0000% (--qagate-family-alpha 0.01 over 2 confidence rules" in out


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.1", "five"])
def test_a_family_alpha_outside_0_1_is_a_one_line_start_up_error(project, value):
    result = project.run("--qagate-family-alpha", value)
    assert result.ret != 0
    err = [line for line in result.errlines if "--qagate-family-alpha" in line]
    assert len(err) == 1 and "strictly between 0 and 1" in err[0]
    project.pytester.makeini(
        f"[pytest]\nqagate_models = models\nqagate_dataset = data.json\nqagate_family_alpha = {value}\n"
    )
    result = project.run()
    assert result.ret != 0
    err = [line for line in result.errlines if "qagate_family_alpha" in line]
    assert len(err) == 1 and "strictly between 0 and 1" in err[0]
