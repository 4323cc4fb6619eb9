"""The run history and its dashboard: every gating run appends one line; nothing stored is lost."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

# pytester's in-process runs restore sys.modules afterwards: load the database store and
# SQLite's driver here, once, so that the runs never import them a second time.
import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401

import qagate.store.history_db  # noqa: F401
from qagate import cli
from qagate.core.errors import QagateError
from qagate.reports.dashboard import render
from qagate.store.history import (
    STATUS_ORDER,
    append_run,
    baseline_changes,
    build_run,
    is_partial,
    lock_path,
    outcome_of,
    read_history,
)
from test_plugin import Project, project  # noqa: F401 (a fixture)


def result(
    model: str,
    status: str,
    obtained: float | None = 80.0,
    threshold: float | None = 75.0,
    rule: str = "exact_match>=0.95*teacher",
) -> dict:
    return {
        "nodeid": f"gate.yaml::{model}::{rule}",
        "model": model,
        "rule": rule,
        "metric": "exact_match",
        "op": ">=",
        "dataset": "sample",
        "status": status,
        "obtained": obtained,
        "threshold": threshold,
    }


def run_entry(tmp_path: Path, *statuses: str, **kw) -> dict:
    return build_run(
        results=[result(f"m{i}", s) for i, s in enumerate(statuses)],
        metrics=[
            {
                "model": "m0",
                "dataset": "sample",
                "exact_match": 80.0,
                "f1": 88.5,
                "seconds_per_question": 0.01,
                "speedup": float("nan"),
            }
        ],
        started=0.0,
        exit_status=0,
        rootdir=tmp_path,
        **kw,
    )


def test_outcome_is_the_worst_status():
    assert STATUS_ORDER == (
        "error",
        "fail",
        "undecided",
        "incomplete",
        "new",
        "undecided (skipped)",
        "skipped",
        "pass",
    )
    assert outcome_of(["pass", "pass"]) == "pass"
    assert outcome_of([]) == "pass"
    assert outcome_of(["pass", "skipped"]) == "skipped"  # never green with a skip
    assert outcome_of(["pass", "undecided"]) == "undecided"
    assert outcome_of(["undecided (skipped)", "pass", "skipped"]) == "undecided (skipped)"
    assert outcome_of(["undecided", "fail", "pass"]) == "fail"
    assert outcome_of(["fail", "error"]) == "error"
    assert outcome_of(["pass", "new"]) == "new"  # a new baseline: review it
    assert outcome_of(["new", "undecided (skipped)"]) == "new"
    assert outcome_of(["pass", "mystery"]) == "undecided"  # an unknown status is not green


def test_a_gate_skipped_for_missing_data_makes_the_run_incomplete(tmp_path):
    assert outcome_of(["pass", "skipped"], incomplete=True) == "incomplete"
    assert outcome_of(["pass"], incomplete=True) == "incomplete"
    assert outcome_of(["new", "skipped"], incomplete=True) == "incomplete"
    for worse in ("undecided", "fail", "error"):
        assert outcome_of(["skipped", worse], incomplete=True) == worse
    entry = run_entry(tmp_path, "pass", "skipped", incomplete=True)
    assert entry["outcome"] == "incomplete" and entry["incomplete"] is True
    assert run_entry(tmp_path, "pass")["incomplete"] is False


def test_runs_record_partial_selection_and_baseline_writes(tmp_path):
    entry = run_entry(
        tmp_path,
        "new",
        "pass",
        partial=True,
        baselines={"created": [tmp_path / "b" / "m0.json"], "updated": [], "regenerated": ["r.json"]},
    )
    assert entry["partial"] is True and entry["outcome"] == "new"
    assert entry["baselines"] == {"created": [str(tmp_path / "b" / "m0.json")], "regenerated": ["r.json"]}
    path = tmp_path / "history.jsonl"
    append_run(path, entry)
    stored = read_history(path).runs[0]
    assert is_partial(stored) and baseline_changes(stored) == entry["baselines"]
    plain = run_entry(tmp_path, "pass")
    assert plain["partial"] is False and plain["baselines"] == {}
    old_row = {"schema": 1, "outcome": "pass", "results": []}  # written before these fields
    assert not is_partial(old_row) and baseline_changes(old_row) == {}
    assert baseline_changes({"baselines": {"updated": "not a list", "created": ["a"]}}) == {"created": ["a"]}


def test_appends_hold_the_filelock_beside_the_history(tmp_path):
    from filelock import FileLock

    path = tmp_path / "history.jsonl"
    assert lock_path(path) == tmp_path / "history.jsonl.lock"
    done = threading.Event()
    worker = threading.Thread(target=lambda: (append_run(path, run_entry(tmp_path, "pass")), done.set()))
    with FileLock(lock_path(path)):  # another process appending
        worker.start()
        assert not done.wait(0.5), "append_run wrote while the history lock was held"
    worker.join(10)
    assert done.is_set() and len(read_history(path).runs) == 1


def test_a_lock_held_too_long_is_an_oserror(tmp_path, monkeypatch):
    from filelock import FileLock

    from qagate.store import history

    monkeypatch.setattr(history, "LOCK_TIMEOUT_S", 0.2)
    path = tmp_path / "history.jsonl"
    errors: list[BaseException] = []

    def append() -> None:
        try:
            append_run(path, run_entry(tmp_path, "pass"))
        except OSError as exc:  # the plugin's warning path
            errors.append(exc)

    with FileLock(lock_path(path)):
        worker = threading.Thread(target=append)
        worker.start()
        worker.join(10)
    assert len(errors) == 1 and not path.exists()


APPENDER = """\
import sys
from qagate.store.history import append_run
path, tag = sys.argv[1], sys.argv[2]
for i in range(15):
    append_run(path, {"schema": 1, "id": f"{tag}-{i}", "results": [], "pad": tag * 40000})
"""


def test_concurrent_appends_from_processes_keep_every_line_intact(tmp_path):
    path = tmp_path / "history.jsonl"
    workers = [subprocess.Popen([sys.executable, "-c", APPENDER, str(path), tag]) for tag in "abc"]
    assert [w.wait(120) for w in workers] == [0, 0, 0]
    history = read_history(path)
    assert history.skipped == []
    assert sorted(r["id"] for r in history.runs) == sorted(f"{t}-{i}" for t in "abc" for i in range(15))
    assert all(r["pad"] == r["id"][0] * 40000 for r in history.runs)
    assert path.read_bytes().count(b"\n") == 45  # no blank or split lines


def test_append_then_read_keeps_every_run_in_order(tmp_path):
    path = tmp_path / "deep" / "history.jsonl"
    first = run_entry(tmp_path, "pass", "pass")
    second = run_entry(tmp_path, "pass", "fail", label="nightly")
    append_run(path, first)
    append_run(path, second)
    history = read_history(path)
    assert [r["id"] for r in history.runs] == [first["id"], second["id"]]
    assert history.runs[1]["outcome"] == "fail" and history.runs[1]["label"] == "nightly"
    assert history.runs[1]["counts"] == {"fail": 1, "pass": 1}
    assert history.runs[0]["metrics"][0]["speedup"] is None  # NaN is stored as null
    assert history.skipped == []


def test_a_torn_last_line_is_skipped_and_the_next_run_starts_a_fresh_line(tmp_path):
    path = tmp_path / "history.jsonl"
    append_run(path, run_entry(tmp_path, "pass"))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"schema": 1, "results": [{"mod')  # a run killed mid-write
    kept = path.read_bytes()
    append_run(path, run_entry(tmp_path, "fail"))
    assert path.read_bytes().startswith(kept)  # nothing rewritten
    history = read_history(path)
    assert [r["outcome"] for r in history.runs] == ["pass", "fail"]
    assert history.skipped == [2]


def test_git_commit_is_recorded_inside_a_checkout(tmp_path, monkeypatch):
    for name in ("GITHUB_SHA", "CI_COMMIT_SHA", "GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME"):
        monkeypatch.delenv(name, raising=False)
    assert run_entry(tmp_path, "pass")["git"] == {}
    monkeypatch.setenv("GITHUB_SHA", "abc123")
    monkeypatch.setenv("GITHUB_REF_NAME", "release/1.2")
    git = run_entry(tmp_path, "pass")["git"]
    assert git["commit"] == "abc123" and git["branch"] == "release/1.2"


def test_missing_history_is_a_one_line_error_with_the_fix(tmp_path):
    with pytest.raises(
        QagateError, match=r"history\.jsonl: no run history here \(run 'pytest quality_tests/'"
    ):
        read_history(tmp_path / "history.jsonl")


def test_dashboard_escapes_everything_a_run_recorded(tmp_path):
    evil = '<script>alert("x")</script>'
    entry = build_run(
        results=[result(evil, "fail"), result("ok", "pass")],
        metrics=[{"model": evil, "dataset": "<b>d</b>", "f1": 50.0}],
        started=0.0,
        exit_status=1,
        rootdir=tmp_path,
        label="<img src=x onerror=alert(1)>",
    )
    page = render([entry])
    assert "<script>" not in page and "<img" not in page and "<b>d</b>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page  # jinja2 autoescape's quote
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_dashboard_shows_each_run_the_gate_grid_and_trends(tmp_path):
    runs = []
    for em, status in ((80.0, "pass"), (74.0, "fail"), (79.0, "pass")):
        runs.append(
            build_run(
                results=[result("student", status, obtained=em)],
                metrics=[{"model": "student", "dataset": "sample", "exact_match": em}],
                started=0.0,
                exit_status=int(status == "fail"),
                rootdir=tmp_path,
            )
        )
    page = render(runs)
    assert page.count("<tr><td>") >= 3  # one row per run
    assert page.count('class="cell"') == 3  # one cell per run for the rule
    assert 'title="FAIL: 74.0000 &gt;= 75.0000 (exact_match&gt;=0.95*teacher); run 2' in page
    assert page.count("<svg") >= 2  # the gated value and the EM trend (and the speed-up's axes)
    assert "3 runs; latest" in page and ">PASS<" in page
    assert "<script" not in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert render(runs, last=2).count('class="cell"') == 2


def test_history_and_dashboard_commands(tmp_path, capsys):
    path = tmp_path / "h.jsonl"
    append_run(path, run_entry(tmp_path, "pass", "pass"))
    append_run(path, run_entry(tmp_path, "pass", "fail", label="rc1"))
    assert cli.main(["history", "--history", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["id", "started", "(UTC)"]
    assert "FAIL" in out[1] and out[1].rstrip().endswith("rc1")  # newest first
    assert "PASS" in out[2] and len(out) == 3
    assert cli.main(["history", "--history", str(path), "--failures"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "FAIL" in out[1] and out[1].rstrip().endswith("rc1")
    assert out[2].split()[:2] == ["FAIL", "m1::exact_match>=0.95*teacher"]
    assert len(out) == 3  # the passing run is left out

    assert cli.main(["history", "--history", str(path), "--json", "--last", "1"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert len(runs) == 1 and runs[0]["label"] == "rc1"

    out_file = tmp_path / "site" / "index.html"
    assert cli.main(["dashboard", "--history", str(path), "--out", str(out_file)]) == 0
    assert "2 of 2 runs" in capsys.readouterr().out
    assert out_file.read_text().startswith("<!DOCTYPE html>")

    assert cli.main(["dashboard", "--history", str(tmp_path / "none.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.jsonl: no run history here" in err


def test_history_command_marks_incomplete_partial_and_new_runs(tmp_path, capsys):
    path = tmp_path / "h.jsonl"
    append_run(path, run_entry(tmp_path, "pass"))
    append_run(path, run_entry(tmp_path, "pass", "skipped", incomplete=True, partial=True))
    undecided = result("m0", "undecided", obtained=76.0)
    undecided.update(interval_low=74.25, interval_high=77.5, level=0.95)
    append_run(path, build_run(results=[undecided], metrics=[], started=0.0, exit_status=1, rootdir=tmp_path))
    append_run(path, run_entry(tmp_path, "new", "pass", baselines={"created": ["baselines/m0.json"]}))
    assert cli.main(["history", "--history", str(path), "--failures"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 + 3 + 3  # 3 runs, 3 gates not passed
    assert out[1].split()[2] == "NEW" and out[1].rstrip().endswith("[baselines: 1 created]")
    assert out[2].split()[:2] == ["NEW", "m0::exact_match>=0.95*teacher"]
    assert "a baseline written by this run: review it" in out[2]
    assert out[3].split()[2] == "UNDECIDED"
    assert "obtained 76.0000, threshold 75.0000, 95% interval [74.2500, 77.5000]" in out[4]
    assert out[5].split()[2] == "INCOMPLETE" and out[5].rstrip().endswith("[partial]")
    assert out[6].split()[:2] == ["SKIPPED", "m1::exact_match>=0.95*teacher"]  # why it is incomplete

    old = {
        "schema": 1,
        "started": "2024-01-01T00:00:00Z",
        "outcome": "pass",
        "counts": {"pass": 1},
        "results": [result("m0", "pass")],
    }  # a row from before these fields
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(old) + "\n")
    assert cli.main(["history", "--history", str(path), "--last", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:3] == ["-", "2024-01-01T00:00:00Z", "PASS"] and "[" not in out[1]
    assert cli.main(["history", "--history", str(path), "--failures", "--json", "--last", "1"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["baselines"] == {"created": ["baselines/m0.json"]}


# --- through pytest -------------------------------------------------------------------------


@pytest.fixture
def gated(project: Project) -> Project:
    project.gate("rules:\n  - apply_to: students\n    require: [exact_match >= 0.95 * teacher]\n")
    return project


def test_every_gating_run_appends_its_results(gated):
    project = gated
    history = project.root / ".qagate" / "history.db"
    first = project.run()
    first.assert_outcomes(passed=1, failed=1)
    assert (
        "history: run " in first.stdout.str()
        and "(fail) appended to .qagate/history.db" in first.stdout.str()
    )
    project.run("-k", "good").assert_outcomes(passed=1, deselected=1)

    runs = read_history(history).runs
    assert [r["outcome"] for r in runs] == ["fail", "pass"]
    assert runs[0]["exit_status"] == 1 and runs[1]["exit_status"] == 0
    by_model = {r["model"]: r for r in runs[0]["results"]}
    assert by_model["bad"]["status"] == "fail" and by_model["bad"]["obtained"] == pytest.approx(70.0)
    assert by_model["good"]["threshold"] == pytest.approx(95.0)
    assert {m["model"] for m in runs[0]["metrics"]} == {"teacher", "good", "bad"}
    assert runs[0]["settings"]["dataset"] == "data.json"


def test_history_can_move_or_be_turned_off(gated):
    project = gated
    project.run("--qagate-history", "ci/runs.jsonl")
    assert len(read_history(project.root / "ci" / "runs.jsonl").runs) == 1
    project.run("--qagate-history", "none")
    assert not (project.root / ".qagate" / "history.db").exists()


def test_an_unwritable_history_warns_and_keeps_the_verdicts(gated):
    project = gated
    (project.root / "blocked").write_text("a file, not a folder")
    result = project.run("--qagate-history", "blocked/history.jsonl")
    result.assert_outcomes(passed=1, failed=1)
    assert "WARNING: run history not written" in result.stdout.str()


def test_runs_without_gates_write_nothing(gated):
    project = gated
    project.pytester.makepyfile(test_plain="def test_x():\n    assert True\n")
    project.run("test_plain.py").assert_outcomes(passed=1)
    assert not (project.root / ".qagate" / "history.db").exists()
