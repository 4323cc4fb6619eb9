"""Perturbed contexts keep every reference answer a valid span; the gate file's ``perturb:``."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qagate.core.errors import QagateError
from qagate.data import QAExample, load_dataset
from qagate.data.perturb import (
    BASIC_KINDS,
    Edit,
    apply_edits,
    distractor_pool,
    is_free,
    perturb_dataset,
    perturb_example,
    sentence_boundaries,
)
from qagate.strategies import perturbed
from test_plugin import Project

SAMPLE = load_dataset("sample")
POOL = [s for sentences in distractor_pool(SAMPLE.examples).values() for s in sentences]


def valid(example: QAExample) -> bool:
    return all(example.context[s : s + len(a)] == a for a, s in zip(example.answers, example.answer_starts))


def test_every_sample_answer_is_valid_to_start_with():
    assert all(valid(ex) for ex in SAMPLE.examples) and len(POOL) > 20


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), index=st.integers(0, len(SAMPLE.examples) - 1))
def test_perturbed_examples_keep_every_answer_a_valid_span(data, index):
    example = SAMPLE.examples[index]
    variant = data.draw(perturbed(example, kinds=BASIC_KINDS, distractors=POOL))
    assert valid(variant)
    assert (variant.id, variant.question, variant.answers) == (example.id, example.question, example.answers)
    assert variant.context != example.context  # every sample context has room for an edit


@given(text=st.text(alphabet="ab .", min_size=1, max_size=40), data=st.data())
def test_random_edits_outside_the_answer_move_its_offset_exactly(text, data):
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    example = QAExample("q", "t", text, "?", (text[start:end],), (start,))
    spots = [i for i in range(len(text) + 1) if is_free(example, i, i)]
    at = data.draw(st.lists(st.sampled_from(spots), unique=True, max_size=4))
    edited = apply_edits(example, [Edit(i, i, data.draw(st.text(alphabet="xy ", max_size=3))) for i in at])
    assert valid(edited)


def test_edits_that_touch_an_answer_are_refused():
    example = QAExample("q", "t", "The cat sat on the mat.", "?", ("cat",), (4,))
    for edit in (Edit(5, 6, "u"), Edit(3, 5, ""), Edit(5, 5, "x"), Edit(0, 23, "")):
        with pytest.raises(ValueError, match="would change a reference answer"):
            apply_edits(example, [edit])
    with pytest.raises(ValueError, match="overlap"):
        apply_edits(example, [Edit(10, 14, "x"), Edit(12, 16, "y")])
    edited = apply_edits(example, [Edit(4, 4, "big "), Edit(7, 7, "s"), Edit(0, 3, "A")])
    assert edited.context == "A big cats sat on the mat." and edited.answer_starts == (6,)


def test_sentence_boundaries_and_distractors_come_from_other_articles():
    context = "One sentence here. Another one! A third? End. but not here."
    assert sentence_boundaries(context) == [0, 19, 32, 41, len(context)]  # not before "but"
    perturbed_set = perturb_dataset(SAMPLE, ["distractor"], seed=3)
    pool = distractor_pool(SAMPLE.examples)
    for before, after in zip(SAMPLE.examples, perturbed_set.examples):
        added = len(after.context) - len(before.context)
        assert added > 0
        inserted = [
            s
            for a, sentences in pool.items()
            if a != before.article
            for s in sentences
            if s in after.context and s not in before.context
        ]
        assert inserted, before.id


def test_perturbed_datasets_are_reproducible_and_named_by_recipe():
    one = perturb_dataset(SAMPLE, ["typo", "whitespace"], seed=1)
    assert one.name == "sample+typo+whitespace-s1"
    assert [e.id for e in one.examples] == [e.id for e in SAMPLE.examples]
    assert one.fingerprint == perturb_dataset(SAMPLE, ["typo", "whitespace"], seed=1).fingerprint
    assert one.fingerprint != perturb_dataset(SAMPLE, ["typo", "whitespace"], seed=2).fingerprint
    assert one.fingerprint != SAMPLE.fingerprint
    assert all(valid(e) for e in one.examples)
    changed = sum(a.context != b.context for a, b in zip(one.examples, SAMPLE.examples))
    assert changed == len(SAMPLE)
    with pytest.raises(QagateError, match="unknown perturbation 'typos' .*use one or more of typo"):
        perturb_dataset(SAMPLE, ["typos"])


def test_case_and_typo_edits_leave_answers_and_change_only_their_word():
    example = SAMPLE.examples[0]
    rng = random.Random(0)
    for kind in ("typo", "case"):
        variant = perturb_example(example, rng, [kind])
        assert valid(variant) and len(variant.context) == len(example.context)
        diff = [i for i, (a, b) in enumerate(zip(variant.context, example.context)) if a != b]
        assert diff and diff[-1] - diff[0] < 30


def test_the_distractor_kind_needs_sentences():
    with pytest.raises(ValueError, match="needs sentences"):
        perturbed(SAMPLE.examples[0], kinds=["distractor"])


# --- gate files -------------------------------------------------------------------------------


def test_a_gate_on_a_perturbed_dataset(pytester):
    project = Project(pytester)
    project.model("teacher", "teacher", 1.0)
    project.model("student", "student", 0.9)
    project.gate(
        "dataset: {source: data.json, limit: 50, perturb: [typo, distractor], perturb_seed: 7}\n"
        "rules:\n  - apply_to: students\n    require: [f1 >= 0.8 * teacher]\n"
    )
    result = project.run("-rA")
    result.assert_outcomes(passed=1)
    assert "data-first-50+typo+distractor-s7" in result.stdout.str()


@pytest.mark.parametrize(
    "dataset, message",
    [
        ("{source: data.json, perturb: [typos]}", "perturb must list perturbations from typo, whitespace"),
        ("{source: data.json, perturb: []}", "perturb must list perturbations"),
        ("{source: data.json, perturb_seed: 3}", "perturb_seed without perturb"),
        ("{source: data.json, perturb: typo, perturb_seed: x}", "perturb_seed: expected an integer"),
    ],
)
def test_bad_perturb_settings_are_one_line_collection_errors(pytester, dataset, message):
    project = Project(pytester)
    project.model("teacher", "teacher", 1.0)
    project.gate(f"dataset: {dataset}\nrules:\n  - apply_to: teacher\n    require: [f1 >= 1]\n")
    result = project.run()
    assert message in result.stdout.str() and "gate_release.yaml:1" in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_a_perturbed_dataset_serialises_like_any_other(tmp_path):
    one = perturb_dataset(SAMPLE, ["whitespace"], seed=0)
    assert json.dumps([e.context for e in one.examples])


@settings(max_examples=100, deadline=None)
@given(data=st.data(), index=st.integers(0, len(SAMPLE.examples) - 1))
def test_typos_and_case_changes_spare_the_question_words_by_default(data, index):
    import re

    example = SAMPLE.examples[index]
    variant = data.draw(perturbed(example, kinds=["typo", "case"]))
    asked = {w.lower() for w in re.findall(r"[^\W\d_]{4,}", example.question)}
    before = re.findall(r"[^\W\d_]+", example.context)
    after = re.findall(r"[^\W\d_]+", variant.context)
    assert len(before) == len(after)
    changed = {b.lower() for b, a in zip(before, after) if a != b}
    assert changed and not changed & asked
