"""Exact match and F1 exactly as MLQA's official evaluation script (``mlqa_evaluation_v1.py``).

Normalisation, in the script's order: lower-case; drop every character whose Unicode category
starts with "P" and every ASCII punctuation character (``string.punctuation`` adds symbols such
as ``$+<=>^`|~``); drop the answer language's articles (en: a/an/the; es: un una unos unas el
la los las; de: ein eine einen einem eines einer der die das den dem des; vi: của là cái chiếc
những; ar: every "ال", as the script's regex does; zh and hi: none); split on white space, except
for Chinese, where every CJK character (U+4E00..U+9FA5) is a token of its own. EM and F1 are the
maxima over the references; a missing prediction scores 0; totals are ``100 * sum / questions``.

Standard library only.
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from qagate.core.errors import QagateError
from qagate.data.mlqa import LANGUAGES, check_language

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset, QAExample
    from qagate.scoring.scores import Scores

_WHITESPACE_LANGS = ("en", "es", "hi", "vi", "de", "ar")
_ARTICLES = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "ar": re.compile(r"\sال^|ال"),  # sic: the official pattern removes every "ال"
}
_CJK = re.compile(r"[\u4e00-\u9fa5]")


@lru_cache(maxsize=1)
def punctuation() -> frozenset[str]:
    """The script's PUNCT: every Unicode "P*" character plus ``string.punctuation``."""
    chars = {chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")}
    return frozenset(chars | set(string.punctuation))


def _mixed_segmentation(text: str, punct: frozenset[str]) -> list[str]:
    """The script's Chinese tokenisation: each CJK character (or punctuation) alone, the rest by spaces."""
    out: list[str] = []
    pending = ""
    for char in text:
        if _CJK.search(char) or char in punct:
            if pending:
                out.extend(pending.split())
                pending = ""
            out.append(char)
        else:
            pending += char
    if pending:
        out.extend(pending.split())
    return out


def normalize_answer(s: str, language: str) -> str:
    """Lower-case, drop punctuation, drop articles, re-join tokens (the official order)."""
    punct = punctuation()
    text = "".join(ch for ch in s.lower() if ch not in punct)
    articles = _ARTICLES.get(language)
    if articles is not None:
        text = articles.sub(" ", text)
    if language in _WHITESPACE_LANGS:
        tokens = text.split()
    elif language == "zh":
        tokens = _mixed_segmentation(text, punct)
    else:
        raise QagateError(
            f"unknown MLQA language {language!r}", hint=f"MLQA languages: {', '.join(LANGUAGES)}"
        )
    return " ".join(t for t in tokens if t.strip() != "")


def exact_match(prediction: str, ground_truths: Sequence[str], language: str) -> float:
    """1.0 when the normalised prediction equals a normalised reference, else 0.0."""
    pred = normalize_answer(prediction, language)
    return 1.0 if any(pred == normalize_answer(g, language) for g in ground_truths) else 0.0


def f1(prediction: str, ground_truths: Sequence[str], language: str) -> float:
    """Token-bag F1 against the best reference, in [0, 1]."""
    pred_tokens = normalize_answer(prediction, language).split()
    best = 0.0
    for gold in ground_truths:
        gold_tokens = normalize_answer(gold, language).split()
        same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
        if same == 0:
            continue
        precision = 1.0 * same / len(pred_tokens)
        recall = 1.0 * same / len(gold_tokens)
        best = max(best, (2 * precision * recall) / (precision + recall))
    return best


def score(dataset: "Dataset | Sequence[QAExample]", answers: Mapping[str, str], language: str) -> "Scores":
    """Score ``answers`` on an MLQA dataset with the answer language's normalisation."""
    from qagate.scoring.scores import Scores

    check_language(language)
    per_em: dict[str, float] = {}
    per_f1: dict[str, float] = {}
    missing: list[str] = []
    examples = list(dataset)
    for ex in examples:
        prediction = answers.get(ex.id)
        if prediction is None:
            missing.append(ex.id)
            per_em[ex.id] = per_f1[ex.id] = 0.0
            continue
        if not isinstance(prediction, str):
            raise TypeError(f"prediction for {ex.id!r} is {type(prediction).__name__}, not str")
        per_em[ex.id] = exact_match(prediction, ex.answers, language)
        per_f1[ex.id] = f1(prediction, ex.answers, language)
    total = len(examples)
    known = {ex.id for ex in examples}
    return Scores(
        exact_match=100.0 * sum(per_em.values()) / total if total else 0.0,
        f1=100.0 * sum(per_f1.values()) / total if total else 0.0,
        total=total,
        answered=total - len(missing),
        missing=missing,
        unknown_ids=[qid for qid in answers if qid not in known],
        per_question_em=per_em,
        per_question_f1=per_f1,
    )
