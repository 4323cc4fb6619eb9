"""The ``qagate`` command. Each sub-command lives in ``qagate.cli.<name>`` and is imported
only when it runs, so ``qagate --help`` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from qagate import __version__
from qagate.core.errors import QagateError

# name -> (module, one-line help). Each module defines ``add_arguments(parser)`` and
# ``run(args) -> int``.
COMMANDS: dict[str, tuple[str, str]] = {
    "score": ("qagate.cli.score", "score a predictions file against a dataset (official SQuAD EM/F1)"),
    "predict": ("qagate.cli.predict", "run a declared model on a dataset and save its predictions"),
    "evaluate": ("qagate.cli.evaluate", "run a declared model and report EM, F1, BERTScore and speed"),
    "perturb": ("qagate.cli.perturb", "write a seeded perturbed copy of a dataset (addsent, reorder, ...)"),
    "finetune": ("qagate.cli.finetune", "fine-tune an encoder for extractive QA on SQuAD-format data"),
    "distill": ("qagate.cli.distill", "distil a QA teacher into a smaller student (soft + hard labels)"),
    "pack": ("qagate.cli.pack", "store only what a model changed from its pip-installed base"),
    "export": ("qagate.cli.export", "write a declared extractive model as ONNX (fp32, int8) for onnxruntime"),
    "history": ("qagate.cli.history", "list the recorded quality-gate runs, newest first"),
    "dashboard": ("qagate.cli.dashboard", "write the run history as a static site of pass/fail and trends"),
    "summary": ("qagate.cli.summary", "one run's verdicts as Markdown for a pull request or the job summary"),
    "init": (
        "qagate.cli.init",
        "write a release gate into a project: model declarations, gate file, ini, CI",
    ),
    "diff": (
        "qagate.cli.diff",
        "compare two models, prediction files or runs per slice and question by question",
    ),
    "explain": (
        "qagate.cli.explain",
        "how a recorded verdict was reached: values, interval, what would decide it",
    ),
    "plan": (
        "qagate.cli.plan",
        "how many questions each confidence rule of a gate file needs, from a pilot run",
    ),
}


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line (the first word that is not an option)."""
    for word in argv:
        if not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """A parser whose sub-commands are all listed but only the chosen one is imported."""
    parser = argparse.ArgumentParser(
        prog="qagate",
        description="Score, run and distil question-answering models; the command-line side "
        "of the qagate pytest plugin.",
    )
    parser.add_argument("--version", action="version", version=f"qagate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = _chosen_command(argv)
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sp)
            sp.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
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
