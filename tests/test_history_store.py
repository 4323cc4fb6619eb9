"""The database history store: exact round trips, one transaction per run, concurrent writers,
versioned migrations, masked credentials, the JSON Lines importer, and ``qagate history``."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401 (see test_history.py)

from qagate import cli
from qagate.core.errors import QagateError
from qagate.pytest_plugin.settings import build_settings
from qagate.store import history_schema
from qagate.store.history import append_run, build_run, import_history, read_history
from qagate.store.history_db import HistoryStore
from qagate.store.target import HistoryURL, mask_url
from test_plugin import Project, project  # noqa: F401 (a fixture)

PG_URL = os.environ.get("QAGATE_TEST_DATABASE_URL")


def gate(
    model: str, status: str, value: float | int | None = 80.0, rule: str = "f1>=0.9*teacher", **kw
) -> dict:
    row = {
        "nodeid": f"gate.yaml::{model}::{rule}",
        "model": model,
        "rule": rule,
        "metric": rule.split(">=")[0].split("<=")[0],
        "op": ">=",
        "dataset": "sample",
        "status": status,
        "obtained": value,
        "threshold": 75.0,
    }
    return {**row, **kw}


def make_run(tmp_path: Path, *results: dict, **kw) -> dict:
    return build_run(
        results=list(results) or [gate("m0", "pass")],
        metrics=[
            {"model": "m0", "dataset": "sample", "f1": 80.0, "parameter_count": 22_600_000, "speedup": None}
        ],
        started=kw.pop("started", time.time()),
        exit_status=0,
        rootdir=tmp_path,
        **kw,
    )


def stored(run: dict) -> dict:
    return json.loads(json.dumps(run))


# --- the store ---------------------------------------------------------------------------------


def test_a_run_reads_back_exactly_as_built(tmp_path):
    path = tmp_path / "deep" / "history.db"
    undecided = gate("m1", "undecided", 76.0, interval_low=74.25, interval_high=77.5, level=0.95)
    first = make_run(tmp_path, gate("m0", "pass"), undecided, label="nightly", partial=True)
    second = make_run(tmp_path, gate("m0", "fail", 12, reason="why", rule="parameter_count<=0.5*teacher"))
    second["custom"] = {"kept": [1, 2]}  # a field a newer qagate might add
    old = {"schema": 1, "started": "2024-01-01T00:00:00Z", "outcome": "pass", "id": "old1", "results": []}
    for run in (first, second, old):
        append_run(path, run)
    history = read_history(path)
    assert history.path == path and history.skipped == []
    assert history.runs == [stored(first), stored(second), old]
    assert (
        history.runs[1]["results"][0]["obtained"] == 12
        and type(history.runs[1]["results"][0]["obtained"]) is int
    )
    assert history.runs[0]["metrics"][0]["parameter_count"] == 22_600_000


def test_the_tables_hold_one_row_per_run_verdict_and_metric(tmp_path):
    path = tmp_path / "h.db"
    append_run(path, make_run(tmp_path, gate("m0", "pass"), gate("m1", "fail", rule="f1>=baseline-1")))
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        version = conn.exec_driver_sql("SELECT version FROM schema_version").scalar()
        assert version == len(history_schema.MIGRATIONS)
        run = conn.exec_driver_sql("SELECT outcome, exit_status, machine, python FROM runs").one()
        assert run.outcome == "fail" and run.machine and run.python
        verdicts = conn.exec_driver_sql("SELECT model, reference, value, status FROM verdicts").all()
        assert [tuple(v) for v in verdicts] == [
            ("m0", "teacher", 80.0, "pass"),
            ("m1", "baseline", 80.0, "fail"),
        ]
        metrics = conn.exec_driver_sql("SELECT model, name, value FROM metrics ORDER BY name").all()
        assert [tuple(m) for m in metrics] == [
            ("m0", "f1", 80.0),
            ("m0", "parameter_count", 22_600_000.0),
            ("m0", "speedup", None),
        ]
    engine.dispose()


def test_a_failed_write_leaves_no_partial_run(tmp_path):
    path = tmp_path / "h.db"
    append_run(path, make_run(tmp_path))
    broken = make_run(tmp_path)
    broken["metrics"] = [{"model": "m0", "dataset": "sample", "f1": object()}]  # not storable as JSON
    with pytest.raises(OSError, match=r"h\.db: "):
        append_run(path, broken)
    assert len(read_history(path).runs) == 1  # the run row and its verdicts were rolled back


KILLED_WRITER = """\
import sys, time
from qagate.store.history_db import HistoryStore, insert_run
store = HistoryStore(sys.argv[1])
run = {"id": "killed", "outcome": "pass", "results": [{"model": "m", "status": "pass"}], "metrics": []}
with store._write() as conn:
    insert_run(conn, run)
    print("written, not committed", flush=True)
    time.sleep(60)
"""


def test_a_run_killed_mid_write_leaves_nothing(tmp_path):
    path = tmp_path / "h.db"
    append_run(path, make_run(tmp_path))
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().startswith("written")
    writer.send_signal(signal.SIGKILL)
    writer.wait(30)
    append_run(path, make_run(tmp_path, label="after"))  # the lock died with the writer
    runs = read_history(path).runs
    assert [r.get("label") for r in runs] == [None, "after"] and "killed" not in {r["id"] for r in runs}


def _append_many(args: tuple[str, str, int]) -> float:
    """A worker process: its own engine, ``count`` runs appended one transaction each."""
    target, tag, count = args
    started = time.perf_counter()
    with HistoryStore(HistoryURL(target) if "://" in target else target) as store:
        for i in range(count):
            run = {"id": f"{tag}-{i}", "outcome": "pass", "label": tag, "counts": {"pass": 2}}
            run["results"] = [gate("m0", "pass"), gate("m1", "pass", i)]
            run["metrics"] = [{"model": "m0", "dataset": "sample", "f1": float(i)}]
            store.append(run)
    return time.perf_counter() - started


def concurrent_appends(target: str, tag: str, processes: int = 8, runs: int = 50) -> list[dict]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        pool.map(_append_many, [(target, f"{tag}{p}", runs) for p in range(processes)])
    return [r for r in read_history(HistoryURL(target) if "://" in target else Path(target)).runs]


def test_eight_processes_appending_fifty_runs_each_leave_exactly_400_runs(tmp_path):
    runs = concurrent_appends(str(tmp_path / "h.db"), "p")
    assert len(runs) == 400 and len({r["id"] for r in runs}) == 400
    assert all(len(r["results"]) == 2 and len(r["metrics"]) == 1 for r in runs)
    for p in range(8):  # each process's runs in its own order
        mine = [r["id"] for r in runs if r["label"] == f"p{p}"]
        assert mine == [f"p{p}-{i}" for i in range(50)]


@pytest.mark.skipif(not PG_URL, reason="set QAGATE_TEST_DATABASE_URL to a PostgreSQL database to run it")
def test_concurrent_appends_on_postgresql():
    tag = f"pg{os.getpid()}x{int(time.time())}-"
    runs = [r for r in concurrent_appends(str(PG_URL), tag) if str(r["id"]).startswith(tag)]
    assert len(runs) == 400 and len({r["id"] for r in runs}) == 400
    assert all(
        len(r["results"]) == 2 and r["metrics"][0]["f1"] == float(r["id"].rsplit("-", 1)[1]) for r in runs
    )


# --- schema versions ---------------------------------------------------------------------------


def test_migrations_run_once_in_order_and_a_newer_store_is_refused(tmp_path):
    path = tmp_path / "h.db"
    append_run(path, make_run(tmp_path))
    engine = sa.create_engine(f"sqlite:///{path}")
    applied = []

    def add_note_column(conn):
        applied.append(2)
        conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN note TEXT")

    steps = [*history_schema.MIGRATIONS, add_note_column]
    newest = len(steps)
    for _ in range(2):
        with engine.begin() as conn:
            assert history_schema.migrate(conn, steps) == newest
    assert applied == [2]  # once
    with engine.connect() as conn:
        assert "note" in {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    engine.dispose()
    expected = rf"schema version {newest}, this qagate knows up to {newest - 1} \(upgrade qagate\)"
    with pytest.raises(OSError, match=expected):
        append_run(path, make_run(tmp_path))


def test_a_fresh_database_is_created_by_the_first_migration(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        assert history_schema.current_version(conn) == 0
        assert history_schema.migrate(conn) == len(history_schema.MIGRATIONS) == 2
        assert {"runs", "verdicts", "metrics", "schema_version", "question_scores", "question_sets"} <= set(
            sa.inspect(conn).get_table_names()
        )
    engine.dispose()


# --- URLs and credentials ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ci:s3cr%40t@db.example:5432/qagate",
        "postgresql+psycopg://ci:s3cret@db.example/qagate?sslmode=require",
        "sqlite:////tmp/history.db",
        "mysql://ci@db/x",
    ],
)
def test_urls_are_masked_as_sqlalchemy_masks_them(url):
    assert mask_url(url) == sa.engine.make_url(url).render_as_string(hide_password=True)


def test_a_history_url_never_shows_its_password():
    url = HistoryURL("postgresql://ci:s3cret@db/qagate?password=s3cret")
    for text in (str(url), repr(url), f"{url}", json.dumps(url), os.fspath(Path(url))):
        assert "s3cret" not in text
    assert url.url.endswith("password=s3cret")
    assert pickle.loads(pickle.dumps(url)).url == url.url


def test_an_unreachable_server_is_an_oserror_without_the_password(tmp_path):
    pytest.importorskip("psycopg")
    url = HistoryURL("postgresql+psycopg://ci:s3cret@127.0.0.1:1/qagate?connect_timeout=2")
    with pytest.raises(OSError) as failure:
        append_run(url, make_run(tmp_path))
    assert "s3cret" not in str(failure.value) and "ci:***@127.0.0.1:1/qagate" in str(failure.value)
    with pytest.raises(QagateError) as failure:
        read_history(url)
    assert "s3cret" not in str(failure.value) and "cannot read the run history" in str(failure.value)


def test_the_history_setting_takes_paths_urls_and_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("QAGATE_HISTORY_URL", raising=False)

    def history(cli_value=None, ini_value=None):
        ini = {"qagate_history": ini_value} if ini_value else {}
        settings = build_settings(
            {"history": cli_value}, ini, rootdir=tmp_path, invocation_dir=tmp_path / "here", ini_dir=tmp_path
        )
        return settings.history

    assert history() == tmp_path / ".qagate" / "history.db"
    assert history("runs.jsonl") == tmp_path / "here" / "runs.jsonl"
    # a relative SQLite URL resolves where it was written, like a path (the ini file's folder), so
    # pytest run from a sub-folder and the qagate command agree on the file
    assert history(ini_value="sqlite:///rel.db") == HistoryURL(f"sqlite:///{tmp_path / 'rel.db'}")
    assert history("sqlite:///rel.db") == HistoryURL(f"sqlite:///{tmp_path / 'here' / 'rel.db'}")
    secret = history("postgresql://ci:s3cret@db/q")
    assert (
        isinstance(secret, HistoryURL)
        and secret.url == "postgresql://ci:s3cret@db/q"
        and "s3cret" not in secret
    )
    assert history("none") is None
    monkeypatch.setenv("QAGATE_HISTORY_URL", "postgresql://ci:env@db/q")
    assert history(ini_value="ini.db").url == "postgresql://ci:env@db/q"  # the CI secret beats the ini
    assert history("cli.db") == tmp_path / "here" / "cli.db"  # the command line beats both


# --- importing the JSON Lines history ----------------------------------------------------------


def test_a_jsonl_history_imports_once(tmp_path, capsys):
    old = tmp_path / ".qagate" / "history.jsonl"
    runs = [make_run(tmp_path, label=f"r{i}") for i in range(3)]
    for run in runs:
        append_run(old, run)  # a .jsonl path keeps the JSON Lines format
    with open(old, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"schema": 1, "outcome": "pass", "results": []}) + "\n{torn\n")
    db = tmp_path / ".qagate" / "history.db"
    with pytest.raises(QagateError, match=r"import them with 'qagate history import .*history\.jsonl'"):
        read_history(db)
    assert import_history(old, db) == (4, 0, [5])  # line 5 is torn
    assert import_history(old, db) == (0, 4, [5])
    back = read_history(db).runs
    assert back[:3] == [stored(r) for r in runs] and back[3]["id"].startswith("import-")
    assert cli.main(["history", "import", str(old), "--history", str(db)]) == 0
    out = capsys.readouterr()
    assert "imported 0 run(s)" in out.out and "skipped 1 line(s) that are not qagate runs: 5" in out.err
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"not": "a run"}\n[1, 2]\n{torn\n', encoding="utf-8")
    assert cli.main(["history", "import", str(junk), "--history", str(db)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "junk.jsonl" in err[0] and "line(s) 1, 2, 3 are not qagate runs" in err[0]
    assert len(read_history(db).runs) == 4  # nothing stored was lost or added
    assert cli.main(["history", "import", str(tmp_path / "missing.jsonl"), "--history", str(db)]) == 2


# --- qagate history ----------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("GITHUB_REF_NAME", raising=False)
    path = tmp_path / "h.db"
    day = 86400.0
    monkeypatch.setenv("GITHUB_SHA", "aaaa1111")
    monkeypatch.setenv("GITHUB_REF_NAME", "main")
    append_run(path, make_run(tmp_path, gate("small", "pass"), started=10 * day, label="first"))
    monkeypatch.setenv("GITHUB_REF_NAME", "feature")
    append_run(
        path, make_run(tmp_path, gate("small", "fail", rule="speedup>=2"), started=20 * day, label="second")
    )
    monkeypatch.setenv("GITHUB_REF_NAME", "main")
    append_run(path, make_run(tmp_path, gate("big", "pass"), started=30 * day, label="third"))
    return path


def labels(capsys) -> list[str]:
    lines = capsys.readouterr().out.splitlines()[1:]
    return [line.split()[-1] for line in lines if not line.startswith("    ")]


def test_history_filters(store, capsys):
    base = ["history", "--history", str(store)]
    assert cli.main(base) == 0 and labels(capsys) == ["third", "second", "first"]
    assert cli.main([*base, "--model", "small"]) == 0 and labels(capsys) == ["second", "first"]
    assert cli.main([*base, "--rule", "speedup"]) == 0 and labels(capsys) == ["second"]
    assert cli.main([*base, "--branch", "main"]) == 0 and labels(capsys) == ["third", "first"]
    assert cli.main([*base, "--since", "1970-01-21"]) == 0 and labels(capsys) == ["third", "second"]
    assert cli.main([*base, "--failed"]) == 0 and labels(capsys) == ["second"]
    assert cli.main([*base, "--failures", "--model", "big"]) == 0
    assert "no runs match" in capsys.readouterr().out


def test_history_json_lists_runs_newest_first(store, capsys):
    assert cli.main(["history", "--history", f"sqlite:///{store}", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in runs] == ["third", "second", "first"]
    assert list(runs[0])[:6] == ["id", "outcome", "time", "commit", "branch", "verdicts"]
    assert runs[1]["commit"] == "aaaa1111" and runs[1]["verdicts"][0]["status"] == "fail"
    assert runs[2]["time"] == "1970-01-11T00:00:00Z" and "results" not in runs[0]


def test_history_show_one_run(store, capsys):
    second = read_history(store).runs[1]
    assert cli.main(["history", "show", second["id"][:6], "--history", str(store)]) == 0
    out = capsys.readouterr().out
    assert f"run:         {second['id']}" in out and "outcome:     FAIL" in out
    assert "branch:      feature" in out and "FAIL       small::speedup>=2 [sample]" in out
    assert "m0 [sample]: f1 80, parameter_count 22600000, speedup None" in out
    assert cli.main(["history", "show", second["id"], "--json", "--history", str(store)]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "second"
    assert cli.main(["history", "show", "nope", "--history", str(store)]) == 2
    assert "no run has the id 'nope'" in capsys.readouterr().err


def test_history_and_dashboard_read_the_environment_store(store, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("QAGATE_HISTORY_URL", f"sqlite:///{store}")
    assert cli.main(["history", "--last", "1"]) == 0 and labels(capsys) == ["third"]
    out = tmp_path / "d.html"
    assert cli.main(["dashboard", "--out", str(out)]) == 0
    assert f"3 of 3 runs from sqlite:///{store}" in capsys.readouterr().out


def test_the_ci_job_url_is_recorded(tmp_path, monkeypatch):
    for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID", "CI_JOB_URL"):
        monkeypatch.delenv(name, raising=False)
    assert "ci_url" not in make_run(tmp_path)
    monkeypatch.setenv("CI_JOB_URL", "https://gitlab.example/g/p/-/jobs/7")
    assert make_run(tmp_path)["ci_url"] == "https://gitlab.example/g/p/-/jobs/7"
    monkeypatch.setenv("GITHUB_REPOSITORY", "team/qa")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    assert make_run(tmp_path)["ci_url"] == "https://github.com/team/qa/actions/runs/42"


# --- through pytest ----------------------------------------------------------------------------


def test_the_plugin_writes_to_a_url_from_the_environment(project: Project, monkeypatch):
    project.gate("rules:\n  - apply_to: students\n    require: [exact_match >= 0.95 * teacher]\n")
    target = project.root / "team.db"
    monkeypatch.setenv("QAGATE_HISTORY_URL", f"sqlite:///{target}")
    result = project.run()
    result.assert_outcomes(passed=1, failed=1)
    assert f"(fail) appended to sqlite:///{target}" in result.stdout.str()
    assert [r["outcome"] for r in read_history(target).runs] == ["fail"]
    assert not (project.root / ".qagate" / "history.db").exists()
