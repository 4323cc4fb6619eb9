"""Confidence sequences for the mean of bounded values: one interval engine, valid at every n.

Every ``confidence:`` rule on per-question scores is decided on an interval from this module,
and a sequential rule (look after every chunk of questions, stop when decided) is the same
engine looked at more than once: a fixed-n verdict is one look.

What it promises. The values lie in a known range ``[lo, hi]`` (EM and F1 in 0..100, a paired
difference ``student - coef * teacher`` in ``[-coef * 100, 100]``). If they are independent
draws with mean ``mu`` (a random sample of questions), then at ``level`` 0.95

    P(some look ever has lower > mu) <= 2.5%   and   P(some look ever has upper < mu) <= 2.5%

for every n and however many looks are taken, with no normal approximation: a verdict that
passes on the lower bound is wrong at most 2.5% of the time, at 5 questions or at 10,000.

Derivation (Waudby-Smith & Ramdas, "Estimating means of bounded random variables by betting",
JRSS-B 86(1), 2024; arXiv:2010.09686, sections 4-5). Rescale to ``x`` in [0, 1]. For a
candidate mean ``m``, a gambler starts with capital 1 and bets a predictable fraction
``lam_i`` (fixed before ``x_i`` is seen) on ``x_i > m``:

    K_t(m) = prod_{i <= t} (1 + lam_i (x_i - m)),   0 <= lam_i <= c / m  (c < 1 keeps K > 0).

If the true mean is ``m``, ``K_t(m)`` is a nonnegative martingale with ``K_0 = 1``, so by
Ville's inequality ``P(exists t: K_t(m) >= 2 / alpha) <= alpha / 2``. The lower bound is the
largest ``m`` the gambler has refuted, ``sup {m : K_t(m) >= 2 / alpha}`` (``K_t`` decreases in
``m``, so a bisection finds it); the upper bound is the same construction on ``1 - x`` (the
paper's hedged capital with theta = 1/2 is exactly these two one-sided tests at alpha / 2).
Any predictable bets are valid; the power comes from the predictable plug-in (section 5.1):

    lam_t = sqrt(2 log(2 / alpha) / (s2_{t-1} * t log(1 + t)))    (open-ended sequence), or
    lam_t = sqrt(2 log(2 / alpha) / (s2_{t-1} * N))                (a planned horizon N),

with ``s2`` the running variance regularised by one pseudo-observation (mean 1/2, variance
1/4), truncated at ``c / m`` (``c`` = 3/4). Tuning the bets to a horizon keeps the whole
sequence valid; it only concentrates the power near N, which is what a fixed-n verdict wants
(:func:`mean_interval` tunes to the sample's own size). The bounds at successive looks are
intersected (running max of lower bounds, min of upper bounds), which stays valid.

Clusters (``cluster: article``). When questions come in clusters (SQuAD: articles and
paragraphs) they are not independent, and the sampling unit is the cluster. Cluster ``j``
enters the sequence as one value: its mean ``x_j`` with the weight ``w_j = N_j / B`` (its
question count over a bound ``B`` on any cluster's count), and the gambler's factor becomes
``1 + lam_j w_j (x_j - m)``. ``w_j (x_j - m) = (S_j - m N_j) / B`` is the cluster's sum minus
``m`` per question, scaled by the bound, so it has mean 0 exactly when ``m = E[S] / E[N]``,
the question-weighted mean over clusters drawn like these (what the rule's value estimates),
and it lies in ``[-m, 1 - m]``, so the truncation ``lam <= c / m`` keeps the capital positive:
the argument above goes through with independent clusters as the draws. (The same scaling
turns a batch's total into a bounded value in batch-level risk-limiting audits: Stark,
"Sets of half-average nulls generate risk-limiting audits: SHANGRLA", 2020.) The bets use
the running variance of ``w_j x_j`` around the weighted mean; the estimate is the weighted
mean, the question-weighted mean of the clusters seen. ``B`` must bound every cluster and be
fixed before the first bet: :mod:`qagate.gating.clusters` takes the dataset's largest cluster,
known before any answer is scored. With every weight 1 this is the question-level sequence
above, exactly.

The maintained ``confseq`` package implements the same construction on a grid (a source
distribution with a C++ build and matplotlib, pandas, scipy and pytest as run-time
dependencies); this module is numpy only and searches the root instead of a grid, so the
bounds are exact to about 1e-12 of the range and the verdict does not depend on a grid.

numpy is imported inside the functions, keeping ``import qagate.scoring.confseq`` light.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from qagate.scoring.stats import Interval

TRUNCATION = 0.75  # c: a bet never stakes more than 3/4 of what a loss could take
_ITERATIONS = 48  # bisection steps: 2**-48 of the range
_PRIOR_MEAN, _PRIOR_VARIANCE = 0.5, 0.25


class ConfidenceSequence:
    """An anytime-valid interval for the mean of values in ``[lo, hi]``, updated in chunks.

    ``update(chunk)`` adds values (in order) and returns the interval after them; checking the
    interval after every chunk and stopping when it decides keeps each one-sided error at most
    ``(1 - level) / 2``. ``horizon``: the number of values the bets are tuned for (None: an
    open-ended sequence). The interval is in the values' own units. ``update(chunk, weights)``
    adds clusters instead: each value a cluster's mean, each weight its size over a bound on
    any cluster's size (in (0, 1]); the estimate is then the weighted mean.
    """

    def __init__(self, lo: float, hi: float, level: float = 0.95, *, horizon: int | None = None) -> None:
        _check_setup(lo, hi, level, horizon)
        self.lo, self.hi, self.level, self.horizon = float(lo), float(hi), float(level), horizon
        self._x: list[Any] = []  # rescaled chunks
        self._w: list[Any] = []  # their weights
        self._bets: list[Any] = []
        self._state = (0, 0.0, 0.0, 0.0)  # values seen, weighted sum, sum of weights, squares
        self._low, self._high = 0.0, 1.0  # running intersection, rescaled

    @property
    def n(self) -> int:
        return self._state[0]

    def update(self, values: "Sequence[float] | Any", weights: "Sequence[float] | Any" = None) -> Interval:
        """Add ``values`` (one chunk, in order; ``weights``: cluster weights) and return the
        interval after them."""
        import numpy as np

        x = _rescale(values, self.lo, self.hi)
        w = _weights(weights, x.shape)
        if x.size:
            bets, self._state = _bets(x, w, self._state, self.level, self.horizon)
            self._x.append(x)
            self._w.append(w)
            self._bets.append(bets)
            every, lam = np.concatenate(self._x), np.concatenate(self._bets)
            low, high = _bounds(every, np.concatenate(self._w), lam, self.level)
            self._low, self._high = max(self._low, float(low)), min(self._high, float(high))
        return self.interval()

    def interval(self) -> Interval:
        """The interval after every value so far (the whole range before any)."""
        span = self.hi - self.lo
        if self.n == 0:
            return Interval(math.nan, self.lo, self.hi, self.level)
        mean = self._state[1] / self._state[2] if self._state[2] > 0 else math.nan
        return Interval(
            self.lo + span * mean, self.lo + span * self._low, self.lo + span * self._high, self.level
        )


def mean_interval(
    values: "Sequence[float] | Any",
    lo: float,
    hi: float,
    level: float = 0.95,
    *,
    weights: "Sequence[float] | Any" = None,
) -> Interval:
    """One look at all of ``values`` (in ``[lo, hi]``): the fixed-n interval of their mean
    (``weights``: of clusters' weighted mean, see :class:`ConfidenceSequence`).

    The bets are tuned to ``len(values)``; the interval is the sequence's after the last
    value, so it is valid at this n (and would have been at any earlier look).
    """
    sequence = ConfidenceSequence(lo, hi, level, horizon=max(1, len(values)))
    return sequence.update(values, weights)


def batch_bounds(
    values: Any,
    lo: float,
    hi: float,
    level: float = 0.95,
    *,
    sequential: bool = False,
    horizon: "int | Any" = None,
    weights: Any = None,
) -> tuple[Any, Any]:
    """The bounds for each row of a 2-D array (one sample per row, in order), vectorised.

    By default each row gets :func:`mean_interval`'s bounds (bets tuned to the row length);
    ``sequential=True`` gives the open-ended sequence's bounds after the row's last value
    (without the running intersection), so the bounds of a prefix are those of a look taken
    there; with ``horizon`` too, the bets are tuned to that many values (a sequence planned for
    ``horizon`` questions, looked at after this prefix). ``weights`` (same shape): cluster
    weights; a weight of 0 pads a shorter row (it moves no capital), and ``horizon`` may then
    be one count per row. The bench and the tests simulate with it: the same bets and root
    search as the judge.
    """
    import numpy as np

    x = _rescale(values, lo, hi)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError("batch_bounds needs a 2-D array with one sample per row")
    w = _weights(weights, x.shape)
    tuned: Any = horizon if sequential else (x.shape[1] if horizon is None else horizon)
    if tuned is not None and not np.isscalar(tuned):
        tuned = np.asarray(tuned, dtype=np.float64).reshape(-1, 1)
        if tuned.shape[0] != x.shape[0] or (tuned < 1).any():
            raise ValueError("a horizon per row needs one positive count for each row")
        _check_setup(lo, hi, level, None)
    else:
        _check_setup(lo, hi, level, horizon if sequential and isinstance(horizon, int) else None)
    zeros = np.zeros(x.shape[0])
    bets, _ = _bets(x, w, (0, zeros, zeros, zeros), level, tuned)
    low, high = _bounds(x, w, bets, level)
    span = hi - lo
    return lo + span * low, lo + span * high


def _check_setup(lo: float, hi: float, level: float, horizon: int | None) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"the range needs finite lo < hi, got [{lo}, {hi}]")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if horizon is not None and horizon < 1:
        raise ValueError(f"horizon must be a positive number of values, got {horizon}")


def _rescale(values: Any, lo: float, hi: float) -> Any:
    """``values`` mapped from ``[lo, hi]`` to [0, 1]; ValueError for values outside the range."""
    import numpy as np

    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"the range needs finite lo < hi, got [{lo}, {hi}]")
    data = np.asarray(values, dtype=np.float64)
    if not np.isfinite(data).all():
        raise ValueError("values contain NaN or infinite values")
    span = hi - lo
    slack = 1e-9 * span
    if data.size and (data.min() < lo - slack or data.max() > hi + slack):
        raise ValueError(
            f"values must lie in [{lo:g}, {hi:g}] (the metric's range), got {data.min():g}..{data.max():g}"
        )
    return np.clip((data - lo) / span, 0.0, 1.0)


def _weights(weights: Any, shape: tuple[int, ...]) -> Any:
    """Cluster weights in [0, 1] of ``shape`` (all 1: one question per value); ValueError else."""
    import numpy as np

    if weights is None:
        return np.ones(shape)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != shape:
        raise ValueError(f"weights need the values' shape {shape}, got {w.shape}")
    if w.size and (not np.isfinite(w).all() or w.min() < 0.0 or w.max() > 1.0 + 1e-12):
        raise ValueError("weights must lie in [0, 1] (a cluster's size over the largest cluster's)")
    return np.minimum(w, 1.0)


def _bets(
    x: Any, w: Any, state: tuple[Any, Any, Any, Any], level: float, horizon: "int | Any | None"
) -> tuple[Any, Any]:
    """Predictable plug-in bets for ``x`` with weights ``w`` (last axis = time), continuing from
    ``state``.

    ``state`` = (values already seen, their weighted sum, the sum of their weights, the sum of
    squared weighted deviations from the running weighted mean). Bet t uses only values before
    t. With every weight 1 these are the question-level bets of Waudby-Smith & Ramdas.
    """
    import numpy as np

    seen, total, mass, squares = state
    k = x.shape[-1]
    t = seen + np.arange(1, k + 1)  # 1-based time of each value
    sums = np.expand_dims(np.asarray(total), -1) + np.cumsum(w * x, axis=-1)
    masses = np.expand_dims(np.asarray(mass), -1) + np.cumsum(w, axis=-1)
    means = (_PRIOR_MEAN + sums) / (masses + 1)  # regularised running mean after value t
    squares_t = np.expand_dims(np.asarray(squares), -1) + np.cumsum((w * (x - means)) ** 2, axis=-1)
    variances = (_PRIOR_VARIANCE + squares_t) / (t + 1)
    previous = np.concatenate(
        [np.expand_dims((_PRIOR_VARIANCE + np.asarray(squares)) / (seen + 1), -1), variances[..., :-1]],
        axis=-1,
    )
    log_term = 2.0 * math.log(2.0 / (1.0 - level))
    scale = horizon if horizon is not None else t * np.log1p(t)
    bets = np.sqrt(log_term / (np.maximum(previous, 1e-12) * scale))
    return bets, (seen + k, sums[..., -1], masses[..., -1], squares_t[..., -1])


def _bounds(x: Any, w: Any, bets: Any, level: float) -> tuple[Any, Any]:
    """Lower and upper bounds (rescaled) of the (weighted) mean of ``x`` along its last axis."""
    threshold = math.log(2.0 / (1.0 - level))
    return _lower(x, w, bets, threshold), 1.0 - _lower(1.0 - x, w, bets, threshold)


def _lower(x: Any, w: Any, bets: Any, threshold: float) -> Any:
    """``sup {m : log K(m) >= threshold}`` by bisection (K decreases in m), conservatively.

    The returned value is the largest candidate known to be refuted (0 when none is), so the
    bound is never above the exact one.
    """
    import numpy as np

    shape = x.shape[:-1]
    low, high = np.zeros(shape), np.ones(shape)
    for _ in range(_ITERATIONS):
        mid = (low + high) / 2.0
        m = np.expand_dims(mid, -1)
        capital = np.log1p(np.minimum(bets, TRUNCATION / m) * w * (x - m)).sum(axis=-1)
        refuted = capital >= threshold
        low = np.where(refuted, mid, low)
        high = np.where(refuted, high, mid)
    return low
