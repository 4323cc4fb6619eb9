"""A self-contained HTML page of the run history: each run's pass/fail, a gate-by-run grid, and
the trend of every gated value against its threshold (inline SVG; no scripts, no network).

Every string that came from a run (model names, rule ids, dataset names, git branches, labels)
is HTML-escaped: a model name or a gate file is user input.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any, Iterable, Mapping, Sequence

from qagate.reports.terminal import fmt as _num

COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "error": "#6a1b9a", "undecided": "#ef6c00",
           "undecided (skipped)": "#ef6c00", "skipped": "#9e9e9e", "value": "#1565c0"}
MISSING = "#eeeeee"


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _commit(run: Mapping[str, Any]) -> str:
    git = run.get("git") or {}
    text = (git.get("commit") or "")[:10]
    if git.get("dirty"):
        text += "+"
    return text or "-"


def _key(result: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(result.get("model")), str(result.get("rule")), str(result.get("dataset")))


def sparkline(points: Sequence[tuple[int, float | None]], thresholds: Sequence[tuple[int, float | None]],
              statuses: Sequence[str], *, runs: int, width: int = 260, height: int = 56) -> str:
    """An SVG polyline of the obtained values (dots coloured by status) with the threshold
    dashed, x = run index. Values missing in a run leave a gap in the x axis."""
    values = [v for _, v in points if v is not None] + [t for _, t in thresholds if t is not None]
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        low, high = low - 1.0, high + 1.0
    pad = 6

    def xy(index: int, value: float) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * (index / max(runs - 1, 1))
        y = pad + (height - 2 * pad) * (1 - (value - low) / (high - low))
        return round(x, 1), round(y, 1)

    parts = [f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             'role="img" xmlns="http://www.w3.org/2000/svg">']
    line = " ".join(f"{x},{y}" for x, y in (xy(i, t) for i, t in thresholds if t is not None))
    if line:
        parts.append(f'<polyline points="{line}" fill="none" stroke="#555" stroke-dasharray="4 3" '
                     'stroke-width="1"/>')
    line = " ".join(f"{x},{y}" for x, y in (xy(i, v) for i, v in points if v is not None))
    if line:
        parts.append(f'<polyline points="{line}" fill="none" stroke="#1565c0" stroke-width="1.5"/>')
    for (index, value), status in zip(points, statuses):
        if value is not None:
            x, y = xy(index, value)
            parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{COLOURS.get(status, MISSING)}">'
                         f"<title>{_e(_num(value))} ({_e(status)})</title></circle>")
    parts.append("</svg>")
    return "".join(parts)


def render(runs: Sequence[Mapping[str, Any]], *, title: str = "qagate run history", last: int = 50,
           skipped_lines: Iterable[int] = ()) -> str:
    """The dashboard page for ``runs`` (oldest first); only the newest ``last`` are drawn."""
    shown = list(runs)[-last:]
    newest_first = list(reversed(shown))
    rows = []
    for run in newest_first:
        counts = run.get("counts") or {}
        outcome = str(run.get("outcome", "?"))
        rows.append(
            "<tr>"
            f"<td>{_e(run.get('started'))}</td>"
            f"<td><span class=\"badge\" style=\"background:{COLOURS.get(outcome, '#9e9e9e')}\">{_e(outcome.upper())}</span></td>"
            f"<td>{_e(counts.get('pass', 0))}</td><td>{_e(counts.get('fail', 0))}</td>"
            f"<td>{_e(sum(v for k, v in counts.items() if k not in ('pass', 'fail')))}</td>"
            f"<td><code>{_e(_commit(run))}</code></td><td>{_e((run.get('git') or {}).get('branch', ''))}</td>"
            f"<td>{_e(run.get('label', ''))}</td><td>{_e(run.get('host', ''))}</td>"
            f"<td>{_e(_duration(run.get('duration_s')))}</td></tr>")

    # Gate grid and trends: one row per (model, rule, dataset) seen in the shown runs.
    keys: dict[tuple[str, str, str], None] = {}
    by_run: list[dict[tuple[str, str, str], Mapping[str, Any]]] = []
    for run in shown:
        table = {}
        for result in run.get("results", []):
            if isinstance(result, Mapping):
                table[_key(result)] = result
                keys.setdefault(_key(result), None)
        by_run.append(table)

    grid_head = "".join(f'<th title="{_e(run.get("started"))} {_e(_commit(run))}">{i + 1}</th>'
                        for i, run in enumerate(shown))
    grid_rows, trend_rows = [], []
    for key in sorted(keys):
        model, rule, dataset = key
        cells, points, thresholds, statuses = [], [], [], []
        metric = None
        for index, table in enumerate(by_run):
            result = table.get(key)
            if result is None:
                cells.append(f'<td class="cell" style="background:{MISSING}" title="not run"></td>')
                continue
            status = str(result.get("status"))
            metric = result.get("metric") or metric
            tip = (f"{status}: {_num(result.get('obtained'), metric)} {result.get('op', '')} "
                   f"{_num(result.get('threshold'), metric)}")
            cells.append(f'<td class="cell" style="background:{COLOURS.get(status, MISSING)}" '
                         f'title="{_e(tip)}"></td>')
            points.append((index, _float(result.get("obtained"))))
            thresholds.append((index, _float(result.get("threshold"))))
            statuses.append(status)
        name = f"<td><b>{_e(model)}</b></td><td><code>{_e(rule)}</code></td><td>{_e(dataset)}</td>"
        grid_rows.append(f"<tr>{name}{''.join(cells)}</tr>")
        latest = next(((v, s) for (_, v), s in zip(reversed(points), reversed(statuses)) if v is not None), None)
        svg = sparkline(points, thresholds, statuses, runs=len(shown))
        if svg:
            last_text = f"{_num(latest[0], metric)} ({latest[1]})" if latest else "-"
            trend_rows.append(f"<tr>{name}<td>{svg}</td><td>{_e(last_text)}</td></tr>")

    metric_rows = _metric_trends(shown)
    latest = shown[-1] if shown else None
    summary = ("no runs yet" if latest is None else
               f"{len(runs)} runs; latest {_e(latest.get('started'))}: "
               f"<span class=\"badge\" style=\"background:{COLOURS.get(str(latest.get('outcome')), '#9e9e9e')}\">"
               f"{_e(str(latest.get('outcome', '?')).upper())}</span>")
    note = ""
    skipped = list(skipped_lines)
    if skipped:
        note = (f"<p class=\"note\">{len(skipped)} unreadable line(s) skipped: "
                f"{_e(', '.join(map(str, skipped[:20])))}</p>")
    generated = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 28px; }}
th, td {{ padding: 3px 8px; border-bottom: 1px solid #e0e0e0; text-align: left; vertical-align: middle; }}
td.cell {{ width: 14px; min-width: 14px; padding: 0; border: 1px solid #fff; }}
.badge {{ color: #fff; border-radius: 3px; padding: 1px 6px; font-size: 12px; }}
.note {{ color: #c62828; }}
code {{ font-size: 12px; }}
</style></head>
<body>
<h1>{_e(title)}</h1>
<p>{summary}. Generated {generated}; showing the newest {len(shown)}.</p>
{note}
<h2>Runs</h2>
<table><tr><th>started (UTC)</th><th>outcome</th><th>passed</th><th>failed</th><th>other</th>
<th>commit</th><th>branch</th><th>label</th><th>host</th><th>duration</th></tr>
{''.join(rows)}</table>
<h2>Gates by run</h2>
<p>Columns are runs, oldest on the left; hover a cell for the value and its threshold.</p>
<table><tr><th>model</th><th>rule</th><th>dataset</th>{grid_head}</tr>
{''.join(grid_rows)}</table>
<h2>Gated values</h2>
<p>Blue: the value obtained in each run; dashed: the threshold it had to meet.</p>
<table><tr><th>model</th><th>rule</th><th>dataset</th><th>trend</th><th>latest</th></tr>
{''.join(trend_rows)}</table>
<h2>Model metrics</h2>
<table><tr><th>model</th><th>dataset</th><th>metric</th><th>trend</th><th>latest</th></tr>
{''.join(metric_rows)}</table>
</body></html>
"""


TREND_METRICS = ("exact_match", "f1", "bertscore_f1", "seconds_per_question", "speedup")


def _metric_trends(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    series: dict[tuple[str, str, str], list[tuple[int, float | None]]] = {}
    for index, run in enumerate(runs):
        for row in run.get("metrics", []):
            if not isinstance(row, Mapping):
                continue
            for metric in TREND_METRICS:
                value = _float(row.get(metric))
                if value is not None:
                    series.setdefault((str(row.get("model")), str(row.get("dataset")), metric), []).append(
                        (index, value))
    rows = []
    for (model, dataset, metric), points in sorted(series.items()):
        svg = sparkline(points, [], ["value"] * len(points), runs=len(runs))
        rows.append(f"<tr><td><b>{_e(model)}</b></td><td>{_e(dataset)}</td><td>{_e(metric)}</td>"
                    f"<td>{svg}</td><td>{_e(_num(points[-1][1], metric))}</td></tr>")
    return rows


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _duration(seconds: Any) -> str:
    value = _float(seconds)
    if value is None:
        return ""
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"
