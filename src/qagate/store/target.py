"""Where the run history lives: a JSON Lines file, an SQLite file, or any SQLAlchemy URL.

Standard library only (the settings parse ``--qagate-history`` at pytest start-up). A URL is kept
as a :class:`HistoryURL`, a string whose text is the URL with its password masked, so that every
message, repr or f-string that shows it is safe; only the store reads the real URL (``.url``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: The environment variable that names the history store (for CI secrets); it wins over the ini
#: file and the default, the command line wins over it.
ENV_VAR = "QAGATE_HISTORY_URL"

#: The default store, relative to the rootdir: an embedded SQLite database.
DEFAULT = ".qagate/history.db"

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


class HistoryURL(str):
    """A database URL whose text is masked (``postgresql://user:***@host/db``); ``.url`` is real."""

    url: str

    def __new__(cls, url: str) -> HistoryURL:
        """Keep ``url`` and show only its masked form."""
        self = super().__new__(cls, mask_url(url))
        self.url = url
        return self

    def __getnewargs__(self) -> tuple[str]:
        """Pickle the real URL (settings cross to xdist workers and multiprocessing)."""
        return (self.url,)

    def __repr__(self) -> str:
        """The masked text, never the password."""
        return f"HistoryURL({str.__repr__(self)})"


def is_url(text: str) -> bool:
    """Whether ``text`` is a URL (``scheme://...``) rather than a file path."""
    return bool(_SCHEME.match(text.strip()))


def is_jsonl(target: str | os.PathLike[str]) -> bool:
    """Whether the store is a JSON Lines file (the format before databases): a path ending in .jsonl."""
    return not isinstance(target, HistoryURL) and not is_url(str(target)) and str(target).endswith(".jsonl")


def mask_url(url: str) -> str:
    """``url`` with the password of its user part and any ``password=`` query value as ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unparsable URL>"
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key.lower() == "password" for key, _ in pairs):
            masked = [(k, "***" if k.lower() == "password" else v) for k, v in pairs]
            query = urlencode(masked, safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing to hide (urlunsplit would also drop sqlite:///'s empty host)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def resolve_history(text: str, base: Path) -> Path | HistoryURL:
    """A URL as it is (masked for display), a path resolved against ``base`` (``${VAR}``, ``~``)."""
    from qagate.argtypes import expand_path

    text = text.strip()
    if is_url(text):
        return HistoryURL(text)
    return expand_path(text, base)


def sqlalchemy_url(target: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL of a database store: a URL as given, a path as an SQLite file URL."""
    if isinstance(target, HistoryURL):
        return target.url
    text = os.fspath(target)
    if is_url(text):
        return text
    return "sqlite:///" + str(Path(text).expanduser().resolve())


def display(target: str | os.PathLike[str]) -> str:
    """The store as messages show it: a path, or a URL with its password masked."""
    if isinstance(target, HistoryURL):
        return str.__str__(target)
    text = os.fspath(target)
    return mask_url(text) if is_url(text) else text
