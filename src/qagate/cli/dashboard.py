"""``qagate dashboard``: write the run history as a self-contained static site, ``DIR/index.html``
(run-by-gate matrix, trends against thresholds, speed-up, flaky gates, steps) and one page per
run under ``DIR/runs/``; ``--out FILE.html`` writes the front page alone. Readable by everyone
(0644 under the usual umask); no scripts, no network at view time."""

from __future__ import annotations

import argparse
from pathlib import Path

from qagate.cli.history import add_history_argument, history_target, warn_skipped
from qagate.core.argtypes import parse_positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_history_argument(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(".qagate/dashboard"),
        metavar="DIR",
        help="the folder of the site to write: DIR/index.html and DIR/runs/<id>.html "
        "(default: %(default)s); a path ending in .html writes that one page alone",
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
    from qagate.core.errors import QagateError
    from qagate.reports.dashboard import render
    from qagate.reports.site import site_pages, write_site
    from qagate.store.history import read_history

    history = read_history(history_target(args))
    warn_skipped(history, "dashboard")
    out: Path = args.out
    if out.suffix.lower() in (".html", ".htm"):
        page = render(history.runs, title=args.title, last=args.last, skipped_lines=history.skipped)
        folder, pages, shown = out.parent, {out.name: page}, out
    else:
        pages = site_pages(history.runs, title=args.title, last=args.last, skipped_lines=history.skipped)
        folder, shown = out, out / "index.html"
    try:
        write_site(folder, pages)
    except OSError as exc:
        raise QagateError(
            f"cannot write the dashboard: {exc.strerror or exc}",
            path=out,
            hint="pass --out with a writable folder (or a .html file for the front page alone)",
        ) from None
    print(
        f"dashboard: {shown} ({min(len(history.runs), args.last)} of {len(history.runs)} runs "
        f"from {history.path}; {len(pages)} page(s))"
    )
    return 0
