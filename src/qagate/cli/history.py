"""``qagate history``: the recorded runs of the quality gates, newest first, one line each
(``--json`` for the raw entries; ``--failures`` lists what failed in each run)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_HISTORY = Path(".qagate/history.jsonl")


def add_history_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history", type=Path, default=DEFAULT_HISTORY, metavar="FILE",
                        help="the history file the pytest runs append to (default: %(default)s, "
                             "the plugin's --qagate-history default under the rootdir)")


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
    parser.add_argument("--last", type=positive, default=20, metavar="N",
                        help="show the newest N runs (default: %(default)s)")
    parser.add_argument("--failures", action="store_true",
                        help="under each run, list the gates that did not pass")
    parser.add_argument("--json", action="store_true", dest="as_json",
                        help="print the entries as JSON Lines, as stored")


def run(args: argparse.Namespace) -> int:
    import sys

    from qagate.store.history import read_history

    history = read_history(args.history)
    runs = history.runs[-args.last:]
    if history.skipped:
        print(f"qagate history: warning: {history.path}: skipped {len(history.skipped)} unreadable "
              f"line(s) ({', '.join(map(str, history.skipped[:10]))})", file=sys.stderr)
    if args.as_json:
        for entry in runs:
            print(json.dumps(entry, sort_keys=True, ensure_ascii=False))
        return 0
    if not runs:
        print(f"{history.path}: no runs recorded")
        return 0
    print(f"{'started (UTC)':<21} {'outcome':<10} {'pass':>5} {'fail':>5} {'other':>5}  {'commit':<11} label")
    for entry in reversed(runs):
        counts = entry.get("counts") or {}
        git = entry.get("git") or {}
        commit = (git.get("commit") or "-")[:10] + ("+" if git.get("dirty") else "")
        other = sum(v for k, v in counts.items() if k not in ("pass", "fail"))
        print(f"{str(entry.get('started', '?')):<21} {str(entry.get('outcome', '?')).upper():<10} "
              f"{counts.get('pass', 0):>5} {counts.get('fail', 0):>5} {other:>5}  {commit:<11} "
              f"{entry.get('label', '')}")
        if args.failures:
            for result in entry.get("results", []):
                if result.get("status") not in ("pass", "skipped"):
                    print(f"    {str(result.get('status')).upper():<10} {result.get('model')}::"
                          f"{result.get('rule')} [{result.get('dataset')}] obtained "
                          f"{_fmt(result.get('obtained'))}, threshold {_fmt(result.get('threshold'))}")
    return 0


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"
