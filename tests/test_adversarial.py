"""QA-native perturbations (addsent, swap_entities, question_noise, reorder), ``qagate perturb``,
``qagate evaluate --perturb`` and kept counterexamples."""

from __future__ import annotations

import json
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qagate.cli import main
from qagate.counterexamples import Counterexamples, word_diff
from qagate.data import QAExample, load_dataset
from qagate.data.adversarial import ADVERSARIAL_KINDS, addsent_sentence
from qagate.data.perturb import KINDS, perturb_dataset, perturb_example
from qagate.strategies import adversarial, perturbed

SAMPLE = load_dataset("sample")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_SENTENCE = re.compile(r"\S.*?(?:(?<=[.!?])(?=\s+[A-Z0-9\"'(])|$)", re.S)


def valid(example: QAExample) -> bool:
    return all(example.context[s : s + len(a)] == a for a, s in zip(example.answers, example.answer_starts))


def answer_sentences(example: QAExample) -> list[str]:
    """The original sentences that hold an answer (they must survive whole)."""
    spans = [(s, s + len(a)) for a, s in zip(example.answers, example.answer_starts)]
    return [
        m.group()
        for m in _SENTENCE.finditer(example.context)
        if any(m.start() <= s and e <= m.end() for s, e in spans)
    ]


def test_the_new_kinds_are_registered_in_the_one_list():
    assert set(ADVERSARIAL_KINDS) <= set(KINDS)
    copy = perturb_dataset(SAMPLE, ["addsent", "reorder"], seed=0)
    assert copy.name == "sample+addsent+reorder-s0"
    assert [e.id for e in copy.examples] == [e.id for e in SAMPLE.examples]


@SETTINGS
@given(data=st.data(), index=st.integers(0, len(SAMPLE.examples) - 1))
def test_every_kind_keeps_every_gold_answer_a_valid_span(data, index):
    example = SAMPLE.examples[index]
    variant = data.draw(adversarial(example, max_kinds=None))
    assert valid(variant)
    assert (variant.id, variant.answers) == (example.id, example.answers)
    for sentence in answer_sentences(example):  # the answer's sentence is never cut or rewritten
        assert sentence in variant.context


@SETTINGS
@given(data=st.data(), index=st.integers(0, len(SAMPLE.examples) - 1))
def test_addsent_adds_one_question_shaped_sentence_away_from_the_answer(data, index):
    example = SAMPLE.examples[index]
    variant = data.draw(adversarial(example, ["addsent"]))
    assert valid(variant) and variant.question == example.question
    added = len(variant.context) - len(example.context)
    assert added > 0
    for sentence in answer_sentences(example):
        assert sentence in variant.context
    asked = {w.lower() for w in re.findall(r"[a-z]{4,}", example.question)}
    new_words = set(re.findall(r"[a-z]{4,}", variant.context.lower())) - set(
        re.findall(r"[a-z]{4,}", example.context.lower())
    )
    assert asked & set(re.findall(r"[a-z]{4,}", variant.context.lower())) or new_words


def test_addsent_changes_the_entity_number_or_date_of_the_question():
    context = "Acme was founded in 1921 by Ida Lowe."
    rng = random.Random(0)
    sentence = addsent_sentence("Who founded Acme in 1921?", context, rng)
    assert "Acme" not in sentence and "1921" not in sentence and "founded" in sentence
    assert sentence.endswith(".")
    plain = addsent_sentence("What is the capital of the country?", "x", random.Random(1))
    assert "rival" in plain  # nothing to swap: the key noun is qualified so the fact differs


@SETTINGS
@given(data=st.data(), index=st.integers(0, len(SAMPLE.examples) - 1))
def test_swap_entities_only_changes_sentences_without_an_answer(data, index):
    example = SAMPLE.examples[index]
    variant = data.draw(adversarial(example, ["swap_entities"]))
    assert valid(variant) and variant.question == example.question
    for sentence in answer_sentences(example):
        assert sentence in variant.context


@SETTINGS
@given(data=st.data(), index=st.integers(0, len(SAMPLE.examples) - 1))
def test_question_noise_changes_only_the_question(data, index):
    example = SAMPLE.examples[index]
    variant = data.draw(adversarial(example, ["question_noise"]))
    assert variant.question != example.question
    assert (variant.context, variant.answer_starts) == (example.context, example.answer_starts)


@SETTINGS
@given(data=st.data(), index=st.integers(0, len(SAMPLE.examples) - 1))
def test_reorder_keeps_the_same_sentences(data, index):
    example = SAMPLE.examples[index]
    variant = data.draw(adversarial(example, ["reorder"]))
    assert valid(variant)
    assert sorted(example.context.split()) == sorted(variant.context.split())


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(st.sampled_from(["Ann", "met", "Bo", "in", "1990", "at", "Rome", "x"]), min_size=2),
    cut=st.lists(st.booleans(), min_size=30, max_size=30),
    data=st.data(),
)
def test_random_contexts_keep_valid_spans_under_every_kind(words, cut, data):
    text = " ".join(w + ("." if c else "") for w, c in zip(words, cut))
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    example = QAExample("q", "t", text, "Who met Bo in 1990?", (text[start:end],), (start,))
    rng = random.Random(data.draw(st.integers(0, 10**6)))
    for kind in ADVERSARIAL_KINDS:
        assert valid(perturb_example(example, rng, [kind]))


def test_the_copies_are_deterministic_for_a_seed():
    for kind in ADVERSARIAL_KINDS:
        one = perturb_dataset(SAMPLE, [kind], seed=4)
        assert one.fingerprint == perturb_dataset(SAMPLE, [kind], seed=4).fingerprint
        assert one.fingerprint != perturb_dataset(SAMPLE, [kind], seed=5).fingerprint
        assert all(valid(e) for e in one.examples)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_perturbed_accepts_the_new_kinds_with_the_old_ones(data):
    example = SAMPLE.examples[0]
    variant = data.draw(perturbed(example, kinds=["whitespace", "addsent"], spare_question_words=False))
    assert valid(variant)


# --- the command line ---------------------------------------------------------------------------


def test_qagate_perturb_writes_squad_json_with_the_same_ids(tmp_path, capsys):
    out = tmp_path / "addsent.json"
    assert main(["perturb", "sample", "--with", "addsent,reorder", "--seed", "2", "--out", str(out)]) == 0
    written = load_dataset(str(out))
    expected = perturb_dataset(SAMPLE, ["addsent", "reorder"], seed=2)
    assert {e.id: (e.context, e.question, e.answer_starts) for e in written.examples} == {
        e.id: (e.context, e.question, e.answer_starts) for e in expected.examples
    }
    assert json.loads(out.read_text())["version"] == "1.1"
    assert main(["perturb", "sample", "--with", "addsent", "--limit", "5", "--out", str(out)]) == 0
    assert len(load_dataset(str(out))) == 5


def test_qagate_perturb_refuses_an_unknown_kind(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["perturb", "sample", "--with", "adsent", "--out", str(tmp_path / "x.json")])
    assert "unknown perturbation 'adsent'" in capsys.readouterr().err


def test_evaluate_and_predict_accept_perturb(tmp_path):
    from qagate.cli import build_parser

    args = build_parser(["evaluate"]).parse_args(
        ["evaluate", "m.yaml", "sample", "--perturb", "addsent,question_noise", "--perturb-seed", "3"]
    )
    assert args.perturb == ("addsent", "question_noise") and args.perturb_seed == 3


# --- kept counterexamples -----------------------------------------------------------------------


def _search(keeper, examples, holds, calls):
    @settings(max_examples=50, deadline=None, database=None, derandomize=True)
    @given(data=st.data())
    def search(data):
        example = data.draw(st.sampled_from(examples))
        variant = data.draw(perturbed(example, kinds=["case", "whitespace"]))
        calls.append(variant.context)
        keeper.check(example, variant, holds)

    return search


def test_a_failing_property_keeps_its_minimal_example_and_replays_it_first(tmp_path):
    examples = list(SAMPLE.examples[:5])

    def holds(variant):  # a "model" that breaks on any upper-cased word
        upper = re.search(r"\b[A-Z]{4,}\b", variant.context)
        return upper is None, "WRONG" if upper else variant.answers[0]

    keeper = Counterexamples(tmp_path, "toy", "no_upper")
    with pytest.raises(AssertionError, match="property fails"):
        keeper.run(_search(keeper, examples, holds, []), holds)
    saved = json.loads((tmp_path / "counterexamples" / "toy" / "no_upper.json").read_text())
    assert saved["model"] == "toy" and len(saved["examples"]) == 1
    kept = saved["examples"][0]
    assert kept["answer"] == "WRONG" and kept["context"] != kept["original_context"]
    assert "{+" in keeper.saved()[0].diff()

    calls: list[str] = []
    again = Counterexamples(tmp_path, "toy", "no_upper")
    with pytest.raises(AssertionError, match="kept counterexample .* fails again"):
        again.run(_search(again, examples, holds, calls), holds)
    assert calls == [] and again.replayed[0].context == kept["context"]  # replayed before any search

    fixed = Counterexamples(tmp_path, "toy", "no_upper")
    fixed.run(_search(fixed, examples, lambda v: (True, v.answers[0]), calls), lambda v: (True, ""))
    assert len(fixed.replayed) == 1 and calls  # replayed first, then searched


def test_word_diff_marks_what_changed():
    assert word_diff("the cat sat", "the big cat sat") == "the {+big+} cat sat"
    assert word_diff("a b c", "a x c") == "a [-b-] {+x+} c"
