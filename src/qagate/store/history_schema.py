"""The history database's tables and their versioned migrations (imported only by the store).

A ``schema_version`` table holds one row, the number of migrations applied; :data:`MIGRATIONS`
are ordered functions, each run once, in one transaction with the version bump, under a lock
(SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock), so concurrent first runs agree.
A migration never changes: a new schema is a new function appended to the list. (Plain
functions rather than Alembic: a few small tables, no extra dependency, and the plugin migrates a
team's store by itself on its first write.)

Version 2 adds each run's per-question results (:mod:`qagate.store.questions`): ``question_scores``
(one row per model and dataset of a run, the encoded scores without their ids) and
``question_sets`` (each distinct list of question ids once, keyed by its sha256, shared by every
run and model scored on those questions).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

#: Any advisory lock number unlikely to clash with an application's (PostgreSQL only).
ADVISORY_LOCK = 0x7161676174650001


def define_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    """The version-1 tables: runs, verdicts (one row per gate item) and metrics (one per value)."""
    runs = sa.Table(
        "runs",
        metadata,
        sa.Column("seq", sa.Integer, sa.Identity(), primary_key=True),  # insertion order
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("schema", sa.Integer),
        sa.Column("started", sa.String(32), index=True),  # ISO 8601 UTC, sorts as text
        sa.Column("finished", sa.String(32)),
        sa.Column("duration_s", sa.Float),
        sa.Column("outcome", sa.String(32), index=True),
        sa.Column("exit_status", sa.Integer),
        sa.Column("partial", sa.Boolean),
        sa.Column("incomplete", sa.Boolean),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("git_branch", sa.String(255), index=True),
        sa.Column("git_dirty", sa.Boolean),
        sa.Column("ci_url", sa.Text),
        sa.Column("machine", sa.String(255)),
        sa.Column("python", sa.String(32)),
        sa.Column("qagate", sa.String(32)),
        sa.Column("packages", sa.JSON(none_as_null=True)),
        sa.Column("label", sa.Text),
        sa.Column("counts", sa.JSON(none_as_null=True)),
        sa.Column("settings", sa.JSON(none_as_null=True)),
        sa.Column("baselines", sa.JSON(none_as_null=True)),
        sa.Column("extra", sa.JSON(none_as_null=True)),  # fields this version has no column for
    )
    verdicts = sa.Table(
        "verdicts",
        metadata,
        sa.Column("pk", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("run_seq", sa.Integer, sa.ForeignKey("runs.seq", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("nodeid", sa.Text),
        sa.Column("model", sa.String(255), index=True),
        sa.Column("rule", sa.Text),
        sa.Column("metric", sa.String(64)),
        sa.Column("op", sa.String(4)),
        sa.Column("dataset", sa.Text),
        sa.Column("value", sa.Float),
        sa.Column("threshold", sa.Float),
        sa.Column("reference", sa.String(16)),  # teacher | baseline | absolute (from the rule)
        sa.Column("interval_low", sa.Float),
        sa.Column("interval_high", sa.Float),
        sa.Column("level", sa.Float),
        sa.Column("status", sa.String(32)),
        sa.Column("reason", sa.Text),
        sa.Column("duration_s", sa.Float),
        sa.Column("extra", sa.JSON(none_as_null=True)),
    )
    metrics = sa.Table(
        "metrics",
        metadata,
        sa.Column("pk", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("run_seq", sa.Integer, sa.ForeignKey("runs.seq", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),  # which (model, dataset) row of the run
        sa.Column("model", sa.String(255), index=True),
        sa.Column("dataset", sa.Text),
        sa.Column("name", sa.String(64)),
        sa.Column("value", sa.Float),
        sa.Column("raw", sa.JSON(none_as_null=True)),  # the value as stored when not a float
    )
    return {"runs": runs, "verdicts": verdicts, "metrics": metrics}


def define_question_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    """The version-2 tables (``runs`` must already be in ``metadata``): per-question results."""
    sets = sa.Table(
        "question_sets",
        metadata,
        sa.Column("ids_sha256", sa.String(64), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("ids", sa.Text, nullable=False),  # encode_ids: the sorted ids, zlib + base64
    )
    scores = sa.Table(
        "question_scores",
        metadata,
        sa.Column("pk", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column(
            "run_seq", sa.Integer, sa.ForeignKey("runs.seq", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("model", sa.String(255)),
        sa.Column("dataset", sa.Text),
        sa.Column("fingerprint", sa.String(64)),  # the dataset's content fingerprint
        sa.Column("ids_sha256", sa.String(64), sa.ForeignKey("question_sets.ids_sha256"), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column(
            "data", sa.JSON(none_as_null=True), nullable=False
        ),  # QuestionScores.encode(with_ids=False)
    )
    return {"question_sets": sets, "question_scores": scores}


METADATA = sa.MetaData()
TABLES = define_tables(METADATA)
TABLES.update(define_question_tables(METADATA))
#: The tables of version 1, which hold a run's own text (what redaction rewrites).
RUN_TABLES = ("runs", "verdicts", "metrics")
VERSION_TABLE = sa.Table("schema_version", sa.MetaData(), sa.Column("version", sa.Integer, nullable=False))


def _create_v1(conn: Connection) -> None:
    """Version 1: runs, verdicts, metrics (a frozen copy, so later schemas never change it)."""
    frozen = sa.MetaData()
    define_tables(frozen)
    frozen.create_all(conn)


def _add_questions_v2(conn: Connection) -> None:
    """Version 2: per-question results (question_sets, question_scores); v1 tables unchanged."""
    frozen = sa.MetaData()
    define_tables(frozen)
    for table in define_question_tables(frozen).values():
        table.create(conn)


#: Ordered migrations: MIGRATIONS[i] takes a store from version i to version i + 1.
MIGRATIONS: list[Callable[[Connection], None]] = [_create_v1, _add_questions_v2]


class SchemaTooNew(RuntimeError):
    """The store was written by a newer qagate (a schema version this one does not know)."""


def current_version(conn: Connection) -> int:
    """The store's schema version (0 for an empty database)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(sa.select(VERSION_TABLE.c.version)).scalar() or 0)


def migrate(conn: Connection, migrations: list[Callable[[Connection], None]] | None = None) -> int:
    """Apply the missing migrations inside the caller's transaction; the version reached."""
    steps = MIGRATIONS if migrations is None else migrations
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
    VERSION_TABLE.create(conn, checkfirst=True)
    version = current_version(conn)
    if version > len(steps):
        raise SchemaTooNew(f"schema version {version}, this qagate knows up to {len(steps)}")
    for step in steps[version:]:
        step(conn)
    if version < len(steps):
        if version == 0:
            conn.execute(sa.delete(VERSION_TABLE))
            conn.execute(sa.insert(VERSION_TABLE).values(version=len(steps)))
        else:
            conn.execute(sa.update(VERSION_TABLE).values(version=len(steps)))
    return len(steps)
