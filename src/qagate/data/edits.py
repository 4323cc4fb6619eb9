"""Span-safe context edits: an :class:`Edit` replaces ``context[start:end]`` by ``text`` away
from every reference answer; :func:`apply_edits` applies edits, moves every ``answer_start`` by
what was inserted or removed before it, and checks each answer is still exactly its span.

The primitives that :mod:`qagate.data.perturb` (typos, spacing, case, distractors) and
:mod:`qagate.data.adversarial` (AddSent, entity swaps, reordering) build their kinds from; kept
apart so that both import them and neither imports the other's users. Standard library only.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import QAExample

_WORD = re.compile(r"[^\W\d_]{4,}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


@dataclass(frozen=True, order=True)
class Edit:
    """Replace ``context[start:end]`` by ``text`` (``start == end``: an insertion)."""

    start: int
    end: int
    text: str


def answer_spans(example: "QAExample") -> list[tuple[int, int]]:
    return [(s, s + len(a)) for a, s in zip(example.answers, example.answer_starts)]


def is_free(example: "QAExample", start: int, end: int) -> bool:
    """True if an edit of ``[start, end)`` leaves every answer intact: it may touch an answer's
    edge, never overlap it (an insertion must not fall strictly inside one)."""
    for a_start, a_end in answer_spans(example):
        if start == end:
            if a_start < start < a_end:
                return False
        elif start < a_end and end > a_start:
            return False
    return True


def apply_edits(example: "QAExample", edits: Sequence[Edit]) -> "QAExample":
    """The example with ``edits`` applied and every answer offset moved to match."""
    ordered = sorted(edits)
    for before, after in zip(ordered, ordered[1:]):
        if after.start < before.end or (after.start == before.start == before.end == after.end):
            raise ValueError(f"edits overlap: {before} and {after}")
    for edit in ordered:
        if not (0 <= edit.start <= edit.end <= len(example.context)):
            raise ValueError(f"edit {edit} is outside the context of {example.id}")
        if not is_free(example, edit.start, edit.end):
            raise ValueError(f"edit {edit} would change a reference answer of {example.id}")
    pieces, cursor = [], 0
    for edit in ordered:
        pieces += [example.context[cursor : edit.start], edit.text]
        cursor = edit.end
    pieces.append(example.context[cursor:])
    context = "".join(pieces)

    def moved(offset: int) -> int:
        # Edits that end at or before the answer's start move it (an insertion exactly at the
        # start goes before the answer).
        return offset + sum(len(e.text) - (e.end - e.start) for e in ordered if e.end <= offset)

    starts = tuple(moved(s) for s in example.answer_starts)
    for text, start in zip(example.answers, starts):
        if context[start : start + len(text)] != text:  # pragma: no cover - guarded by is_free
            raise AssertionError(f"{example.id}: answer {text!r} lost its span after {ordered}")
    return replace(example, context=context, answer_starts=starts)


# --- the kinds: each proposes edits for one example --------------------------------------------


def typo_edits(
    example: "QAExample", rng: random.Random, n: int = 1, spare: frozenset[str] = frozenset()
) -> list[Edit]:
    # Inner letters only (the first and last stay), and two that differ, so the word changes.
    def swappable(word: str) -> list[int]:
        return [i for i in range(1, len(word) - 2) if word[i] != word[i + 1]]

    words = [
        m
        for m in _WORD.finditer(example.context)
        if is_free(example, m.start(), m.end()) and swappable(m.group()) and m.group().lower() not in spare
    ]
    edits = []
    for match in rng.sample(words, min(n, len(words))):
        word = match.group()
        i = rng.choice(swappable(word))
        edits.append(Edit(match.start(), match.end(), word[:i] + word[i + 1] + word[i] + word[i + 2 :]))
    return edits


def whitespace_edits(example: "QAExample", rng: random.Random, n: int = 2) -> list[Edit]:
    spaces = [i for i, ch in enumerate(example.context) if ch == " " and is_free(example, i, i + 1)]
    return [
        Edit(i, i + 1, rng.choice(("  ", "\n", " \n ")))
        for i in sorted(rng.sample(spaces, min(n, len(spaces))))
    ]


def case_edits(
    example: "QAExample", rng: random.Random, n: int = 1, spare: frozenset[str] = frozenset()
) -> list[Edit]:
    words = [
        m
        for m in _WORD.finditer(example.context)
        if is_free(example, m.start(), m.end()) and not m.group().isupper() and m.group().lower() not in spare
    ]
    return [Edit(m.start(), m.end(), m.group().upper()) for m in rng.sample(words, min(n, len(words)))]


def sentence_boundaries(context: str) -> list[int]:
    """Offsets where a sentence may be inserted: the start, after each sentence, the end."""
    return sorted({0, len(context), *(m.end() for m in _SENTENCE_END.finditer(context))})


def distractor_edit(example: "QAExample", rng: random.Random, pool: Sequence[str]) -> list[Edit]:
    if not pool:
        return []
    places = [i for i in sentence_boundaries(example.context) if is_free(example, i, i)]
    if not places:
        return []
    at = rng.choice(places)
    sentence = rng.choice(pool).strip()
    if at == 0:
        text = sentence + " "
    elif at == len(example.context):
        text = " " + sentence
    else:
        text = sentence + " "
    return [Edit(at, at, text)]


def distractor_pool(examples: Sequence["QAExample"]) -> dict[int, list[str]]:
    """Sentences by article (a distractor for an example comes from another article)."""
    pool: dict[int, list[str]] = {}
    seen: set[str] = set()
    for example in examples:
        if example.context in seen:
            continue
        seen.add(example.context)
        for sentence in _SENTENCE_END.split(example.context):
            sentence = sentence.strip()
            if 40 <= len(sentence) <= 240 and sentence[-1:] in ".!?":
                pool.setdefault(example.article, []).append(sentence)
    return pool


def question_words(example: "QAExample") -> frozenset[str]:
    """The question's words (lower-cased), for edits that should leave them alone."""
    return frozenset(w.lower() for w in _WORD.findall(example.question))
