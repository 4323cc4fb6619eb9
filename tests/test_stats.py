"""Bootstrap intervals: reproducible, honest (coverage), and paired where it should be."""

from __future__ import annotations

import numpy as np
import pytest

from qagate.data import load_dataset
from qagate.scoring.squad import score
from qagate.scoring.stats import Interval, bootstrap_ci, paired_bootstrap, score_intervals


def test_seeded_intervals_are_reproducible():
    values = np.random.default_rng(1).random(500)
    first = bootstrap_ci(values, seed=7)
    assert bootstrap_ci(list(values), seed=7) == first
    assert bootstrap_ci(values, seed=8) != first
    assert first.estimate == pytest.approx(values.mean())
    assert first.low < first.estimate < first.high
    assert first.level == 0.95 and first.estimate in first


def test_higher_level_gives_wider_interval():
    values = np.random.default_rng(2).integers(0, 2, 300)
    assert bootstrap_ci(values, level=0.99).width > bootstrap_ci(values, level=0.8).width


def test_constant_values_give_a_point_interval():
    assert bootstrap_ci([1.0] * 50) == Interval(1.0, 1.0, 1.0, 0.95)


def test_coverage_is_close_to_nominal():
    # 300 samples of Bernoulli(0.6): the 90% interval should contain 0.6 about 90% of the time.
    rng = np.random.default_rng(3)
    hits = sum(
        0.6 in bootstrap_ci(rng.random(200) < 0.6, level=0.9, n_resamples=500, seed=i) for i in range(300)
    )
    assert 0.83 <= hits / 300 <= 0.96


def test_paired_interval_is_narrower_on_correlated_scores():
    rng = np.random.default_rng(4)
    difficulty = rng.random(1000)
    a = (difficulty + 0.05 * rng.standard_normal(1000) > 0.4).astype(float)
    b = (difficulty + 0.05 * rng.standard_normal(1000) > 0.45).astype(float)
    paired = paired_bootstrap(a, b, seed=0)
    unpaired_width = bootstrap_ci(a).width + bootstrap_ci(b).width
    assert paired.estimate == pytest.approx(a.mean() - b.mean())
    assert paired.width < unpaired_width / 3
    assert paired.low > 0  # the 5-point gap is resolved only because the pairing is kept


def test_paired_coef_compares_against_a_fraction():
    a = np.array([1.0, 0.0, 1.0, 1.0])
    b = np.array([1.0, 1.0, 1.0, 1.0])
    interval = paired_bootstrap(a, b, coef=0.5, seed=0)
    assert interval.estimate == pytest.approx(0.75 - 0.5)
    assert paired_bootstrap(a, b, coef=0.5, seed=0) == interval


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: bootstrap_ci([]), "non-empty"),
        (lambda: bootstrap_ci([1.0, float("nan")]), "NaN"),
        (lambda: bootstrap_ci([1.0], level=1.5), "level"),
        (lambda: bootstrap_ci([1.0], n_resamples=0), "n_resamples"),
        (lambda: paired_bootstrap([1.0, 2.0], [1.0]), "equal lengths"),
    ],
)
def test_bad_arguments_are_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_score_intervals_are_in_percent_around_the_official_totals():
    ds = load_dataset("sample")
    answers = {ex.id: (ex.answers[0] if i % 3 else "wrong") for i, ex in enumerate(ds)}
    result = score(ds, answers)
    intervals = score_intervals(result, n_resamples=500)
    assert intervals["exact_match"].estimate == result.exact_match
    assert intervals["f1"].estimate == result.f1
    assert 0 <= intervals["exact_match"].low < result.exact_match < intervals["exact_match"].high
    assert intervals["f1"].high <= 100
    assert score_intervals(result, n_resamples=500) == intervals
