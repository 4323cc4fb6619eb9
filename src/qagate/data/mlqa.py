"""MLQA files: which answer language a file holds, from its name or an explicit choice.

MLQA ships SQuAD-format JSON, one file per (context, question) language pair, named like
``dev-context-de-question-es.json``; answers are spans of the context, so the context's language
is the answer language that picks the scoring normalisation. Standard library only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from qagate.core.errors import QagateError

LANGUAGES = ("ar", "de", "en", "es", "hi", "vi", "zh")
FILE_PATTERN = re.compile(r"^(?:dev|test)-context-([a-z]{2})-question-([a-z]{2})\.json$")


def check_language(language: str, path: object = None) -> str:
    """``language`` when MLQA's official script knows it, else a one-line error naming the choices."""
    if language not in LANGUAGES:
        raise QagateError(
            f"unknown MLQA language {language!r}", path=path, hint=f"MLQA languages: {', '.join(LANGUAGES)}"
        )
    return language


def language_of(path: str | os.PathLike) -> str | None:
    """The context (answer) language of an MLQA file named ``{dev,test}-context-XX-question-YY.json``."""
    match = FILE_PATTERN.match(Path(path).name)
    if match is None:
        return None
    return check_language(match.group(1), path)
