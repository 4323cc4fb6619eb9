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
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from qagate.core.errors import QagateError
from qagate.data.adversarial import TRANSFORMS
from qagate.data.edits import (  # noqa: F401 (the edits are also imported from here)
    Edit,
    answer_spans,
    apply_edits,
    case_edits,
    distractor_edit,
    distractor_pool,
    is_free,
    question_words,
    sentence_boundaries,
    typo_edits,
    whitespace_edits,
)

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset, QAExample

BASIC_KINDS = ("typo", "whitespace", "distractor", "case")
KINDS = BASIC_KINDS + ("addsent", "swap_entities", "question_noise", "reorder")  # the one list


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
