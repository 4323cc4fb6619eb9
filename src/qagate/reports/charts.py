"""Trend charts as data: scaled points, labelled axis ticks and threshold lines, which the
dashboard template draws as inline SVG (no drawing markup is built in Python).

The y range is chosen so that a small change looks small: it spans the values, the thresholds
and any intervals, is never narrower than a tenth of the values' magnitude, is padded, and ends
on round ticks (a drop from 1.01 to 1.00 moves a few pixels, not the full height).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from qagate.scoring.registry import METRICS, fmt

#: Colours of gate statuses and run outcomes. "new" (a baseline written by this run) is a
#: neutral blue, never the fail red; "incomplete" is never green.
COLOURS = {
    "pass": "#2e7d32",
    "fail": "#c62828",
    "error": "#6a1b9a",
    "undecided": "#ef6c00",
    "undecided (skipped)": "#f6a04d",
    "skipped": "#9e9e9e",
    "new": "#1e88e5",
    "incomplete": "#8d6e63",
    "value": "#37474f",
}
MISSING = "#eeeeee"

#: The narrowest y span, as a fraction of the largest magnitude drawn.
MIN_SPAN = 0.1


@dataclass(frozen=True)
class Point:
    """One run's value: ``run`` is its index among the drawn runs; ``low``/``high`` an interval."""

    run: int
    value: float
    status: str = "value"
    threshold: float | None = None
    low: float | None = None
    high: float | None = None
    title: str = ""


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    colour: str
    title: str


@dataclass(frozen=True)
class Bar:
    """A run's confidence interval as a shaded band: ``decided`` when it lies entirely on one
    side of the threshold (the verdict is pass or fail), else undecided (hatched)."""

    x: float
    y1: float
    y2: float
    colour: str
    width: float = 8.0
    decided: bool = True

    @property
    def left(self) -> float:
        return round(self.x - self.width / 2, 1)

    @property
    def height(self) -> float:
        return round(max(self.y2 - self.y1, 1.0), 1)


@dataclass(frozen=True)
class Key:
    """One legend entry: ``kind`` is how the template draws its swatch."""

    kind: str  # value | threshold | decided | undecided
    text: str
    x: float


@dataclass
class Chart:
    """Everything the template needs to draw one trend: pixel coordinates and tick labels."""

    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    label: str
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    values: str = ""  # polyline points of the values
    thresholds: str = ""  # polyline points of the thresholds, one step per run
    dots: list[Dot] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    legend: list[Key] = field(default_factory=list)
    y_title: str = ""
    x_title: str = "run #"


def nice_step(rough: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``rough``."""
    power = 10.0 ** math.floor(math.log10(rough))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if factor * power >= rough * (1 - 1e-9):
            return factor * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def y_scale(values: Sequence[float], *, metric: str | None = None, ticks: int = 4) -> list[float]:
    """Round tick values from the lowest to the highest, spanning ``values`` with padding.

    The span is at least MIN_SPAN of the largest magnitude; non-negative data never gets a
    negative axis, and a percentage (EM, F1) never one above 100."""
    low, high = min(values), max(values)
    magnitude = max(abs(low), abs(high))
    floor = magnitude * MIN_SPAN if magnitude else 1.0
    if high - low < floor:
        middle = (low + high) / 2
        low, high = middle - floor / 2, middle + floor / 2
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    if min(values) >= 0:
        low = max(low, 0.0)
    info = METRICS.get(metric) if metric else None
    if info is not None and info.unit == "%" and max(values) <= 100:
        high = min(high, 100.0)
    step = nice_step((high - low) / ticks)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    if last == first:
        last += 1
    return [round(i * step, 12) for i in range(first, last + 1)]


def tick_label(value: float, step: float, metric: str | None) -> str:
    """A tick's label with as many decimals as the step needs and the metric's suffix."""
    info = METRICS.get(metric) if metric else None
    if info is not None and info.thousands:
        return fmt(value, metric)
    decimals = 0
    while decimals < 8 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    return f"{value:.{decimals}f}{info.suffix if info else ''}"


def x_ticks(runs: int, *, most: int = 6) -> list[int]:
    """Run indexes to label on the x axis: the first, the last and evenly spaced ones between."""
    if runs <= most:
        return list(range(runs))
    every = math.ceil((runs - 1) / (most - 1))
    picked = list(range(0, runs - 1, every))
    if runs - 1 - picked[-1] <= every / 2:
        picked.pop()
    return picked + [runs - 1]


def trend(
    points: Sequence[Point],
    *,
    runs: int,
    metric: str | None,
    label: str,
    run_labels: Sequence[str] | None = None,
    width: int = 440,
    height: int = 170,
) -> Chart | None:
    """The chart of ``points`` over ``runs`` runs (x: run number, 1 = the oldest drawn), or None
    when there is nothing to draw. Thresholds are drawn as a dashed step per run, intervals as
    shaded bands (decided: solid, undecided: hatched), with a legend of what is drawn."""
    if not points:
        return None
    left, right, top, bottom = 58, 10, 24, 36
    chart = Chart(width, height, left, top, width - right, height - bottom, label)
    info = METRICS.get(metric) if metric else None
    chart.y_title = f"{info.label} ({info.unit})" if info and info.unit else (info.label if info else "")
    drawn = [p.value for p in points]
    drawn += [v for p in points for v in (p.threshold, p.low, p.high) if v is not None]
    ticks = y_scale(drawn, metric=metric)
    low, high = ticks[0], ticks[-1]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    plot_w, plot_h = chart.right - left, chart.bottom - top
    half = plot_w / max(runs - 1, 1) / 2 if runs > 1 else plot_w / 4

    def x(run: int) -> float:
        return round(left + (plot_w * run / (runs - 1) if runs > 1 else plot_w / 2), 1)

    def y(value: float) -> float:
        return round(top + plot_h * (1 - (value - low) / (high - low)), 1)

    chart.y_ticks = [Tick(y(t), tick_label(t, step, metric)) for t in ticks]
    names = list(run_labels) if run_labels is not None else [str(i + 1) for i in range(runs)]
    chart.x_ticks = [Tick(x(i), names[i]) for i in x_ticks(runs)]
    chart.values = " ".join(f"{x(p.run)},{y(p.value)}" for p in points)
    steps = []
    for p in points:
        if p.threshold is not None:
            start, end = max(left, x(p.run) - half), min(chart.right, x(p.run) + half)
            steps.append(f"{round(start, 1)},{y(p.threshold)} {round(end, 1)},{y(p.threshold)}")
    chart.thresholds = " ".join(steps)
    band = round(min(max(half * 0.9, 4.0), 14.0), 1)
    for p in points:
        colour = COLOURS.get(p.status, COLOURS["value"])
        if p.low is not None and p.high is not None:
            decided = p.status in ("pass", "fail")
            chart.bars.append(Bar(x(p.run), y(p.high), y(p.low), colour, band, decided))
        chart.dots.append(Dot(x(p.run), y(p.value), colour, p.title))
    chart.legend = legend(
        [
            ("value", "value"),
            ("threshold", "threshold") if chart.thresholds else None,
            ("decided", "decided interval") if any(b.decided for b in chart.bars) else None,
            ("undecided", "undecided interval") if any(not b.decided for b in chart.bars) else None,
        ],
        left,
    )
    return chart


def legend(entries: Sequence[tuple[str, str] | None], left: float) -> list[Key]:
    """Legend keys laid out left to right along the top (about 6 px per character of 11 px text)."""
    keys, at = [], float(left)
    for entry in entries:
        if entry is not None:
            keys.append(Key(entry[0], entry[1], round(at, 1)))
            at += 32 + 6.2 * len(entry[1])
    return keys
