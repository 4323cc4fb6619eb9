"""``qagate history``: the recorded runs of the quality gates, newest first, one line each, with
filters (``--model``, ``--rule``, ``--branch``, ``--since``, ``--failed``), ``show RUN_ID`` for one
run, ``import FILE`` to copy a JSON Lines history into the database store, ``push [FILE...]`` to
deliver the outbox (runs the store could not take), ``redact`` to mask secrets already stored,
``export --mlflow [URI]`` to log the runs to MLflow, and ``--json``.

The store is the plugin's: ``--history``, else ``$QAGATE_HISTORY_URL``, else the ini key
``qagate_history`` of the pytest ini file pytest would use (found the same way, from the current
folder up), else ``.qagate/history.db`` in that ini file's folder (the rootdir) or here."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from qagate.core.argtypes import parse_positive_int
from qagate.core.errors import QagateError
from qagate.store.target import DEFAULT, ENV_VAR, HistoryURL, display, resolve_history

OLD_DEFAULT = ".qagate/history.jsonl"
INI_KEY = "qagate_history"
OFF = ("none", "off", "false", "0")


def parse_target(text: str) -> Path | HistoryURL:
    """``--history``: a URL (kept, shown masked; one that can never work is refused) or a path
    (``${VAR}`` and ``~`` expanded, relative to the current folder)."""
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError("expected a path or a database URL")
    try:
        return resolve_history(text, Path.cwd())
    except QagateError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_history_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--history",
        type=parse_target,
        default=None,
        metavar="URL|PATH",
        help=f"the store the pytest runs write: an SQLite file, a database URL or a .jsonl file "
        f"(default: the plugin's: ${ENV_VAR}, else the ini key {INI_KEY}, else {DEFAULT} in the rootdir)",
    )


def history_target(args: argparse.Namespace) -> Path | HistoryURL:
    """The store a command reads: ``--history``, else the plugin's setting (see the module)."""
    if args.history is not None:
        return args.history
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return _resolve(env, Path.cwd(), f"${ENV_VAR}")
    ini, value = find_ini(Path.cwd())
    if ini is not None and value is not None and value.strip():
        if value.strip().lower() in OFF:
            raise QagateError(
                f"the run history is turned off ({INI_KEY} = {value.strip()})",
                path=ini,
                hint="pass --history with the store to read",
            )
        return _resolve(value, ini.parent, f"{ini}: ini key {INI_KEY}")
    return (ini.parent if ini is not None else Path.cwd()) / DEFAULT


def project_root(args: argparse.Namespace) -> Path:
    """The rootdir pytest would use here: the ini file's folder, else the current folder."""
    ini, _ = find_ini(Path.cwd())
    return ini.parent if ini is not None else Path.cwd()


def _resolve(text: str, base: Path, where: str) -> Path | HistoryURL:
    try:
        return resolve_history(text, base)
    except QagateError as exc:
        raise QagateError(f"{where}: {exc}") from None


def find_ini(start: Path) -> tuple[Path | None, str | None]:
    """The ini file pytest would read from ``start`` (pytest.ini, .pytest.ini, pyproject.toml with
    [tool.pytest.ini_options] or [tool.pytest], tox.ini with [pytest], setup.cfg with
    [tool:pytest], nearest folder first) and its ``qagate_history`` value (None when unset)."""
    import configparser

    for folder in (start, *start.parents):
        for name in ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"):
            path = folder / name
            if not path.is_file():
                continue
            try:
                if name == "pyproject.toml":
                    import tomllib

                    with open(path, "rb") as handle:
                        tool = tomllib.load(handle).get("tool", {}).get("pytest")
                    if not isinstance(tool, dict):
                        continue
                    options = tool.get("ini_options", tool)
                    value = options.get(INI_KEY) if isinstance(options, dict) else None
                    return path, None if value is None else str(value)
                parser = configparser.ConfigParser(interpolation=None)
                parser.read(path, encoding="utf-8")
            except (OSError, ValueError, configparser.Error) as exc:
                raise QagateError(f"cannot read the ini file: {exc}", path=path) from None
            section = {"tox.ini": "pytest", "setup.cfg": "tool:pytest"}.get(name, "pytest")
            if name in ("pytest.ini", ".pytest.ini") or parser.has_section(section):
                if parser.has_section(section):
                    return path, parser.get(section, INI_KEY, fallback=None)
                return path, None
    return None, None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=("list", "show", "import", "push", "redact", "export"),
        default="list",
        help="list the runs (default), show RUN_ID, import FILE (a JSON Lines history) into the store, "
        "push [FILE...] (deliver the outbox, .qagate/outbox/, or the outbox files given), redact "
        "(mask the secrets of the runs already stored, in place), or export --mlflow [URI] (log each "
        "run as an MLflow run, once)",
    )
    parser.add_argument(
        "argument", nargs="*", metavar="RUN_ID|FILE", help="for show and import; files for push"
    )
    add_history_argument(parser)
    parser.add_argument(
        "--last",
        type=parse_positive_int,
        default=None,
        metavar="N",
        help="the newest N runs (default: 20; export: every run)",
    )
    parser.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        default=None,
        metavar="URI",
        help="export: the MLflow tracking URI (a server, or a folder for a local file store; "
        "default: $MLFLOW_TRACKING_URI, else MLflow's default)",
    )
    parser.add_argument(
        "--experiment",
        default="qagate",
        metavar="NAME",
        help="export: the MLflow experiment the runs go to (default: qagate)",
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
    if args.action == "push":
        return push(args)
    if args.action == "redact":
        return redact(args)
    if args.action == "export":
        return export(args)
    words = list(args.argument)
    if len(words) > 1:
        raise QagateError(f"{args.action} takes one argument, got {len(words)}: {' '.join(words[:3])}")
    args.argument = words[0] if words else None
    if args.action == "import":
        return import_file(args)
    from qagate.store.history import read_history

    if args.action == "show":
        if not args.argument:
            raise QagateError("which run? (qagate history show RUN_ID; 'qagate history' lists the ids)")
        history = read_history(history_target(args))
        warn_skipped(history)
        return show(history.runs, args.argument, as_json=args.as_json)
    if args.argument:
        raise QagateError(f"unexpected argument {args.argument!r} (did you mean 'show {args.argument}'?)")
    history = read_history(history_target(args))
    warn_skipped(history)
    check_model(history.runs, args.model)
    runs = [entry for entry in history.runs if matches(entry, args)][-(args.last or 20) :]
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
    target = history_target(args)
    if is_jsonl(target):
        raise QagateError("the store to import into is a .jsonl file", path=target, hint="pass --history DB")
    added, present, skipped = import_history(Path(args.argument), target)
    print(f"imported {added} run(s) from {args.argument} into {display(target)} ({present} already there)")
    if skipped:
        lines = ", ".join(str(n) for n in skipped[:10]) + (", ..." if len(skipped) > 10 else "")
        print(f"skipped {len(skipped)} line(s) that are not qagate runs: {lines}", file=sys.stderr)
    return 0


def warn_skipped(history: Any, command: str = "history") -> None:
    """One line on stderr per run the reader left out (torn, edited or malformed), naming it."""
    problems = list(history.problems) or [f"line {n}: unreadable" for n in history.skipped]
    for problem in problems[:10]:
        print(f"qagate {command}: warning: {history.path}: skipped {problem}", file=sys.stderr)
    if len(problems) > 10:
        print(f"qagate {command}: warning: {history.path}: and {len(problems) - 10} more", file=sys.stderr)


def check_model(runs: list[dict[str, Any]], model: str | None) -> None:
    """``--model NAME`` that no run judged is a mistake: say so, with the closest names."""
    if not model:
        return
    names = {str(r.get("model")) for entry in runs for r in entry.get("results") or [] if r.get("model")}
    if not names or model in names:
        return
    from qagate.core.argtypes import did_you_mean

    listed = ", ".join(sorted(names)[:8]) + (", ..." if len(names) > 8 else "")
    raise QagateError(
        f"no run judged a model named {model!r}{did_you_mean(model, sorted(names))}",
        hint=f"the history has: {listed}",
    )


def push(args: argparse.Namespace) -> int:
    """``qagate history push [FILE...]``: deliver the outbox (or the files given) to the store,
    oldest first, each run once (the store skips the ids it has)."""
    from qagate.store import outbox

    target = history_target(args)
    folder = outbox.outbox_dir(project_root(args))
    files = [Path(word) for word in args.argument] if args.argument else outbox.pending(project_root(args))
    if not files:
        print(f"qagate history push: nothing to push: the outbox {folder} is empty")
        return 0
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise QagateError("no such file", path=missing[0], hint="pass the .json files of an outbox")
    try:
        delivery = outbox.deliver(target, files, outbox=folder)
    except OSError as exc:
        raise QagateError(
            f"cannot push to the run history: {exc}", hint="the runs stay where they are; push again later"
        ) from None
    for line in delivery.lines(target):
        print(f"qagate history push: {line}", file=sys.stderr if line.startswith("WARNING") else sys.stdout)
    if not delivery.delivered:
        print(f"qagate history push: no run delivered ({len(delivery.rejected)} file(s) not runs)")
        return 2
    return 0


def export(args: argparse.Namespace) -> int:
    """``qagate history export --mlflow [URI]``: each run (the filters apply) as one MLflow run,
    skipping those the experiment already holds."""
    from qagate.reports.mlflow_export import export as to_mlflow
    from qagate.store.history import read_history

    if args.mlflow is None:
        raise QagateError("export to where? (qagate history export --mlflow [URI])")
    if args.argument:
        raise QagateError(f"export takes no argument, got {args.argument[0]!r} (pass --mlflow URI)")
    history = read_history(history_target(args))
    warn_skipped(history)
    check_model(history.runs, args.model)
    runs = [entry for entry in history.runs if matches(entry, args)]
    if args.last:
        runs = runs[-args.last :]
    done = to_mlflow(runs, args.mlflow or None, experiment=args.experiment)
    print(
        f"qagate history export: {len(done.added)} run(s) logged to {done.uri} "
        f"(experiment {done.experiment!r}), {len(done.present)} already there"
    )
    return 0


def redact(args: argparse.Namespace) -> int:
    """``qagate history redact``: mask the secrets of the stored runs, in place, in one transaction."""
    from qagate.store.history import redact as redact_store

    if args.argument:
        raise QagateError(f"redact takes no argument, got {args.argument[0]!r} (pass --history URL)")
    target = history_target(args)
    try:
        changed = redact_store(target)
    except OSError as exc:
        raise QagateError(f"cannot redact the run history: {exc}") from None
    print(f"qagate history redact: {display(target)}: masked the secrets of {changed} run(s)")
    return 0


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
    from qagate.reports.changes import value_interval_text
    from qagate.scoring.registry import fmt

    metric = result.get("metric")
    status = str(result.get("status"))
    line = (
        f"{status.upper():<10} {result.get('model')}::{result.get('rule')} [{result.get('dataset')}] "
        f"obtained {fmt(_number(result.get('obtained')), metric)}, "
        f"threshold {fmt(_number(result.get('threshold')), metric)}"
    )
    interval = value_interval_text(result)
    if interval:
        line += f", {interval}"
    if status == "new":
        line += " (a baseline written by this run: review it)"
    if result.get("reason"):
        line += f": {result['reason']}"
    return line


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
