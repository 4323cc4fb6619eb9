"""Nothing is lost: a run the store cannot take waits in .qagate/outbox/ and is delivered once;
a history URL that can never work stops pytest at start-up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# pytester's in-process runs restore sys.modules afterwards: load the database store, SQLite's
# and PostgreSQL's drivers here, once, so the runs never import them a second time.
import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401

import qagate.store.history_db  # noqa: F401
from postgres_server import Server, start_server
from qagate import cli
from qagate.store import outbox
from qagate.store.history import build_run, read_history
from test_plugin import Project, project  # noqa: F401 (a fixture)

try:
    import psycopg  # noqa: F401
    import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401
except ImportError:  # pragma: no cover
    pass

#: A PostgreSQL URL whose server is never there (port 1 refuses at once).
DOWN = "postgresql+psycopg://qg:hunter2-down@127.0.0.1:1/qagate"


def a_run(tmp_path: Path, started: float, status: str = "pass") -> dict:
    row = {"nodeid": "g.yaml::m::f1>=50", "model": "m", "rule": "f1>=50", "metric": "f1", "op": ">="}
    row.update(dataset="sample", status=status, obtained=60.0, threshold=50.0)
    return build_run(results=[row], metrics=[], started=started, exit_status=0, rootdir=tmp_path)


# --- the outbox itself -------------------------------------------------------------------------


def test_runs_wait_in_the_outbox_and_are_delivered_oldest_first_exactly_once(tmp_path):
    store = tmp_path / "history.db"
    newer, older = a_run(tmp_path, 2_000_000.0), a_run(tmp_path, 1_000_000.0)
    kept = [outbox.keep(newer, tmp_path), outbox.keep(older, tmp_path)]
    assert all(p.parent == tmp_path / ".qagate" / "outbox" for p in kept)
    assert outbox.pending(tmp_path) == sorted(kept)  # named by start time: oldest first
    assert json.loads(kept[0].read_text())["id"] == newer["id"]

    delivery = outbox.deliver(store, outbox.pending(tmp_path), outbox=outbox.outbox_dir(tmp_path))
    assert (delivery.added, delivery.already) == (2, 0)
    assert [r["id"] for r in read_history(store).runs] == [older["id"], newer["id"]]
    assert outbox.pending(tmp_path) == []

    # the same files again (a CI artefact pushed twice): nothing added, the store skips known ids
    copies = []
    for run in (older, newer):
        copy = tmp_path / "artefact" / f"{run['id']}.json"
        copy.parent.mkdir(exist_ok=True)
        copy.write_text(json.dumps(run))
        copies.append(copy)
    again = outbox.deliver(store, copies, outbox=outbox.outbox_dir(tmp_path))
    assert (again.added, again.already) == (0, 2)
    assert len(read_history(store).runs) == 2
    assert all(p.is_file() for p in copies)  # files outside the outbox are the user's: kept


def test_a_store_that_is_down_keeps_every_file(tmp_path):
    kept = outbox.keep(a_run(tmp_path, 1.0), tmp_path)
    with pytest.raises(OSError) as caught:
        outbox.deliver(DOWN, [kept], outbox=outbox.outbox_dir(tmp_path))
    assert "hunter2" not in str(caught.value)
    assert kept.is_file()


def test_jsonl_stores_take_outbox_runs_once(tmp_path):
    store = tmp_path / "runs.jsonl"
    run = a_run(tmp_path, 5.0)
    for _ in range(2):
        outbox.keep(run, tmp_path)
        outbox.deliver(store, outbox.pending(tmp_path), outbox=outbox.outbox_dir(tmp_path))
    assert [r["id"] for r in read_history(store).runs] == [run["id"]]


def test_push_with_an_empty_outbox_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    assert cli.main(["history", "push", "--history", str(tmp_path / "h.db")]) == 0
    out = capsys.readouterr().out
    assert "nothing to push" in out and str(tmp_path / ".qagate" / "outbox") in out
    assert not (tmp_path / "h.db").exists()


def test_a_corrupt_outbox_file_is_moved_aside_with_one_line_and_the_others_still_go(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    good = outbox.keep(a_run(tmp_path, 1.0), tmp_path)
    torn = outbox.keep(a_run(tmp_path, 2.0), tmp_path)
    torn.write_text(torn.read_text()[:40])
    edited = outbox.keep(a_run(tmp_path, 3.0), tmp_path)
    edited.write_text(json.dumps({**json.loads(edited.read_text()), "counts": [1, 2]}))
    store = tmp_path / "h.db"
    assert cli.main(["history", "push", "--history", str(store)]) == 0
    captured = capsys.readouterr()
    warnings = captured.err.splitlines()
    assert len(warnings) == 2, captured.err
    assert torn.name in warnings[0] and "not JSON" in warnings[0] and "rejected" in warnings[0]
    assert edited.name in warnings[1] and "'counts'" in warnings[1]
    assert "delivered 1 run(s)" in captured.out
    assert len(read_history(store).runs) == 1 and not good.exists()
    assert sorted(p.name for p in (tmp_path / ".qagate" / "outbox" / "rejected").iterdir()) == sorted(
        [torn.name, edited.name]
    )


# --- through pytest ----------------------------------------------------------------------------


@pytest.fixture
def passing(project: Project) -> Project:  # noqa: F811 (the fixture above)
    project.gate("rules:\n  - apply_to: [good]\n    require: [exact_match >= 0.95 * teacher]\n")
    return project


def outbox_files(project: Project) -> list[Path]:
    return outbox.pending(project.root)


def test_an_unreachable_store_warns_under_q_names_the_outbox_file_and_the_next_run_delivers(passing):
    project = passing
    for flags in (["-q"], ["-qq"]):
        result = project.run(f"--qagate-history={DOWN}", *flags)
        assert result.ret == 0  # the gates' status
        text = result.stdout.str()
        assert "hunter2" not in text
        warning = [line for line in text.splitlines() if "run history not written" in line]
        assert len(warning) == 1, text
        assert outbox_files(project)[-1].name in warning[0] and ".qagate/outbox/" in warning[0]
        assert warning[0].count("127.0.0.1:1/qagate") == 1 and "Connection refused" in warning[0]
    assert len(outbox_files(project)) == 2

    store = project.root / "team.db"
    result = project.run(f"--qagate-history={store}")
    assert "delivered 2 run(s) from the outbox to team.db (2 added, 0 already there)" in result.stdout.str()
    runs = read_history(store).runs
    assert len(runs) == 3 and runs[0]["started"] <= runs[1]["started"] <= runs[2]["started"]
    assert outbox_files(project) == []


def test_strict_makes_an_unrecorded_run_an_error(passing):
    result = passing.run(f"--qagate-history={DOWN}", "--qagate-strict", "-q")
    assert result.ret == 6
    assert "ERROR: --qagate-strict: the run was not recorded in the history (exit status 6)" in (
        result.stdout.str()
    )
    assert len(outbox_files(passing)) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "postgres://qg:hunter2@db/qagate",
            "unknown database scheme 'postgres://' (did you mean postgresql://",
        ),
        ("htp://db.example/qagate", "unknown database scheme 'htp://' (did you mean postgresql://"),
        (
            "postgresql+pg8000://db/qagate",
            "needs the database driver pg8000, which is not installed (pip install pg8000)",
        ),
        ("sqlite:/tmp/qagate-one-slash.db", "not a database URL (a URL has two slashes after the scheme)"),
    ],
)
def test_a_history_url_that_can_never_work_stops_pytest_at_start_up(passing, value, expected):
    result = passing.run(f"--qagate-history={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.str().splitlines() if "qagate-history" in line]
    assert len(errors) == 1 and expected in errors[0], result.stderr.str()
    assert "hunter2" not in result.stderr.str() + result.stdout.str()
    assert not (passing.root / "sqlite:").exists()


def test_the_cli_refuses_the_same_urls(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["history", "--history", "postgres://u:hunter2@h/db"])
    err = capsys.readouterr().err
    assert "did you mean postgresql://u:***@h/db" in err and "hunter2" not in err


# --- against a real PostgreSQL server ----------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    running: Server = start_server()
    yield running
    running.remove()


def test_server_down_two_q_runs_then_push_delivers_both_once(passing, server, monkeypatch, capsys):
    project = passing
    server.stop()
    try:
        for _ in range(2):
            result = project.run(f"--qagate-history={server.url}", "-q")
            assert result.ret == 0
            assert "run history not written" in result.stdout.str()
            assert server.password not in result.stdout.str() + result.stderr.str()
    finally:
        server.start()
    waiting = outbox_files(project)
    assert len(waiting) == 2
    ids = [json.loads(p.read_text())["id"] for p in waiting]

    monkeypatch.chdir(project.root)
    assert cli.main(["history", "push", "--history", server.url]) == 0
    assert "delivered 2 run(s) from the outbox" in capsys.readouterr().out
    assert cli.main(["history", "push", "--history", server.url]) == 0
    assert "nothing to push" in capsys.readouterr().out
    stored = [r["id"] for r in read_history(server.url).runs]
    assert sorted(i for i in stored if i in ids) == sorted(ids)  # both there, once each
    assert server.password.encode() not in server.dump()


def test_two_runs_of_one_second_wait_in_the_order_they_were_kept(tmp_path):
    """The start time has whole seconds; a later run of the same second must not go first."""
    for run_id in ("ffff", "0000"):  # ids that sort the other way round
        outbox.keep({"id": run_id, "started": "2026-12-07T07:07:51Z", "results": []}, tmp_path)
    assert [p.name.rsplit("-", 1)[-1] for p in outbox.pending(tmp_path)] == ["ffff.json", "0000.json"]
