"""What a new user hit with the history commands (issue 28 item 3) and history readers that meet a
malformed run (issue 30 item 5): the CLI reads the plugin's ini key, a reader never creates a
store, the interval is shown one labelled way, and one bad run is skipped with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qagate import cli
from qagate.store.history import append_run, build_run, read_history


def gate(model: str = "student", status: str = "pass", **extra) -> dict:
    row = {"nodeid": f"g.yaml::{model}::f1>=85", "model": model, "rule": "f1>=85", "metric": "f1", "op": ">="}
    row.update(dataset="sample", status=status, obtained=86.0, threshold=85.0, **extra)
    return row


def a_run(tmp_path: Path, *results: dict, started: float = 0.0) -> dict:
    return build_run(
        results=list(results) or [gate()], metrics=[], started=started, exit_status=0, rootdir=tmp_path
    )


# --- the CLI reads the plugin's settings ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pyproject.toml", '[tool.pytest.ini_options]\nqagate_history = "sqlite:///ini-history.db"\n'),
        ("pytest.ini", "[pytest]\nqagate_history = sqlite:///ini-history.db\n"),
        ("tox.ini", "[pytest]\nqagate_history = ini-history.db\n"),
        ("setup.cfg", "[tool:pytest]\nqagate_history = ini-history.db\n"),
    ],
)
def test_history_and_summary_read_the_ini_key_like_the_plugin(tmp_path, monkeypatch, capsys, name, text):
    monkeypatch.delenv("QAGATE_HISTORY_URL", raising=False)
    (tmp_path / name).write_text(text)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # from a sub-folder, as pytest finds the ini file
    run = a_run(tmp_path)
    append_run(tmp_path / "ini-history.db", run)
    append_run(tmp_path / ".qagate" / "history.db", a_run(tmp_path))  # a stale default store
    assert cli.main(["history", "--json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [run["id"]]
    assert cli.main(["summary", "--out", "-"]) == 0
    assert run["id"] in capsys.readouterr().out


def test_the_environment_beats_the_ini_key_and_the_default_is_in_the_rootdir(tmp_path, monkeypatch, capsys):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    monkeypatch.delenv("QAGATE_HISTORY_URL", raising=False)
    run = a_run(tmp_path)
    append_run(tmp_path / ".qagate" / "history.db", run)
    assert cli.main(["history", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == run["id"]
    monkeypatch.setenv("QAGATE_HISTORY_URL", f"sqlite:///{tmp_path}/env.db")
    assert cli.main(["history"]) == 2
    assert "env.db" in capsys.readouterr().err


def test_a_reader_never_creates_a_store(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    append_run(tmp_path / "team-history.db", a_run(tmp_path))
    for argv in (
        ["history", "--history", "sqlite:///tema-history.db"],
        ["dashboard", "--history", "sqlite:///tema-history.db", "--out", "site"],
        ["summary", "--history", "sqlite:///tema-history.db"],
        ["history", "--history", "nested/tema-history.db"],
    ):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no run history here" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team-history.db"]  # nothing created
    assert cli.main(["history", "--history", "sqlite:///tema-history.db"]) == 2
    assert f"did you mean team-history.db (in {tmp_path})?" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["/", "."])
def test_a_folder_as_the_store_is_one_line(tmp_path, monkeypatch, capsys, where):
    """`qagate history --history /` raised ValueError from Path('/').with_suffix (issue 30)."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["history", "--history", where]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no run history here" in err[0], err


def test_an_unknown_model_is_named_with_the_closest(tmp_path, capsys):
    path = tmp_path / "h.db"
    append_run(path, a_run(tmp_path, gate("student"), gate("teacher")))
    assert cli.main(["history", "--history", str(path), "--model", "studnet"]) == 2
    err = capsys.readouterr().err
    assert "no run judged a model named 'studnet' (did you mean 'student'?" in err
    assert cli.main(["history", "--history", str(path), "--model", "student"]) == 0


def test_the_interval_is_shown_one_way_labelled_everywhere(tmp_path, capsys):
    path = tmp_path / "h.db"
    # the judge records the interval of value - threshold: [-0.5, +2.5] around 86 - 85
    run = a_run(tmp_path, gate(status="undecided", interval_low=-0.5, interval_high=2.5, level=0.95))
    append_run(path, run)
    expected = "95% interval [84.5000, 87.5000] of f1"
    assert cli.main(["history", "show", run["id"], "--history", str(path)]) == 0
    assert expected in capsys.readouterr().out
    assert cli.main(["history", "--failed", "--history", str(path)]) == 0
    assert expected in capsys.readouterr().out
    assert cli.main(["summary", "--history", str(path), "--out", "-"]) == 0
    assert expected in capsys.readouterr().out
    assert cli.main(["dashboard", "--history", str(path), "--out", str(tmp_path / "d.html")]) == 0
    assert expected in (tmp_path / "d.html").read_text()


# --- malformed runs are skipped with one line each (issue 30 item 5) -----------------------------

MALFORMED = [
    ({"counts": [1, 2]}, "'counts' is a list"),
    ({"git": 5}, "'git' is a number"),
    ({"label": "x\ud800y"}, "not valid Unicode"),
    ({"exit_status": 2**70}, "'exit_status' is out of range"),
    ({"results": [1]}, "'results' holds an entry that is not an object"),
]


def write_lines(path: Path, runs: list[dict]) -> None:
    path.write_text("".join(json.dumps(run) + "\n" for run in runs), encoding="utf-8")


@pytest.mark.parametrize(("change", "why"), MALFORMED)
def test_every_reader_skips_a_malformed_run_with_one_line_and_shows_the_rest(tmp_path, capsys, change, why):
    good = [a_run(tmp_path, started=1.0), a_run(tmp_path, started=3.0)]
    bad = {**a_run(tmp_path, started=2.0), **change}
    path = tmp_path / "runs.jsonl"
    write_lines(path, [good[0], bad, good[1]])
    for argv in (
        ["history", "--history", str(path)],
        ["history", "--history", str(path), "--json"],
        ["summary", "--history", str(path), "--out", "-"],
        ["dashboard", "--history", str(path), "--out", str(tmp_path / "site")],
    ):
        assert cli.main(argv) == 0, capsys.readouterr().err
        captured = capsys.readouterr()
        warnings = captured.err.strip().splitlines()
        assert len(warnings) == 1 and "line 2" in warnings[0] and why in warnings[0], warnings
    assert [r["id"] for r in read_history(path).runs] == [good[0]["id"], good[1]["id"]]

    store = tmp_path / "h.db"
    assert cli.main(["history", "import", str(path), "--history", str(store)]) == 0
    captured = capsys.readouterr()
    assert "imported 2 run(s)" in captured.out and "skipped 1 line(s)" in captured.err
    assert len(read_history(store).runs) == 2


def test_a_malformed_row_in_a_database_store_is_skipped_by_id(tmp_path, capsys):
    import sqlalchemy as sa

    path = tmp_path / "h.db"
    runs = [a_run(tmp_path, started=float(i)) for i in range(3)]
    for run in runs:
        append_run(path, run)
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:  # what an older importer let in
        conn.execute(sa.text("UPDATE runs SET counts = '[1, 2]' WHERE id = :i"), {"i": runs[1]["id"]})
    engine.dispose()
    assert cli.main(["history", "--history", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and f"run '{runs[1]['id']}'" in captured.err
    assert runs[0]["id"] in captured.out and runs[2]["id"] in captured.out
