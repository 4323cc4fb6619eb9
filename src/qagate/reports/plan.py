"""How many questions a confidence rule needs: the arithmetic behind ``qagate plan``.

From a pilot sample of a rule's per-question quantity (the values its interval is about: the
paired differences ``model - coef * teacher``, or the model's own values), at the pilot's own
margin or at a margin the user names, two numbers come from the judge's interval engine itself,
never from a normal approximation:

- ``fixed-n``: the fewest questions on which a one-look verdict decides, from
  :func:`qagate.reports.explain.what_decides` (the number an UNDECIDED report quotes);
- for a sequential rule, where its loop stops: :class:`qagate.gating.sequential.SequentialLoop`
  with the rule's schedule, its bets tuned to the questions it may use, run once on questions
  like the pilot's (:func:`qagate.reports.explain.like_sample`), the typical run.

A named margin moves the pilot's mean there by exponential tilting (the reweighting of the
pilot's questions closest to them, in Kullback-Leibler divergence, whose mean is the margin:
it stays inside the values' range, which the engine needs, and keeps their spread where the
shift is small), then evenly spaced quantiles of the reweighted questions are the sample.
numpy is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from qagate.gating.rules import Rule
    from qagate.gating.sequential import SequentialSpec


@dataclass(frozen=True)
class Plan:
    """What a rule needs at one margin, from a pilot of ``pilot`` questions."""

    model: str
    rule: "Rule"
    pilot: int
    sd: float
    margin: float  # the rule's (left - right) at which it is planned
    observed: float  # the pilot's own margin
    fixed: dict[str, Any]  # what_decides' answer
    sequential: "SequentialSpec | None" = None
    available: int | None = None  # the questions a sequential rule may use (its dataset)
    stops: int | None = None  # ... and where its loop stops on questions like these
    stop_status: str | None = None


def at_margin(rule: "Rule", values: Any, margin: float) -> Any:
    """A sample like ``values`` whose mean minus the rule's offset is ``margin`` (see the module);
    ValueError when no reweighting of these values reaches it."""
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    target = margin + rule.offset
    low, high = float(data.min()), float(data.max())
    if not low < target < high:
        raise ValueError(
            f"a margin of {margin:+g} is outside what the pilot's questions can reach "
            f"({low - rule.offset:+.4g} to {high - rule.offset:+.4g})"
        )
    span = high - low
    scaled = (data - data.mean()) / span

    def tilted_mean(theta: float) -> float:
        weights = np.exp(theta * (scaled - scaled.max() if theta > 0 else scaled - scaled.min()))
        return float((weights * data).sum() / weights.sum())

    lo_theta, hi_theta = -1.0, 1.0
    while tilted_mean(lo_theta) > target:
        lo_theta *= 2
    while tilted_mean(hi_theta) < target:
        hi_theta *= 2
    for _ in range(200):
        middle = (lo_theta + hi_theta) / 2
        if tilted_mean(middle) < target:
            lo_theta = middle
        else:
            hi_theta = middle
    theta = (lo_theta + hi_theta) / 2
    weights = np.exp(theta * (scaled - scaled.max() if theta > 0 else scaled - scaled.min()))
    order = np.argsort(data, kind="stable")
    cumulative = np.cumsum(weights[order]) / weights.sum()
    positions = (np.arange(data.size) + 0.5) / data.size
    picked = np.minimum(np.searchsorted(cumulative, positions), data.size - 1)
    return data[order][picked]


def plan_rule(
    model: str,
    rule: "Rule",
    values: Any,
    *,
    margin: float | None = None,
    sequential: "SequentialSpec | None" = None,
    available: int | None = None,
) -> Plan:
    """What ``rule`` needs, from the pilot ``values`` (its per-question quantity), at ``margin``
    (None: the pilot's own); for a ``sequential`` rule also where its loop stops when it may use
    ``available`` questions (its dataset; default the pilot's size)."""
    import numpy as np

    from qagate.gating.sequential import SequentialLoop
    from qagate.reports.explain import like_sample, what_decides

    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or data.size < 2:
        raise ValueError("a pilot needs the values of at least two questions")
    observed = float(data.mean()) - rule.offset
    sample = data if margin is None else at_margin(rule, data, margin)
    fixed = what_decides(rule, sample)
    stops = stop_status = None
    if sequential is not None:
        total = int(available or data.size)
        loop = SequentialLoop([rule], sequential, total)
        questions = like_sample(sample, loop.stop)
        for start, stop in loop.chunks():
            loop.update(stop, {rule.id: questions[start:stop]})
        decision = loop.decisions()[rule.id]
        stops, stop_status = decision.used, decision.status
    return Plan(
        model,
        rule,
        int(data.size),
        float(data.std(ddof=1)),
        observed if margin is None else float(margin),
        observed,
        fixed,
        sequential,
        int(available or data.size) if sequential is not None else None,
        stops,
        stop_status,
    )


def render(plans: Sequence[Plan], *, margin: float | None) -> list[str]:
    """The table ``qagate plan`` prints: one row per (model, rule)."""
    from qagate.reports.explain import about_questions
    from qagate.reports.terminal import _table

    rows = [
        [
            "model",
            "rule",
            "pilot",
            "sd",
            "margin",
            "fixed-n: questions to decide",
            "sequential: stops after",
        ]
    ]
    for plan in plans:
        decided = plan.fixed.get("questions")
        if decided is not None:
            fixed = f"about {about_questions(int(decided))} ({str(plan.fixed.get('verdict', '?')).upper()})"
        elif str(plan.fixed.get("reason", "")).startswith("not decided"):
            fixed = f"none up to {int(plan.fixed.get('cap', 0)):,}"
        else:
            fixed = "never (on the threshold)"
        if plan.sequential is None:
            sequential = "- (fixed-n rule)"
        elif plan.stop_status == "undecided":
            sequential = f"undecided on all {plan.available:,}"
        else:
            sequential = f"{plan.stops:,} of {plan.available:,} ({str(plan.stop_status).upper()})"
        rows.append(
            [
                plan.model,
                plan.rule.id,
                f"{plan.pilot:,}",
                f"{plan.sd:.2f}",
                f"{plan.margin:+.2f}" + ("" if margin is not None else " (observed)"),
                fixed,
                sequential,
            ]
        )
    return _table(rows).splitlines()
