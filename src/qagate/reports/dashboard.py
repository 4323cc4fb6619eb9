"""The dashboard's front page: each run's outcome, a run-by-gate matrix (newest first), the
trend of every gated value against its threshold, the speed-up, flaky gates and steps (inline
SVG; no scripts, no network). ``qagate.reports.site`` adds a page per run and writes the files.

The page is the jinja2 template ``templates/dashboard.html.j2`` with autoescape on: every
string a run recorded (model names, rule ids, datasets, branches, labels) is user input and is
escaped by the template, never by hand. This module only shapes the runs into rows and charts.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2

from qagate.reports.changes import flaky, steps, value_interval, value_interval_text
from qagate.reports.charts import COLOURS, MISSING, Chart, Point, trend
from qagate.scoring.registry import METRICS, fmt
from qagate.store.history import BASELINE_ACTIONS, STATUS_ORDER, baseline_changes, is_partial

#: The short mark inside a grid cell (the colour is never the only cue).
CELL_TEXT = {
    "pass": "\u2713",
    "fail": "\u2717",
    "error": "!",
    "undecided": "?",
    "undecided (skipped)": "?",
    "skipped": "\u2013",
    "new": "NEW",
}
#: Model metrics drawn over the runs (sizes are constant per model and left out).
TREND_METRICS = ("exact_match", "f1", "bertscore_f1", "seconds_per_question", "speedup")


@dataclass
class Cell:
    colour: str
    text: str
    title: str


@dataclass
class GateRow:
    """One trend: a (model, metric, dataset), whatever its rule's threshold was in each run."""

    model: str
    metric: str
    dataset: str
    variant: str
    rules: list[str]
    cells: list[Cell | None]
    chart: Chart | None
    latest: str
    latest_colour: str

    @property
    def metric_label(self) -> str:
        info = METRICS.get(self.metric)
        return info.label if info else self.metric

    @property
    def column(self) -> str:
        """The matrix column heading: model, metric (and what tells its rules apart), dataset."""
        metric = f"{self.metric_label} {self.variant}".strip()
        return f"{self.model} \u00b7 {metric} \u00b7 {self.dataset}"


@dataclass
class RunView:
    """A run as the runs table and the grid header show it."""

    number: int
    started: str
    outcome: str
    word: str
    colour: str
    counts: dict[str, int]
    commit: str
    branch: str
    label: str
    host: str
    duration: str
    partial: bool
    baselines: dict[str, list[str]] = field(default_factory=dict)
    page: str = ""  # the run's own page, relative to the front page ("" when there is none)

    @property
    def other(self) -> int:
        return sum(n for status, n in self.counts.items() if status not in ("pass", "fail"))

    @property
    def other_title(self) -> str:
        return ", ".join(
            f"{status} {n}" for status, n in self.counts.items() if status not in ("pass", "fail")
        )

    @property
    def baseline_text(self) -> str:
        return ", ".join(f"{len(self.baselines[a])} {a}" for a in BASELINE_ACTIONS if a in self.baselines)

    @property
    def baseline_title(self) -> str:
        return "; ".join(
            f"{a}: {', '.join(self.baselines[a])}" for a in BASELINE_ACTIONS if a in self.baselines
        )


def render(
    runs: Sequence[Mapping[str, Any]],
    *,
    title: str = "qagate run history",
    last: int = 50,
    skipped_lines: Iterable[int] = (),
    run_pages: bool = False,
) -> str:
    """The dashboard page for ``runs`` (oldest first); only the newest ``last`` are drawn.
    ``run_pages``: link each run to ``runs/<page_name>`` (written by qagate.reports.site)."""
    shown = list(runs)[-last:]
    views = [run_view(number, run) for number, run in enumerate(shown, start=1)]
    if run_pages:
        for view, run in zip(views, shown):
            view.page = f"runs/{page_name(run, view.number)}"
    labels = [str(view.number) for view in views]
    metrics = metric_rows(shown, labels)
    return (
        environment()
        .get_template("dashboard.html.j2")
        .render(
            title=title,
            total=len(runs),
            runs=views,
            newest_first=list(reversed(views)),
            latest=views[-1] if views else None,
            gates=gate_rows(shown, labels),
            metrics=[row for row in metrics if row.metric != "speedup"],
            speedups=[row for row in metrics if row.metric == "speedup"],
            flaky=flaky(shown),
            steps=steps(shown),
            skipped=list(skipped_lines),
            colours=COLOURS,
            cell_text=CELL_TEXT,
            inf=float("inf"),
            missing=MISSING,
            statuses=STATUS_ORDER,
            generated=time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        )
    )


def page_name(run: Mapping[str, Any], number: int) -> str:
    """The file name of a run's page: its id when that is a safe file name, else its number."""
    run_id = str(run.get("id") or "")
    return f"{run_id}.html" if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id) else f"run-{number}.html"


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Templates shipped in the package (package-data), escaped on output."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("qagate.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    return env


def run_view(number: int, run: Mapping[str, Any]) -> RunView:
    """A history row as the tables show it (absent or damaged fields shown empty)."""
    outcome = str(run.get("outcome", "?"))
    counts = _mapping(run.get("counts"))
    git = _mapping(run.get("git"))
    commit = str(git.get("commit") or "")[:10] + ("+" if git.get("dirty") else "")
    return RunView(
        number,
        str(run.get("started", "")),
        outcome,
        outcome.upper(),
        COLOURS.get(outcome, COLOURS["skipped"]),
        {str(k): v for k, v in counts.items() if isinstance(v, int)},
        commit or "-",
        str(git.get("branch") or ""),
        str(run.get("label") or ""),
        str(run.get("host") or ""),
        _duration(run.get("duration_s")),
        is_partial(run),
        baseline_changes(run),
    )


# --- gate trends ------------------------------------------------------------------------------


def gate_rows(runs: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> list[GateRow]:
    """One row per (model, metric, dataset) over ``runs``, so editing a rule's threshold (which
    changes its id) keeps its trend. Only when one run judged the same triple twice are the rules
    told apart: by reference (teacher, baseline, a number), then by rule id."""
    groups: dict[tuple[str, str, str], list[list[Mapping[str, Any]]]] = {}
    for index, run in enumerate(runs):
        for result in run.get("results") or []:
            if isinstance(result, Mapping):
                key = (str(result.get("model")), _metric(result), str(result.get("dataset")))
                groups.setdefault(key, [[] for _ in runs])[index].append(result)
    rows = []
    for (model, metric, dataset), per_run in sorted(groups.items()):
        for variant, series in sorted(_split(per_run, 0).items()):
            rows.append(_gate_row(model, metric, dataset, variant, series, runs, labels))
    return rows


def _reference(result: Mapping[str, Any]) -> str:
    found = re.search(r"teacher|baseline", str(result.get("rule", "")))
    return f"vs {found.group()}" if found else "absolute"


_LEVELS = (_reference, lambda r: str(r.get("rule")), lambda r: str(r.get("nodeid")))


def _split(per_run: list[list[Mapping[str, Any]]], level: int) -> dict[str, list[Mapping[str, Any] | None]]:
    """Series named by what tells them apart ("" for one); each run gives a series one result."""
    if level == len(_LEVELS) or all(len(results) <= 1 for results in per_run):
        return {"": [results[-1] if results else None for results in per_run]}
    parts: dict[str, list[list[Mapping[str, Any]]]] = {}
    for index, results in enumerate(per_run):
        for result in results:
            parts.setdefault(_LEVELS[level](result), [[] for _ in per_run])[index].append(result)
    out = {}
    for name, part in parts.items():
        for inner, series in _split(part, level + 1).items():
            out[f"{name} {inner}".strip()] = series
    return out


def _gate_row(
    model: str,
    metric: str,
    dataset: str,
    variant: str,
    series: list[Mapping[str, Any] | None],
    runs: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
) -> GateRow:
    cells: list[Cell | None] = []
    points, rules = [], []
    for index, result in enumerate(series):
        if result is None:
            cells.append(None)
            continue
        status = str(result.get("status"))
        rule = str(result.get("rule", ""))
        if rule not in rules:
            rules.append(rule)
        tip = f"{gate_text(result, metric)} ({rule}); run {labels[index]}, {runs[index].get('started', '')}"
        cells.append(Cell(COLOURS.get(status, MISSING), CELL_TEXT.get(status, status[:1].upper()), tip))
        value = _float(result.get("obtained"))
        if value is not None:
            low, high = value_interval(result) or (None, None)
            points.append(Point(index, value, status, _float(result.get("threshold")), low, high, title=tip))
    last = next(r for r in reversed(series) if r is not None)
    status = str(last.get("status"))
    info = METRICS.get(metric)
    name = " ".join(part for part in (model, info.label if info else metric, dataset, variant) if part)
    chart = trend(
        points, runs=len(runs), metric=metric, label=f"{name}: value and threshold by run", run_labels=labels
    )
    return GateRow(
        model,
        metric,
        dataset,
        variant,
        rules,
        cells,
        chart,
        f"{fmt(_float(last.get('obtained')), metric)} {status.upper()}{_interval(last)}",
        COLOURS.get(status, MISSING),
    )


def gate_text(result: Mapping[str, Any], metric: str | None = None) -> str:
    """``FAIL: 74.0000 >= 75.0000`` and, when recorded, the interval that left it undecided and
    the reason a gate was skipped."""
    status = str(result.get("status"))
    obtained, threshold = _float(result.get("obtained")), _float(result.get("threshold"))
    text = status.upper()
    if obtained is not None or threshold is not None:
        text += f": {fmt(obtained, metric)} {result.get('op', '')} {fmt(threshold, metric)}"
    if status == "new":
        text += ", a baseline written by this run: review it"
    if result.get("reason"):
        text += f"; {result['reason']}"
    return text + _interval(result)


def _interval(result: Mapping[str, Any]) -> str:
    """The interval on the value's scale, as the trend draws it (the history keeps the margin's)."""
    text = value_interval_text(result)
    return f", {text}" if text else ""


def _metric(result: Mapping[str, Any]) -> str:
    if result.get("metric"):
        return str(result["metric"])
    found = re.match(r"[A-Za-z_]+", str(result.get("rule", "")))
    return found.group() if found else "?"


# --- model metrics ----------------------------------------------------------------------------


@dataclass
class MetricRow:
    model: str
    dataset: str
    metric: str
    label: str
    chart: Chart | None
    latest: str


def metric_rows(runs: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> list[MetricRow]:
    """The trend of each model's TREND_METRICS per dataset over ``runs``."""
    series: dict[tuple[str, str, str], list[Point]] = {}
    for index, run in enumerate(runs):
        for row in run.get("metrics") or []:
            if not isinstance(row, Mapping):
                continue
            for metric in TREND_METRICS:
                value = _float(row.get(metric))
                if value is not None:
                    key = (str(row.get("model")), str(row.get("dataset")), metric)
                    title = f"run {labels[index]}, {run.get('started', '')}: {fmt(value, metric)}"
                    series.setdefault(key, []).append(Point(index, value, title=title))
    rows = []
    for (model, dataset, metric), points in sorted(series.items()):
        info = METRICS.get(metric)
        chart = trend(
            points,
            runs=len(runs),
            metric=metric,
            label=f"{model} {dataset} {metric} by run",
            run_labels=labels,
        )
        rows.append(
            MetricRow(
                model, dataset, metric, info.label if info else metric, chart, fmt(points[-1].value, metric)
            )
        )
    return rows


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def _duration(seconds: Any) -> str:
    value = _float(seconds)
    if value is None:
        return ""
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when a run stored a mapping there, else an empty one (old or damaged rows)."""
    return value if isinstance(value, Mapping) else {}
