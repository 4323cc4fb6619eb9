"""``qagate history``: the recorded runs of the quality gates, newest first, one line each
(``--json`` for the raw entries; ``--failures``: only the runs that did not pass, each with the
gates that did not pass). Partial runs and runs that wrote baselines are marked."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qagate.argtypes import parse_positive_int

DEFAULT_HISTORY = Path(".qagate/history.jsonl")


def add_history_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--history",
        type=Path,
        default=DEFAULT_HISTORY,
        metavar="FILE",
        help="the history file the pytest runs append to (default: %(default)s, "
        "the plugin's --qagate-history default under the rootdir)",
    )


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_history_argument(parser)
    parser.add_argument(
        "--last",
        type=parse_positive_int,
        default=20,
        metavar="N",
        help="show the newest N runs (default: %(default)s)",
    )
    parser.add_argument(
        "--failures",
        action="store_true",
        help="only the runs whose outcome is not pass (fail, error, undecided, "
        "incomplete, new, ...), each with the gates that did not pass",
    )
    parser.add_argument(
        "--json", action="store_true", dest="as_json", help="print the entries as JSON Lines, as stored"
    )


def run(args: argparse.Namespace) -> int:
    import sys

    from qagate.store.history import read_history

    history = read_history(args.history)
    runs = history.runs
    if args.failures:
        runs = [entry for entry in runs if entry.get("outcome") != "pass"]
    runs = runs[-args.last :]
    if history.skipped:
        print(
            f"qagate history: warning: {history.path}: skipped {len(history.skipped)} unreadable "
            f"line(s) ({', '.join(map(str, history.skipped[:10]))})",
            file=sys.stderr,
        )
    if args.as_json:
        for entry in runs:
            print(json.dumps(entry, sort_keys=True, ensure_ascii=False))
        return 0
    if not runs:
        print(f"{history.path}: {'no runs that did not pass' if args.failures else 'no runs recorded'}")
        return 0
    width = max(10, *(len(str(entry.get("outcome", "?"))) for entry in runs))
    print(
        f"{'started (UTC)':<21} {'outcome':<{width}} {'pass':>5} {'fail':>5} {'other':>5}  "
        f"{'commit':<11} label"
    )
    for entry in reversed(runs):
        counts = entry.get("counts") or {}
        git = entry.get("git") or {}
        commit = (git.get("commit") or "-")[:10] + ("+" if git.get("dirty") else "")
        other = sum(v for k, v in counts.items() if k not in ("pass", "fail"))
        tail = "  ".join(part for part in (str(entry.get("label", "")), _notes(entry)) if part)
        print(
            f"{str(entry.get('started', '?')):<21} {str(entry.get('outcome', '?')).upper():<{width}} "
            f"{counts.get('pass', 0):>5} {counts.get('fail', 0):>5} {other:>5}  {commit:<11} {tail}"
        )
        if args.failures:
            for result in entry.get("results", []):
                if isinstance(result, dict) and result.get("status") != "pass":
                    print(f"    {_gate_line(result)}")
    return 0


def _notes(entry: dict) -> str:
    """``[partial; baselines: 1 updated]`` for a run that selected only some gates or wrote
    baselines (old rows without these fields: nothing)."""
    from qagate.store.history import baseline_changes, is_partial

    notes = ["partial"] if is_partial(entry) else []
    changes = baseline_changes(entry)
    if changes:
        notes.append("baselines: " + ", ".join(f"{len(paths)} {action}" for action, paths in changes.items()))
    return f"[{'; '.join(notes)}]" if notes else ""


def _gate_line(result: dict) -> str:
    """``FAIL m1::f1>=0.9*teacher [sample] obtained 80.0000, threshold 85.0000`` (+ interval)."""
    from qagate.reports.terminal import interval_text
    from qagate.scoring.registry import fmt

    metric = result.get("metric")
    status = str(result.get("status"))
    line = (
        f"{status.upper():<10} {result.get('model')}::{result.get('rule')} [{result.get('dataset')}] "
        f"obtained {fmt(_number(result.get('obtained')), metric)}, "
        f"threshold {fmt(_number(result.get('threshold')), metric)}"
    )
    interval = interval_text(result)
    if interval:
        line += f", {interval}"
    if status == "new":
        line += " (a baseline written by this run: review it)"
    if result.get("reason"):
        line += f": {result['reason']}"
    return line


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
