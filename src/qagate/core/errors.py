"""The one exception type that user-facing front ends turn into a one-line message."""

from __future__ import annotations

import reprlib

#: The longest message a QagateError carries: whatever a user's file holds, the line stays short.
MAX_MESSAGE = 2000
#: The longest rendering of one user value (or path) inside a message.
MAX_QUOTE = 80

_REPR = reprlib.Repr()
_REPR.maxstring = MAX_QUOTE
_REPR.maxother = MAX_QUOTE
_REPR.maxlong = 40
_REPR.maxlevel = 2
for _name in ("maxlist", "maxtuple", "maxdict", "maxset", "maxfrozenset", "maxdeque"):
    setattr(_REPR, _name, 4)


def quote(value: object, limit: int = MAX_QUOTE) -> str:
    """``repr(value)`` bounded: at most ``limit`` characters, however long or deeply nested the value.

    Every value a message echoes from a user's file goes through here, so that a long string, a
    YAML alias bomb or a 5,000-digit number gives a short line instead of megabytes (or a crash).
    """
    try:
        text = _REPR.repr(value)
    except Exception:  # e.g. an int too long for str(); a repr that raises
        if isinstance(value, int):
            text = f"<an integer of {value.bit_length()} bits>"
        else:
            text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = text[: max(limit - 3, 1)] + "..."
    return text


def _shown_path(path: object) -> str:
    """A path or location as text, quoted when it is long or holds control characters."""
    text = str(path)
    return text if len(text) <= 4 * MAX_QUOTE and text.isprintable() else quote(text, 4 * MAX_QUOTE)


def _bounded(text: str) -> str:
    """One line of at most :data:`MAX_MESSAGE` characters (the head and the tail, where the fix is)."""
    if len(text) <= MAX_MESSAGE:
        return text
    tail = MAX_MESSAGE // 4
    return f"{text[: MAX_MESSAGE - tail - 5]} ... {text[-tail:]}"


class QagateError(Exception):
    """A problem with the user's input or set-up.

    The message is one line that names the file (and item) at fault and, where possible, the
    fix. Front ends (the ``qagate`` command, the pytest plugin) print it without a traceback.
    """

    def __init__(
        self, message: str, *, path: object | None = None, item: object | None = None, hint: str | None = None
    ) -> None:
        parts = []
        if path is not None:
            parts.append(_shown_path(path))
        if item is not None:
            parts.append(_shown_path(item))
        prefix = ": ".join(parts)
        text = f"{prefix}: {message}" if prefix else message
        if hint:
            text = f"{text} ({hint})"
        super().__init__(_bounded(text))
        self.path = path
        self.item = item
        self.hint = hint
