"""``qagate predict MODEL.yaml DATASET --out predictions.json [--log log.jsonl]``: run a
declared model on a dataset and save its answers in the official SQuAD format."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from qagate.cli.score import add_dataset_argument
from qagate.core.argtypes import (
    DEVICE_CHOICES,
    parse_articles,
    parse_device,
    parse_int,
    parse_positive_int,
)
from qagate.core.errors import QagateError


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Model, dataset and run options shared by ``predict`` and ``evaluate``."""
    parser.add_argument("model", metavar="MODEL.yaml", type=Path, help="a model declaration")
    add_dataset_argument(parser)
    parser.add_argument(
        "--limit",
        type=parse_positive_int,
        metavar="N",
        help="first N questions (a seeded sample of N with --seed)",
    )
    parser.add_argument("--seed", type=parse_int, metavar="S", help="seed for the --limit sample")
    parser.add_argument(
        "--articles",
        type=parse_articles,
        metavar="LO-HI",
        help="only articles LO..HI in file order (e.g. 38-47, the held-out split)",
    )
    add_model_run_arguments(
        parser, cache_help="reuse predictions cached here (keyed by weights, data and settings)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_perturb_arguments(parser)


def add_model_run_arguments(parser: "argparse._ActionsContainer", *, cache_help: str) -> None:
    """``--device D --cache-dir DIR``: how a command runs the model declarations it is given."""
    parser.add_argument(
        "--device",
        type=parse_device,
        metavar="D",
        help=f"override the declared device ({', '.join(DEVICE_CHOICES)})",
    )
    parser.add_argument("--cache-dir", type=Path, metavar="DIR", help=cache_help)


def add_perturb_arguments(parser: argparse.ArgumentParser) -> None:
    """``--perturb NAME[,NAME] --perturb-seed S``: run on a seeded perturbed copy (same ids)."""
    from qagate.data.perturb import KINDS, parse_kinds

    parser.add_argument(
        "--perturb",
        type=parse_kinds,
        metavar="NAME[,NAME]",
        help=f"run on a seeded perturbed copy of the data ({', '.join(KINDS)})",
    )
    parser.add_argument(
        "--perturb-seed", type=parse_int, default=0, metavar="S", help="perturbation seed (default 0)"
    )


def load_inputs(args: argparse.Namespace):
    """The model (built, not yet loaded) and the dataset named on the command line."""
    from qagate.data import load_dataset
    from qagate.inference.config import load_model_spec
    from qagate.inference.registry import build_model

    spec = load_model_spec(args.model)
    model = build_model(spec, device=args.device)
    dataset = load_dataset(args.dataset, limit=args.limit, seed=args.seed, articles=args.articles)
    if len(dataset) == 0:
        raise QagateError("the dataset selection has no questions", path=args.dataset)
    if getattr(args, "perturb", None):
        from qagate.data.perturb import perturb_dataset

        dataset = perturb_dataset(dataset, args.perturb, args.perturb_seed)
    return model, dataset


def progress_bar(total: int, label: str, quiet: bool) -> tuple[Callable[[int], None], AbstractContextManager]:
    """A tqdm bar on stderr (only on a terminal, shown after 2 s) and its update callback."""
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        desc=label,
        unit="q",
        file=sys.stderr,
        delay=2.0,
        disable=quiet or not sys.stderr.isatty(),
    )
    return bar.update, bar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="predictions.json",
        help="where to write the answers (official format: id -> text)",
    )
    parser.add_argument(
        "--log",
        type=Path,
        metavar="log.jsonl",
        help="also write one JSON line per question: id, answer, confidence, seconds",
    )


def run(args: argparse.Namespace) -> int:
    from qagate.core.files import atomic_write_text
    from qagate.scoring.evaluation import predict_cached

    model, dataset = load_inputs(args)
    update, bar = progress_bar(len(dataset), model.name, args.quiet)
    with bar:
        predictions, from_cache = predict_cached(model, dataset, args.cache_dir, update)
    atomic_write_text(args.out, predictions.to_official_json())
    if args.log is not None:
        atomic_write_text(args.log, "".join(line + "\n" for line in predictions.log_lines()))
    missing = getattr(model, "missing_ids", None)
    if missing is not None and (lacking := missing(dataset.examples)):
        print(
            f"qagate predict: warning: {len(lacking)} questions have no answer in {model.path} "
            f"(written as empty answers)",
            file=sys.stderr,
        )
    speed = predictions.seconds_per_question
    timing = f", {speed:.4f} s/question" if predictions.total_seconds is not None and speed else ""
    cached = " (from cache)" if from_cache else ""
    print(
        f"{model.name}: {len(predictions)} answers on {dataset.name} -> {args.out}{timing}{cached}",
        file=sys.stderr,
    )
    return 0
