"""``qagate summary --markdown``: one run's verdicts (the newest, or ``--run ID``) as Markdown for a
pull-request comment or GitHub's job summary, with what changed since the previous run on its
branch.

Where it goes: ``--out FILE`` writes a file and ``--out -`` prints it; ``--github`` appends it to
``$GITHUB_STEP_SUMMARY``. With neither, it is appended there when that variable is set (inside
GitHub Actions) and printed otherwise. It never fails the build: the gate does that.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from qagate.cli.history import add_history_argument, history_target, warn_skipped

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_history_argument(parser)
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="Markdown output (the only format, and the default; accepted for clarity in CI scripts)",
    )
    parser.add_argument("--run", metavar="ID", help="the run's id, or its start (default: the newest run)")
    parser.add_argument(
        "--out",
        metavar="FILE|-",
        help="write the summary to FILE, or print it with '-' "
        f"(default: append to ${STEP_SUMMARY} when it is set, else print)",
    )
    parser.add_argument(
        "--github", action="store_true", help=f"append the summary to ${STEP_SUMMARY} (as well as any --out)"
    )
    parser.add_argument("--title", default="qagate", help="the heading's first words (default: %(default)s)")
    parser.add_argument("--link", metavar="URL", help="a link to the dashboard to add under the summary")


def run(args: argparse.Namespace) -> int:
    from qagate.core.errors import QagateError
    from qagate.reports.changes import find_run
    from qagate.reports.markdown import summary
    from qagate.store.history import read_history

    history = read_history(history_target(args))
    warn_skipped(history, "summary")
    index = find_run(history.runs, args.run)
    if index is None:
        raise QagateError(
            "no such run" if args.run else "the history has no runs",
            path=history.path,
            item=args.run,
            hint="'qagate history' lists the runs and their ids",
        )
    text = summary(history.runs, index, title=args.title, link=args.link)
    step_summary = os.environ.get(STEP_SUMMARY, "").strip()
    if args.github and not step_summary:
        raise QagateError(f"--github needs ${STEP_SUMMARY} (set by GitHub Actions)", hint="use --out FILE")
    if args.out == "-" or (args.out is None and not args.github and not step_summary):
        sys.stdout.write(text)
    elif args.out is not None:
        _write(Path(args.out), text, append=False)
    if args.github or (args.out is None and step_summary):
        _write(Path(step_summary), text, append=True)
        print(f"qagate summary: appended to ${STEP_SUMMARY}", file=sys.stderr)
    return 0


def _write(path: Path, text: str, *, append: bool) -> None:
    from qagate.core.errors import QagateError

    try:
        if append:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(text + "\n")
        else:
            from qagate.core.files import atomic_write_text

            atomic_write_text(path, text)
    except OSError as exc:
        raise QagateError(f"cannot write the summary: {exc.strerror or exc}", path=path) from None
