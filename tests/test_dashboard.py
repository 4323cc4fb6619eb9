"""The dashboard page: trends with axes, one trend per (model, metric, dataset), run markers,
intervals, statuses, the template, and the file it writes."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from qagate import cli
from qagate.reports.charts import COLOURS, y_scale
from qagate.reports.dashboard import render
from qagate.store.history import append_run, build_run


def gate(
    status: str,
    obtained: float | None,
    threshold: float | None = 75.0,
    *,
    model: str = "student",
    rule: str = "exact_match>=0.95*teacher",
    metric: str = "exact_match",
    **extra,
) -> dict:
    return {
        "nodeid": f"gate.yaml::{model}::{rule}",
        "model": model,
        "rule": rule,
        "metric": metric,
        "op": ">=",
        "dataset": "sample",
        "status": status,
        "obtained": obtained,
        "threshold": threshold,
        **extra,
    }


def runs_of(tmp_path: Path, *results_per_run: list[dict], **kw) -> list[dict]:
    return [
        build_run(results=results, metrics=[], started=0.0, exit_status=0, rootdir=tmp_path, **kw)
        for results in results_per_run
    ]


def section(page: str, heading: str) -> str:
    """The page from ``<h2>heading</h2>`` to the next heading."""
    start = page.index(f"<h2>{heading}</h2>")
    end = page.find("<h2>", start + 1)
    return page[start : end if end > 0 else None]


def test_trends_have_labelled_axes_and_small_changes_look_small(tmp_path):
    runs = runs_of(
        tmp_path,
        [gate("pass", 1.01, 0.9, rule="speedup>=0.9", metric="speedup")],
        [gate("pass", 1.00, 0.9, rule="speedup>=0.9", metric="speedup")],
    )
    chart = section(render(runs), "Gated values")
    labels = re.findall(r'<text class="ytick" x="[\d.]+" y="[\d.]+">([^<]+)</text>', chart)
    assert labels == ["0.85x", "0.90x", "0.95x", "1.00x", "1.05x"]  # the threshold is inside
    assert re.findall(r'<text class="xtick"[^>]*>(\d+)</text>', chart) == ["1", "2"]  # run numbers
    assert '<polyline class="threshold"' in chart
    heights = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', chart)]
    ticks = [float(y) for y in re.findall(r'<line class="grid" [^>]*y1="([\d.]+)"', chart)]
    plot = max(ticks) - min(ticks)
    assert 0 < heights[1] - heights[0] < 0.1 * plot  # 1.01 -> 1.00 is not a cliff


def test_y_scale_pads_keeps_percentages_in_range_and_includes_what_it_is_given():
    assert y_scale([1.01, 1.0]) == [0.9, 0.95, 1.0, 1.05, 1.1]
    ticks = y_scale([99.5, 99.9], metric="f1")
    assert ticks[-1] == 100.0 and ticks[0] < 99.5 - 4  # at least a tenth of the value
    assert y_scale([0.0, 0.0])[0] == 0.0  # no negative axis for >= 0
    ticks = y_scale([70.0, 80.0, 95.0])
    assert ticks[0] <= 70.0 and ticks[-1] >= 95.0


def test_editing_a_rules_threshold_keeps_one_trend(tmp_path):
    runs = runs_of(
        tmp_path,
        [gate("pass", 90.0, 88.0, rule="f1>=0.9*teacher", metric="f1")],
        [gate("fail", 90.0, 90.5, rule="f1>=0.92*teacher", metric="f1")],
        [gate("pass", 91.0, 90.5, rule="f1>=0.92*teacher@95%", metric="f1")],
    )
    page = render(runs)
    grid = section(page, "Gates by run")
    assert grid.count('<th class="gate">') == 1 and grid.count('class="cell"') == 3
    values = section(page, "Gated values")
    assert values.count("<svg") == 1 and "(3 rules)" in values
    assert "rules over these runs: f1&gt;=0.9*teacher, f1&gt;=0.92*teacher, f1&gt;=0.92*teacher@95%" in values
    assert values.count("<circle cx") == 3  # every run's value on the trend (the legend has one more)
    steps = re.search(r'<polyline class="threshold" points="([^"]+)"', values).group(1).split()
    assert len({y for y in (point.split(",")[1] for point in steps)}) == 2  # 88 then 90.5


def test_two_rules_on_one_metric_in_one_run_stay_apart(tmp_path):
    runs = runs_of(
        tmp_path,
        [
            gate("pass", 90.0, 88.0, rule="f1>=0.9*teacher", metric="f1"),
            gate("pass", 90.0, 85.0, rule="f1>=85", metric="f1"),
        ],
    )
    grid = section(render(runs), "Gates by run")
    assert grid.count('class="cell"') == 2
    assert "F1 absolute" in grid and "F1 vs teacher" in grid


def test_partial_runs_and_baseline_writes_are_marked(tmp_path):
    runs = runs_of(tmp_path, [gate("pass", 80.0)])
    runs += runs_of(tmp_path, [gate("pass", 80.0)], partial=True)
    runs += runs_of(
        tmp_path,
        [gate("new", 81.0)],
        baselines={"updated": ["baselines/student.json"], "created": ["baselines/x.json"]},
    )
    page = render(runs)
    table, grid = section(page, "Runs"), section(page, "Gates by run")
    for part in (table, grid):
        assert part.count('class="mark partial"') == 1 and part.count('class="mark baselines"') == 1
    assert ">BASELINES 1 created, 1 updated<" in table
    assert 'title="baselines written: created: baselines/x.json; updated: baselines/student.json"' in table
    assert re.search(r'<th class="run" [^>]*>2<span class="mark partial"[^>]*>P</span></th>', grid)
    rows = re.findall(r'<th class="run" title="run (\d+):', grid)
    assert rows == ["3", "2", "1"]  # newest first


def test_an_undecided_cell_shows_its_interval(tmp_path):
    runs = runs_of(tmp_path, [gate("undecided", 76.0, interval_low=74.1, interval_high=81.2, level=0.95)])
    page = render(runs)
    grid = section(page, "Gates by run")
    assert "UNDECIDED: 76.0000 &gt;= 75.0000, 95% interval [74.1000, 81.2000]" in grid
    values = section(page, "Gated values")
    assert '<rect class="band undecided"' in values and "95% interval [74.1000, 81.2000]" in values
    assert "undecided interval</text>" in values  # the legend says what the hatched band is


def test_new_baselines_are_blue_and_say_new_not_fail(tmp_path):
    page = render(runs_of(tmp_path, [gate("new", 80.0)]))
    grid = section(page, "Gates by run")
    cell = re.search(r'<td class="cell" style="background:([^"]+)" title="([^"]+)">([^<]*)</td>', grid)
    assert cell.group(1) == COLOURS["new"] != COLOURS["fail"]
    assert cell.group(2).startswith("NEW: 80.0000") and cell.group(3) == "NEW"
    assert f'background:{COLOURS["new"]}">NEW</span>' in section(page, "Runs")
    assert COLOURS["fail"] not in page.split("<h2>Runs</h2>")[1]  # only the legend uses red


def test_an_incomplete_run_is_never_green(tmp_path):
    skipped = gate("skipped", None, None, model="other", reason="requires: no-such-data is missing")
    runs = runs_of(tmp_path, [gate("pass", 80.0), skipped], incomplete=True)
    page = render(runs)
    assert 'title="SKIPPED; requires: no-such-data is missing (exact_match&gt;=0.95*teacher); run 1' in page
    assert f'<span class="badge" style="background:{COLOURS["incomplete"]}">INCOMPLETE</span>' in page
    assert COLOURS["pass"] not in section(page, "Runs")


def test_old_rows_without_the_new_fields_still_render(tmp_path):
    old = {
        "schema": 1,
        "started": "2024-01-01T00:00:00Z",
        "outcome": "fail",
        "counts": {"fail": 1},
        "results": [gate("fail", 70.0)],
        "metrics": [{"model": "student", "dataset": "sample", "f1": 80.0}],
    }
    page = render([old])
    assert "mark partial" not in section(page, "Runs") and "FAIL: 70.0000" in page


def test_the_dashboard_file_is_readable_by_everyone(tmp_path, capsys):
    path = tmp_path / "h.jsonl"
    append_run(path, runs_of(tmp_path, [gate("pass", 80.0)])[0])
    out = tmp_path / "site" / "index.html"
    mask = os.umask(0o022)
    try:
        assert cli.main(["dashboard", "--history", str(path), "--out", str(out)]) == 0
    finally:
        os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert "<svg" in out.read_text()


def test_the_templates_ship_with_the_package_and_the_plugin_stays_light():
    from importlib.resources import files

    assert (files("qagate.reports") / "templates" / "dashboard.html.j2").is_file()
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"reports/templates/*"' in pyproject and '"jinja2>=3.1"' in pyproject
    assert '"filelock>=3.12"' in pyproject
    probe = (
        "import sys, qagate.pytest_plugin.hooks, qagate.store.history; "
        "print(sorted({'jinja2', 'filelock'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("evil", ["<script>alert(1)</script>", '"><svg onload=alert(1)>'])
def test_run_data_in_attributes_and_charts_is_escaped(tmp_path, evil):
    results = [gate("undecided", 76.0, rule=evil, model=evil, interval_low=1.0, interval_high=2.0)]
    runs = runs_of(tmp_path, results, partial=True, baselines={"updated": [evil]}, label=evil)
    page = render(runs)
    assert "<script" not in page and "onload=alert" not in page.replace("onload=alert(1)&gt;", "")
    assert page.count('<svg class="chart"') == 1


def test_a_margin_interval_is_drawn_on_the_values_scale_and_decided_bands_are_solid(tmp_path):
    # the judge records the interval of value - threshold: [+1, +3] around 77 - 75
    runs = runs_of(tmp_path, [gate("pass", 77.0, interval_low=1.0, interval_high=3.0, level=0.95)])
    page = render(runs)
    assert "95% interval [76.0000, 78.0000]" in section(page, "Gates by run")
    values = section(page, "Gated values")
    assert '<rect class="band decided"' in values and "decided interval</text>" in values
    ticks = [float(t) for t in re.findall(r'<text class="ytick" [^>]*>([\d.]+)</text>', values)]
    assert min(ticks) > 60  # the axis was not stretched down to the margin's 1..3


def test_flaky_gates_and_steps(tmp_path):
    speed = dict(rule="speedup>=2", metric="speedup")
    statuses = ["pass", "pass", "fail", "pass", "pass", "pass"]
    runs = runs_of(tmp_path, *[[gate(s, 2.0, 2.0, **speed)] for s in statuses])
    for index, (run, em) in enumerate(zip(runs, [80.0, 80.1, 79.9, 80.0, 75.0, 75.1])):
        run["git"] = {"commit": "a" * 40 if index < 4 else "b" * 40, "branch": "main"}
        run["metrics"] = [{"model": "student", "dataset": "sample", "exact_match": em}]
    page = render(runs)
    runs[2]["git"]["dirty"] = True  # local changes: that flip may have a cause
    assert "No flaky gates" in section(render(runs), "Flaky gates")
    flaky = section(page, "Flaky gates")
    assert "<code>speedup&gt;=2</code>" in flaky and "2: 2\u21923, 3\u21924" in flaky
    steps = section(page, "Steps")
    assert steps.count("<tr><td>") == 1  # run 5 only: run 6 is compared with the new level
    assert "<td>5</td><td><code>bbbbbbbbbb</code></td>" in steps and "75.0000" in steps


def test_the_site_has_a_page_per_run_with_verdicts_changes_and_worst_questions(tmp_path, capsys):
    path = tmp_path / "h.jsonl"
    first, second = runs_of(tmp_path, [gate("pass", 80.0)], [gate("fail", 70.0)])
    second["worst_questions"] = [{"model": "student", "question": "Who?", "prediction": "<b>x</b>"}]
    second["id"] = "../../evil"
    for run in (first, second):
        append_run(path, run)
    out = tmp_path / "site"
    assert cli.main(["dashboard", "--history", str(path), "--out", str(out)]) == 0
    index = (out / "index.html").read_text()
    pages = sorted(p.name for p in (out / "runs").iterdir())
    assert pages == sorted([f"{first['id']}.html", "run-2.html"])  # an unsafe id is not a file name
    assert f'href="runs/{first["id"]}.html"' in index and 'href="runs/run-2.html"' in index
    page = (out / "runs" / "run-2.html").read_text()
    assert "FAIL: 70.0000 &gt;= 75.0000" in section(page, "Verdicts")
    changes = section(page, "Since the previous run")
    assert "New failures" in changes and "80.0000 \u2192 70.0000" in changes
    assert "&lt;b&gt;x&lt;/b&gt;" in section(page, "Worst questions")
    assert "recorded no worst questions" in (out / "runs" / f"{first['id']}.html").read_text()
    single = tmp_path / "one.html"
    assert cli.main(["dashboard", "--history", str(path), "--out", str(single)]) == 0
    assert single.is_file() and not (tmp_path / "runs").exists()
