"""The run history in a database through SQLAlchemy: an SQLite file (WAL) or a team's server.

A run is written in one transaction (its row, its verdicts, its metrics), so a run killed
mid-write leaves nothing. SQLite writers take the write lock up front (``BEGIN IMMEDIATE``), wait
on a busy timeout and retry on "database is locked"; PostgreSQL needs nothing more. Every error
leaves as an OSError whose message shows the URL with its password masked.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import import_module
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from qagate.store.history_schema import RUN_TABLES, TABLES, SchemaTooNew, current_version, migrate
from qagate.store.target import mask_secrets, mask_url, sqlalchemy_url

#: Seconds SQLite waits for another writer, then attempts per write on "database is locked".
BUSY_TIMEOUT_S = 30.0
ATTEMPTS = 8

RUN_COLUMNS = {  # run key -> column (the git, ci and host fields are mapped by hand)
    "id": "id",
    "schema": "schema",
    "started": "started",
    "finished": "finished",
    "duration_s": "duration_s",
    "outcome": "outcome",
    "exit_status": "exit_status",
    "partial": "partial",
    "incomplete": "incomplete",
    "ci_url": "ci_url",
    "host": "machine",
    "python": "python",
    "qagate": "qagate",
    "packages": "packages",
    "label": "label",
    "counts": "counts",
    "settings": "settings",
    "baselines": "baselines",
}
VERDICT_COLUMNS = {
    "nodeid": "nodeid",
    "model": "model",
    "rule": "rule",
    "metric": "metric",
    "op": "op",
    "dataset": "dataset",
    "obtained": "value",
    "threshold": "threshold",
    "interval_low": "interval_low",
    "interval_high": "interval_high",
    "level": "level",
    "status": "status",
    "reason": "reason",
    "duration_s": "duration_s",
}
FLOAT_COLUMNS = {"duration_s", "value", "threshold", "interval_low", "interval_high", "level"}


class HistoryStore:
    """One database store with its own engine (one per process); :meth:`close` disposes it."""

    def __init__(self, target: str | os.PathLike[str], *, create: bool = True) -> None:
        """Connect lazily to ``target`` (a URL, or a path for an SQLite file). ``create=False``
        (readers): never make the SQLite file's folder."""
        self.url = sqlalchemy_url(target)
        self.display = mask_url(self.url)
        self._migrated = False
        try:
            parsed = sa.engine.make_url(self.url)
        except (sa.exc.ArgumentError, ValueError):
            raise OSError(f"{self.display}: not a database URL (e.g. postgresql://user@host/db)") from None
        if parsed.drivername == "postgresql":  # SQLAlchemy's default driver is psycopg2; ours is psycopg 3
            parsed = parsed.set(drivername="postgresql+" + _postgres_driver())
        self.display = mask_url(parsed.render_as_string(hide_password=True))
        self._secret = parsed.password
        self.sqlite = parsed.get_backend_name() == "sqlite"
        if create and self.sqlite and parsed.database and parsed.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
        try:
            self.engine = self._engine(parsed)
        except Exception as exc:  # a missing driver (psycopg), a bad option
            raise self._oserror(exc) from None

    def _engine(self, url: sa.URL) -> Engine:
        """An engine; for SQLite: WAL, a busy timeout and writes that lock at BEGIN."""
        if not self.sqlite:
            return sa.create_engine(url, pool_pre_ping=True)
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event starts transactions
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("qagate_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (locked up front on SQLite); errors become OSError."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(qagate_write=True)
            with conn.begin():
                if not self._migrated:
                    migrate(conn)
                    self._migrated = True
                yield conn

    def _retrying(self, work: Any) -> Any:
        """``work()`` again after "database is locked" (SQLite under many writers), then OSError."""
        for attempt in range(ATTEMPTS):
            try:
                return work()
            except sa.exc.OperationalError as exc:
                if attempt + 1 < ATTEMPTS and "locked" in str(exc.orig).lower():
                    time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
                    continue
                raise self._oserror(exc) from None
            except (sa.exc.SQLAlchemyError, SchemaTooNew) as exc:
                raise self._oserror(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _oserror(self, exc: BaseException) -> OSError:
        """The error as one line naming the masked URL, the password scrubbed from the driver's text."""
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__]
        text = reason[0]
        if self._secret:
            text = text.replace(self._secret, "***")
        if isinstance(exc, SchemaTooNew):
            text += " (upgrade qagate)"
        elif isinstance(exc, ImportError):
            text += " (install the driver; for PostgreSQL: pip install 'pytest-qagate[postgres]')"
        return OSError(f"{self.display}: {text}")

    def append(self, run: Mapping[str, Any]) -> None:
        """Write ``run`` (a :func:`~qagate.store.history.build_run` dict) in one transaction."""

        def work() -> None:
            with self._write() as conn:
                insert_run(conn, run)

        self._retrying(work)

    def import_runs(self, runs: Sequence[Mapping[str, Any]]) -> int:
        """Add the runs whose id the store lacks, in one transaction; how many were added."""

        def work() -> int:
            with self._write() as conn:
                ids = [str(run["id"]) for run in runs]
                have = set()
                for start in range(0, len(ids), 500):
                    column = TABLES["runs"].c.id
                    chunk = ids[start : start + 500]
                    have |= set(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
                added = 0
                for run in runs:
                    if str(run["id"]) not in have:
                        insert_run(conn, run)
                        have.add(str(run["id"]))
                        added += 1
                return added

        return int(self._retrying(work))

    def redact(self) -> int:
        """Mask the secrets of every stored run in place (every text and JSON column of the three
        tables), in one transaction; then SQLite is vacuumed and PostgreSQL's tables rewritten
        (``VACUUM FULL``, where the user may) so no old byte stays in the file. Runs changed."""

        def work() -> int:
            changed: set[Any] = set()
            with self._write() as conn:
                for table in (TABLES[name] for name in RUN_TABLES):
                    key = table.c.seq if table.name == "runs" else table.c.pk
                    owner = table.c.seq if table.name == "runs" else table.c.run_seq
                    columns = [c for c in table.columns if isinstance(c.type, (sa.String, sa.JSON))]
                    for row in conn.execute(sa.select(key, owner, *columns)).all():
                        values = dict(zip([c.name for c in columns], row[2:]))
                        masked = {name: mask_secrets(value) for name, value in values.items()}
                        update = {name: value for name, value in masked.items() if value != values[name]}
                        if update:
                            conn.execute(sa.update(table).where(key == row[0]).values(**update))
                            changed.add(row[1])
            if changed:
                self._compact()
            return len(changed)

        return int(self._retrying(work))

    def _compact(self) -> None:
        """Rewrite the database so the bytes of replaced values are gone (best effort on a server)."""
        if self.sqlite:  # the driver connection is in autocommit mode (see _engine)
            raw = self.engine.raw_connection()
            try:
                raw.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
                raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
            finally:
                raw.close()
            return
        with self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            try:
                for table in RUN_TABLES:
                    conn.exec_driver_sql(f"VACUUM FULL {table}")
            except sa.exc.SQLAlchemyError:
                pass  # not the tables' owner: the values are masked, the old row versions are dead

    def read(self) -> list[dict[str, Any]]:
        """Every run, oldest first, as the dicts :func:`build_run` made."""

        def work() -> list[dict[str, Any]]:
            with self.engine.connect() as conn, conn.begin():
                if current_version(conn) == 0:
                    return []
                return read_runs(conn)

        return list(self._retrying(work))

    def questions(self, run_id: str) -> dict[str, Any] | None:
        """The per-question results of the run ``run_id`` (exact id) as :func:`build_run` keeps them
        under ``"questions"`` (``{"ids": {sha256: ids}, "scores": [...]}``); None when there is no
        such run. A run stored without them gives empty ones."""

        def work() -> dict[str, Any] | None:
            with self.engine.connect() as conn, conn.begin():
                if current_version(conn) == 0:
                    return None
                return read_questions(conn, run_id)

        found = self._retrying(work)
        return None if found is None else dict(found)

    def run_ids(self) -> list[str]:
        """Every run's id, oldest first (cheap: one column)."""

        def work() -> list[str]:
            with self.engine.connect() as conn, conn.begin():
                if current_version(conn) == 0:
                    return []
                runs = TABLES["runs"]
                return [str(v) for v in conn.execute(sa.select(runs.c.id).order_by(runs.c.seq)).scalars()]

        return list(self._retrying(work))


def insert_run(conn: Connection, run: Mapping[str, Any]) -> None:
    """The run's row, verdicts and metrics (secrets masked), inside the caller's transaction."""
    run = mask_secrets(run)
    runs, verdicts, metrics = TABLES["runs"], TABLES["verdicts"], TABLES["metrics"]
    row, extra = _split(run, RUN_COLUMNS, skip={"git", "results", "metrics", "questions"})
    git = run.get("git")
    if isinstance(git, Mapping):
        row.update(git_commit=git.get("commit"), git_branch=git.get("branch"), git_dirty=git.get("dirty"))
        if set(git) - {"commit", "branch", "dirty"}:
            extra["git"] = dict(git)
    elif git is not None:
        extra["git"] = git
    for key in ("results", "metrics"):
        if key in run and not isinstance(run[key], list):
            extra[key] = run[key]
    absent = [key for key in ("git", "results", "metrics") if key not in run]
    if absent:
        extra["_absent"] = absent  # an old row without them reads back without them
    row["id"] = str(run.get("id"))
    row["extra"] = extra or None
    seq = conn.execute(sa.insert(runs).values(**row).returning(runs.c.seq)).scalar_one()
    rows = []
    for position, result in enumerate(run.get("results") or []):
        values, more = _split(result, VERDICT_COLUMNS) if isinstance(result, Mapping) else ({}, {"": result})
        values.update(run_seq=seq, position=position, reference=_reference(values.get("rule")))
        values["extra"] = more or None
        rows.append(values)
    if rows:  # executemany takes its columns from the first row: give every row all of them
        names = [c.name for c in verdicts.columns if c.name != "pk"]
        conn.execute(sa.insert(verdicts), [{name: values.get(name) for name in names} for values in rows])
    rows = []
    for position, entry in enumerate(run.get("metrics") or []):
        if not isinstance(entry, Mapping):
            continue
        base = {
            "run_seq": seq,
            "position": position,
            "model": entry.get("model"),
            "dataset": entry.get("dataset"),
        }
        for name, value in entry.items():
            if name not in ("model", "dataset"):
                number = _float(value)
                raw = None if value is None or type(value) is float else value
                rows.append({**base, "name": str(name), "value": number, "raw": raw})
        if not rows or rows[-1]["position"] != position:  # a model with no metrics keeps its row
            rows.append({**base, "name": None, "value": None, "raw": None})
    if rows:
        conn.execute(sa.insert(metrics), rows)
    questions = run.get("questions")
    if isinstance(questions, Mapping):
        insert_questions(conn, seq, questions)


def insert_questions(conn: Connection, seq: int, questions: Mapping[str, Any]) -> None:
    """A run's per-question results: each id list once per database (by its sha256), then one row
    per (model, dataset) with its encoded scores."""
    sets_t, scores_t = TABLES["question_sets"], TABLES["question_scores"]
    id_lists = questions.get("ids")
    if not isinstance(id_lists, Mapping):
        id_lists = {}
    entries = [e for e in questions.get("scores") or () if isinstance(e, Mapping)]
    for digest in sorted({str(e.get("ids_sha256")) for e in entries}):
        blob = id_lists.get(digest)
        count = next(e.get("count") for e in entries if str(e.get("ids_sha256")) == digest)
        if not isinstance(blob, str) or not isinstance(count, int):
            continue  # the entries naming it are dropped below: their ids are unknown
        values = {"ids_sha256": digest, "count": count, "ids": blob}
        if conn.dialect.name in ("sqlite", "postgresql"):
            dialect = import_module(f"sqlalchemy.dialects.{conn.dialect.name}")
            conn.execute(dialect.insert(sets_t).values(**values).on_conflict_do_nothing())
        elif conn.execute(sa.select(sets_t.c.count).where(sets_t.c.ids_sha256 == digest)).first() is None:
            conn.execute(sa.insert(sets_t).values(**values))
    known = set(conn.execute(sa.select(sets_t.c.ids_sha256)).scalars())  # a store keeps few id lists
    rows = [
        {
            "run_seq": seq,
            "model": entry.get("model"),
            "dataset": entry.get("dataset"),
            "fingerprint": entry.get("fingerprint"),
            "ids_sha256": str(entry.get("ids_sha256")),
            "count": entry.get("count"),
            "data": {k: v for k, v in entry.items() if k not in ("model", "dataset", "fingerprint")},
        }
        for entry in entries
        if str(entry.get("ids_sha256")) in known and isinstance(entry.get("count"), int)
    ]
    if rows:
        conn.execute(sa.insert(scores_t), rows)


def read_questions(conn: Connection, run_id: str) -> dict[str, Any] | None:
    """The ``"questions"`` of one run (see :meth:`HistoryStore.questions`), or None (no such run)."""
    runs_t, sets_t, scores_t = TABLES["runs"], TABLES["question_sets"], TABLES["question_scores"]
    seq = conn.execute(sa.select(runs_t.c.seq).where(runs_t.c.id == run_id)).scalar()
    if seq is None:
        return None
    scores: list[dict[str, Any]] = []
    for row in conn.execute(sa.select(scores_t).where(scores_t.c.run_seq == seq).order_by(scores_t.c.pk)):
        scores.append(
            {**(row.data or {}), "model": row.model, "dataset": row.dataset, "fingerprint": row.fingerprint}
        )
    digests = sorted({str(entry.get("ids_sha256")) for entry in scores})
    ids = dict(
        conn.execute(
            sa.select(sets_t.c.ids_sha256, sets_t.c.ids).where(sets_t.c.ids_sha256.in_(digests))
        ).all()
    )
    return {"ids": ids, "scores": scores}


def read_runs(conn: Connection) -> list[dict[str, Any]]:
    """All runs, oldest first (insertion order), rebuilt from the three tables."""
    runs_t, verdicts_t, metrics_t = TABLES["runs"], TABLES["verdicts"], TABLES["metrics"]
    results: dict[int, list[dict[str, Any]]] = {}
    for row in conn.execute(sa.select(verdicts_t).order_by(verdicts_t.c.run_seq, verdicts_t.c.position)):
        results.setdefault(row.run_seq, []).append(
            _join(row._mapping, VERDICT_COLUMNS, OPTIONAL_VERDICT_KEYS)
        )
    measured: dict[int, dict[int, dict[str, Any]]] = {}
    for row in conn.execute(sa.select(metrics_t).order_by(metrics_t.c.run_seq, metrics_t.c.pk)):
        entry = measured.setdefault(row.run_seq, {}).setdefault(
            row.position, {"model": row.model, "dataset": row.dataset}
        )
        if row.name is not None:
            entry[row.name] = row.raw if row.raw is not None else row.value
    out = []
    for row in conn.execute(sa.select(runs_t).order_by(runs_t.c.seq)):
        run = _join(row._mapping, RUN_COLUMNS, None)
        git = {"commit": row.git_commit, "branch": row.git_branch, "dirty": row.git_dirty}
        run["git"] = {k: v for k, v in git.items() if v is not None}
        run["results"] = results.get(row.seq, [])
        run["metrics"] = [measured[row.seq][k] for k in sorted(measured.get(row.seq, {}))]
        run.update(row.extra or {})
        for key in run.pop("_absent", None) or ():
            run.pop(key, None)
        out.append(run)
    return out


def _split(
    data: Mapping[str, Any], columns: Mapping[str, str], skip: frozenset[str] | set[str] = frozenset()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Column values, and the fields kept as they are in ``extra`` (unknown keys, ints in a float column)."""
    row: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key in skip:
            continue
        column = columns.get(key)
        if column is None:
            extra[key] = value
        elif column in FLOAT_COLUMNS:
            row[column] = _float(value)
            if value is not None and type(value) is not float:
                extra[key] = value  # an int or a non-number: read back exactly
        else:
            row[column] = value
    return row, extra


def _join(row: Any, columns: Mapping[str, str], optional: set[str] | None) -> dict[str, Any]:
    """The dict a row was split from: its columns (``optional`` ones, or all when None, left out when
    NULL), then the fields kept in ``extra``."""
    extra = row.get("extra") or {}
    out: dict[str, Any] = {}
    for key, column in columns.items():
        value = row.get(column)
        if key in extra or (value is None and (optional is None or key in optional)):
            continue
        out[key] = value
    out.update(extra)
    return out


OPTIONAL_VERDICT_KEYS = {"interval_low", "interval_high", "level", "reason", "duration_s"}


def _postgres_driver() -> str:
    """psycopg (3, the ``postgres`` extra) unless only psycopg2 is installed."""
    from importlib.util import find_spec

    return "psycopg2" if find_spec("psycopg") is None and find_spec("psycopg2") is not None else "psycopg"


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def _reference(rule: Any) -> str | None:
    """What a rule compares with: teacher, baseline or an absolute number."""
    if not isinstance(rule, str):
        return None
    return "teacher" if "teacher" in rule else "baseline" if "baseline" in rule else "absolute"
