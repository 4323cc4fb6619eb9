"""The outbox: runs the history store could not take, kept until a later run or ``qagate history
push`` delivers them, so that no run is lost.

A run that cannot be written (the server down, the store locked past its timeout, a schema too
new) is written atomically, secrets masked, to ``<rootdir>/.qagate/outbox/<started>-<id>.json``.
The next run that reaches the store delivers the outbox before its own run, oldest first, in one
transaction that skips the ids the store already has (so a delivery interrupted after its commit
and before the files were removed adds nothing the second time), then removes the files.
``qagate history push [FILE...]`` does the same from the command line, and also takes files kept
elsewhere (a CI job's outbox saved as an artefact). A file that is not a run (truncated, edited)
is moved aside to ``.qagate/outbox/rejected/`` with one line naming it; the others still go.
Standard library only at import time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qagate.store.target import display, mask_secrets

#: The outbox, relative to the rootdir.
FOLDER = Path(".qagate") / "outbox"
#: Where files that are not runs are moved, inside the outbox.
REJECTED = "rejected"


def outbox_dir(rootdir: str | os.PathLike[str]) -> Path:
    """The outbox folder of a project."""
    return Path(rootdir) / FOLDER


def pending(rootdir: str | os.PathLike[str]) -> list[Path]:
    """The runs waiting in the outbox, oldest first (their names start with the start time)."""
    folder = outbox_dir(rootdir)
    try:
        return sorted(p for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
    except OSError:  # no outbox
        return []


def keep(run: Mapping[str, Any], rootdir: str | os.PathLike[str]) -> Path:
    """Write ``run`` (masked) to the outbox atomically; its path. An OSError if it cannot."""
    from qagate.core.files import atomic_write_text

    stamp = "".join(ch for ch in str(run.get("started") or "") if ch.isalnum()) or "unknown"
    # the start time has whole seconds: the time of keeping (ns) orders two runs of one second
    path = outbox_dir(rootdir) / f"{stamp}-{time.time_ns():020d}-{run.get('id')}.json"
    text = json.dumps(mask_secrets(run), sort_keys=True, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n")
    return path


@dataclass
class Delivery:
    """What a delivery did: runs added, runs the store already had, files moved aside (with why)."""

    added: int = 0
    already: int = 0
    delivered: list[Path] = field(default_factory=list)
    rejected: list[tuple[Path, Path | None, str]] = field(default_factory=list)

    def lines(self, target: str | os.PathLike[str], shown: Any = str) -> list[str]:
        """One line per rejected file, and one for what was delivered (nothing when nothing was)."""
        out = [
            f"WARNING: {shown(path)}: not a qagate run ({why}); "
            + (f"moved aside to {shown(moved)}" if moved else "left where it is")
            for path, moved, why in self.rejected
        ]
        if self.delivered:
            out.append(
                f"delivered {len(self.delivered)} run(s) from the outbox to {shown(target)} "
                f"({self.added} added, {self.already} already there)"
            )
        return out


def load(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The run in ``path``, or None and why it is not one."""
    from qagate.store.history import run_problem

    try:
        text = path.read_text(encoding="utf-8")
        run = json.loads(text)
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except (json.JSONDecodeError, RecursionError, ValueError):
        return None, "not JSON: truncated or edited"
    except OSError as exc:
        return None, f"cannot read it: {exc.strerror or exc}"
    problem = run_problem(run)
    if problem is None and not (isinstance(run.get("id"), str) and run["id"]):
        problem = "it has no run id"
    return (None, problem) if problem else (run, "")


def deliver(target: str | os.PathLike[str], files: Iterable[Path], *, outbox: Path | None = None) -> Delivery:
    """Write the runs in ``files`` to the store ``target``, oldest first, in one transaction that
    skips the ids it has; files inside ``outbox`` are removed once the store has them, and those
    that are not runs are moved to ``outbox/rejected/``. An OSError (masked) when the store cannot
    take them: then every file stays where it is."""
    from qagate.store.history import store_runs

    result = Delivery()
    runs: list[tuple[dict[str, Any], Path]] = []
    for path in files:
        run, why = load(path)
        if run is None:
            result.rejected.append((path, _move_aside(path, outbox), why))
        else:
            runs.append((run, path))
    if not runs:
        return result
    runs.sort(key=lambda pair: (str(pair[0].get("started") or ""), pair[1].name))
    result.added = store_runs(target, [run for run, _ in runs])
    result.already = len(runs) - result.added
    result.delivered = [path for _, path in runs]
    for path in result.delivered:
        if outbox is not None and _inside(path, outbox):
            with contextlib.suppress(FileNotFoundError):  # another process delivered it too
                path.unlink()
    return result


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().parent == folder.resolve()
    except OSError:
        return False


def _move_aside(path: Path, outbox: Path | None) -> Path | None:
    """Move a file of the outbox that is not a run to ``outbox/rejected/`` (others stay)."""
    if outbox is None or not _inside(path, outbox):
        return None
    target = outbox / REJECTED / path.name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    except OSError:
        return None
    return target


@dataclass
class Recorded:
    """The outcome of :func:`record`: whether the run reached the store, and the lines to show
    (those starting ``WARNING`` must show at every verbosity) and the outbox file it went to."""

    written: bool
    lines: list[str]
    outbox_file: Path | None = None


def record(
    target: str | os.PathLike[str],
    run: Mapping[str, Any],
    rootdir: str | os.PathLike[str],
    *,
    shown: Any = str,
) -> Recorded:
    """Deliver the outbox, then append ``run``; when the store cannot take it, keep ``run`` in the
    outbox. ``shown``: how a path is written in the lines (relative to the rootdir, say)."""
    from qagate.store.history import append_run

    folder = outbox_dir(rootdir)
    lines: list[str] = []
    try:
        waiting = pending(rootdir)
        if waiting:
            delivery = deliver(target, waiting, outbox=folder)
            lines += delivery.lines(target, shown)
        append_run(target, run)
    except OSError as exc:
        reason = str(exc.strerror or exc)
        reason = re.sub(r"^[A-Za-z][\w+.\-]*://\S*: ", "", reason)  # the store's errors name it already
        try:
            kept = keep(run, rootdir)
        except OSError as again:
            lines.append(
                f"WARNING: run history not written: run {run.get('id')} ({run.get('outcome')}) could not "
                f"be written to {display(target)}: {reason}; and not kept in the outbox either: "
                f"{again.strerror or again}"
            )
            return Recorded(False, lines)
        left = len(pending(rootdir))
        lines.append(
            f"WARNING: run history not written: run {run.get('id')} ({run.get('outcome')}) could not be "
            f"written to {display(target)}: {reason}; kept in {shown(kept)} ({left} run(s) waiting): "
            "'qagate history push' delivers it, and so does the next run that reaches the store"
        )
        return Recorded(False, lines, kept)
    lines.append(f"run {run.get('id')} ({run.get('outcome')}) appended to {shown(target)}")
    return Recorded(True, lines)
