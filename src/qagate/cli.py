"""The ``qagate`` command. Each sub-command lives in ``qagate.commands.<name>`` and is imported
only when it runs, so ``qagate --help`` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from qagate import __version__
from qagate.errors import QagateError

# name -> (module, one-line help). Each module defines ``add_arguments(parser)`` and
# ``run(args) -> int``.
COMMANDS: dict[str, tuple[str, str]] = {
    "score": ("qagate.commands.score", "score a predictions file against a dataset (official SQuAD EM/F1)"),
    "predict": ("qagate.commands.predict", "run a declared model on a dataset and save its predictions"),
    "evaluate": ("qagate.commands.evaluate", "run a declared model and report EM, F1, BERTScore and speed"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qagate", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"qagate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(sp)
        sp.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except QagateError as exc:
        print(f"qagate {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qagate {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
