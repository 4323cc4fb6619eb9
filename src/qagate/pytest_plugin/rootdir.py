"""Path options written as two arguments (``--qagate-history /ci/history.db``) must not move the rootdir.

pytest picks the rootdir and the ini file before it loads plugins, so at that moment
``--qagate-history`` is an unknown option and the path after it looks like a test path: once
that path exists it becomes a rootdir candidate, the rootdir moves to a common parent, the ini
file is no longer read, and the run fails for a reason far from the cause ("models folder does
not exist"). The ``=`` form (``--qagate-history=/ci/history.db``) is one argument that pytest
skips as an option. :func:`check_path_options` finds the two-argument form that moves (or, for
the history file the run itself creates, would move) the rootdir or the ini file, and says what
to write instead; every other use is left alone.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qagate.core.errors import quote


def check_path_options(config: Any, flags: Sequence[str], creates: Sequence[str] = ()) -> str | None:
    """Why the run's path options would move pytest's rootdir (a one-line message), or None.

    ``flags`` are the options that take a path; ``creates`` those whose file the run creates
    (the history), which count as existing already, so the first run is refused like the next.
    """
    args = [str(arg) for arg in config.invocation_params.args]
    addopts = os.environ.get("PYTEST_ADDOPTS", "")
    if addopts.strip():
        import shlex

        with contextlib.suppress(ValueError):  # pytest itself reports a malformed PYTEST_ADDOPTS
            args = shlex.split(addopts) + args
    invocation = Path(config.invocation_params.dir)
    found: list[tuple[str, str, Path]] = []
    for flag, value in zip(args, args[1:]):
        if flag not in flags or value.startswith("-"):
            continue
        candidate = _candidate(value, invocation, creates=flag in creates)
        if candidate is not None:
            found.append((flag, value, candidate))
    if not found:
        return None
    positional = [str(a) for a in config.args] if config.args_source == config.ArgsSource.ARGS else []
    before = _setup(config, positional)
    moved = None
    after = before
    for item in found:
        if before is None:  # pytest changed its private API: judge by the path alone
            if not _inside(item[2], invocation):
                moved = item
                break
            continue
        after = _setup(config, [*positional, str(item[2])])
        if after != before:
            moved = item
            break
    if moved is None:
        return None
    flag, value, _ = moved
    shown = value if value.isprintable() and len(value) <= 200 else quote(value, 200)
    detail = ""
    if before is not None and after is not None:
        if after[0] != before[0]:
            detail += f" from {before[0]} to {after[0]}"
        if before[1] is not None and after[1] != before[1]:
            detail += f", and {before[1].name} would not be read"
    return (
        f"write {flag}={shown} (one argument, with '='), not {flag} {shown}: pytest takes a separate "
        f"path for a test path when it picks the rootdir, before qagate's options are known, so the "
        f"rootdir would move{detail}"
    )


def _candidate(value: str, invocation: Path, *, creates: bool) -> Path | None:
    """The folder pytest would consider for ``value`` (now, or once the run has created it)."""
    try:
        path = Path(os.path.expanduser(value))
        path = path if path.is_absolute() else invocation / path
        if path.exists():
            return path
        if creates and path.parent.is_dir() and path.parent != invocation:
            return path.parent
    except (OSError, ValueError):
        return None
    return None


def _setup(config: Any, args: list[str]) -> tuple[Path, Path | None] | None:
    """(rootdir, ini file) as pytest would determine them from these positional arguments."""
    try:
        from _pytest.config.findpaths import determine_setup

        options = config.option
        offered: dict[str, Any] = {
            "inifile": getattr(options, "inifilename", None),
            "override_ini": getattr(options, "override_ini", None),
            "args": args,
            "rootdir_cmd_arg": getattr(options, "rootdir", None) or None,
            "invocation_dir": Path(config.invocation_params.dir),
            "config": None,
        }
        accepted = inspect.signature(determine_setup).parameters
        if not {"args", "invocation_dir"} <= set(accepted):
            return None
        result = determine_setup(**{k: v for k, v in offered.items() if k in accepted})
        return Path(result[0]), (Path(result[1]) if result[1] is not None else None)
    except Exception:  # a private function: never let it stop a run
        return None


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
