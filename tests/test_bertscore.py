"""BERTScore with the offline MiniLM: sane, deterministic, max over references, empty answers."""

from __future__ import annotations

import pytest

from qagate.core.errors import QagateError


@pytest.fixture(scope="module")
def scorer(minilm_dir):
    from qagate.scoring.bertscore import BertScorer

    return BertScorer()


def test_default_model_is_the_offline_minilm(scorer, minilm_dir):
    assert scorer.model == str(minilm_dir) and scorer.num_layers == 6


def test_identical_is_one_and_unrelated_is_lower(scorer):
    same, close, unrelated = scorer.score(
        ["the United Nations", "United Nations organisations", "purple volcanic sandwiches"],
        [["the United Nations"]] * 3,
    )
    assert same == pytest.approx(1.0, abs=1e-4)
    assert unrelated < close < same


def test_deterministic_and_reused(scorer):
    from qagate.scoring.bertscore import _SCORERS, BertScorer

    cands = ["in 1874", "Margit Dunlow", "granite"]
    refs = [["1874"], ["Margit Dunlow", "Dunlow"], ["a granite spur"]]
    first = scorer.score(cands, refs)
    assert BertScorer().score(cands, refs) == first
    assert len(_SCORERS) == 1


def test_max_over_references_and_empty_cases(scorer):
    alone = scorer.score(["red and white"], [["red and white bands"]])[0]
    both = scorer.score(["red and white"], [["an unrelated phrase", "red and white bands"]])[0]
    assert both == pytest.approx(alone, abs=1e-6)
    assert scorer.score(["", "x", ""], [["an answer"], [], []]) == [0.0, 0.0, 1.0]
    with pytest.raises(ValueError):
        scorer.score(["a"], [])


def test_missing_model_folder(tmp_path):
    from qagate.scoring.bertscore import BertScorer

    with pytest.raises(QagateError, match="BERTScore model folder not found"):
        BertScorer(model=str(tmp_path / "none"))
