"""``qagate history``: the recorded runs of the quality gates, newest first, one line each, with
filters (``--model``, ``--rule``, ``--branch``, ``--since``, ``--failed``), ``show RUN_ID`` for one
run, ``import FILE`` to copy a JSON Lines history into the database store, and ``--json``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from qagate.argtypes import parse_positive_int
from qagate.errors import QagateError
from qagate.store.target import DEFAULT, ENV_VAR, HistoryURL, display, is_url

OLD_DEFAULT = ".qagate/history.jsonl"


def parse_target(text: str) -> Path | HistoryURL:
    """``--history``: a URL (kept, shown masked) or a path (``~`` expanded)."""
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError("expected a path or a database URL")
    return HistoryURL(text) if is_url(text) else Path(os.path.expandvars(text)).expanduser()


def default_target() -> Path | HistoryURL:
    """The plugin's default store: ``$QAGATE_HISTORY_URL``, else ``.qagate/history.db`` here."""
    env = os.environ.get(ENV_VAR, "").strip()
    return parse_target(env) if env else Path(DEFAULT)


def add_history_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--history",
        type=parse_target,
        default=default_target(),
        metavar="URL|PATH",
        help=f"the store the pytest runs write: an SQLite file, a database URL or a .jsonl file "
        f"(default: ${ENV_VAR}, else {DEFAULT}, the plugin's --qagate-history default)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=("list", "show", "import"),
        default="list",
        help="list the runs (default), show RUN_ID, or import FILE (a JSON Lines history) into the store",
    )
    parser.add_argument("argument", nargs="?", metavar="RUN_ID|FILE", help="for show and import")
    add_history_argument(parser)
    parser.add_argument(
        "--last",
        type=parse_positive_int,
        default=20,
        metavar="N",
        help="the newest N runs (default: 20)",
    )
    parser.add_argument(
        "--failed",
        "--failures",
        action="store_true",
        dest="failed",
        help="only the runs whose outcome is not pass (fail, error, undecided, incomplete, new, ...), "
        "each with the gates that did not pass",
    )
    parser.add_argument("--model", help="only runs that judged this model")
    parser.add_argument("--rule", help="only runs with a gate whose rule contains this text")
    parser.add_argument("--branch", help="only runs on this git branch")
    parser.add_argument(
        "--since", type=parse_since, metavar="DATE", help="only runs started on or after DATE"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        dest="as_json",
        help="print a JSON list of the runs, newest first (show: the run's JSON object)",
    )


def parse_since(text: str) -> str:
    """``YYYY-MM-DD`` or an ISO time (``2026-01-31T12:00``), as the UTC text runs are stored with."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date such as 2026-01-31, got {text!r}") from None
    if moment.tzinfo is not None:
        from datetime import timezone

        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run(args: argparse.Namespace) -> int:
    if args.action == "import":
        return import_file(args)
    from qagate.store.history import read_history

    if args.action == "show":
        if not args.argument:
            raise QagateError("which run? (qagate history show RUN_ID; 'qagate history' lists the ids)")
        history = read_history(args.history)
        _warn_skipped(history)
        return show(history.runs, args.argument, as_json=args.as_json)
    if args.argument:
        raise QagateError(f"unexpected argument {args.argument!r} (did you mean 'show {args.argument}'?)")
    history = read_history(args.history)
    _warn_skipped(history)
    runs = [entry for entry in history.runs if matches(entry, args)][-args.last :]
    if args.as_json:
        print(json.dumps([json_entry(entry) for entry in reversed(runs)], indent=1, ensure_ascii=False))
        return 0
    if not runs:
        print(f"{history.path}: {'no runs match' if filtered(args) else 'no runs recorded'}")
        return 0
    width = max(10, *(len(str(entry.get("outcome", "?"))) for entry in runs))
    print(
        f"{'id':<12} {'started (UTC)':<21} {'outcome':<{width}} {'pass':>5} {'fail':>5} {'other':>5}  "
        f"{'commit':<11} label"
    )
    for entry in reversed(runs):
        print(summary_line(entry, width))
        if args.failed:
            for result in verdicts(entry, args):
                if result.get("status") != "pass":
                    print(f"    {_gate_line(result)}")
    return 0


def filtered(args: argparse.Namespace) -> bool:
    return bool(args.failed or args.model or args.rule or args.branch or args.since)


def matches(entry: dict[str, Any], args: argparse.Namespace) -> bool:
    """Whether a run passes the command's filters."""
    if args.failed and entry.get("outcome") == "pass":
        return False
    if args.branch and (entry.get("git") or {}).get("branch") != args.branch:
        return False
    if args.since and str(entry.get("started") or "") < args.since:
        return False
    if args.model or args.rule:
        return bool(verdicts(entry, args))
    return True


def verdicts(entry: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The run's gate rows that match ``--model`` and ``--rule``."""
    rows = [r for r in entry.get("results") or [] if isinstance(r, dict)]
    if args.model:
        rows = [r for r in rows if r.get("model") == args.model]
    if args.rule:
        rows = [r for r in rows if args.rule in str(r.get("rule"))]
    return rows


def json_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A run for ``--json``: id, outcome, time, commit, branch and verdicts first, then the rest as stored."""
    git = entry.get("git") or {}
    head = {
        "id": entry.get("id"),
        "outcome": entry.get("outcome"),
        "time": entry.get("started"),
        "commit": git.get("commit"),
        "branch": git.get("branch"),
        "verdicts": entry.get("results") or [],
    }
    return {**head, **{k: v for k, v in entry.items() if k not in head and k != "results"}}


def summary_line(entry: dict[str, Any], width: int) -> str:
    counts = entry.get("counts") or {}
    git = entry.get("git") or {}
    commit = (git.get("commit") or "-")[:10] + ("+" if git.get("dirty") else "")
    other = sum(v for k, v in counts.items() if k not in ("pass", "fail"))
    tail = "  ".join(part for part in (str(entry.get("label", "")), _notes(entry)) if part)
    return (
        f"{str(entry.get('id') or '-')[:12]:<12} {str(entry.get('started', '?')):<21} "
        f"{str(entry.get('outcome', '?')).upper():<{width}} "
        f"{counts.get('pass', 0):>5} {counts.get('fail', 0):>5} {other:>5}  {commit:<11} {tail}"
    )


def show(runs: list[dict[str, Any]], run_id: str, *, as_json: bool) -> int:
    """One run: its facts, every gate and every metric (a unique id prefix is enough)."""
    found = [entry for entry in runs if str(entry.get("id")) == run_id]
    found = found or [entry for entry in runs if str(entry.get("id", "")).startswith(run_id)]
    if len(found) != 1:
        what = "no run has" if not found else f"{len(found)} runs have"
        raise QagateError(f"{what} the id {run_id!r} ('qagate history' lists the ids)")
    entry = found[0]
    if as_json:
        print(json.dumps(json_entry(entry), indent=1, ensure_ascii=False))
        return 0
    git = entry.get("git") or {}
    facts = [
        ("run", entry.get("id")),
        ("outcome", str(entry.get("outcome", "?")).upper() + (f"  {_notes(entry)}" if _notes(entry) else "")),
        ("started", f"{entry.get('started')} ({entry.get('duration_s')} s)"),
        ("exit status", entry.get("exit_status")),
        ("commit", f"{git.get('commit', '-')}{' (local changes)' if git.get('dirty') else ''}"),
        ("branch", git.get("branch")),
        ("CI job", entry.get("ci_url")),
        ("label", entry.get("label")),
        ("machine", entry.get("host")),
        ("versions", _versions(entry)),
        ("dataset", (entry.get("settings") or {}).get("dataset")),
    ]
    for name, value in facts:
        if value not in (None, ""):
            print(f"{name + ':':<13}{value}")
    print("gates:")
    for result in entry.get("results") or []:
        if isinstance(result, dict):
            print(f"    {_gate_line(result)}")
    metrics = [m for m in entry.get("metrics") or [] if isinstance(m, dict)]
    if metrics:
        print("metrics:")
    for row in metrics:
        values = ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in row.items()
            if k not in ("model", "dataset")
        )
        print(f"    {row.get('model')} [{row.get('dataset')}]: {values}")
    return 0


def import_file(args: argparse.Namespace) -> int:
    """``qagate history import FILE``: copy a JSON Lines history into the database store."""
    from qagate.store.history import import_history
    from qagate.store.target import is_jsonl

    if not args.argument:
        raise QagateError(f"which file? (qagate history import {OLD_DEFAULT})")
    target = args.history
    if is_jsonl(target):
        raise QagateError("the store to import into is a .jsonl file", path=target, hint="pass --history DB")
    added, present, skipped = import_history(Path(args.argument), target)
    print(f"imported {added} run(s) from {args.argument} into {display(target)} ({present} already there)")
    if skipped:
        lines = ", ".join(str(n) for n in skipped[:10]) + (", ..." if len(skipped) > 10 else "")
        print(f"skipped {len(skipped)} line(s) that are not qagate runs: {lines}", file=sys.stderr)
    return 0


def _warn_skipped(history: Any) -> None:
    if history.skipped:
        print(
            f"qagate history: warning: {history.path}: skipped {len(history.skipped)} unreadable "
            f"line(s) ({', '.join(map(str, history.skipped[:10]))})",
            file=sys.stderr,
        )


def _versions(entry: dict[str, Any]) -> str:
    parts = [f"python {entry['python']}"] if entry.get("python") else []
    if entry.get("qagate"):
        parts.append(f"qagate {entry['qagate']}")
    parts += [f"{k} {v}" for k, v in sorted((entry.get("packages") or {}).items())]
    return ", ".join(parts)


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
