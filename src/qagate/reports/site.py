"""The dashboard as a static site: ``index.html`` (the front page of qagate.reports.dashboard) and
``runs/<id>.html``, one page per run with its verdicts, what changed since the previous run on its
branch, its slice heat map and flipped questions (each gated model against its teacher and its
baseline run), and its worst questions when it recorded any. Self-contained: no scripts, no network.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qagate.reports.changes import compare, number
from qagate.reports.charts import COLOURS, MISSING
from qagate.reports.dashboard import CELL_TEXT, Cell, environment, gate_text, page_name, render, run_view
from qagate.reports.diff import run_slice_views
from qagate.scoring.registry import fmt
from qagate.store.history import STATUS_ORDER

#: Columns of a worst-questions row, in order, as a run may record them.
WORST_FIELDS = ("model", "dataset", "id", "question", "prediction", "references", "f1", "teacher")


@dataclass
class Verdict:
    """One gate result of a run as its page shows it."""

    cell: Cell
    model: str
    rule: str
    dataset: str
    text: str


def worst_questions(run: Mapping[str, Any]) -> list[dict[str, str]]:
    """The worst questions a run recorded, as text cells (none when it recorded none).

    Read from ``run["worst_questions"]`` or from each result's ``"worst_questions"``: a list of
    mappings with some of WORST_FIELDS (``references`` may be a list)."""
    rows: list[Any] = (
        list(run.get("worst_questions") or []) if isinstance(run.get("worst_questions"), list) else []
    )
    for result in run.get("results") or []:
        if isinstance(result, Mapping) and isinstance(result.get("worst_questions"), list):
            rows += [
                dict(row, model=row.get("model", result.get("model"))) for row in result["worst_questions"]
            ]
    out = []
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        cells = {}
        for key in WORST_FIELDS:
            value = row.get(key, "")
            if isinstance(value, (list, tuple)):
                value = " | ".join(str(v) for v in value)
            elif key == "f1" and number(value) is not None:
                value = f"{number(value):.2f}"
            cells[key] = "" if value is None else str(value)
        out.append(cells)
    return out


def verdicts(run: Mapping[str, Any], number_: int) -> list[Verdict]:
    """The run's gate results, worst status first."""
    rank = {status: i for i, status in enumerate(STATUS_ORDER)}
    rows = [r for r in run.get("results") or [] if isinstance(r, Mapping)]
    rows.sort(key=lambda r: (rank.get(str(r.get("status")), -1), str(r.get("model")), str(r.get("rule"))))
    out = []
    for result in rows:
        status = str(result.get("status"))
        text = gate_text(result, str(result.get("metric") or "") or None)
        cell = Cell(COLOURS.get(status, MISSING), CELL_TEXT.get(status, status[:1].upper()), text)
        out.append(
            Verdict(cell, str(result.get("model")), str(result.get("rule")), str(result.get("dataset")), text)
        )
    return out


def narrowing(run: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """For each sequential verdict of the run, a chart of its interval of (left - right) against
    the questions seen, one band per look, and the text above it (skipped when malformed)."""
    from qagate.reports.charts import Point, trend

    out = []
    for result in run.get("results") or []:
        looks = result.get("looks") if isinstance(result, Mapping) else None
        if not isinstance(looks, list) or not looks:
            continue
        try:
            rows = [(int(n), float(v), float(lo), float(hi)) for n, v, lo, hi in looks]
        except (TypeError, ValueError):
            continue
        status, metric = str(result.get("status")), str(result.get("metric") or "") or None
        points = [
            Point(i, v, status if i == len(rows) - 1 else "undecided", 0.0, lo, hi, f"{n:,} questions")
            for i, (n, v, lo, hi) in enumerate(rows)
        ]
        label = f"{result.get('model')} {result.get('rule')}"
        chart = trend(
            points, runs=len(rows), metric=metric, label=label, run_labels=[f"{r[0]:,}" for r in rows]
        )
        if chart is None:
            continue
        chart.x_title = "questions seen"
        chart.y_title = f"{metric or 'value'} - threshold"
        used, available = result.get("questions_used"), result.get("questions_available")
        text = f"{label}: {status.upper()} after {used} of {available} questions"
        out.append((text, chart))
    return out


def render_run(runs: Sequence[Mapping[str, Any]], index: int, *, title: str = "qagate run history") -> str:
    """The page of ``runs[index]`` (its number on the front page is ``index + 1``, the runs
    given being the ones the front page draws)."""
    run = runs[index]
    view = run_view(index + 1, run)
    change = compare(runs, index)
    previous = None
    if change.previous is not None:
        previous = run_view(change.previous + 1, runs[change.previous])
        previous.page = page_name(runs[change.previous], change.previous + 1)

    def moved(item: tuple[Mapping[str, Any], float, float]) -> str:
        result, before, after = item
        metric = str(result.get("metric") or "") or None
        return f"{fmt(before, metric)} \u2192 {fmt(after, metric)} ({after - before:+.4g})"

    return (
        environment()
        .get_template("run.html.j2")
        .render(
            title=f"{title}: run {view.number}",
            home=title,
            run=view,
            run_id=str(run.get("id") or ""),
            settings={str(k): str(v) for k, v in (run.get("settings") or {}).items()}
            if isinstance(run.get("settings"), Mapping)
            else {},
            verdicts=verdicts(run, view.number),
            change=change,
            previous=previous,
            moved=[(item[0], moved(item)) for item in change.moved],
            worst=worst_questions(run),
            slices=run_slice_views(runs, index),
            narrowing=narrowing(run),
            missing=MISSING,
            generated=time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        )
    )


def site_pages(
    runs: Sequence[Mapping[str, Any]],
    *,
    title: str = "qagate run history",
    last: int = 50,
    skipped_lines: Iterable[int] = (),
) -> dict[str, str]:
    """Every page of the site by its path relative to the site's folder."""
    shown = list(runs)[-last:]
    pages = {"index.html": render(runs, title=title, last=last, skipped_lines=skipped_lines, run_pages=True)}
    for index, run in enumerate(shown):
        pages[f"runs/{page_name(run, index + 1)}"] = render_run(shown, index, title=title)
    return pages


def write_site(folder: Path, pages: Mapping[str, str]) -> None:
    """Write the pages under ``folder`` atomically, one file at a time (readable by everyone)."""
    from qagate.core.files import atomic_write_text

    for relative, text in pages.items():
        atomic_write_text(folder / relative, text)
