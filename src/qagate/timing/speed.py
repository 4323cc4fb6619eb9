"""One definition of speed: seconds per question, questions per second, the speed-up, its interval.

Every output (the gate's verdict, the models table, ``assert_gate``, pytest-benchmark's records,
the history) calls these functions, so a number means the same wherever it is printed:

- **seconds per question** of a timing is the mean over its rounds of (round seconds /
  questions): every round answers the same questions, so it is total seconds / total questions;
- **questions per second** is its reciprocal, ``1 / mean``: questions answered / seconds spent
  (never the mean of each round's reciprocal, which weights fast rounds up);
- the **speed-up** of a model over its reference is the ratio of their mean seconds per
  question, ``mean(reference) / mean(model)`` on the same questions: how much less time the
  model needs for the same work, which is also the ratio of their questions per second.

The interval of the speed-up is computed on the log of the ratio and is robust to drift: the
rounds (in the order they ran, the models interleaved ABBA) are cut into 3, 4 and 5
consecutive blocks; each block's own log speed-up is one observation, and the half-width is the
widest Student-t interval of those block means (t with blocks - 1 degrees of freedom). A slow
drift of either model's speed makes consecutive rounds alike, so a bootstrap or a t over single
rounds, which takes them as independent, is too narrow; blocks several rounds long are close to
independent, and the widest of three cuts guards against a drift longer than one block. With
fewer than 6 rounds each round is its own block. The simulation that measured its coverage is
``bench/bench_speed_validity.py``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, TypeVar

from qagate.core.errors import QagateError
from qagate.scoring.stats import Interval

#: how many consecutive blocks of rounds the speed-up interval tries (the widest one is taken)
BLOCKS = (3, 4, 5)

T = TypeVar("T")


def seconds_per_question(rounds: Sequence[float]) -> float:
    """Mean seconds per question over timed rounds (each round's seconds / its questions)."""
    if not rounds:
        raise QagateError("no timed rounds: nothing to take the seconds per question of")
    return math.fsum(rounds) / len(rounds)


def questions_per_second(rounds: Sequence[float]) -> float:
    """Questions answered per second: ``1 / seconds_per_question(rounds)``."""
    return 1.0 / seconds_per_question(rounds)


def speedup(reference: Sequence[float], model: Sequence[float]) -> float:
    """The reference's mean seconds per question / the model's (same questions)."""
    return seconds_per_question(reference) / seconds_per_question(model)


def speedup_interval(reference: Sequence[float], model: Sequence[float], level: float = 0.95) -> Interval:
    """Interval of :func:`speedup` from paired rounds, robust to drift (see the module's doc)."""
    if len(reference) != len(model) or len(reference) < 2:
        raise QagateError("a speed-up interval needs at least two paired rounds")
    if not 0.0 < level < 1.0:
        raise QagateError(f"confidence level must be between 0 and 1, got {level}")
    estimate = speedup(reference, model)
    centre = math.log(estimate)
    n = len(reference)
    cuts = [b for b in BLOCKS if n >= 2 * b] or [n]
    half = 0.0
    for blocks in cuts:
        logs = [math.log(speedup(reference[lo:hi], model[lo:hi])) for lo, hi in _blocks(n, blocks)]
        mean = math.fsum(logs) / blocks
        var = math.fsum((x - mean) ** 2 for x in logs) / (blocks - 1)
        half = max(half, t_quantile(0.5 + level / 2.0, blocks - 1) * math.sqrt(var / blocks))
    return Interval(estimate, math.exp(centre - half), math.exp(centre + half), level)


def mean_interval(rounds: Sequence[float], level: float = 0.95) -> Interval:
    """Interval of :func:`seconds_per_question` of one model's rounds, by the same blocks."""
    if len(rounds) < 2:
        raise QagateError("an interval of seconds per question needs at least two rounds")
    estimate = seconds_per_question(rounds)
    n = len(rounds)
    cuts = [b for b in BLOCKS if n >= 2 * b] or [n]
    half = 0.0
    for blocks in cuts:
        means = [seconds_per_question(rounds[lo:hi]) for lo, hi in _blocks(n, blocks)]
        centre = math.fsum(means) / blocks
        var = math.fsum((x - centre) ** 2 for x in means) / (blocks - 1)
        half = max(half, t_quantile(0.5 + level / 2.0, blocks - 1) * math.sqrt(var / blocks))
    return Interval(estimate, estimate - half, estimate + half, level)


def reciprocal(interval: Interval) -> Interval:
    """An interval of seconds per question as one of questions per second (1/x is monotone)."""
    low = 1.0 / interval.high if interval.high > 0 else math.inf
    high = 1.0 / interval.low if interval.low > 0 else math.inf
    return Interval(1.0 / interval.estimate, low, high, interval.level)


def reference_first(round_index: int) -> bool:
    """Counterbalanced order (ABBA): the reference runs first in rounds 0, 3, 4, 7, 8, ...

    Pairs of rounds alternate R M / M R, so a steady trend (a machine warming up, a load
    growing) adds as much to each model over every four calls instead of always to the second.
    """
    return round_index % 4 in (0, 3)


def spread_sample(examples: Sequence[T], n: int, seed: int = 0, *, key: Any = None) -> list[T]:
    """``n`` examples drawn across the dataset: articles (``key``, the title by default) taken
    in a seeded random order, one question from each in turn, each article's questions in a
    seeded random order; in their dataset order. All of them when ``n`` covers the dataset."""
    if n >= len(examples):
        return list(examples)
    key = key or (lambda example: getattr(example, "title", ""))
    groups: dict[Any, list[int]] = {}
    for index, example in enumerate(examples):
        groups.setdefault(key(example), []).append(index)
    rng = random.Random(seed)
    order = list(groups.values())
    rng.shuffle(order)
    for members in order:
        rng.shuffle(members)
    picked: list[int] = []
    depth = 0
    while len(picked) < n:
        for members in order:
            if depth < len(members):
                picked.append(members[depth])
                if len(picked) == n:
                    break
        depth += 1
    return [examples[i] for i in sorted(picked)]


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` (integer) degrees of freedom (bisection on
    the exact CDF; standard library only)."""
    if not 0.0 < p < 1.0 or df < 1:
        raise ValueError(f"t quantile needs 0 < p < 1 and df >= 1, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        if _t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * max(1.0, high):
            break
    return (low + high) / 2.0


def _t_cdf(t: float, df: int) -> float:
    """Student's t CDF for integer ``df`` (Abramowitz & Stegun 26.7.3 / 26.7.4)."""
    theta = math.atan2(t, math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    if df % 2 == 1:
        total, term = 0.0, c
        if df > 1:
            total = term
            for k in range(3, df, 2):
                term *= c * c * (k - 1) / k
                total += term
        a = (2.0 / math.pi) * (theta + s * total)
    else:
        total, term = 1.0, 1.0
        for k in range(2, df, 2):
            term *= c * c * (k - 1) / k
            total += term
        a = s * total
    return 0.5 + a / 2.0


def _blocks(n: int, blocks: int) -> list[tuple[int, int]]:
    """``blocks`` consecutive, nearly equal slices of ``range(n)``."""
    size, extra = divmod(n, blocks)
    bounds, start = [], 0
    for index in range(blocks):
        stop = start + size + (1 if index < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def timing_value(metric: str, rounds: Sequence[float]) -> float:
    """``seconds_per_question`` or ``questions_per_second`` of timed rounds, by the one definition."""
    if metric == "seconds_per_question":
        return seconds_per_question(rounds)
    if metric == "questions_per_second":
        return questions_per_second(rounds)
    raise ValueError(f"not a timing of rounds: {metric}")


def relative_interval(metric: str, ratio: Interval, teacher_value: float, coef: float) -> Interval:
    """The interval of ``model - coef x teacher`` for a teacher-relative ``seconds_per_question``
    or ``questions_per_second`` rule, from the speed-up's interval, the teacher's mean held: the
    model's questions per second are the teacher's x the speed-up, its seconds per question the
    teacher's / the speed-up."""
    if metric == "questions_per_second":
        bounds = (teacher_value * (ratio.low - coef), teacher_value * (ratio.high - coef))
        estimate = teacher_value * (ratio.estimate - coef)
    elif metric == "seconds_per_question":
        bounds = (teacher_value * (1.0 / ratio.high - coef), teacher_value * (1.0 / ratio.low - coef))
        estimate = teacher_value * (1.0 / ratio.estimate - coef)
    else:
        raise ValueError(f"not a timing of rounds: {metric}")
    return Interval(estimate, min(bounds), max(bounds), ratio.level)
