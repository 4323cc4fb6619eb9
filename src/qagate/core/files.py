"""Reading the files users name, and writing files so that a killed run never leaves half of one.

Reading: :func:`read_user_bytes` / :func:`read_user_text` / :func:`check_user_file` turn every way
a named file can be unusable (missing, a dangling or looping symbolic link, a directory, a NUL
byte or an over-long name in the path, not UTF-8) into one :class:`~qagate.core.errors.QagateError`
that names it. Writing: :func:`atomic_write_text` / :func:`atomic_write_bytes` (baselines,
caches, outputs).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from qagate.core.errors import QagateError, quote

#: The longest file name (one path component) in bytes on the usual file systems, and path.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096


def path_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot name a file on any system (a NUL byte, an over-long name), or None."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        return None
    if "\0" in text:
        return "the path contains a NUL byte"
    try:
        encoded = os.fsencode(text)
    except UnicodeEncodeError:
        return "the path is not valid text (it holds a lone surrogate escape)"
    if len(encoded) > MAX_PATH_BYTES:
        return f"the path is {len(encoded)} bytes long (at most {MAX_PATH_BYTES})"
    for part in encoded.split(b"/"):
        if len(part) > MAX_NAME_BYTES:
            shown = quote(os.fsdecode(part), 40)
            return f"the name {shown} is {len(part)} bytes long (at most {MAX_NAME_BYTES} per name)"
    return None


def check_user_path(path: str | os.PathLike, what: str = "path") -> None:
    """Raise a one-line QagateError when ``path`` cannot name a file at all (see :func:`path_problem`)."""
    problem = path_problem(path)
    if problem is not None:
        raise QagateError(_what(what, problem), path=quote(os.fspath(path), 120))


def file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a readable regular file (missing, a dangling or looping symbolic link,
    a directory, a bad name), or None when it is one."""
    problem = path_problem(path)
    if problem is not None:
        return problem
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return _os_problem(exc, path)
    if stat.S_ISDIR(mode):
        return "is a directory, expected a file"
    return None


def check_user_file(path: str | os.PathLike, what: str = "file") -> None:
    """Raise a one-line QagateError naming ``path`` when it is not a readable regular file."""
    problem = path_problem(path)
    if problem is not None:  # the path itself is the problem: show a bounded form of it
        raise QagateError(_what(what, problem), path=quote(os.fspath(path), 120))
    problem = file_problem(path)
    if problem is not None:
        raise QagateError(_what(what, problem), path=path)


def read_user_bytes(path: str | os.PathLike, what: str = "file") -> bytes:
    """The bytes of a file a user named; every way it can be unreadable is one QagateError."""
    problem = path_problem(path)
    if problem is not None:
        raise QagateError(_what(what, problem), path=quote(os.fspath(path), 120))
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise QagateError(_what(what, _os_problem(exc, path)), path=path) from None


def read_user_text(path: str | os.PathLike, what: str = "file") -> str:
    """The UTF-8 text of a file a user named (a byte-order mark is dropped); one QagateError else."""
    raw = read_user_bytes(path, what)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise QagateError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            path=path,
            hint="save the file as UTF-8",
        ) from None


def _what(what: str, problem: str) -> str:
    if what == "file":
        return problem
    return f"cannot read {what}: {problem.removeprefix('cannot read: ')}"


def _os_problem(exc: OSError, path: str | os.PathLike) -> str:
    """An OSError from opening ``path`` in words (a symbolic link's target is named)."""
    if exc.errno == errno.ENOENT:
        with contextlib.suppress(OSError):
            if os.path.islink(path):
                return (
                    f"is a symbolic link to {quote(os.readlink(os.fspath(path)), 120)}, which does not exist"
                )
        return "no such file"
    if exc.errno == errno.EISDIR:
        return "is a directory, expected a file"
    if exc.errno == errno.ELOOP:
        return "is a symbolic link loop (a link that leads back to itself)"
    if exc.errno == errno.ENAMETOOLONG:
        return f"a name in the path is too long (at most {MAX_NAME_BYTES} bytes)"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    return f"cannot read: {exc.strerror or exc}"


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` so that readers see the old file or the new one, never half of one."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` atomically, with the permissions a plain ``open`` would give.

    The bytes go to a temporary file in the same folder, are flushed to disk, and replace the
    target in one ``os.replace``; on any error the temporary file is removed. The temporary
    file's private 0600 mode is widened to what the umask allows (usually 0644), so files
    written for people to open (dashboards, model cards) are readable like any other.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
