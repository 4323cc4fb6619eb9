"""Bootstrap confidence intervals, and the :class:`Interval` record every interval uses.

``confidence:`` rules on per-question scores are decided by :mod:`qagate.scoring.confseq`
(valid at every n); the percentile bootstrap here serves ``qagate score``'s intervals, the
timed rounds of speed rules, and the bench's comparison with what the gate used before. At a
few questions it is too narrow: a constant sample has a zero-width interval.

Per-question scores are resampled with replacement (percentile bootstrap). Everything is
seeded with a numpy ``Generator``: the same inputs, seed and settings always give the same
interval, so a gate's verdict does not flip from run to run. numpy is imported inside the
functions, keeping ``import qagate.scoring.stats`` light.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from qagate.scoring.squad import Scores

# Resampled index matrices are built in blocks of about this many cells (8 bytes each), so
# that 2,000 resamples of the 10,570-question dev set never hold 170 MB at once.
_BLOCK_CELLS = 4_000_000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its two-sided interval at ``level`` (each side (1 - level) / 2)."""

    estimate: float
    low: float
    high: float
    level: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    @property
    def width(self) -> float:
        return self.high - self.low

    def to_dict(self) -> dict:
        return asdict(self)


def bootstrap_ci(
    values: Sequence[float], *, level: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Interval:
    """Interval of the mean of ``values`` (in the values' own units)."""
    data = _as_vector(values, "values")
    return _interval(data, float(data.mean()), level=level, n_resamples=n_resamples, seed=seed)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    coef: float = 1.0,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """Interval of ``mean(a) - coef * mean(b)`` for two score vectors on the same questions.

    Question indices are resampled jointly, so the variation that both systems share (hard
    and easy questions) cancels: the interval is much narrower than two separate ones, which
    is what lets "student >= 0.95 * teacher" be decided without flaky verdicts.
    """
    x = _as_vector(a, "a")
    y = _as_vector(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"paired samples need equal lengths, got {x.size} and {y.size}")
    diff = x - coef * y
    return _interval(diff, float(x.mean() - coef * y.mean()), level=level, n_resamples=n_resamples, seed=seed)


def score_intervals(
    scores: "Scores", *, level: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> dict[str, Interval]:
    """Intervals for EM and F1 of a :class:`qagate.scoring.squad.Scores`, in percent (0..100).

    The estimates are the official totals themselves (summed as the official script sums),
    so they match ``scores.exact_match`` / ``scores.f1`` exactly.
    """
    out = {}
    for name, table, official in (
        ("exact_match", scores.per_question_em, scores.exact_match),
        ("f1", scores.per_question_f1, scores.f1),
    ):
        interval = bootstrap_ci(
            [100.0 * v for v in table.values()], level=level, n_resamples=n_resamples, seed=seed
        )
        out[name] = replace(interval, estimate=official)
    return out


def _as_vector(values: Sequence[float], name: str):
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or data.size == 0:
        raise ValueError(f"{name} must be a non-empty sequence of numbers")
    if not np.isfinite(data).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return data


def _interval(data, estimate: float, *, level: float, n_resamples: int, seed: int) -> Interval:
    """Percentile interval of the resampled means of ``data``."""
    import numpy as np

    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    rng = np.random.default_rng(seed)
    n = data.size
    means = np.empty(n_resamples, dtype=np.float64)
    block = max(1, _BLOCK_CELLS // n)
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = data[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return Interval(estimate=estimate, low=float(low), high=float(high), level=level)
