"""EM/F1 against an independent transcription of the official SQuAD scripts.

``squad_official`` holds plain transcriptions of ``evaluate-v1.1.py`` and
``evaluate-v2.0.py`` (kept deliberately naive); qagate's faster code must agree with them
exactly, on the real leaderboard files and on random inputs.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import squad_official as official
from qagate.data import Dataset, QAExample, load_dataset, load_predictions
from qagate.scoring.squad import exact_match, f1, normalize_answer, score
from shared_data import SQUAD, needs_shared

# file -> (exact_match, f1). The first two are the official numbers from shared/README.md; the
# other three were computed with the official v1.1 script semantics (the transcription below).
EXPECTED = {
    "bert-ensemble-google.json": (86.20624408703878, 92.19557978351145),
    "logistic-regression-stanford.json": (40.14191106906339, 50.98153647324461),
    "match-lstm-smu.json": (67.63481551561021, 76.75556184979695),
    "r-net-msra.json": (82.46925260170293, 88.47785965423249),
    "slqa-alibaba.json": (81.94891201513718, 88.38386312172166),
}


# --- the official scripts (squad_official) over flat examples, per question -----------


def _official_v1(examples, predictions):
    """evaluate-v1.1.py's evaluate(), over flat examples in file order; also per question."""
    f1_sum = em_sum = total = 0
    per = {}
    for ex in examples:
        total += 1
        if ex.id not in predictions:
            continue
        truths = list(ex.answers)
        pred = predictions[ex.id]
        em = max(official.exact_match_score(pred, t) for t in truths)
        f = max(official.f1_score(pred, t) for t in truths)
        em_sum += em
        f1_sum += f
        per[ex.id] = (float(em), float(f))
    return 100.0 * em_sum / total, 100.0 * f1_sum / total, per


def _official_v2(examples, predictions):
    """evaluate-v2.0.py's get_raw_scores + make_eval_dict (all predictions present)."""
    exact, f1s, has_ans = {}, {}, []
    for ex in examples:
        gold = [a for a in ex.answers if official.normalize_answer(a)] or [""]
        pred = predictions[ex.id]
        exact[ex.id] = max(int(official.normalize_answer(a) == official.normalize_answer(pred)) for a in gold)
        f1s[ex.id] = max(official.compute_f1(a, pred) for a in gold)
        if ex.answers:
            has_ans.append(ex.id)
    total = len(exact)
    out = {
        "exact": 100.0 * sum(exact.values()) / total,
        "f1": 100.0 * sum(f1s.values()) / total,
        "total": total,
    }
    if has_ans:
        out["HasAns_exact"] = 100.0 * sum(exact[k] for k in has_ans) / len(has_ans)
        out["HasAns_f1"] = 100.0 * sum(f1s[k] for k in has_ans) / len(has_ans)
    return out


# --- the real leaderboard files -----------------------------------------------------------


@pytest.fixture(scope="module")
def dev():
    return load_dataset(SQUAD / "dev-v1.1.json")


@needs_shared
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_leaderboard_files_reproduce_official_numbers(dev, name):
    predictions = load_predictions(SQUAD / "predictions" / name)
    result = score(dev, predictions)
    ref_em, ref_f1, ref_per = _official_v1(dev.examples, predictions)
    assert result.exact_match == pytest.approx(EXPECTED[name][0], abs=1e-9)
    assert result.f1 == pytest.approx(EXPECTED[name][1], abs=1e-9)
    assert (result.exact_match, result.f1) == (ref_em, ref_f1)  # bit for bit
    for qid, (em, f) in ref_per.items():
        assert (result.per_question_em[qid], result.per_question_f1[qid]) == (em, f), qid
    assert result.total == len(dev) == 10570
    assert len(result.per_question_em) == len(result.per_question_f1) == 10570


@needs_shared
def test_missing_and_unknown_ids_are_counted_not_scored(dev):
    predictions = load_predictions(SQUAD / "predictions" / "logistic-regression-stanford.json")
    result = score(dev, predictions)
    known = {ex.id for ex in dev}
    assert set(result.unknown_ids) == set(predictions) - known and len(result.unknown_ids) == 28
    assert set(result.missing) == known - set(predictions) and len(result.missing) == 13
    assert result.answered == 10570 - 13
    assert all(result.per_question_f1[q] == 0.0 for q in result.missing)


# --- small exact cases ----------------------------------------------------------------------


def _ex(qid, answers, impossible=False):
    context = " ".join(answers) or "nothing here"
    starts = []
    pos = 0
    for a in answers:
        starts.append(context.index(a, pos))
        pos = starts[-1]
    return QAExample(
        id=qid,
        title="t",
        context=context,
        question="q?",
        answers=tuple(answers),
        answer_starts=tuple(starts),
        is_impossible=impossible,
    )


@pytest.mark.parametrize(
    "text,expected",
    [
        ("The  Quick, Brown fox!", "quick brown fox"),
        ("an apple a day", "apple day"),
        ("theatre and another", "theatre and another"),  # articles only as whole words
        ("Denver Broncos.", "denver broncos"),
        ("the", ""),
        ("Café — naïve", "café — naïve"),  # non-ASCII punctuation is kept, as officially
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_em_and_f1_take_the_best_reference():
    assert exact_match("Denver Broncos", ["Carolina Panthers", "the Denver Broncos!"]) == 1.0
    assert f1("Denver", ["Denver Broncos", "Carolina"]) == pytest.approx(2 / 3)
    assert f1("anything", []) == 0.0


def test_v1_quirk_both_empty_is_em_1_but_f1_0():
    # Official v1.1: "the" and "a" both normalise to "", so EM is 1 but F1 is 0.
    assert exact_match("the", ["a"]) == 1.0
    assert f1("the", ["a"]) == 0.0
    assert official.f1_score("the", "a") == 0


def test_score_on_plain_sequence_and_missing_predictions():
    examples = [_ex("q1", ["red fox"]), _ex("q2", ["blue"])]
    result = score(examples, {"q1": "the red fox", "zzz": "x"})
    assert result.per_question_em == {"q1": 1.0, "q2": 0.0}
    assert result.missing == ["q2"] and result.unknown_ids == ["zzz"]
    assert (result.exact_match, result.f1, result.total, result.answered) == (50.0, 50.0, 2, 1)
    assert result.has_ans is None and result.no_ans is None
    assert result.official() == {"exact_match": 50.0, "f1": 50.0}


def test_v2_rules_and_breakdown():
    examples = [
        _ex("a1", ["Paris", "paris"]),
        _ex("a2", ["in 1999"]),
        _ex("n1", [], impossible=True),
        _ex("n2", [], impossible=True),
        _ex("a3", ["the"]),
    ]  # its only reference normalises to "": gold becomes [""]
    predictions = {"a1": "Paris", "a2": "1999", "n1": "", "n2": "something", "a3": ""}
    result = score(examples, predictions)
    official = _official_v2(examples, predictions)
    assert result.exact_match == official["exact"] and result.f1 == official["f1"]
    assert result.has_ans == {
        "exact_match": official["HasAns_exact"],
        "f1": official["HasAns_f1"],
        "total": 3,
    }
    assert result.no_ans == {"exact_match": 50.0, "f1": 50.0, "total": 2}
    assert result.per_question_f1["n1"] == 1.0 and result.per_question_f1["n2"] == 0.0
    out = result.official()
    assert out["total"] == 5 and out["NoAns_total"] == 2 and "HasAns_f1" in out


def test_gold_cache_is_per_dataset_object():
    ds = load_dataset("sample")
    answers = {ex.id: ex.answers[0] for ex in ds}
    first = score(ds, answers)
    again = score(ds, answers)
    assert first.exact_match == again.exact_match == 100.0
    assert first.f1 == 100.0 and first.answered == len(ds)


# --- properties -----------------------------------------------------------------------------

WORDS = [
    "a",
    "an",
    "the",
    "The",
    "cat",
    "Cat",
    "dog",
    "red",
    "1999",
    "3.5",
    "café",
    "naïve",
    "x",
    "theatre",
    "anna",
    "—",
    "茶",
    "ἀμφορεύς",
    "U.S.",
    "don't",
    "",
    "!",
]
phrases = st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join)
ascii_words = st.lists(
    st.sampled_from(["cat", "dog", "red", "fox", "1999", "blue", "x"]), min_size=1, max_size=6
)


@given(phrases, st.lists(phrases, min_size=1, max_size=3))
def test_f1_in_unit_interval_and_em_implies_f1(prediction, refs):
    value = f1(prediction, refs)
    assert 0.0 <= value <= 1.0
    if exact_match(prediction, refs) == 1.0 and normalize_answer(prediction):
        assert value == 1.0


@given(phrases, st.lists(phrases, min_size=1, max_size=3))
def test_max_over_references_dominates_each(prediction, refs):
    assert f1(prediction, refs) == max(f1(prediction, [r]) for r in refs)
    assert exact_match(prediction, refs) == max(exact_match(prediction, [r]) for r in refs)


@given(phrases, phrases)
def test_f1_symmetric_for_single_references(a, b):
    assert f1(a, [b]) == pytest.approx(f1(b, [a]), abs=1e-12)


@given(
    ascii_words,
    st.lists(phrases, min_size=1, max_size=3),
    st.sampled_from(["upper", "title", "punct", "articles", "spaces"]),
)
def test_invariant_to_case_punctuation_articles_whitespace(words, refs, change):
    prediction = " ".join(words)
    changed = {
        "upper": prediction.upper(),
        "title": prediction.title(),
        "punct": ", ".join(w + "!" for w in words) + ".",
        "articles": " ".join(f"the {w} a" for w in words),
        "spaces": "  " + "\t \n".join(words) + "   ",
    }[change]
    assert exact_match(changed, refs) == exact_match(prediction, refs)
    assert f1(changed, refs) == f1(prediction, refs)


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(st.lists(phrases.filter(str.strip), min_size=1, max_size=3), st.one_of(st.none(), phrases)),
        min_size=1,
        max_size=8,
    )
)
def test_score_matches_official_script_on_random_data(rows):
    examples = [_ex(f"q{i}", refs) for i, (refs, _) in enumerate(rows)]
    predictions = {f"q{i}": p for i, (_, p) in enumerate(rows) if p is not None}
    result = score(examples, predictions)
    ref_em, ref_f1, ref_per = _official_v1(examples, predictions)
    assert (result.exact_match, result.f1) == (ref_em, ref_f1)
    for qid, (em, f) in ref_per.items():
        assert (result.per_question_em[qid], result.per_question_f1[qid]) == (em, f)


@settings(max_examples=60)
@given(st.lists(st.tuples(st.lists(phrases, max_size=3), phrases), min_size=1, max_size=8))
def test_v2_score_matches_official_v2_script_on_random_data(rows):
    examples = [
        _ex(f"q{i}", [r for r in refs if r], impossible=not any(refs)) for i, (refs, _) in enumerate(rows)
    ]
    predictions = {f"q{i}": p for i, (_, p) in enumerate(rows)}
    result = score(Dataset("t", "t", tuple(examples), version="2.0"), predictions)
    official = _official_v2(examples, predictions)
    assert (result.exact_match, result.f1) == (official["exact"], official["f1"])
