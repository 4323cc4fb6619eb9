"""Where the run history lives: a JSON Lines file, an SQLite file, or any SQLAlchemy URL.

Standard library only (the settings parse ``--qagate-history`` at pytest start-up). A URL is kept
as a :class:`HistoryURL`, a string whose text is the URL with its password masked, so that every
message, repr or f-string that shows it is safe; only the store reads the real URL (``.url``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from qagate.core.errors import QagateError

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
        return url  # nothing to hide
    if "://" in url:  # by hand: urlunsplit would drop sqlite:///'s empty host
        text = f"{parts.scheme}://{netloc}{parts.path}"
        return text + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


#: A URL inside any text (a command line, a message): its user part and query are masked.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]+")
#: ``NAME=value`` (or ``NAME: value``) where the name ends in a word for a secret
#: (``GITHUB_TOKEN=...``, ``password=...``, ``--db-password=...``; not ``tokenizer:``): the
#: value is masked up to a space, ``&``, ``;``, a quote or a comma.
_SECRET_PAIR = re.compile(
    r"(?i)(?P<key>\b[A-Za-z0-9_.\-]*(?:token|passwd|password|secret|api[_-]?key))"
    r"(?P<sep>=|:\s+)(?P<value>(?!\*\*\*)[^\s&;,\"']+)"
)
#: A mapping key that names a secret (``{"API_TOKEN": "..."}``): its string value is masked.
_SECRET_NAME = re.compile(r"(?i)(?:token|passwd|password|secret|api[_-]?key)$")
MASK = "***"


def mask_secrets(value: Any) -> Any:
    """``value`` with every credential masked: the one function every path that stores or shows a
    run's settings, command line, label or messages goes through (the history stores, JUnit
    properties, the Markdown summary, the dashboard, ``qagate history``, log lines).

    Masks URL passwords (``postgresql://user:***@host/db``), ``password=`` query values and
    ``NAME=value`` pairs whose name ends in TOKEN, PASSWORD, PASSWD, SECRET or
    API_KEY, case-insensitively, and the string value of a mapping key so named. Strings are
    masked; lists, tuples and mappings recursively; anything else is returned as it is. Masking
    twice changes nothing more.
    """
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, (int, float)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {
            (_mask_text(k) if isinstance(k, str) else k): (
                MASK if isinstance(v, str) and v and _is_secret_name(k) else mask_secrets(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):  # a command line: the word after ``--db-password`` is a secret too
        return [
            MASK if i and isinstance(v, str) and _is_secret_flag(value[i - 1]) else mask_secrets(v)
            for i, v in enumerate(value)
        ]
    if isinstance(value, tuple):
        return tuple(mask_secrets(v) for v in value)
    return value


def _is_secret_flag(word: object) -> bool:
    return isinstance(word, str) and word.startswith("-") and _is_secret_name(word)


def _is_secret_name(word: object) -> bool:
    """Whether a key or flag names a secret (``API_TOKEN``, ``--db-password``)."""
    if not isinstance(word, str) or not any(w in word.lower() for w in _SECRET_WORDS):
        return False
    return bool(_SECRET_NAME.search(word))


def _mask_text(text: str) -> str:
    if "=" not in text and ":" not in text:
        return text  # most keys and values: nothing that could hold a secret
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
    if ("=" in text or ":" in text) and any(word in text.lower() for word in _SECRET_WORDS):
        text = _SECRET_PAIR.sub(lambda m: f"{m.group('key')}{m.group('sep')}{MASK}", text)
    return text  # the common case (a node id, a rule, a path) costs two substring checks


_SECRET_WORDS = ("token", "passw", "secret", "key")


#: SQLAlchemy's own dialects and the modules their default driver needs (any one of them).
DIALECTS: dict[str, tuple[str, ...]] = {
    "sqlite": ("sqlite3",),
    "postgresql": ("psycopg", "psycopg2"),  # the store uses psycopg 3 when it is there
    "mysql": ("MySQLdb",),
    "mariadb": ("MySQLdb",),
    "oracle": ("oracledb", "cx_Oracle"),
    "mssql": ("pyodbc",),
}
#: ``dialect+driver``: the module each named driver needs.
DRIVERS = {
    "pysqlite": "sqlite3",
    "psycopg": "psycopg",
    "psycopg2": "psycopg2",
    "psycopg2cffi": "psycopg2cffi",
    "pg8000": "pg8000",
    "pymysql": "pymysql",
    "mysqldb": "MySQLdb",
    "mysqlconnector": "mysql",
    "mariadbconnector": "mariadb",
    "oracledb": "oracledb",
    "cx_oracle": "cx_Oracle",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
}
PIP_NAMES = {"MySQLdb": "mysqlclient", "cx_Oracle": "cx-Oracle", "mysql": "mysql-connector-python"}
ASYNC_DRIVERS = {"asyncpg", "aiosqlite", "aiomysql", "asyncmy", "psycopg_async"}
#: Schemes people write for a dialect SQLAlchemy spells otherwise.
ALIASES = {"postgres": "postgresql", "pgsql": "postgresql", "pg": "postgresql", "psql": "postgresql"}
ALIASES |= {"postgre": "postgresql", "sqlite3": "sqlite", "mssqlserver": "mssql"}
_ONE_SLASH = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]+):(?!//)")


def check_url(text: str) -> None:
    """Refuse a history URL that can never work, with one line and the fix: an unknown scheme
    (``postgres://``, ``htp://``), an async driver, a driver that is not installed. Standard
    library only (pytest start-up): third-party dialects are found through their entry points."""
    from importlib.util import find_spec

    scheme = text.strip().split("://", 1)[0]
    dialect, _, driver = scheme.lower().partition("+")
    example = "postgresql://USER@HOST/DB, sqlite:///PATH.db or a file path"
    if dialect not in DIALECTS:
        if _plugin_dialect(dialect, driver):
            return
        import difflib

        rest = text.strip().split("://", 1)[1]
        close = difflib.get_close_matches(dialect, list(DIALECTS), 1, 0.6)
        # a server URL (a host before the path) with an unknown scheme: most likely PostgreSQL
        server = "postgresql" if rest.split("/", 1)[0] else None
        guess = ALIASES.get(dialect) or (close[0] if close else server)
        fix = f"{guess}{'+' + driver if driver else ''}://{mask_url('x://' + rest)[4:]}" if guess else None
        raise QagateError(
            f"unknown database scheme {scheme + '://'!r}",
            hint=(f"did you mean {fix}? " if fix else "") + f"a history store is {example}",
        )
    if driver in ASYNC_DRIVERS:
        raise QagateError(
            f"{scheme}:// names an async driver, which the history store cannot use",
            hint=f"use {dialect}:// (for PostgreSQL: postgresql+psycopg://)",
        )
    modules = (DRIVERS[driver],) if driver in DRIVERS else () if driver else DIALECTS[dialect]
    if modules and not any(_installed(name, find_spec) for name in modules):
        install = (
            "pip install 'pytest-qagate[postgres]'"
            if dialect == "postgresql" and modules[0].startswith("psycopg")
            else f"pip install {PIP_NAMES.get(modules[0], modules[0])}"
        )
        raise QagateError(
            f"{scheme}:// needs the database driver {' or '.join(modules)}, which is not installed",
            hint=install,
        )


def _installed(module: str, find_spec: Any) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _plugin_dialect(dialect: str, driver: str) -> bool:
    """Whether an installed package registers ``dialect`` (entry points ``sqlalchemy.dialects``)."""
    from importlib.metadata import entry_points

    names = {ep.name.lower() for ep in entry_points(group="sqlalchemy.dialects")}
    return dialect in names or f"{dialect}.{driver}" in names


def resolve_history(text: str, base: Path) -> Path | HistoryURL:
    """A URL as it is (masked for display; an SQLite URL's relative path resolved against ``base``,
    like a path), a path resolved against ``base`` (``${VAR}``, ``~``).
    A URL that can never work (see :func:`check_url`) and ``sqlite:/path`` (one slash: not a URL,
    and as a path it would make a folder named ``sqlite:``) are a QagateError."""
    from qagate.core.argtypes import expand_path

    text = text.strip()
    if is_url(text):
        check_url(text)
        file = sqlite_file(text)
        if file is not None and not file.is_absolute():  # sqlite:///rel.db: where it was written
            scheme, _, rest = text.partition("://")
            query = rest.partition("?")[2]
            text = f"{scheme}:///{(base / file).resolve()}" + (f"?{query}" if query else "")
        return HistoryURL(text)
    one_slash = _ONE_SLASH.match(text)
    if one_slash:
        dialect = one_slash.group("scheme").lower().partition("+")[0]
        if dialect in DIALECTS or dialect in ALIASES:
            rest = text[one_slash.end() :].lstrip("/")
            raise QagateError(
                f"{mask_url(text)!r} is not a database URL (a URL has two slashes after the scheme)",
                hint=f"write sqlite:////{rest} for the absolute path /{rest} (four slashes), "
                f"sqlite:///{rest} for a path relative to the current folder, or the file path alone"
                if dialect.startswith("sqlite")
                else f"write {ALIASES.get(dialect, dialect)}://{rest}",
            )
    return expand_path(text, base)


def sqlalchemy_url(target: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL of a database store: a URL as given, a path as an SQLite file URL."""
    if isinstance(target, HistoryURL):
        return target.url
    text = os.fspath(target)
    if is_url(text):
        return text
    return "sqlite:///" + str(Path(text).expanduser().resolve())


def sqlite_file(target: str | os.PathLike[str]) -> Path | None:
    """The file of an SQLite store (a path, or a ``sqlite:///`` URL); None for any other store and
    for an in-memory database."""
    text = target.url if isinstance(target, HistoryURL) else os.fspath(target)
    if not is_url(text):
        return Path(text)
    scheme, _, rest = text.strip().partition("://")
    if scheme.lower().partition("+")[0] != "sqlite":
        return None
    database = rest.partition("/")[2].partition("?")[0]  # sqlite:///rel.db, sqlite:////abs.db
    return Path(database) if database and database != ":memory:" else None


def display(target: str | os.PathLike[str]) -> str:
    """The store as messages show it: a path, or a URL with its password masked."""
    if isinstance(target, HistoryURL):
        return str.__str__(target)
    text = os.fspath(target)
    return mask_url(text) if is_url(text) else text
