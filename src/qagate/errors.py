"""The one exception type that user-facing front ends turn into a one-line message."""

from __future__ import annotations


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
            parts.append(str(path))
        if item is not None:
            parts.append(str(item))
        prefix = ": ".join(parts)
        text = f"{prefix}: {message}" if prefix else message
        if hint:
            text = f"{text} ({hint})"
        super().__init__(text)
        self.path = path
        self.item = item
        self.hint = hint
