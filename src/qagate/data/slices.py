"""Slice labels: which kind of question each one is, computed offline and deterministically.

Every question gets four built-in labels (rule-based, standard library only, no model):

- ``question``: the first wh-word of the question: ``what``, ``which``, ``who`` (also whom,
  whose), ``when``, ``where``, ``why``, ``how``, ``how_many`` ("how many" and "how much"), or
  ``other`` ("Name the ...", yes/no questions).
- ``answer``: the type of the gold answers (the most common among them; a tie goes to the first
  answer's): ``date`` (a month, a year 1000-2099, a decade, a century, BC/AD), ``number`` (a
  short answer that starts or ends with a number, digits or words), ``name`` (a person or other
  proper name: every word capitalised), ``other``, or ``none`` (unanswerable).
- ``context``: the length of the context in characters, in terciles of the SQuAD v1.1 dev set's
  questions (measured: 612 and 830 characters split its 10,570 questions into thirds):
  ``short`` (< 612), ``medium`` (612-829), ``long`` (>= 830). Characters, not words, so that a
  language written without spaces (MLQA zh) is measured the same way.
- ``position``: where the first gold answer starts, as a fraction of the context: ``start``
  (< 1/3), ``middle`` (< 2/3), ``end``; ``none`` when unanswerable.

Users add their own labels: a ``slices`` object in a JSON Lines (or JSON list) record, e.g.
``{"id": ..., "slices": {"domain": "legal"}}``, or a side file (a gate file's ``labels:``)
mapping question id -> labels. A user label with a built-in key replaces the computed one for
that question (to correct the heuristics).
"""

from __future__ import annotations

import re
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from qagate.core.errors import QagateError, quote

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data.records import Dataset, QAExample

QUESTION_TYPES = ("what", "which", "who", "when", "where", "why", "how", "how_many", "other")
ANSWER_TYPES = ("number", "date", "name", "other", "none")
CONTEXT_BUCKETS = ("short", "medium", "long")
POSITION_BUCKETS = ("start", "middle", "end", "none")
BUILT_IN: dict[str, tuple[str, ...]] = {
    "question": QUESTION_TYPES,
    "answer": ANSWER_TYPES,
    "context": CONTEXT_BUCKETS,
    "position": POSITION_BUCKETS,
}
#: Context length thresholds in characters: terciles of SQuAD v1.1 dev (10,570 questions).
SHORT_BELOW = 612
LONG_FROM = 830
#: A slice with fewer questions than this is undecided (a gate file's ``min_slice`` changes it).
MIN_SLICE = 30

#: What a user label's key and value may be: they become part of rule ids and pytest node ids.
KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
VALUE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")

_WH = {
    "what": "what",
    "which": "which",
    "who": "who",
    "whom": "who",
    "whose": "who",
    "when": "when",
    "where": "where",
    "why": "why",
    "how": "how",
}
_WORD = re.compile(r"[a-z]+")
_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
]
_DATE_RE = re.compile(
    r"\b(?:" + "|".join(_MONTHS) + r")\b\.?"
    r"|\b(?:1\d{3}|20\d{2})s?\b"  # a year (1000-2099) or a decade (1990s)
    r"|\b\d{1,2}(?:st|nd|rd|th)\s+century\b|\bcentur(?:y|ies)\b"
    r"|\b\d+\s*(?:bc|ad|bce|ce)\b",
    re.IGNORECASE,
)
_NUMBER_WORDS = frozenset(
    [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
        "thousand",
        "million",
        "billion",
        "trillion",
        "dozen",
        "half",
        "once",
        "twice",
        "first",
        "second",
        "third",
    ]
)
_NUMERIC_TOKEN = re.compile(r"[$£€¥]?[-+]?\d[\d,.:/]*%?(?:st|nd|rd|th|s)?")
_LOWER_IN_NAMES = frozenset(
    [
        "of",
        "the",
        "and",
        "de",
        "da",
        "di",
        "del",
        "du",
        "von",
        "van",
        "der",
        "la",
        "le",
        "y",
        "al",
        "bin",
        "ibn",
        "&",
        "'s",
    ]
)


def question_type(question: str) -> str:
    """The question's first wh-word (``how_many`` for "how many"/"how much"), else ``other``."""
    words = _WORD.findall(question.lower())
    for index, word in enumerate(words):
        kind = _WH.get(word)
        if kind is None:
            continue
        if kind == "how" and index + 1 < len(words) and words[index + 1] in ("many", "much"):
            return "how_many"
        return kind
    return "other"


def answer_type(answers: Sequence[str]) -> str:
    """The most common type among the gold ``answers`` (a tie: the first answer's type)."""
    kinds = [_one_answer_type(text) for text in answers if text.strip()]
    if not kinds:
        return "none"
    counts = Counter(kinds)
    best = max(counts.values())
    return next(kind for kind in kinds if counts[kind] == best)


def _one_answer_type(text: str) -> str:
    tokens = text.split()
    if len(tokens) <= 8 and _DATE_RE.search(text):
        return "date"
    if len(tokens) <= 6 and (_is_number(tokens[0]) or _is_number(tokens[-1])):
        return "number"
    words = [t for t in re.findall(r"[^\W\d_][\w'.-]*", text) if t.lower() not in _LOWER_IN_NAMES]
    if words and len(tokens) <= 8 and all(w[0].isupper() for w in words):
        return "name"
    return "other"


def _is_number(token: str) -> bool:
    token = token.strip("()[],;\"'")
    return bool(_NUMERIC_TOKEN.fullmatch(token)) or token.lower() in _NUMBER_WORDS


def context_bucket(context: str) -> str:
    """``short`` / ``medium`` / ``long``: the context's length against SQuAD dev's terciles."""
    length = len(context)
    return "short" if length < SHORT_BELOW else "medium" if length < LONG_FROM else "long"


def position_bucket(context: str, starts: Sequence[int]) -> str:
    """Where the first gold answer starts in the context: ``start``, ``middle`` or ``end``."""
    if not starts or not context:
        return "none"
    where = starts[0] / len(context)
    return "start" if where < 1 / 3 else "middle" if where < 2 / 3 else "end"


def built_in_labels(example: "QAExample") -> dict[str, str]:
    """The four computed labels of one question."""
    return {
        "question": question_type(example.question),
        "answer": "none" if example.is_impossible else answer_type(example.answers),
        "context": context_bucket(example.context),
        "position": "none"
        if example.is_impossible
        else position_bucket(example.context, example.answer_starts),
    }


def example_labels(example: "QAExample", extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """All labels of one question: computed, then the record's own, then the side file's."""
    labels = built_in_labels(example)
    labels.update(getattr(example, "labels", ()) or ())
    labels.update(extra or {})
    return labels


# --- a dataset's labels ---------------------------------------------------------------------------

_CACHE: "weakref.WeakKeyDictionary[Dataset, dict[str, dict[str, str]]]" = weakref.WeakKeyDictionary()


def dataset_labels(
    dataset: "Dataset", extra: Mapping[str, Mapping[str, str]] | None = None
) -> dict[str, dict[str, str]]:
    """question id -> labels for every question of ``dataset`` (``extra``: a side file's)."""
    base = _CACHE.get(dataset)
    if base is None:
        base = {ex.id: example_labels(ex) for ex in dataset.examples}
        _CACHE[dataset] = base
    if not extra:
        return base
    return {qid: {**labels, **extra.get(qid, {})} for qid, labels in base.items()}


def slice_ids(table: Mapping[str, Mapping[str, str]], key: str, value: str) -> list[str]:
    """The ids (in dataset order) of the questions labelled ``key=value``."""
    return [qid for qid, labels in table.items() if labels.get(key) == value]


def present(table: Mapping[str, Mapping[str, str]]) -> dict[str, list[str]]:
    """Every label key with the values its questions carry: built-in keys first, their values in
    the documented order; user keys and values sorted."""
    seen: dict[str, set[str]] = {}
    for labels in table.values():
        for key, value in labels.items():
            seen.setdefault(key, set()).add(value)
    out: dict[str, list[str]] = {}
    for key, values in BUILT_IN.items():
        if key in seen:
            out[key] = [v for v in values if v in seen[key]] + sorted(seen[key] - set(values))
    for key in sorted(set(seen) - set(BUILT_IN)):
        out[key] = sorted(seen[key])
    return out


def slice_name(key: str, value: str) -> str:
    return f"{key}={value}"


def slice_table(
    table: Mapping[str, Mapping[str, str]], keys: Iterable[str] | None = None
) -> dict[str, list[str]]:
    """``"key=value"`` -> question ids for every slice present (of ``keys``, or all)."""
    wanted = None if keys is None else set(keys)
    out: dict[str, list[str]] = {}
    for key, values in present(table).items():
        if wanted is not None and key not in wanted:
            continue
        for value in values:
            out[slice_name(key, value)] = slice_ids(table, key, value)
    return out


# --- user labels ----------------------------------------------------------------------------------


def check_labels(raw: Any, source: object, where: str) -> tuple[tuple[str, str], ...]:
    """A record's (or a side file's) ``{"key": "value"}`` labels, checked; one line when wrong."""
    if not isinstance(raw, dict):
        raise QagateError(
            f'"slices" must be an object of label -> value, found {type(raw).__name__}',
            path=source,
            item=where,
            hint='write e.g. "slices": {"domain": "legal"}',
        )
    labels = []
    for key, value in raw.items():
        if value is None:  # a parquet/hub struct column fills a record's missing labels with null
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(key, str) or not KEY_RE.fullmatch(key):
            raise QagateError(
                f"slice label {quote(key)} is not a name (letters, digits, _; at most 40)",
                path=source,
                item=where,
            )
        if not isinstance(value, str) or not VALUE_RE.fullmatch(value):
            raise QagateError(
                f"slice label {key}={quote(value)}: a value is a word of letters, digits, _ . - (at most 64)",
                path=source,
                item=where,
            )
        labels.append((key, value))
    return tuple(labels)


def check_label_ids(
    labels: Mapping[str, Mapping[str, str]], dataset: "Dataset", path: object, *, subset: bool
) -> None:
    """Ids in a label file that the dataset lacks: an error (all of the dataset's questions are
    there), or, on a subset (``--qagate-limit``, articles), an error only when none matches."""
    ids = {ex.id for ex in dataset.examples}
    unknown = [qid for qid in labels if qid not in ids]
    if not unknown or (subset and len(unknown) < len(labels)):
        return
    raise QagateError(
        f"{len(unknown)} of {len(labels)} question ids in the label file are not in dataset "
        f"{dataset.name} (e.g. {quote(unknown[0])})",
        path=path,
        hint="label the questions of the dataset the gate runs on",
    )


def unknown_slice(key: str, value: str | None, known: Mapping[str, Sequence[str]]) -> str | None:
    """Why ``key=value`` names no slice of ``known`` (key -> values), with a did-you-mean; None
    when it is known (``value`` None or ``*``: only the key is checked)."""
    from qagate.core.argtypes import did_you_mean

    keys = list(dict.fromkeys([*BUILT_IN, *known]))
    if key not in keys:
        return f"unknown slice key {quote(key)}{did_you_mean(key, keys)}; slice keys: {', '.join(keys)}"
    values = list(dict.fromkeys([*BUILT_IN.get(key, ()), *known.get(key, ())]))
    if value in (None, "*") or value in values:
        return None
    return (
        f"unknown {key} slice {quote(value)}{did_you_mean(str(value), values)}; "
        f"{key} slices: {', '.join(values) or '(none in this dataset)'}"
    )
