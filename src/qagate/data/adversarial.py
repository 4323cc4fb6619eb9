"""QA-native perturbations (what adversarial SQuAD probes), rules only, every gold span kept valid.

- ``addsent``: a distractor sentence built from the question's own words, with its key entity,
  number or date changed and a fake answer of the asked type in place of the wh-phrase
  ("Who founded Acme in 1921?" -> "Lena Marsh founded Orvieto in 1948."), inserted at a
  sentence boundary (never inside the answer's sentence);
- ``swap_entities``: capitalised names/places and numbers swapped in sentences that hold no answer;
- ``question_noise``: question edits that should not change the answer (a typo, a synonym from
  :data:`SYNONYMS`, casing, punctuation);
- ``reorder``: the context's sentences shuffled, the answer's sentence(s) kept whole.

Each transform takes an example and a ``random.Random`` and returns a new example whose answers
are checked spans (the question ids never change). Standard library only.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from qagate.data.edits import Edit, answer_spans, apply_edits, distractor_edit

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import QAExample

ADVERSARIAL_KINDS = ("addsent", "swap_entities", "question_noise", "reorder")

PEOPLE = ("Lena Marsh", "Tomas Rieger", "Ada Quill", "Jeff Dean", "Mira Okafor", "Pavel Lund")
PLACES = ("Orvieto", "Kestrel Bay", "Valdoria", "Chicago", "Port Ansel", "Brumley")
THINGS = ("the Kestrel Project", "the Orvieto Accord", "the Valdoria Institute", "the Brumley Prize")
AUXILIARIES = frozenset(
    [
        "is",
        "are",
        "was",
        "were",
        "did",
        "does",
        "do",
        "has",
        "have",
        "had",
        "can",
        "could",
        "will",
        "would",
        "should",
        "may",
        "might",
    ]
)
_DETERMINERS = frozenset(["the", "a", "an", "its", "his", "her", "their", "this", "that"])
SYNONYMS = {
    "largest": "biggest",
    "biggest": "largest",
    "begin": "start",
    "began": "started",
    "start": "begin",
    "called": "named",
    "named": "called",
    "located": "situated",
    "created": "made",
    "built": "constructed",
    "main": "primary",
    "primary": "main",
    "famous": "well-known",
    "important": "significant",
    "type": "kind",
    "kind": "type",
    "used": "employed",
    "died": "passed away",
    "small": "little",
    "large": "big",
    "big": "large",
    "received": "got",
    "purpose": "aim",
}

_ENTITY = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*")
_NUMBER = re.compile(r"\b\d+\b")
_TOKEN = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]")
_WORD4 = re.compile(r"[^\W\d_]{4,}")


def _sentences(context: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence, leading and trailing white space excluded."""
    spans = []
    for match in re.finditer(r"\S(?:.*?)(?:(?<=[.!?])(?=\s+[A-Z0-9\"'(])|$)", context, re.S):
        spans.append((match.start(), match.end()))
    return spans


def _fresh(pool: tuple[str, ...], avoid: str, rng: random.Random) -> str:
    """A name from ``pool`` that does not occur in ``avoid`` (text), chosen by ``rng``."""
    choices = [p for p in pool if p.split()[-1].lower() not in avoid.lower()] or list(pool)
    return rng.choice(choices)


def _other_number(number: str, rng: random.Random) -> str:
    """A different number with as many digits (a year stays a plausible year)."""
    value = int(number)
    if len(number) == 4 and 1000 <= value <= 2100:
        return str(value + rng.choice((-1, 1)) * rng.randint(3, 40))
    changed = value + rng.randint(1, 9) * (10 ** max(0, len(number) - 2))
    return str(changed)


# --- addsent ----------------------------------------------------------------------------------


def _fake_answer(wh: str, after: str, context: str, rng: random.Random) -> str:
    """A wrong answer of the type the wh-word asks for (a person, a year, a place, a number)."""
    if wh in ("who", "whom", "whose"):
        return _fresh(PEOPLE, context, rng)
    if wh == "when" or (wh == "what" and after in ("year", "decade", "century")):
        return _fresh_number(1700, 1990, context, rng)
    if wh == "where":
        return _fresh(PLACES, context, rng)
    if wh == "how" and after in ("many", "much", "long", "old", "far", "large"):
        return _fresh_number(12, 97, context, rng)
    return _fresh(THINGS, context, rng)


def _fresh_number(low: int, high: int, context: str, rng: random.Random) -> str:
    """A number in ``[low, high]`` that the context does not contain (so never the gold answer)."""
    for _ in range(20):
        number = str(rng.randint(low, high))
        if number not in context:
            break
    return number


def addsent_sentence(question: str, context: str, rng: random.Random) -> str:
    """A declarative sentence that echoes ``question`` with its entity, number or date changed
    and a fake answer of the asked type; rules over the question's tokens, no model."""
    tokens = _TOKEN.findall(question.strip().rstrip("?").strip())
    lower = [t.lower() for t in tokens]
    wh_at = next(
        (
            i
            for i, t in enumerate(lower)
            if t in ("what", "which", "who", "whom", "whose", "when", "where", "why", "how")
        ),
        None,
    )
    wh, after = (
        (lower[wh_at], lower[wh_at + 1] if wh_at + 1 < len(lower) else "") if wh_at is not None else ("", "")
    )
    fake = _fake_answer(wh, after, context, rng)
    head = tokens[:wh_at] if wh_at is not None else []
    rest = tokens[wh_at + 1 :] if wh_at is not None else tokens
    if rest and (
        wh == "how" or (wh in ("what", "which") and len(rest) > 1 and rest[1].lower() in AUXILIARIES)
    ):
        rest = rest[1:]  # "how many", "what year did", "which river is": the asked-for noun goes too
    changed = False
    out: list[str] = []
    i = 0
    while i < len(rest):
        word = rest[i]
        if _NUMBER.fullmatch(word):
            out.append(_other_number(word, rng))
            changed = True
        elif word[:1].isupper() and word.lower() not in AUXILIARIES and (i > 0 or head):
            j = i
            while j + 1 < len(rest) and rest[j + 1][:1].isupper():
                j += 1
            out.append(_fresh(PLACES + PEOPLE, " ".join(rest[i : j + 1]) + " " + context, rng))
            i = j
            changed = True
        else:
            out.append(word)
        i += 1
    if not changed and out:
        after_det = [k + 1 for k, w in enumerate(out[:-1]) if w.lower() in _DETERMINERS]
        at = after_det[0] if after_det else max(range(len(out)), key=lambda k: len(out[k]))
        out.insert(at, "rival")  # nothing to swap: qualify the key noun so the fact differs
    if out and out[0].lower() in AUXILIARIES:
        aux, body = out[0], out[1:]
        words = body + ([aux] if aux.lower() not in ("did", "does", "do") else []) + [fake]
        if aux.lower() in ("did", "does", "do"):
            words = body + ([("in " if fake.isdigit() else "") + fake])
    else:
        words = head + [fake] + out
    text = " ".join(words)
    text = re.sub(r"\s+([,.;:!?'])", r"\1", text).strip()
    return (text[:1].upper() + text[1:]).rstrip(",;:") + "."


def addsent(example: "QAExample", rng: random.Random) -> "QAExample":
    """Insert an :func:`addsent_sentence` at a sentence boundary away from the answers."""
    sentence = addsent_sentence(example.question, example.context, rng)
    return apply_edits(example, distractor_edit(example, rng, [sentence]))


# --- swap_entities ----------------------------------------------------------------------------


def swap_entities(example: "QAExample", rng: random.Random, n: int = 2) -> "QAExample":
    """Swap up to ``n`` names/places/numbers, only in sentences that hold no answer."""
    spans = answer_spans(example)
    candidates: list[Edit] = []
    for start, end in _sentences(example.context):
        if any(start < a_end and a_start < end for a_start, a_end in spans):
            continue
        text = example.context[start:end]
        for m in _ENTITY.finditer(text):
            if m.start() == 0:
                continue  # a capitalised first word is usually not a name
            pool = PEOPLE if len(m.group().split()) > 1 else PLACES
            candidates.append(Edit(start + m.start(), start + m.end(), _fresh(pool, m.group(), rng)))
        for m in _NUMBER.finditer(text):
            candidates.append(Edit(start + m.start(), start + m.end(), _other_number(m.group(), rng)))
    chosen = sorted(rng.sample(candidates, min(n, len(candidates))))
    edits = [e for k, e in enumerate(chosen) if k == 0 or e.start >= chosen[k - 1].end]
    return apply_edits(example, edits)


# --- question_noise ---------------------------------------------------------------------------


def _typo(question: str, rng: random.Random) -> str | None:
    """Swap two inner letters of a word after the first (None: no word long enough)."""
    words = [m for m in _WORD4.finditer(question) if m.start() > 0]
    if not words:
        return None
    m = rng.choice(words)
    w = m.group()
    i = rng.randrange(1, len(w) - 2) if len(w) > 3 else 1
    return question[: m.start()] + w[:i] + w[i + 1] + w[i] + w[i + 2 :] + question[m.end() :]


def _synonym(question: str, rng: random.Random) -> str | None:
    """Replace one word by its :data:`SYNONYMS` entry (None: the question has none)."""
    hits = [m for m in re.finditer(r"[A-Za-z]+", question) if m.group().lower() in SYNONYMS]
    if not hits:
        return None
    m = rng.choice(hits)
    new = SYNONYMS[m.group().lower()]
    new = new[:1].upper() + new[1:] if m.group()[:1].isupper() else new
    return question[: m.start()] + new + question[m.end() :]


def _casing(question: str, rng: random.Random) -> str:
    """Lower-case, upper-case, or lower the first letter: uncased readers must not care."""
    return rng.choice((str.lower, str.upper, lambda q: q[:1].lower() + q[1:]))(question)


def _punctuation(question: str, rng: random.Random) -> str:
    """Drop, space out or double the question mark."""
    bare = question.rstrip().rstrip("?").rstrip()
    return rng.choice((bare, bare + " ?", bare + "??", bare + "?!"))


def question_noise(example: "QAExample", rng: random.Random) -> "QAExample":
    """One or two meaning-keeping edits of the question; the context and answers stay as they are."""
    makers: list[Callable[[str, random.Random], str | None]] = [_typo, _synonym, _casing, _punctuation]
    question = example.question
    for maker in rng.sample(makers, rng.randint(1, 2)):
        question = maker(question, rng) or question
    if question == example.question:
        question = _punctuation(question, rng)
    return replace(example, question=question)


# --- reorder ----------------------------------------------------------------------------------


def reorder(example: "QAExample", rng: random.Random) -> "QAExample":
    """Shuffle the context's sentences (joined by one space); sentences an answer spans stay one block."""
    blocks = [list(s) for s in _sentences(example.context)]
    for a_start, a_end in answer_spans(example):  # merge blocks an answer runs across
        inside = [k for k, (s, e) in enumerate(blocks) if s < max(a_end, a_start + 1) and a_start < e]
        if len(inside) > 1:
            first, last = inside[0], inside[-1]
            blocks[first : last + 1] = [[blocks[first][0], blocks[last][1]]]
    if len(blocks) < 2 or not all(
        any(s <= a_start and a_end <= e for s, e in blocks) for a_start, a_end in answer_spans(example)
    ):
        return example  # one sentence, or an answer reaching into the space between sentences
    order = list(range(len(blocks)))
    rng.shuffle(order)
    pieces, new_start, cursor = [], {}, 0
    for k in order:
        s, e = blocks[k]
        new_start[k] = cursor
        pieces.append(example.context[s:e])
        cursor += e - s + 1
    context = " ".join(pieces)

    def moved(offset: int) -> int:
        k = next(k for k, (s, e) in enumerate(blocks) if s <= offset <= e)
        return new_start[k] + offset - blocks[k][0]

    starts = tuple(moved(s) for s in example.answer_starts)
    for text, start in zip(example.answers, starts):
        if context[start : start + len(text)] != text:  # pragma: no cover - blocks keep answers whole
            raise AssertionError(f"{example.id}: answer {text!r} lost its span in reorder")
    return replace(example, context=context, answer_starts=starts)


TRANSFORMS: dict[str, Callable[["QAExample", random.Random], "QAExample"]] = {
    "addsent": addsent,
    "swap_entities": swap_entities,
    "question_noise": question_noise,
    "reorder": reorder,
}
