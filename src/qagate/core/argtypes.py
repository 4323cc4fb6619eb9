"""Argument types shared by the CLI, the pytest options and the YAML loaders.

Each parser takes the text a user wrote and returns the value, or raises
``argparse.ArgumentTypeError`` with one message (argparse shows it for the CLI, settings prefix
the ini key, YAML loaders the file and line). Standard library only: imported at start-up.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qagate.core.errors import QagateError, quote
from qagate.core.files import path_problem

UNDECIDED_CHOICES = ("fail", "skip")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
# Words people write for a device; difflib alone would take "gpu" for "cpu".
DEVICE_ALIASES = {
    "gpu": "cuda",
    "cuda0": "cuda:0",
    "gpu0": "cuda:0",
    "gpu:0": "cuda:0",
    "nvidia": "cuda",
    "metal": "mps",
    "apple": "mps",
    "default": "auto",
}

_VAR_RE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand_vars(text: str) -> str:
    """``${NAME}`` and ``${NAME:-default}`` from the environment (as in a shell)."""

    def replace(match: re.Match) -> str:
        value = os.environ.get(match["name"])
        if value:
            return value
        if match["default"] is not None:
            return match["default"]
        raise QagateError(
            f"environment variable {match['name']} is not set (write "
            f"${{{match['name']}:-default}} to give a default)"
        )

    return _VAR_RE.sub(replace, text)


def expand_user(text: str) -> str:
    """``~`` and ``~user`` expanded as a shell would; a user without a home is a QagateError."""
    expanded = os.path.expanduser(text)  # leaves '~nosuchuser/...' as it is
    if expanded.startswith("~"):
        first = expanded.split("/", 1)[0].split(os.sep, 1)[0]
        raise QagateError(
            f"cannot expand {quote(first, 40)} in {quote(text)}: no such user, or no home directory",
            hint="write the full path, or ./~name for a file whose name starts with '~'",
        )
    return expanded


def expand_path(text: str, base: Path) -> Path:
    """``${VAR}`` and ``~`` expanded, then resolved against ``base`` (where the value was written).

    The one place a path a user wrote (an option, an ini key, a YAML value) becomes a ``Path``:
    an unknown ``~user``, a NUL byte, an over-long name and a symbolic link loop are one-line
    QagateErrors here, never a traceback later.
    """
    expanded = expand_user(expand_vars(str(text)))
    problem = path_problem(expanded)
    if problem is not None:
        raise QagateError(f"{problem}: {quote(str(text))}")
    try:
        return (Path(base) / expanded).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        loop = "loop" in str(exc).lower()
        why = "a symbolic link loop" if loop else getattr(exc, "strerror", None) or type(exc).__name__
        raise QagateError(f"cannot resolve {quote(str(text))}: {why}") from None


def did_you_mean(word: str, choices: Any, aliases: Mapping[str, str] | None = None) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string.

    A choice equal but for case wins, then ``aliases`` (lower-case word -> choice, for names
    that are not spelled alike, such as ``em`` for ``exact_match``), then difflib's closest.
    """
    import difflib

    if len(str(word)) > 100:  # nobody mistypes that much; difflib would take its time
        return ""
    names = [str(c) for c in choices]
    lowered = str(word).strip().lower()
    folded = [name for name in names if name.lower() == lowered and name != word]
    if folded:
        return f" (did you mean {folded[0]!r}?)"
    target = {key.lower(): value for key, value in (aliases or {}).items()}.get(lowered)
    if target is not None and target != word:
        return f" (did you mean {target!r}?)"
    close = difflib.get_close_matches(str(word), names, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_positive_int(text: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {quote(text)}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {quote(text)}")
    return value


def parse_int(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {quote(text)}") from None


def parse_articles(text: str) -> tuple[int, int]:
    """``38-47`` (inclusive, articles in file order) or a single article ``12``."""
    match = re.fullmatch(r"\s*(\d{1,18})\s*(?:-\s*(\d{1,18})\s*)?", str(text))
    if not match:
        raise argparse.ArgumentTypeError(
            f"expected an article range such as 38-47 (inclusive), got {quote(text)}"
        )
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    if last < first:
        raise argparse.ArgumentTypeError(f"article range {quote(text)} ends before it starts")
    return first, last


def parse_device(text: str) -> str:
    """One of :data:`DEVICE_CHOICES` (``cuda:N`` with a number); a typo gets a suggestion."""
    value = str(text).strip().lower()
    if value in DEVICE_CHOICES or re.fullmatch(r"cuda:\d+", value):
        return value
    hint = did_you_mean(value, [c for c in DEVICE_CHOICES if c != "cuda:N"], DEVICE_ALIASES)
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(DEVICE_CHOICES)}; got {quote(text)}{hint}")


def parse_level(text: str) -> float:
    """A confidence level strictly between 0 and 1 (``--qagate-confidence 0.95``)."""
    return _strictly_between_0_and_1(text, "a confidence level", "0.95")


def parse_alpha(text: str) -> float:
    """A family error rate strictly between 0 and 1 (``--qagate-family-alpha 0.05``)."""
    return _strictly_between_0_and_1(text, "a family error rate", "0.05")


def _strictly_between_0_and_1(text: str, what: str, example: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"expected {what} strictly between 0 and 1 (e.g. {example}), got {quote(text)}"
        )
    return value


def parse_undecided(text: str) -> str:
    value = str(text).strip().lower()
    if value not in UNDECIDED_CHOICES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(UNDECIDED_CHOICES)}; got {quote(text)}")
    return value


def parse_dataset(text: str) -> str:
    value = str(text).strip()
    if not value:
        raise argparse.ArgumentTypeError(
            "expected 'sample', 'hf:<hub id>' or a path to a dataset file, got an empty value"
        )
    if value.startswith("hf:") and len(value) == 3:
        raise argparse.ArgumentTypeError("'hf:' needs a hub id, e.g. hf:squad")
    return value


def parse_text(text: str) -> str:
    value = str(text).strip()
    if not value:
        raise argparse.ArgumentTypeError("expected a value, got an empty string")
    return value


def parse_bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {quote(text)}")


def parse_positive_float(text: str) -> float:
    """A number greater than 0, such as a time budget in seconds."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {quote(text)}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {quote(text)}")
    return value


def parse_non_negative_float(text: str) -> float:
    """A finite number >= 0, such as a loss weight where 0 means off."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {quote(text)}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {quote(text)}")
    return value
