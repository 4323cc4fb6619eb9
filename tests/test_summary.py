"""CI integration: the JUnit XML properties of every gate item, and ``qagate summary --markdown``
(the verdict table, what changed since the previous run on the branch, where the text goes)."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET

import pytest

from qagate import cli
from qagate.reports.markdown import escape, summary
from qagate.store.history import append_run, build_run
from test_plugin import Project, project  # noqa: F401  (the same tmp project fixture)

# The history store may use SQLAlchemy, which cannot be imported twice in one process: import it
# once here, so that pytester's in-process runs (which restore sys.modules) never re-import it.
with contextlib.suppress(ImportError):
    import sqlalchemy  # noqa: F401

EVIL = "<script>alert(1)</script>|x"


def gate(status, obtained, threshold=75.0, *, model="student", rule="exact_match>=0.95*teacher", **extra):
    return {
        "nodeid": f"gate.yaml::{model}::{rule}",
        "model": model,
        "rule": rule,
        "metric": rule.split(">")[0].split("<")[0],
        "op": ">=",
        "dataset": "sample",
        "status": status,
        "obtained": obtained,
        "threshold": threshold,
        **extra,
    }


def run_of(tmp_path, results, *, branch="main", commit="a" * 40):
    run = build_run(results=results, metrics=[], started=0.0, exit_status=0, rootdir=tmp_path)
    run["git"] = {"commit": commit, "branch": branch}
    return run


def test_junit_xml_has_metric_value_reference_interval_and_verdict(project):  # noqa: F811
    project.gate(
        "rules:\n  - apply_to: [good]\n    require:\n"
        "      - exact_match >= 0.95 * teacher\n"
        "      - {rule: exact_match >= 90, confidence: 0.9}\n"
    )
    project.run("--junitxml=report.xml").assert_outcomes(passed=2)
    cases = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(project.root / "report.xml").iter("testcase")
    }
    relative = cases["exact_match>=0.95*teacher"]
    assert relative["qagate.metric"] == "exact_match" and relative["qagate.status"] == "pass"
    assert relative["qagate.reference"] == "teacher" and float(relative["qagate.teacher"]) == 100.0
    assert float(relative["qagate.obtained"]) == 99.0 and "qagate.interval_low" not in relative
    absolute = cases["exact_match>=90@90%"]
    assert absolute["qagate.reference"] == "absolute" and float(absolute["qagate.threshold"]) == 90.0
    assert float(absolute["qagate.interval_level"]) == 0.9
    assert float(absolute["qagate.interval_low"]) <= float(absolute["qagate.interval_high"])


def test_the_summary_lists_every_gate_worst_first_and_what_changed(tmp_path):
    runs = [
        run_of(tmp_path, [gate("pass", 80.0), gate("fail", 1.5, 2.0, rule="speedup>=2")]),
        run_of(tmp_path, [gate("pass", 90.0, rule="f1>=85")], branch="other"),  # not this branch
        run_of(
            tmp_path,
            [
                gate("fail", 74.0),
                gate("pass", 2.1, 2.0, rule="speedup>=2"),
                gate(
                    "undecided", 86.0, 85.0, rule="f1>=85", interval_low=-0.5, interval_high=2.5, level=0.95
                ),
            ],
        ),
    ]
    text = summary(runs, 2)
    assert text.startswith("## qagate: \u274c FAIL \u2014 1 fail, 1 pass, 1 undecided\n")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "student" in line][:3]
    assert [row.split(" | ")[2] for row in rows] == [
        "`exact_match>=0.95*teacher`",
        "`f1>=85`",
        "`speedup>=2`",
    ]
    assert (
        "| \u2753 UNDECIDED | student | `f1>=85` | sample | 86.0000 | &gt;= 85.0000 "
        "| 95% interval [84.5000, 87.5000] of f1 |" in text  # the one labelled form (issue 28)
    )
    changes = text[text.index("### Since the previous run") :]
    assert f"Compared with run `{runs[0]['id']}`" in changes  # the previous run on main, not on other
    assert "**New failures (1):**\n- \u274c FAIL student `exact_match>=0.95*teacher` on sample" in changes
    assert "**Fixed (1):**\n- \u2705 PASS student `speedup>=2` on sample" in changes
    assert "| student | `exact_match>=0.95*teacher` | 80.0000 | 74.0000 | -6 |" in changes
    assert "New gates since then: 1." in changes


def test_model_output_cannot_break_the_table_or_inject_html(tmp_path):
    runs = [run_of(tmp_path, [gate("fail", 1.0, model=EVIL, rule="f1>=2")])]
    runs[0]["label"] = EVIL
    text = summary(runs, 0)
    assert "<script" not in text and escape(EVIL) in text
    row = next(line for line in text.splitlines() if "FAIL |" in line)
    assert row.count(" | ") == 6  # the pipe in the model's name is escaped: still seven cells
    assert "No earlier run on this branch" in text


def test_where_the_summary_goes(tmp_path, monkeypatch, capsys):
    history = tmp_path / "h.jsonl"
    first = run_of(tmp_path, [gate("pass", 80.0)])
    append_run(history, first)
    append_run(history, run_of(tmp_path, [gate("fail", 70.0)]))
    step = tmp_path / "step.md"
    step.write_text("earlier step output\n")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert cli.main(["summary", "--markdown", "--history", str(history)]) == 0
    assert "FAIL" in capsys.readouterr().out  # no variable: printed
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    assert cli.main(["summary", "--history", str(history)]) == 0  # in Actions: appended
    assert capsys.readouterr().out == "" and step.read_text().startswith("earlier step output\n## qagate")
    assert cli.main(["summary", "--history", str(history), "--run", first["id"][:6], "--out", "-"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## qagate: \u2705 PASS") and step.read_text().count("## qagate") == 1
    assert cli.main(["summary", "--history", str(history), "--out", str(tmp_path / "s.md"), "--github"]) == 0
    assert (tmp_path / "s.md").read_text().startswith("## qagate") and step.read_text().count(
        "## qagate"
    ) == 2
    assert cli.main(["summary", "--history", str(history), "--run", "nope"]) == 2
    assert "no such run" in capsys.readouterr().err
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    assert cli.main(["summary", "--history", str(history), "--github"]) == 2


@pytest.mark.parametrize("text", ["a|b", "x*y_z", "[link](http://e)", "`tick`"])
def test_escape_keeps_the_text_and_removes_the_markup(text):
    escaped = escape(text)
    assert "|" not in escaped.replace("\\|", "") and escaped.replace("\\", "") == text
