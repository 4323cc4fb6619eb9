"""The interval engine of confidence rules: valid at every n, and under looks after every chunk.

Simulations are seeded and small (a few thousand samples, vectorised): each checks an error rate
against its nominal 2.5% per side with a tolerance of about three Monte Carlo standard errors.
"""

from __future__ import annotations

import numpy as np
import pytest

from qagate.gating.judge import (
    Evidence,
    decide_interval,
    judge,
    rule_interval,
    rule_sequence,
    rule_values,
    value_bounds,
)
from qagate.gating.rules import parse_rule
from qagate.scoring.confseq import ConfidenceSequence, batch_bounds, mean_interval

SIDE = 0.025  # one-sided error at level 0.95
REPS = 4000
TOLERANCE = SIDE + 3 * (SIDE * (1 - SIDE) / REPS) ** 0.5  # 0.0324


@pytest.mark.parametrize("n", [1, 5, 20])
def test_all_correct_on_a_few_questions_never_passes_95(n):
    rule = parse_rule("exact_match >= 95", confidence=0.95)
    verdict = judge(rule, "m", Evidence(100.0, per_question=[100.0] * n))
    assert verdict.status == "undecided" and verdict.interval is not None
    assert verdict.interval.low < 0  # the lower bound of EM is below 95
    assert mean_interval([100.0] * n, 0, 100).low < 95


def test_the_lower_bound_of_all_correct_grows_with_n_and_stays_below_the_exact_one():
    lows = [mean_interval([1.0] * n, 0, 1).low for n in (1, 5, 20, 65, 200)]
    assert lows == sorted(lows) and lows[0] == 0.0
    clopper_pearson = [0.025 ** (1 / n) for n in (1, 5, 20, 65, 200)]  # exact one-sided 97.5%
    assert all(low <= exact for low, exact in zip(lows, clopper_pearson))
    assert lows[-1] > 0.97


@pytest.mark.parametrize("n", [5, 20, 65, 200])
@pytest.mark.parametrize("p", [0.5, 0.82, 0.97])
def test_bernoulli_coverage_at_every_n(n, p):
    rng = np.random.default_rng(1000 * n + int(100 * p))
    x = (rng.random((REPS, n)) < p).astype(float)
    low, high = batch_bounds(100 * x, 0, 100)
    assert np.mean(low > 100 * p) <= TOLERANCE
    assert np.mean(high < 100 * p) <= TOLERANCE


@pytest.mark.parametrize("n", [10, 65, 300])
def test_bounded_continuous_and_paired_coverage(n):
    rng = np.random.default_rng(n)
    f1 = 100 * rng.beta(0.4, 0.15, size=(REPS, n))  # F1-like: mass near 100 and near 0
    low, high = batch_bounds(f1, 0, 100)
    mean = 100 * 0.4 / 0.55
    assert np.mean(low > mean) <= TOLERANCE and np.mean(high < mean) <= TOLERANCE
    # paired EM differences student - 0.95 * teacher, in [-95, 100]
    teacher = rng.random((REPS, n)) < 0.86
    student = np.where(rng.random((REPS, n)) < 0.9, teacher, ~teacher)
    diff = 100 * student - 95 * teacher
    truth = 100 * (0.86 * 0.9 + 0.14 * 0.1) - 95 * 0.86
    low, high = batch_bounds(diff, -95, 100)
    assert np.mean(low > truth) <= TOLERANCE and np.mean(high < truth) <= TOLERANCE


def test_looking_after_every_chunk_keeps_the_error_at_most_nominal():
    """Stop at the first look that excludes the truth: the valid sequence stays at 2.5% per side;
    a normal-approximation interval recomputed at every look does not (the check has power)."""
    rng = np.random.default_rng(23)
    reps, n, chunk = 1500, 300, 10
    x = (rng.random((reps, n)) < 0.5).astype(float)
    wrong_low = np.zeros(reps, bool)
    wrong_high = np.zeros(reps, bool)
    naive_low = np.zeros(reps, bool)
    for t in range(chunk, n + 1, chunk):
        low, high = batch_bounds(x[:, :t], 0, 1, sequential=True)
        wrong_low |= low > 0.5
        wrong_high |= high < 0.5
        mean = x[:, :t].mean(axis=1)
        se = np.sqrt(np.maximum(mean * (1 - mean), 1e-12) / t)
        naive_low |= mean - 1.96 * se > 0.5
    tolerance = SIDE + 3 * (SIDE * (1 - SIDE) / reps) ** 0.5
    assert wrong_low.mean() <= tolerance and wrong_high.mean() <= tolerance
    assert naive_low.mean() > 2 * SIDE


def test_updating_in_chunks_is_the_sequence_looked_at_each_chunk():
    rng = np.random.default_rng(5)
    values = 100 * rng.random(300)
    sequence = ConfidenceSequence(0, 100)
    previous = None
    for start in range(0, 300, 60):
        interval = sequence.update(values[start : start + 60])
        low, high = batch_bounds(values[None, : start + 60], 0, 100, sequential=True)
        assert interval.low >= low[0] - 1e-9 and interval.high <= high[0] + 1e-9
        if previous is not None:  # the running intersection never widens
            assert interval.low >= previous.low and interval.high <= previous.high
        previous = interval
    assert sequence.n == 300 and sequence.interval().estimate == pytest.approx(values.mean())
    planned = ConfidenceSequence(0, 100, horizon=300)
    for start in range(0, 300, 100):
        planned.update(values[start : start + 100])
    assert planned.interval().low >= mean_interval(values, 0, 100).low - 1e-9


def test_intervals_shrink_with_n():
    rng = np.random.default_rng(7)
    values = 100.0 * (rng.random(4000) < 0.8)
    widths = [mean_interval(values[:n], 0, 100).width for n in (20, 65, 200, 1000, 4000)]
    assert widths == sorted(widths, reverse=True)
    assert widths[-1] < 4.0  # about 1.4x the normal approximation's 2.5 at n = 4000


def test_the_judge_pairs_against_the_teacher_in_the_metric_range():
    rule = parse_rule("exact_match >= 0.95 * teacher", confidence=0.95)
    assert value_bounds(rule) == (0.0, 100.0)
    assert value_bounds(parse_rule("drop(f1@addsent) <= teacher + 5", confidence=0.95)) == (-100.0, 100.0)
    assert value_bounds(parse_rule("invariance@question_noise >= 0.9", confidence=0.95)) == (0.0, 1.0)
    rng = np.random.default_rng(0)
    teacher = 100.0 * (rng.random(2000) < 0.86)
    student = np.where(rng.random(2000) < 0.97, teacher, 100.0 - teacher)
    interval = rule_interval(rule, student, teacher)
    assert interval.estimate == pytest.approx(student.mean() - 0.95 * teacher.mean())
    assert interval.low < interval.estimate < interval.high and interval.level == 0.95
    assert rule_interval(rule, student, teacher, seed=0) == interval  # deterministic
    with pytest.raises(ValueError, match="equal lengths"):
        rule_interval(rule, student, teacher[:-1])


def test_a_sequential_rule_is_looks_of_the_same_sequence():
    """Chunks of questions until the rule is decided: a fixed-n verdict is the look at the end."""
    rule = parse_rule("f1 >= 0.9 * teacher", confidence=0.95)
    rng = np.random.default_rng(3)
    teacher = 100 * rng.beta(0.5, 0.12, 5000)
    student = np.clip(teacher - 100 * rng.beta(0.2, 3.0, 5000), 0, 100)  # about 6 points worse
    values = rule_values(rule, student, teacher)
    assert rule_sequence(rule).lo == -90.0 and rule_sequence(rule).hi == 100.0
    sequence = rule_sequence(rule)  # open-ended: looks after every chunk keep the 2.5% per side
    decided = None
    for start in range(0, 5000, 256):
        interval = sequence.update(values[start : start + 256])
        status = decide_interval(rule.op, interval.low - rule.offset, interval.high - rule.offset)
        if status != "undecided":
            decided = (status, sequence.n)
            break
    assert decided is not None and decided[0] == "pass" and decided[1] < 5000
    one_look = rule_sequence(rule, horizon=5000)
    one_look.update(values[np.random.default_rng(0).permutation(5000)])
    fixed, look = rule_interval(rule, student, teacher), one_look.interval()
    assert (fixed.low, fixed.high) == (look.low, look.high)
    assert fixed.estimate == pytest.approx(look.estimate)
    with pytest.raises(ValueError, match="no confidence level"):
        rule_sequence(parse_rule("f1 >= 0.9 * teacher"))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ConfidenceSequence(1, 1), "lo < hi"),
        (lambda: ConfidenceSequence(0, 1, level=1.0), "level"),
        (lambda: ConfidenceSequence(0, 1, horizon=0), "horizon"),
        (lambda: mean_interval([0.5, 2.0], 0, 1), r"lie in \[0, 1\]"),
        (lambda: mean_interval([0.5, float("nan")], 0, 1), "NaN"),
        (lambda: batch_bounds([0.5], 0, 1), "2-D"),
    ],
)
def test_bad_input_is_one_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
