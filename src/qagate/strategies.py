"""Hypothesis strategies for robustness tests: perturbed copies of a SQuAD example whose
reference answers stay valid spans (the edits of :mod:`qagate.data.perturb`).

    from hypothesis import given, settings
    from qagate.strategies import perturbed

    @settings(max_examples=20, deadline=None)
    @given(data=st.data())
    def test_answer_survives_extra_whitespace(data, teacher, qagate_dataset):
        example = qagate_dataset.examples[0]
        variant = data.draw(perturbed(example, kinds=["whitespace"]))
        ...

Hypothesis shrinks a failing case towards fewer and earlier edits, so a failure report shows
the smallest perturbation that changed the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hypothesis import strategies as st

from qagate.data.adversarial import ADVERSARIAL_KINDS
from qagate.data.perturb import KINDS, check_kinds, perturb_example

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import QAExample


def perturbed(
    example: "QAExample",
    kinds: Sequence[str] = ("typo", "whitespace", "case"),
    distractors: Sequence[str] = (),
    *,
    max_kinds: int | None = None,
    spare_question_words: bool = True,
) -> st.SearchStrategy["QAExample"]:
    """Perturbed copies of ``example``: a non-empty subset of ``kinds``, each applied once at
    positions Hypothesis draws. ``distractors``: sentences for the ``distractor`` kind (e.g.
    from other articles; see :func:`qagate.data.perturb.distractor_pool`). ``spare_question_words``
    (default on): typos and case changes never touch a word the question uses."""
    kinds = check_kinds(list(kinds))
    if "distractor" in kinds and not distractors:
        raise ValueError("the 'distractor' kind needs sentences: pass distractors=[...]")
    subsets = st.lists(st.sampled_from(kinds), min_size=1, max_size=max_kinds or len(kinds), unique=True)

    @st.composite
    def build(draw: st.DrawFn) -> "QAExample":
        chosen = draw(subsets)
        rng = draw(st.randoms(use_true_random=False))
        return perturb_example(example, rng, chosen, distractors, spare_question_words=spare_question_words)

    return build()


def adversarial(
    example: "QAExample", kinds: Sequence[str] = ADVERSARIAL_KINDS, *, max_kinds: int | None = 1
) -> st.SearchStrategy["QAExample"]:
    """QA-native perturbations of ``example`` (:mod:`qagate.data.adversarial`): ``addsent``,
    ``swap_entities``, ``question_noise``, ``reorder``; by default one kind per draw, drawn
    positions, names and numbers; gold answers stay valid spans and ids stay the same."""
    return perturbed(example, kinds, max_kinds=max_kinds, spare_question_words=False)


def addsent(example: "QAExample") -> st.SearchStrategy["QAExample"]:
    """``example`` with a question-shaped distractor sentence (key entity/number changed)."""
    return adversarial(example, ["addsent"])


def swap_entities(example: "QAExample") -> st.SearchStrategy["QAExample"]:
    """``example`` with names, places and numbers swapped in sentences without an answer."""
    return adversarial(example, ["swap_entities"])


def question_noise(example: "QAExample") -> st.SearchStrategy["QAExample"]:
    """``example`` with a typo, synonym, casing or punctuation change in the question."""
    return adversarial(example, ["question_noise"])


def reorder(example: "QAExample") -> st.SearchStrategy["QAExample"]:
    """``example`` with its sentences shuffled (the answer's sentence kept whole)."""
    return adversarial(example, ["reorder"])


__all__ = [
    "ADVERSARIAL_KINDS",
    "KINDS",
    "addsent",
    "adversarial",
    "perturbed",
    "question_noise",
    "reorder",
    "swap_entities",
]
