"""Perturbed SQuAD contexts whose reference answers stay valid spans.

A perturbation is a list of :class:`Edit` s (replace ``context[start:end]`` by ``text``) that
never touch a reference answer; :func:`apply_edits` applies them, moves every ``answer_start``
by what was inserted or removed before it, and checks that each answer is still exactly
``context[start : start + len(text)]``. The kinds:

- ``typo``: swap two inner letters of a word (of 4+ letters) outside every answer;
- ``whitespace``: widen a space outside every answer to two spaces or a newline;
- ``distractor``: insert a sentence taken from another article at a sentence boundary;
- ``case``: upper-case a word outside every answer;
- ``addsent``, ``swap_entities``, ``question_noise``, ``reorder``: the QA-native kinds of
  :mod:`qagate.data.adversarial` (a question-shaped distractor, entity swaps away from the answer,
  question noise, sentence reordering).

:func:`perturb_dataset` makes a seeded, reproducible perturbed copy of a dataset (what a gate
file's ``dataset: {perturb: [...]}`` runs on); :mod:`qagate.strategies` wraps the same edits as
Hypothesis strategies for property tests. Standard library only.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from qagate.errors import QagateError

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset, QAExample

BASIC_KINDS = ("typo", "whitespace", "distractor", "case")
KINDS = BASIC_KINDS + ("addsent", "swap_entities", "question_noise", "reorder")  # the one list

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


def perturb_example(
    example: "QAExample",
    rng: random.Random,
    kinds: Sequence[str],
    pool: Sequence[str] = (),
    *,
    spare_question_words: bool = False,
) -> "QAExample":
    """One perturbed copy of ``example`` with one edit of each kind in ``kinds`` (where the
    context leaves room for it); ``pool``: sentences to draw distractors from.
    ``spare_question_words``: typos and case changes leave the words the question uses alone
    (a typo in the very word a question asks about tests spelling, not robustness).
    The QA-native kinds (:mod:`qagate.data.adversarial`) run after the edits, in the order given."""
    spare = question_words(example) if spare_question_words else frozenset()
    makers: dict[str, Callable[[], list[Edit]]] = {
        "typo": lambda: typo_edits(example, rng, spare=spare),
        "whitespace": lambda: whitespace_edits(example, rng),
        "case": lambda: case_edits(example, rng, spare=spare),
        "distractor": lambda: distractor_edit(example, rng, pool),
    }
    edits: list[Edit] = []
    for kind in kinds:
        for edit in makers[kind]() if kind in makers else ():
            if all(edit.end < e.start or edit.start > e.end for e in edits):
                edits.append(edit)
    example = apply_edits(example, edits)
    adversarial = [kind for kind in kinds if kind not in makers]
    if adversarial:
        from qagate.data.adversarial import TRANSFORMS  # it builds on this module's edits

        for kind in adversarial:
            example = TRANSFORMS[kind](example, rng)
    return example


def check_kinds(kinds: Sequence[str], where: str = "perturb") -> tuple[str, ...]:
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise QagateError(
            f"{where}: unknown perturbation {', '.join(map(repr, unknown)) or '(none given)'}",
            hint=f"use one or more of {', '.join(KINDS)}",
        )
    return tuple(dict.fromkeys(kinds))


def parse_kinds(text: str) -> tuple[str, ...]:
    """``"addsent,reorder"`` -> the kinds, checked (an argparse type for ``--with``/``--perturb``)."""
    import argparse

    try:
        return check_kinds([k.strip() for k in str(text).split(",") if k.strip()])
    except QagateError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def perturb_dataset(dataset: "Dataset", kinds: Sequence[str], seed: int = 0) -> "Dataset":
    """A reproducible perturbed copy: the same questions and ids, each context perturbed once
    (a context shared by several questions is perturbed for each on its own, so that each
    question's answers are protected). Distractors come from other articles (from any article
    when the dataset has only one). Named ``<name>+<kinds>-s<seed>``."""
    from qagate.data import Dataset

    kinds = check_kinds(kinds)
    pool = distractor_pool(dataset.examples) if "distractor" in kinds else {}
    others = {a: [s for b, sentences in pool.items() if b != a for s in sentences] for a in pool}
    everyone = [s for sentences in pool.values() for s in sentences]
    examples = []
    for example in dataset.examples:
        rng = random.Random(f"{seed}:{example.id}")
        examples.append(perturb_example(example, rng, kinds, others.get(example.article) or everyone))
    name = f"{dataset.name}+{'+'.join(kinds)}-s{seed}"
    return Dataset(
        name=name,
        source=f"{dataset.source} perturbed ({', '.join(kinds)}; seed {seed})",
        examples=tuple(examples),
        version=dataset.version,
        language=dataset.language,  # a perturbed MLQA copy is still scored by MLQA's rules
    )


def with_perturbed_copy(dataset: "Dataset", kinds: Sequence[str], seed: int = 0) -> "Dataset":
    """``dataset`` followed by its :func:`perturb_dataset` copy, whose ids get ``+<kinds>`` so
    that every id stays unique: training data augmented with questions whose spans stay valid."""
    from qagate.data import Dataset

    copy = perturb_dataset(dataset, kinds, seed)
    suffix = "+" + "+".join(check_kinds(kinds))
    renamed = tuple(replace(ex, id=ex.id + suffix) for ex in copy.examples)
    return Dataset(
        name=copy.name.replace(dataset.name, dataset.name + "+copy", 1),
        source=f"{dataset.source} and a perturbed copy ({', '.join(kinds)}; seed {seed})",
        examples=dataset.examples + renamed,
        version=dataset.version,
        language=dataset.language,
    )
