"""What changed between runs, read from the history rows: flaky rules, steps in a metric, and a
run's differences from the previous run on its branch (shared by the dashboard and the summary).

Standard library only; every function takes the runs oldest first, as ``read_history`` gives them.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Statuses that block a release (a run that has one of these did not pass that gate).
BAD = ("fail", "error", "undecided")
#: A robust SD is the MAD times this (the SD of a normal sample with that MAD).
MAD_TO_SD = 1.4826
#: Metrics whose runs are compared for steps (timings included: they move with code too).
STEP_METRICS = ("exact_match", "f1", "bertscore_f1", "seconds_per_question", "speedup")


def commit_of(run: Mapping[str, Any]) -> str:
    """The run's full commit ("" when none was recorded); a dirty tree is not the same commit."""
    git = run.get("git")
    if not isinstance(git, Mapping) or not git.get("commit"):
        return ""
    return str(git["commit"]) + ("+dirty" if git.get("dirty") else "")


def branch_of(run: Mapping[str, Any]) -> str:
    git = run.get("git")
    return str(git.get("branch") or "") if isinstance(git, Mapping) else ""


def number(value: Any) -> float | None:
    """A finite float from a history value, else None (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def results_of(run: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The run's gate results by node id (a malformed row is left out)."""
    out: dict[str, Mapping[str, Any]] = {}
    for result in run.get("results") or []:
        if isinstance(result, Mapping) and result.get("nodeid"):
            out[str(result["nodeid"])] = result
    return out


# --- flaky rules --------------------------------------------------------------------------------


@dataclass
class Flaky:
    """A gate whose verdict flipped between pass and fail with the same commit checked out."""

    nodeid: str
    model: str
    rule: str
    dataset: str
    commit: str
    flips: list[tuple[int, int]] = field(default_factory=list)  # (earlier, later) run indexes

    @property
    def runs_text(self) -> str:
        return ", ".join(f"{a + 1}\u2192{b + 1}" for a, b in self.flips)


def flaky(runs: Sequence[Mapping[str, Any]]) -> list[Flaky]:
    """Gates whose pass/fail verdict flipped between two consecutive runs of them at the same
    (recorded, clean) commit: nothing in the code changed, so the gate itself is unstable."""
    found: dict[tuple[str, str], Flaky] = {}
    last: dict[str, tuple[int, str, str]] = {}  # nodeid -> (run index, status, commit)
    for index, run in enumerate(runs):
        commit = commit_of(run)
        if commit.endswith("+dirty"):  # local changes: the code may differ at the same commit
            commit = ""
        for nodeid, result in results_of(run).items():
            status = str(result.get("status"))
            if status not in ("pass", "fail"):
                continue
            before = last.get(nodeid)
            last[nodeid] = (index, status, commit)
            if before is None or before[1] == status or not commit or before[2] != commit:
                continue
            item = found.setdefault(
                (nodeid, commit),
                Flaky(
                    nodeid,
                    str(result.get("model")),
                    str(result.get("rule")),
                    str(result.get("dataset")),
                    commit,
                ),
            )
            item.flips.append((before[0], index))
    return sorted(found.values(), key=lambda f: (-len(f.flips), f.nodeid))


# --- steps --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """A run where a metric moved beyond its noise: more than ``k`` robust SDs from the median of
    the runs before it."""

    model: str
    dataset: str
    metric: str
    run: int  # index among the runs given
    commit: str
    before: float  # the median of the previous runs
    after: float
    sds: float  # the move in robust SDs (inf when the previous runs never varied)

    @property
    def change(self) -> float:
        return self.after - self.before


def steps(
    runs: Sequence[Mapping[str, Any]], *, k: float = 3.0, window: int = 10, min_runs: int = 3
) -> list[Step]:
    """Runs where a model's metric moved more than ``k`` robust SDs (MAD) away from the median of
    its previous ``window`` values (at least ``min_runs`` of them, all since its last step), newest
    first. Previous runs that never varied make any move beyond 1e-6 (relative) a step."""
    series: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for index, run in enumerate(runs):
        for row in run.get("metrics") or []:
            if not isinstance(row, Mapping):
                continue
            for metric in STEP_METRICS:
                value = number(row.get(metric))
                if value is not None:
                    key = (str(row.get("model")), str(row.get("dataset")), metric)
                    series.setdefault(key, []).append((index, value))
    found = []
    for (model, dataset, metric), points in series.items():
        start = 0  # a step starts a new level: later runs are compared with the runs since it
        for position in range(len(points)):
            previous = [value for _, value in points[max(start, position - window) : position]]
            if len(previous) < min_runs:
                continue
            index, value = points[position]
            median = statistics.median(previous)
            sd = MAD_TO_SD * statistics.median(abs(v - median) for v in previous)
            move = abs(value - median)
            if move <= 1e-6 * max(1.0, abs(median)):
                continue
            sds = move / sd if sd > 0 else float("inf")
            if sds > k:
                found.append(Step(model, dataset, metric, index, commit_of(runs[index]), median, value, sds))
                start = position
    return sorted(found, key=lambda s: (-s.run, s.model, s.metric))


# --- a run against the one before it -------------------------------------------------------------


@dataclass
class Comparison:
    """A run's gates against the previous run on the same branch (``previous`` None: none)."""

    previous: int | None
    new_failures: list[Mapping[str, Any]] = field(default_factory=list)
    fixed: list[Mapping[str, Any]] = field(default_factory=list)
    moved: list[tuple[Mapping[str, Any], float, float]] = field(default_factory=list)  # (now, before, after)
    added: list[Mapping[str, Any]] = field(default_factory=list)


def previous_run(runs: Sequence[Mapping[str, Any]], index: int) -> int | None:
    """The index of the latest run before ``index`` on the same branch (any earlier run when the
    branch is unknown), or None."""
    branch = branch_of(runs[index])
    for earlier in range(index - 1, -1, -1):
        if not branch or branch_of(runs[earlier]) == branch:
            return earlier
    return None


def compare(runs: Sequence[Mapping[str, Any]], index: int, *, tolerance: float = 1e-4) -> Comparison:
    """What changed in run ``index`` since the previous run on its branch: gates that now block
    (new failures), gates that pass again (fixed), gated values that moved by more than
    ``tolerance`` (relative), and gates the previous run did not have."""
    before_index = previous_run(runs, index)
    out = Comparison(before_index)
    if before_index is None:
        return out
    before = results_of(runs[before_index])
    for nodeid, now in results_of(runs[index]).items():
        then = before.get(nodeid)
        if then is None:
            out.added.append(now)
            continue
        status, old = str(now.get("status")), str(then.get("status"))
        if status in BAD and old not in BAD:
            out.new_failures.append(now)
        elif status == "pass" and old in BAD:
            out.fixed.append(now)
        a, b = number(then.get("obtained")), number(now.get("obtained"))
        if a is not None and b is not None and abs(b - a) > tolerance * max(1.0, abs(a)):
            out.moved.append((now, a, b))
    out.moved.sort(key=lambda m: -abs(m[2] - m[1]) / max(1.0, abs(m[1])))
    return out


def find_run(runs: Sequence[Mapping[str, Any]], run_id: str | None) -> int | None:
    """The index of the run whose id is ``run_id`` or starts with it (the newest when None);
    None when there is no such run."""
    if not runs:
        return None
    if run_id is None:
        return len(runs) - 1
    matches = [i for i, run in enumerate(runs) if str(run.get("id", "")).startswith(run_id)]
    return matches[-1] if matches else None


def value_interval(result: Mapping[str, Any]) -> tuple[float, float] | None:
    """A confidence rule's interval on the value's scale, to draw beside the threshold.

    The judge records the interval of the margin (value - threshold), so it is shifted by the
    threshold; rows that stored the value's own interval (it contains the value, the margin's
    does not) are kept as they are."""
    low, high = number(result.get("interval_low")), number(result.get("interval_high"))
    if low is None or high is None:
        return None
    value, threshold = number(result.get("obtained")), number(result.get("threshold"))
    if value is None or threshold is None:
        return low, high
    middle = (low + high) / 2
    if abs(middle - (value - threshold)) < abs(middle - value):
        return threshold + low, threshold + high
    return low, high


def value_interval_text(result: Mapping[str, Any], *, label: Any = None) -> str:
    """``95% interval [76.0000, 78.0000] of exact_match``: a confidence rule's interval of the value
    (:func:`value_interval`), labelled with what it bounds; ``""`` when the gate recorded none. The
    one form ``qagate history``, the Markdown summary and the dashboard all show. ``label``: the
    metric's name as the caller writes it (escaped for Markdown, say)."""
    from qagate.scoring.registry import fmt

    band = value_interval(result)
    if band is None:
        return ""
    metric = str(result.get("metric") or "") or None
    level = number(result.get("level"))
    word = "interval" if level is None else f"{level * 100 if level <= 1 else level:g}% interval"
    name = label if label is not None else metric or "the value"
    return f"{word} [{fmt(band[0], metric)}, {fmt(band[1], metric)}] of {name}"
