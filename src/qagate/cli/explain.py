"""``qagate explain RUN_ID [NODEID]``: how a recorded verdict was reached.

Reads the run from the history the plugin writes (the store ``qagate history`` reads) and prints,
for the gate item ``NODEID`` (or every gate of the run that did not pass), the values, the
threshold arithmetic, the interval and its method, the questions used, the baseline's provenance,
and for an undecided verdict what would decide it. ``RUN_ID`` may be any unique prefix of a run
id (as git takes commits) or ``last``; ``NODEID`` the node id pytest printed, or any part of it
that names one gate of the run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from qagate.cli.history import add_history_argument, history_target, warn_skipped
from qagate.core.errors import QagateError, quote

LAST = ("last", "latest")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_id",
        metavar="RUN_ID",
        help="the run ('qagate history' lists them): a unique prefix of its id, or 'last'",
    )
    parser.add_argument(
        "nodeid",
        metavar="NODEID",
        nargs="?",
        help="the gate item (its pytest node id, or a unique part of it such as "
        "'student::f1>=0.9*teacher'); default: every gate of the run that did not pass",
    )
    add_history_argument(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        dest="as_json",
        help="print the gate rows as stored (with their 'explain' facts) as JSON",
    )


def run(args: argparse.Namespace) -> int:
    from qagate.reports.explain import render
    from qagate.store.history import read_history

    history = read_history(history_target(args))
    warn_skipped(history, "explain")
    entry = find_run(history.runs, args.run_id)
    rows = [r for r in entry.get("results") or [] if isinstance(r, Mapping)]
    if args.nodeid:
        chosen = [find_gate(rows, args.nodeid, str(entry.get("id")))]
    else:
        chosen = [r for r in rows if r.get("status") != "pass"]
    if args.as_json:
        print(json.dumps(chosen, indent=1, ensure_ascii=False))
        return 0
    print(run_line(entry))
    if not chosen:
        names = "\n".join(f"  {r.get('nodeid')}" for r in rows)
        print(f"every gate of this run passed; explain one with 'qagate explain {entry.get('id')} NODEID':")
        print(names)
        return 0
    for row in chosen:
        print()
        print("\n".join(render(row)))
    return 0


def run_line(entry: Mapping[str, Any]) -> str:
    git = entry.get("git") or {}
    commit = str(git.get("commit") or "-")[:10] + ("+" if git.get("dirty") else "")
    return (
        f"run {entry.get('id')}  started {entry.get('started')}  commit {commit}  "
        f"outcome {str(entry.get('outcome', '?')).upper()}"
    )


def find_run(runs: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    """The run ``run_id`` names: its id, a unique prefix of it, or ``last``; else a QagateError
    with the closest ids."""
    if not runs:
        raise QagateError("the run history holds no run yet", hint="run 'pytest quality_tests/' first")
    wanted = run_id.strip()
    if wanted.lower() in LAST:
        return runs[-1]
    exact = [r for r in runs if str(r.get("id")) == wanted]
    if exact:
        return exact[-1]
    found = [r for r in runs if wanted and str(r.get("id", "")).startswith(wanted)]
    if len(found) == 1:
        return found[0]
    if found:
        listed = ", ".join(str(r.get("id")) for r in found[:5]) + (", ..." if len(found) > 5 else "")
        raise QagateError(
            f"{len(found)} runs have ids starting with {quote(wanted)}: {listed}",
            hint="give more characters of the id",
        )
    ids = [str(r.get("id")) for r in runs]
    near = _closest(wanted, {i: i for i in ids} | {i[: len(wanted)]: i for i in ids})
    newest = ", ".join(reversed(ids[-3:]))
    raise QagateError(
        f"no run has the id {quote(wanted)}{near}",
        hint=f"the newest runs are {newest} ('qagate history' lists them; 'last' is the newest)",
    )


def find_gate(rows: list[Mapping[str, Any]], nodeid: str, run_id: str) -> Mapping[str, Any]:
    """The gate row ``nodeid`` names: its node id, or a part of it that only one gate's holds."""
    wanted = nodeid.strip()
    exact = [r for r in rows if str(r.get("nodeid")) == wanted]
    if exact:
        return exact[0]
    found = [r for r in rows if wanted and wanted in str(r.get("nodeid"))]
    if len(found) == 1:
        return found[0]
    if found:
        listed = ", ".join(str(r.get("nodeid")) for r in found[:4]) + (", ..." if len(found) > 4 else "")
        raise QagateError(f"{len(found)} gates of run {run_id} match {quote(wanted)}: {listed}")
    names = [str(r.get("nodeid")) for r in rows]
    tails = {name.split("::", 1)[-1]: name for name in names}
    near = _closest(wanted, {n: n for n in names}) or _closest(wanted.split("::", 1)[-1], tails)
    raise QagateError(
        f"run {run_id} has no gate {quote(wanted)}{near}",
        hint=f"'qagate history show {run_id}' lists its {len(names)} gate(s)",
    )


def _closest(word: str, choices: Mapping[str, str]) -> str:
    """`` (did you mean 'x'?)`` for the value of the key of ``choices`` closest to ``word``."""
    import difflib

    if not word or len(word) > 300:
        return ""
    found = difflib.get_close_matches(word, list(choices), 1, 0.6)
    return f" (did you mean {choices[found[0]]!r}?)" if found else ""
