"""The run history: every pytest run that judged a gate appends one run to a store (default the
SQLite file ``.qagate/history.db``; ``--qagate-history`` / ``QAGATE_HISTORY_URL``: a path or any
SQLAlchemy URL), and ``qagate history`` / ``qagate dashboard`` read it back.

A database store (``store/history_db.py``) writes a run in one transaction. A path ending in
``.jsonl`` keeps the earlier format: one JSON line per run, appended under a lock (``filelock``,
on a ``<history>.lock`` file beside it) and fsynced, so a run that dies mid-write can leave at most
its own line torn, which the reader reports and skips. Light at import time (the plugin imports
this module at the end of a session): the standard library; SQLAlchemy or ``filelock`` load on use.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qagate.errors import QagateError
from qagate.store.target import HistoryURL, display, is_jsonl, is_url

SCHEMA = 1

#: Gate statuses and run outcomes, worst first: a run's outcome is the worst of its statuses.
#: "new": a baseline this run wrote (needs review); "incomplete" is a run outcome only (a gate item
#: was skipped for missing data or requirements), set by the plugin through ``incomplete=True``.
STATUS_ORDER = ("error", "fail", "undecided", "incomplete", "new", "undecided (skipped)", "skipped", "pass")

#: The kinds of baseline writes a run records under ``"baselines"``.
BASELINE_ACTIONS = ("created", "updated", "regenerated")

#: Seconds an append waits for another process's append before giving up (an OSError).
LOCK_TIMEOUT_S = 60.0


def git_info(folder: Path) -> dict[str, Any]:
    """Commit, branch and whether the tree has local changes; empty outside a git checkout.
    CI variables win when set (a detached CI checkout has no branch name)."""
    info: dict[str, Any] = {}

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = os.environ.get("GITHUB_SHA") or os.environ.get("CI_COMMIT_SHA") or git("rev-parse", "HEAD")
    if commit:
        info["commit"] = commit
        branch = (
            os.environ.get("GITHUB_HEAD_REF")
            or os.environ.get("GITHUB_REF_NAME")
            or os.environ.get("CI_COMMIT_REF_NAME")
            or git("rev-parse", "--abbrev-ref", "HEAD")
        )
        if branch and branch != "HEAD":
            info["branch"] = branch
        status = git("status", "--porcelain", "--untracked-files=no")
        if status is not None:
            info["dirty"] = bool(status)
    return info


def outcome_of(statuses: Iterable[str], *, incomplete: bool = False) -> str:
    """The worst status in :data:`STATUS_ORDER` (``pass`` for none). ``incomplete``: some gate
    item was skipped for missing data or requirements, so the run is at best ``incomplete``.
    A status this version does not know counts as ``undecided``: never green."""
    seen = set(statuses)
    if incomplete:
        seen.add("incomplete")
    if seen - set(STATUS_ORDER):
        seen.add("undecided")
    for status in STATUS_ORDER:
        if status in seen:
            return status
    return "pass"


def build_run(
    *,
    results: list[Mapping[str, Any]],
    metrics: list[Mapping[str, Any]],
    started: float,
    exit_status: int,
    rootdir: Path,
    settings: Mapping[str, Any] | None = None,
    label: str | None = None,
    partial: bool = False,
    baselines: Mapping[str, Iterable[str | os.PathLike[str]]] | None = None,
    incomplete: bool = False,
) -> dict[str, Any]:
    """One history entry. ``results``: a dict per gate item (nodeid, model, rule, metric, op,
    dataset, status, obtained, threshold; optionally interval_low, interval_high, level);
    ``metrics``: a dict per evaluated (model, dataset). ``partial``: the run selected only some
    gate items (-k, a node id); ``baselines``: the paths it ``created``/``updated``/``regenerated``;
    ``incomplete``: a gate item was skipped for missing data or requirements (see outcome_of)."""
    from qagate import __version__

    finished = time.time()
    statuses = [str(r["status"]) for r in results]
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    run: dict[str, Any] = {
        "schema": SCHEMA,
        "id": uuid.uuid4().hex[:12],
        "started": _iso(started),
        "finished": _iso(finished),
        "duration_s": round(finished - started, 3),
        "outcome": outcome_of(statuses, incomplete=incomplete),
        "partial": bool(partial),
        "incomplete": bool(incomplete),
        "baselines": _baseline_paths(baselines or {}),
        "exit_status": int(exit_status),
        "counts": dict(sorted(counts.items())),
        "git": git_info(rootdir),
        "host": platform.node(),
        "python": platform.python_version(),
        "qagate": __version__,
        "packages": _package_versions(),
        "settings": dict(settings or {}),
        "results": [_clean(r) for r in results],
        "metrics": [_clean(m) for m in metrics],
    }
    label = label or os.environ.get("QAGATE_RUN_LABEL")
    if label:
        run["label"] = label
    ci_url = ci_job_url()
    if ci_url:
        run["ci_url"] = ci_url
    return run


def ci_job_url() -> str | None:
    """The CI job's page: GitHub Actions (server/repository/actions/runs/id) or GitLab's CI_JOB_URL."""
    env = os.environ
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{server.rstrip('/')}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return env.get("CI_JOB_URL") or None


def append_run(target: str | os.PathLike[str], run: Mapping[str, Any]) -> str | os.PathLike[str]:
    """Write ``run`` to the store ``target`` (a path or a URL; see the module docstring), in one
    transaction or as one locked line. Any failure (an unwritable folder, a server down, a lock held
    too long) is an OSError whose message never shows a password."""
    if not is_jsonl(target):
        from qagate.store.history_db import HistoryStore

        with HistoryStore(target) as store:
            store.append(run)
        return target
    return _append_line(Path(target), run)


def _append_line(path: Path, run: Mapping[str, Any]) -> Path:
    """Append ``run`` as one line, holding :func:`lock_path`'s lock. Never rewrites what is
    there: if the file's last line was torn by a crash, the new line starts on a line of its own."""
    from filelock import FileLock

    line = json.dumps(run, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path(path), timeout=LOCK_TIMEOUT_S), open(path, "a+b") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell():
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = "\n" + line
        handle.write(line.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    return path


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file beside the history (the history itself is never opened for locking, so a
    lock implementation that truncates its file cannot touch a run)."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def is_partial(run: Mapping[str, Any]) -> bool:
    """Whether the run selected only some gate items (absent in old rows: not partial)."""
    return run.get("partial") is True


def baseline_changes(run: Mapping[str, Any]) -> dict[str, list[str]]:
    """The baseline paths the run wrote, by action (created/updated/regenerated); empty kinds and
    old rows without the field give nothing."""
    recorded = run.get("baselines")
    if not isinstance(recorded, Mapping):
        return {}
    out = {}
    for action in BASELINE_ACTIONS:
        paths = recorded.get(action)
        if isinstance(paths, list) and paths:
            out[action] = [str(p) for p in paths]
    return out


@dataclass
class History:
    """The runs of one store, oldest first, and the line numbers it had to skip (JSON Lines).
    ``path``: the file, or the URL with its password masked."""

    path: Path | str
    runs: list[dict[str, Any]]
    skipped: list[int] = field(default_factory=list)


def read_history(target: str | os.PathLike[str]) -> History:
    """Every run of the store ``target`` (a path or a URL), oldest first; a QagateError when there is
    no history there or the store cannot be read."""
    url = isinstance(target, HistoryURL) or is_url(os.fspath(target))
    if not url and not Path(target).is_file():
        old = Path(target).with_suffix(".jsonl")
        hint = (
            f"runs before the database store are in {old}: import them with "
            f"'qagate history import {old}', or pass --history {old}"
            if old.is_file()
            else "run 'pytest quality_tests/' first (each run appends to .qagate/history.db), "
            "or pass --history with the store your runs write (--qagate-history)"
        )
        raise QagateError("no run history here", path=Path(target), hint=hint)
    if not is_jsonl(target):
        from qagate.store.history_db import HistoryStore

        try:
            with HistoryStore(target) as store:
                runs = store.read()
        except OSError as exc:
            raise QagateError(f"cannot read the run history: {exc}") from None
        return History(Path(target) if not url else display(target), runs)
    return _read_lines(Path(target))


def import_history(
    source: str | os.PathLike[str], target: str | os.PathLike[str]
) -> tuple[int, int, list[int]]:
    """Copy the runs of a JSON Lines history into the database store ``target``, skipping the runs it
    already has (by id; a row without an id gets one from its text, so importing twice adds
    nothing); (added, already there, unreadable line numbers). A file with no readable run is an
    error: importing nothing from it is never a success."""
    import hashlib

    from qagate.store.history_db import HistoryStore

    old = _read_lines(Path(source))
    if not old.runs:
        lines = ", ".join(str(n) for n in old.skipped[:5]) + (", ..." if len(old.skipped) > 5 else "")
        raise QagateError(
            "no run to import: " + (f"line(s) {lines} are not qagate runs" if lines else "the file is empty"),
            path=source,
            hint="pass the JSON Lines history a qagate run wrote (one JSON object with 'results' a line)",
        )
    runs = []
    for run in old.runs:
        if not run.get("id"):
            text = json.dumps(run, sort_keys=True).encode("utf-8")
            run = {**run, "id": "import-" + hashlib.sha256(text).hexdigest()[:12]}
        runs.append(run)
    try:
        with HistoryStore(target) as store:
            added = store.import_runs(runs)
    except OSError as exc:
        raise QagateError(f"cannot import into the run history: {exc}") from None
    return added, len(runs) - added, list(old.skipped)


def _read_lines(path: Path) -> History:
    """A JSON Lines history: one run per line; unreadable lines are skipped and numbered."""
    if not path.is_file():
        raise QagateError("no run history here", path=path, hint="pass the JSON Lines file your runs wrote")
    runs, skipped = [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                run = json.loads(text)
            except json.JSONDecodeError:
                skipped.append(number)
                continue
            if not isinstance(run, dict) or not isinstance(run.get("results"), list):
                skipped.append(number)
                continue
            runs.append(run)
    return History(path, runs, skipped)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def _baseline_paths(baselines: Mapping[str, Iterable[str | os.PathLike[str]]]) -> dict[str, list[str]]:
    """``{"created": [...], "updated": [...], "regenerated": [...]}`` as sorted strings, empty
    kinds left out."""
    out = {}
    for action in BASELINE_ACTIONS:
        paths = sorted(str(path) for path in baselines.get(action) or ())
        if paths:
            out[action] = paths
    return out


def _clean(row: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe values: NaN and infinities (a failed timing, say) become null."""
    out = {}
    for key, value in row.items():
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            value = None
        out[key] = value
    return out


def _package_versions() -> dict[str, str]:
    """Versions of the libraries a verdict depends on, from their metadata (nothing is imported)."""
    from importlib import metadata

    versions = {}
    for name in ("torch", "transformers", "tokenizers", "datasets", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
