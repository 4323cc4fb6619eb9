"""Per-question results in the run history (issue 24 item 4): each gated model's EM and F1 per
question stored with the run (a schema migration), read back by run id and model, on SQLite,
JSON Lines and PostgreSQL (skipped where no server can start)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401 (see test_history.py)

from postgres_server import Server, start_server
from qagate.core.errors import QagateError
from qagate.scoring.scores import Scores
from qagate.store import history_schema
from qagate.store.history import (
    QuestionEntry,
    append_run,
    build_run,
    question_score_index,
    read_history,
    read_question_scores,
    redact,
)
from qagate.store.questions import QuestionScores


def scores(f1: dict[str, float], missing: tuple[str, ...] = ()) -> QuestionScores:
    em = {qid: float(v == 1.0) for qid, v in f1.items()}
    table = Scores(0.0, 0.0, len(f1), len(f1) - len(missing), list(missing), [], em, f1)
    return QuestionScores.from_scores(table)


TEACHER = scores({"q1": 1.0, "q2": 0.5, "q3": 1.0, "q4": 0.0})
STUDENT = scores({"q1": 1.0, "q2": 2 / 3, "q3": 0.0, "q4": 0.0}, missing=("q4",))


def run_with_questions(tmp_path: Path, **kw) -> dict:
    return build_run(
        results=[],
        metrics=[],
        started=time.time(),
        exit_status=0,
        rootdir=tmp_path,
        questions=[
            QuestionEntry("teacher", "sample", "fp", TEACHER),
            QuestionEntry("student", "sample", "fp", STUDENT),
        ],
        **kw,
    )


def check_round_trip(target, tmp_path: Path) -> None:
    first, second = run_with_questions(tmp_path), run_with_questions(tmp_path)
    old = build_run(results=[], metrics=[], started=time.time(), exit_status=0, rootdir=tmp_path)
    for run in (first, second, old):
        append_run(target, run)
    for run in (first, second):
        assert read_question_scores(target, run["id"], "student") == STUDENT
        assert read_question_scores(target, run["id"][:8], "teacher", "sample") == TEACHER
    assert question_score_index(target, first["id"]) == [
        {"model": "teacher", "dataset": "sample", "fingerprint": "fp", "count": 4},
        {"model": "student", "dataset": "sample", "fingerprint": "fp", "count": 4},
    ]
    back = read_question_scores(target, second["id"], "student")
    assert back.per_question_f1["q2"] == 2 / 3 and back.missing == ("q4",)
    with pytest.raises(QagateError, match=f"run {old['id']} stored no per-question results"):
        read_question_scores(target, old["id"], "student")
    assert question_score_index(target, old["id"]) == []
    with pytest.raises(QagateError, match="results of 'nobody'; it stored: teacher on sample"):
        read_question_scores(target, first["id"], "nobody")
    with pytest.raises(QagateError, match="no run has the id 'zzz'"):
        read_question_scores(target, "zzz", "student")
    assert [r["id"] for r in read_history(target).runs][-3:] == [first["id"], second["id"], old["id"]]


def test_sqlite_round_trip_keeps_each_id_list_once(tmp_path):
    path = tmp_path / "history.db"
    check_round_trip(path, tmp_path)
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM question_sets").scalar() == 1
        assert conn.exec_driver_sql("SELECT count(*) FROM question_scores").scalar() == 4
    engine.dispose()
    assert redact(path) == 0  # redaction reads the run tables, not the encoded scores


def test_jsonl_round_trip(tmp_path):
    check_round_trip(tmp_path / "history.jsonl", tmp_path)


def test_a_version_1_store_is_migrated_and_its_old_runs_read_as_without_results(tmp_path):
    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        assert history_schema.migrate(conn, history_schema.MIGRATIONS[:1]) == 1
    engine.dispose()
    old = build_run(results=[], metrics=[], started=time.time(), exit_status=0, rootdir=tmp_path)
    # written as a version-1 store would: the questions tables do not exist yet
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        from qagate.store.history_db import insert_run

        insert_run(conn, {k: v for k, v in old.items() if k != "questions"})
    engine.dispose()
    new = run_with_questions(tmp_path)
    append_run(path, new)  # migrates to version 2 first
    assert read_question_scores(path, new["id"], "teacher") == TEACHER
    with pytest.raises(QagateError, match="stored no per-question results"):
        read_question_scores(path, old["id"], "teacher")


@pytest.fixture(scope="module")
def server():
    running: Server = start_server()
    yield running
    running.remove()


def test_postgresql_round_trip(server, tmp_path):
    check_round_trip(server.url, tmp_path)
