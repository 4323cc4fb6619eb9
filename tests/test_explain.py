"""``qagate explain`` and ``pytest -v``: verdicts that explain themselves (issue 27 item 4).

End to end with the replay project of test_plugin (no torch): a run is recorded, then explained
from the history; the "questions that would decide it" is checked against the interval engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qagate import cli
from qagate.gating.judge import decide_interval, rule_sequence, rule_values
from qagate.gating.rules import parse_rule
from qagate.reports.explain import like_sample, render, what_decides
from qagate.store.history import append_run, build_run, read_history
from test_plugin import Project, project  # noqa: F401  (the same tmp project fixture)

UNDECIDED = """\
rules:
  - apply_to: [good]
    require:
      - rule: exact_match >= 0.9 * teacher
        confidence: 0.95
      - f1 >= baseline - 1
"""
NODE = "gate_release.yaml::good::exact_match>=0.9*teacher@95%"


def explain(project: Project, capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project.root)
        code = cli.main(["explain", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_undecided_verdict_explains_itself_from_the_history(project, capsys):
    project.model("good", "student", 0.905)  # 90.5 against 0.9 x 100 on 400 questions
    project.gate(UNDECIDED)
    project.run().assert_outcomes(failed=1, passed=1)  # undecided fails; the baseline is NEW
    run = read_history(project.root / ".qagate" / "history.db").runs[-1]
    row = next(r for r in run["results"] if r["nodeid"] == NODE)
    facts = row["explain"]
    assert facts["reference"] == "teacher" and facts["reference_value"] == 100.0
    assert facts["questions"] == 400 and facts["coef"] == 0.9
    interval = facts["interval"]
    assert interval["method"].startswith("betting confidence sequence")
    assert interval["n"] == 400 and interval["seed"] == 0 and interval["bounds"] == [-90.0, 100.0]
    assert interval["mean"] == pytest.approx(0.5) and interval["low"] < 0 < interval["high"]

    code, out, err = explain(project, capsys, run["id"][:6], "good::exact_match")  # prefixes, as git
    assert code == 0, err
    assert f"run {run['id']}" in out and f"gate      {NODE}" in out
    assert "verdict   UNDECIDED" in out and "(400 questions)" in out
    assert "values    good exact_match 90.5000" in out and "teacher 100.0000" in out
    assert "threshold 0.9 x 100.0000 + 0 = 90.0000" in out
    assert "one look at 400 questions, bets tuned to 400" in out and "seed 0" in out
    assert "decision  '>=' passes when low >= 0, fails when high < 0; it straddles 0: UNDECIDED" in out
    decide = facts["decide"]
    assert f"to decide about {decide['questions']:,} questions like these" in out
    assert decide["verdict"] == "pass" and decide["questions"] > 400


def test_the_questions_that_decide_come_from_the_engine():
    """At the size :func:`what_decides` names, the judge's engine decides on this sample repeated;
    a little below it (the search's 1/32 precision), it does not yet."""
    rule = parse_rule("exact_match >= 0.9 * teacher", confidence=0.95)
    rng = np.random.default_rng(3)
    teacher = np.where(rng.random(300) < 0.85, 100.0, 0.0)
    student = np.where(rng.random(300) < 0.91, teacher, 100.0 - teacher)
    values = rule_values(rule, student, teacher)

    def status(size: int) -> str:
        sample = like_sample(values, size)
        assert abs(sample.mean() - values.mean()) <= 190 / size  # whole copies, then spaced quantiles
        iv = rule_sequence(rule, horizon=size).update(sample)
        return decide_interval(rule.op, iv.low, iv.high)

    assert status(300) == "undecided"
    found = what_decides(rule, values)
    n = found["questions"]
    assert n and n > 300

    assert status(n) == found["verdict"] != "undecided"
    below = found["undecided_at"]
    assert status(below) == "undecided" and n - max(1, n // 32) <= below < n
    on_the_line = what_decides(rule, np.array([10.0] * 90 + [-90.0] * 10))  # mean 0: on the threshold
    assert on_the_line["questions"] is None and "sits on the threshold" in on_the_line["reason"]
    # questions that already decide: the search goes down to the fewest that still do
    wide = np.concatenate([values] * 20)
    assert status(wide.size) == "pass"
    fewer = what_decides(rule, wide)
    assert fewer["questions"] < wide.size and fewer["level"] == 0.95 and fewer["level_verdict"] == "pass"
    # the same population, so about the same size (another order of the questions moves it ~10%)
    assert 0.8 * n <= fewer["questions"] <= 1.25 * n


def test_a_baseline_rule_shows_the_baseline_provenance(project, capsys):
    project.gate(UNDECIDED)
    project.run()  # writes the baseline (NEW)
    project.run()
    code, out, _ = explain(project, capsys, "last", "f1>=baseline-1")
    assert code == 0
    assert "verdict   PASS" in out
    assert "threshold 1 x 99.0000 - 1 = 98.0000" in out
    assert "baseline  baselines/data/good.json" in out and "written 20" in out
    assert "dataset data (400 questions, fingerprint" in out and "model good (fingerprint" in out
    assert "interval  none (a point comparison" in out


def test_without_a_node_id_every_gate_that_did_not_pass(project, capsys):
    project.gate("rules:\n  - apply_to: [good, bad]\n    require: [exact_match >= 0.95 * teacher]\n")
    project.run()
    code, out, _ = explain(project, capsys, "last")
    assert code == 0
    assert "gate_release.yaml::bad::" in out and "gate_release.yaml::good::" not in out
    assert "point     70.0000 >= 95.0000: does not hold (obtained - threshold = -25.0000)" in out
    code, out, _ = explain(project, capsys, "last", "--json")
    assert [r["model"] for r in json.loads(out)] == ["bad"]


def test_a_failed_item_under_v_says_how_its_verdict_was_reached(project):
    project.model("good", "student", 0.905)
    project.gate(UNDECIDED)
    out = project.run("-v").stdout.str()
    assert "how the verdict was reached:" in out
    assert "method    betting confidence sequence" in out and "to decide about" in out
    out = project.run().stdout.str()
    assert "how the verdict was reached:" not in out
    assert "(pytest -v, or 'qagate explain last NODEID' after the run, shows how" in out


def test_an_older_run_without_the_facts_is_explained_from_what_it_kept(tmp_path, capsys, monkeypatch):
    row = {
        "nodeid": "g.yaml::student::f1>=0.9*teacher@95%",
        "model": "student",
        "rule": "f1>=0.9*teacher@95%",
        "metric": "f1",
        "op": ">=",
        "dataset": "sample",
        "status": "undecided",
        "obtained": 80.0,
        "threshold": 79.2,
        "interval_low": 77.0,
        "interval_high": 83.0,
        "level": 0.95,
    }
    lines = "\n".join(render(row))
    assert (
        "teacher 88.0000 (from the threshold)" in lines and "threshold 0.9 x 88.0000 + 0 = 79.2000" in lines
    )
    assert "method not recorded" in lines and "kept no explanation" in lines
    assert "[-2.2000, +3.8000] of (left - right)" in lines  # the value's interval, as the margin's
    history = tmp_path / "old.jsonl"
    append_run(history, build_run(results=[row], metrics=[], started=0, exit_status=1, rootdir=tmp_path))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["explain", "last", "student", "--history", str(history)]) == 0
    assert "kept no explanation" in capsys.readouterr().out


def test_unknown_run_and_node_ids_are_one_line_with_a_did_you_mean(tmp_path, capsys, monkeypatch):
    history = tmp_path / "h.jsonl"
    rows = [
        {"nodeid": "g.yaml::student::f1>=85", "model": "student", "rule": "f1>=85", "status": "pass"},
        {"nodeid": "g.yaml::student::exact_match>=80", "model": "student", "rule": "em", "status": "fail"},
    ]
    runs = []
    for _ in range(2):
        run = build_run(results=rows, metrics=[], started=0, exit_status=0, rootdir=tmp_path)
        append_run(history, run)
        runs.append(run)
    monkeypatch.chdir(tmp_path)
    target = ["--history", str(history)]
    first = runs[0]["id"]
    typo = first[:-1] + ("0" if first[-1] != "0" else "1")
    assert cli.main(["explain", typo, *target]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"did you mean {first!r}" in err
    assert cli.main(["explain", first, "student::f1>=86", *target]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did you mean 'g.yaml::student::f1>=85'" in err
    assert cli.main(["explain", first, "student", *target]) == 2  # two gates match
    assert "2 gates of run" in capsys.readouterr().err
    assert cli.main(["explain", "", *target]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_explain_reads_the_store_like_history(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["explain", "last"]) == 2
    err = capsys.readouterr().err
    assert "no run history here" in err and len(err.strip().splitlines()) == 1
    assert not Path(tmp_path / ".qagate").exists()


def test_a_speed_rule_names_its_bootstrap():
    from qagate.gating.case import CaseOutcome
    from qagate.gating.judge import Verdict
    from qagate.reports.explain import facts
    from qagate.scoring.stats import Interval

    class Questions(list):
        examples: list = []

    rule = parse_rule("speedup >= 4", confidence=0.95)
    verdict = Verdict("undecided", "student", rule, 3.9, None, 4.0, Interval(-0.1, -0.4, 0.3, 0.95))
    recorded = facts(CaseOutcome(verdict, Questions(range(32)), None))
    assert recorded["interval"]["method"] == "t over consecutive blocks of timed rounds"
    assert recorded["interval"]["blocks"] == [3, 4, 5] and "decide" not in recorded
    row = {"nodeid": "g.yaml::student::speedup>=4@95%", "model": "student", "rule": rule.id,
           "metric": "speedup", "op": ">=", "status": "undecided", "obtained": 3.9, "threshold": 4.0,
           "explain": recorded}  # fmt: skip
    text = "\n".join(render(row))
    assert "threshold 4" in text and "interval of speedup - 4: [-0.4000, +0.3000]" in text
    assert "to decide more timed rounds narrow the interval: a larger --qagate-speed-budget" in text
    assert "threshold 4" in text and "over 3/4/5 consecutive blocks of the timed rounds" in text
    assert "it straddles 0: UNDECIDED" in text


def test_a_sequential_verdict_shows_its_looks(project, capsys):
    project.model("good", "student", 0.99)
    project.gate(
        "rules:\n  - apply_to: [good]\n    confidence: 0.95\n    sequential: {look_every: 100}\n"
        "    require: [exact_match >= 0.8 * teacher]\n"
    )
    project.run().assert_outcomes(passed=1)
    code, out, _ = explain(project, capsys, "last", "good")
    assert code == 0 and "verdict   PASS" in out
    assert "stopped at the first look that decided; used 100 of 400 questions" in out
    assert "look at 100 questions: estimate +18.0000, [+" in out
