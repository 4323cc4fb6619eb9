"""``qagate dashboard``: write the run history as one self-contained HTML page (each run's
outcome with partial/baseline marks, a gate-by-run grid, one trend per model, metric and dataset
against its threshold), readable by everyone (0644 under the usual umask)."""

from __future__ import annotations

import argparse
from pathlib import Path

from qagate.argtypes import parse_positive_int
from qagate.cli.history import add_history_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_history_argument(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(".qagate/dashboard.html"),
        metavar="FILE",
        help="the HTML file to write (default: %(default)s)",
    )
    parser.add_argument(
        "--last",
        type=parse_positive_int,
        default=50,
        metavar="N",
        help="draw the newest N runs (default: %(default)s)",
    )
    parser.add_argument("--title", default="qagate run history", help="the page title")


def run(args: argparse.Namespace) -> int:
    from qagate.errors import QagateError
    from qagate.files import atomic_write_text
    from qagate.reports.dashboard import render
    from qagate.store.history import read_history

    history = read_history(args.history)
    page = render(history.runs, title=args.title, last=args.last, skipped_lines=history.skipped)
    try:
        atomic_write_text(args.out, page)
    except OSError as exc:
        raise QagateError(
            f"cannot write the dashboard: {exc.strerror or exc}",
            path=args.out,
            hint="pass --out with a writable file path",
        ) from None
    print(
        f"dashboard: {args.out} ({min(len(history.runs), args.last)} of {len(history.runs)} runs "
        f"from {history.path})"
    )
    return 0
