"""Secrets are never stored or shown: one function masks them on every path that stores or shows
a run (the stores, ``qagate history``, the summary, the dashboard, JUnit), and ``qagate history
redact`` scrubs the runs stored before it existed. Checked byte for byte in SQLite files, JSON
Lines files and a real PostgreSQL server's dump."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

# pytester's in-process runs restore sys.modules afterwards: load the drivers here, once.
import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401

import qagate.store.history_db  # noqa: F401
from postgres_server import Server, start_server
from qagate import cli
from qagate.store.history import append_run, build_run, read_history
from qagate.store.target import mask_secrets
from test_plugin import Project, project  # noqa: F401 (a fixture)

try:
    import psycopg  # noqa: F401
    import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401
except ImportError:  # pragma: no cover
    pass

TOKEN = "tok-Zq81secret"
HUB_PASSWORD = "hubPW-77x"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://qg:PASSWORD@host/db", "postgresql://qg:***@host/db"),
        ("--qagate-history=postgresql://qg:p%40ss@h:5/db", "--qagate-history=postgresql://qg:***@h:5/db"),
        ("sqlite:///x.db?password=hunter2&mode=ro", "sqlite:///x.db?password=***&mode=ro"),
        ("GITHUB_TOKEN=abc123 MY_SECRET=s DB_PASSWORD=p", "GITHUB_TOKEN=*** MY_SECRET=*** DB_PASSWORD=***"),
        ("host=h password=pw dbname=x", "host=h password=*** dbname=x"),
        ("--api-key=k1", "--api-key=***"),
        ("exact_match >= 0.95 * teacher", "exact_match >= 0.95 * teacher"),
        ("tokenizer: bert, max_new_tokens=32", "tokenizer: bert, max_new_tokens=32"),
        ("sqlite:///.qagate/history.db", "sqlite:///.qagate/history.db"),
        ("https://example.com/a?b=c", "https://example.com/a?b=c"),
        ("gate.yaml::bert-secret::f1>=0.9*teacher", "gate.yaml::bert-secret::f1>=0.9*teacher"),
        ("Password: hunter2", "Password: ***"),
    ],
)
def test_mask_secrets_masks_credentials_and_nothing_else(text, masked):
    assert mask_secrets(text) == masked
    assert mask_secrets(masked) == masked  # idempotent


def test_mask_secrets_walks_command_lines_and_mappings():
    args = ["-q", "--db-password", "hunter2", "--qagate-history", "postgresql://u:pw@h/db"]
    assert mask_secrets(args) == ["-q", "--db-password", "***", "--qagate-history", "postgresql://u:***@h/db"]
    settings = {"API_TOKEN": "abc", "gates": {"g.yaml": "sample"}, "limit": 5, "args": ("X_SECRET=1",)}
    assert mask_secrets(settings) == {
        "API_TOKEN": "***",
        "gates": {"g.yaml": "sample"},
        "limit": 5,
        "args": ("X_SECRET=***",),
    }


# --- through pytest, into every store and out through every reader -----------------------------


@pytest.fixture
def gated(project: Project, monkeypatch) -> Project:  # noqa: F811 (the fixture above)
    project.gate("rules:\n  - apply_to: students\n    require: [exact_match >= 0.95 * teacher]\n")
    monkeypatch.setenv("QAGATE_RUN_LABEL", f"nightly DEPLOY_TOKEN={TOKEN}")
    return project


def run_with_secrets(project: Project, history: str) -> str:
    """A gating run whose command line and label carry secrets; its output (checked clean)."""
    result = project.run(
        f"--qagate-history={history}",
        f"--qagate-bertscore-model=https://me:{HUB_PASSWORD}@hub.example/model",
        "--junitxml=junit.xml",
    )
    result.assert_outcomes(passed=1, failed=1)
    return result.stdout.str() + result.stderr.str()


def shown_everywhere(project: Project, history: str, capsys, monkeypatch) -> str:
    """Everything the readers print or write for the store: history (list, show, --json), the
    summary, the dashboard site, the JUnit XML."""
    monkeypatch.chdir(project.root)
    texts = []
    for argv in (
        ["history", "--history", history],
        ["history", "--history", history, "--json"],
        ["summary", "--history", history, "--out", "-"],
        ["dashboard", "--history", history, "--out", str(project.root / "site")],
    ):
        assert cli.main(argv) == 0
        texts.append(capsys.readouterr().out)
    run_id = read_history(history).runs[-1]["id"]
    assert cli.main(["history", "show", run_id, "--history", history, "--json"]) == 0
    shown = capsys.readouterr().out
    assert "***" in shown  # the secrets were there, masked
    texts.append(shown)
    texts += [p.read_text(encoding="utf-8") for p in (project.root / "site").rglob("*.html")]
    texts.append((project.root / "junit.xml").read_text(encoding="utf-8"))
    return "\n".join(texts)


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))  # -wal, -shm too


@pytest.mark.parametrize("store", ["history.db", "runs.jsonl"])
def test_no_byte_of_the_store_nor_of_any_output_holds_a_secret(gated, store, capsys, monkeypatch):
    path = gated.root / store
    history = f"sqlite:///{path}" if store.endswith(".db") else str(path)
    output = run_with_secrets(gated, history)
    output += shown_everywhere(gated, history, capsys, monkeypatch)
    stored = file_bytes(path)
    for secret in (TOKEN, HUB_PASSWORD):
        assert secret not in output
        assert secret.encode() not in stored
    settings = read_history(history).runs[-1]["settings"]
    assert "--qagate-bertscore-model=https://me:***@hub.example/model" in settings["args"]


def plant(history: str, run: dict) -> None:
    """Store ``run`` with its secrets as they are, the way a version before masking did."""
    append_run(history, run)
    engine = sa.create_engine(history)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE runs SET settings = :s, label = :l WHERE id = :i"),
            {"s": json.dumps(run["settings"]), "l": run["label"], "i": run["id"]},
        )
    engine.dispose()


def secret_run(tmp_path: Path, password: str) -> dict:
    row = {"nodeid": "g.yaml::m::f1>=50", "model": "m", "rule": "f1>=50", "metric": "f1", "op": ">="}
    row.update(dataset="sample", status="pass", obtained=60.0, threshold=50.0)
    run = build_run(
        results=[row],
        metrics=[{"model": "m", "dataset": "sample", "f1": 60.0}],
        started=1.0,
        exit_status=0,
        rootdir=tmp_path,
        settings={"args": ["--qagate-history", f"postgresql://qg:{password}@db/qagate"]},
        label=f"release CI_TOKEN={password}",
    )
    return run


def test_redact_scrubs_an_sqlite_store_in_place(tmp_path, capsys):
    path = tmp_path / "old.db"
    history = f"sqlite:///{path}"
    keep = secret_run(tmp_path, "unrelated")
    append_run(history, keep)
    planted = secret_run(tmp_path, "oldLEAK-55")
    plant(history, planted)
    assert b"oldLEAK-55" in file_bytes(path)  # the old version's leak is really there
    assert "oldLEAK-55" not in json.dumps(read_history(history).runs)  # readers never show it

    assert cli.main(["history", "redact", "--history", history]) == 0
    assert "masked the secrets of 1 run(s)" in capsys.readouterr().out
    assert b"oldLEAK-55" not in file_bytes(path)
    runs = read_history(history).runs
    assert [r["id"] for r in runs] == [keep["id"], planted["id"]]  # in place: order kept
    assert runs[1]["label"] == "release CI_TOKEN=***" and runs[1]["results"] == planted["results"]
    assert cli.main(["history", "redact", "--history", history]) == 0
    assert "masked the secrets of 0 run(s)" in capsys.readouterr().out


def test_redact_scrubs_a_jsonl_store_and_a_missing_store_is_an_error(tmp_path, capsys):
    path = tmp_path / "runs.jsonl"
    run = secret_run(tmp_path, "jsonLEAK-9")
    path.write_text(json.dumps(run) + "\n{torn\n")
    assert cli.main(["history", "redact", "--history", str(path)]) == 0
    assert b"jsonLEAK-9" not in path.read_bytes() and "{torn" in path.read_text()
    assert cli.main(["history", "redact", "--history", str(tmp_path / "nope.db")]) == 2
    assert "no run history here" in capsys.readouterr().err
    assert not (tmp_path / "nope.db").exists()


# --- a real PostgreSQL server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    running: Server = start_server()
    yield running
    running.remove()


def test_the_database_password_is_in_no_byte_of_the_dump_the_site_or_the_output(
    gated, server, capsys, monkeypatch
):
    output = run_with_secrets(gated, server.url)  # the URL with its password on the command line
    output += shown_everywhere(gated, server.url, capsys, monkeypatch)
    dump = server.dump()
    assert b"DEPLOY_TOKEN=***" in dump  # the run is there
    for secret in (server.password, TOKEN, HUB_PASSWORD):
        assert secret not in output
        assert secret.encode() not in dump


def test_redact_scrubs_a_postgresql_store_in_one_transaction(tmp_path, server, capsys):
    planted = secret_run(tmp_path, "pgLEAK-31")
    plant(server.url, planted)
    assert b"pgLEAK-31" in server.dump()
    assert cli.main(["history", "redact", "--history", server.url]) == 0
    assert server.password not in capsys.readouterr().out
    assert b"pgLEAK-31" not in server.dump()
    assert read_history(server.url).runs[-1]["label"] == "release CI_TOKEN=***"
