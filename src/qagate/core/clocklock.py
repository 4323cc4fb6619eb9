"""One clock at a time across processes: a timing holds the lock alone, heavy work shares it.

pytest-xdist workers (or several CI jobs on one machine) would otherwise time a model while
another process computes predictions, and each would slow the other's clock. The lock file is
named by the environment variable ``QAGATE_TIMING_LOCK`` (the xdist controller sets it for its
workers; set it yourself to serialise separate runs); without it both locks do nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

ENV = "QAGATE_TIMING_LOCK"

_state = threading.local()


def lock_file() -> Path | None:
    """The clock's lock file (``$QAGATE_TIMING_LOCK``), or None when timings need no lock."""
    value = os.environ.get(ENV, "").strip()
    return Path(value) if value else None


@contextlib.contextmanager
def timing_alone() -> Iterator[None]:
    """Held around a timing: waits until no other process times or computes, then holds both off."""
    with _held(exclusive=True):
        yield


@contextlib.contextmanager
def working() -> Iterator[None]:
    """Held around heavy work (every model's predict, BERTScore): many at once, never during a
    timing; a timing's own predict calls run inside its hold."""
    with _held(exclusive=False):
        yield


@contextlib.contextmanager
def _held(*, exclusive: bool) -> Iterator[None]:
    """Take the lock once per thread; nested holds (a timing inside heavy work) reuse it."""
    path = lock_file()
    depth: int = getattr(_state, "depth", 0)
    if path is None or depth:
        _state.depth = depth + 1
        try:
            yield
        finally:
            _state.depth -= 1
        return
    with _file_lock(path, exclusive=exclusive):
        _state.depth = 1
        try:
            yield
        finally:
            _state.depth = 0


@contextlib.contextmanager
def _file_lock(path: Path, *, exclusive: bool) -> Iterator[None]:
    """``flock`` shared or exclusive (released by the OS if the process dies); where there is no
    ``fcntl`` (Windows) timings still exclude each other, but heavy work does not wait for them."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        if not exclusive:
            yield
            return
        from filelock import FileLock

        with FileLock(str(path)):
            yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    turnstile = os.open(f"{path}.turn", os.O_RDWR | os.O_CREAT, 0o666)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        # A waiting timing holds the turnstile, so new heavy work queues behind it instead of
        # keeping the shared lock busy forever (flock alone would let the timing starve).
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        if not exclusive:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        fcntl.flock(turnstile, fcntl.LOCK_UN)
        yield
    finally:
        os.close(fd)  # closing a descriptor releases its lock
        os.close(turnstile)
