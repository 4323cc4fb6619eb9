"""The run history: every pytest run that judged a gate appends one JSON line to a history file
(default ``.qagate/history.jsonl``; ``--qagate-history``), and ``qagate history`` /
``qagate dashboard`` read it back as a pass/fail table and metric trends.

One line per run, appended under an advisory lock and fsynced, so earlier runs are never
rewritten: a run that dies mid-write can leave at most its own line torn, which the reader
reports and skips, and the next append starts on a fresh line. Standard library only (this
module is imported by the plugin at the end of a session).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from qagate.errors import QagateError

SCHEMA = 1

#: Gate statuses a run can record, worst first (a run's outcome is its worst status).
STATUS_ORDER = ("error", "fail", "undecided", "undecided (skipped)", "skipped", "pass")


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
        branch = (os.environ.get("GITHUB_HEAD_REF") or os.environ.get("GITHUB_REF_NAME")
                  or os.environ.get("CI_COMMIT_REF_NAME") or git("rev-parse", "--abbrev-ref", "HEAD"))
        if branch and branch != "HEAD":
            info["branch"] = branch
        status = git("status", "--porcelain", "--untracked-files=no")
        if status is not None:
            info["dirty"] = bool(status)
    return info


def outcome_of(statuses: Iterable[str]) -> str:
    """``pass`` when every gate passed (skips aside), otherwise the worst status seen."""
    seen = set(statuses)
    for status in STATUS_ORDER[:4]:
        if status in seen:
            return "fail" if status == "undecided (skipped)" else status
    return "pass"


def build_run(*, results: list[Mapping[str, Any]], metrics: list[Mapping[str, Any]], started: float,
              exit_status: int, rootdir: Path, settings: Mapping[str, Any] | None = None,
              label: str | None = None) -> dict[str, Any]:
    """One history entry. ``results``: a dict per gate item (nodeid, model, rule, metric, op,
    dataset, status, obtained, threshold); ``metrics``: a dict per evaluated (model, dataset)."""
    from qagate import __version__

    finished = time.time()
    statuses = [r["status"] for r in results]
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    run: dict[str, Any] = {
        "schema": SCHEMA,
        "id": uuid.uuid4().hex[:12],
        "started": _iso(started),
        "finished": _iso(finished),
        "duration_s": round(finished - started, 3),
        "outcome": outcome_of(statuses),
        "exit_status": int(exit_status),
        "counts": dict(sorted(counts.items())),
        "git": git_info(rootdir),
        "host": platform.node(),
        "python": platform.python_version(),
        "qagate": __version__,
        "settings": dict(settings or {}),
        "results": [_clean(r) for r in results],
        "metrics": [_clean(m) for m in metrics],
    }
    label = label or os.environ.get("QAGATE_RUN_LABEL")
    if label:
        run["label"] = label
    return run


def append_run(path: str | os.PathLike[str], run: Mapping[str, Any]) -> Path:
    """Append ``run`` as one line. Never rewrites what is there: if the file's last line was
    torn by a crash, the new line starts on a line of its own."""
    path = Path(path)
    line = json.dumps(run, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        _lock(handle)
        try:
            handle.seek(0, os.SEEK_END)
            if handle.tell():
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    line = "\n" + line
            handle.write(line.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            _unlock(handle)
    return path


@dataclass
class History:
    """The runs of one history file, oldest first, and the line numbers it had to skip."""

    path: Path
    runs: list[dict[str, Any]]
    skipped: list[int] = field(default_factory=list)


def read_history(path: str | os.PathLike[str]) -> History:
    path = Path(path)
    if not path.is_file():
        raise QagateError("no run history here", path=path,
                          hint="run 'pytest quality_tests/' first (each run appends to "
                               ".qagate/history.jsonl), or pass --history with the file your runs write "
                               "(--qagate-history)")
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


def _clean(row: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe values: NaN and infinities (a failed timing, say) become null."""
    out = {}
    for key, value in row.items():
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            value = None
        out[key] = value
    return out


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


if sys.platform == "win32":  # pragma: no cover - appends of one line are not interleaved there either
    def _lock(handle: Any) -> None:
        pass

    def _unlock(handle: Any) -> None:
        pass
else:
    import fcntl

    def _lock(handle: Any) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)

    def _unlock(handle: Any) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
