"""Argument types shared by the CLI, the pytest options and the YAML loaders."""

from __future__ import annotations

import os
import re
from typing import Any

from qagate.errors import QagateError

_VAR_RE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand_vars(text: str) -> str:
    """``${NAME}`` and ``${NAME:-default}`` from the environment (as in a shell)."""
    def replace(match: re.Match) -> str:
        value = os.environ.get(match["name"])
        if value:
            return value
        if match["default"] is not None:
            return match["default"]
        raise QagateError(f"environment variable {match['name']} is not set (write "
                          f"${{{match['name']}:-default}} to give a default)")
    return _VAR_RE.sub(replace, text)


def did_you_mean(word: str, choices: Any) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
