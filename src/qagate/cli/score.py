"""``qagate score DATASET PREDICTIONS``: a drop-in for the official SQuAD evaluation script.

MLQA files (``dev-context-de-question-de.json``) or ``--lang LANG`` are scored, and printed, as
MLQA's official script does. By default stdout is exactly what the official script prints
(v1.1: ``{"exact_match": ..., "f1": ...}``; v2.0: its ``exact``/``f1``/``HasAns_*``/``NoAns_*``
object), so existing pipelines keep working. ``--json`` prints a fuller object with counts; ``--ci`` adds
bootstrap intervals. Missing and unknown question ids are warnings on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys

from qagate.core.argtypes import parse_articles, parse_dataset, parse_int, parse_level, parse_positive_int

_PREVIEW = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_argument(parser)
    parser.add_argument(
        "predictions",
        metavar="PREDICTIONS",
        help="official predictions file: a JSON object, question id -> answer",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        dest="as_json",
        help="print one JSON object with exact_match, f1, total, answered, "
        "missing, unknown_ids (and has_ans/no_ans for v2.0)",
    )
    parser.add_argument(
        "--ci", action="store_true", help="add percentile bootstrap confidence intervals for EM and F1"
    )
    parser.add_argument(
        "--level", type=parse_level, default=0.95, help="confidence level of the intervals (default 0.95)"
    )
    parser.add_argument("--seed", type=parse_int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument(
        "--resamples", type=parse_positive_int, default=2000, help="bootstrap resamples (default 2000)"
    )
    parser.add_argument(
        "--lang",
        metavar="LANG",
        help="score as MLQA's official script with answer language LANG (ar de en es hi vi zh); "
        "default: from an MLQA file name (dev-context-LANG-question-Q.json)",
    )
    add_subset_arguments(parser)


def add_dataset_argument(parser: argparse.ArgumentParser) -> None:
    """The DATASET positional every dataset command takes, read by ``qagate.data.load_dataset``."""
    parser.add_argument(
        "dataset",
        metavar="DATASET",
        type=parse_dataset,
        help="'sample', a SQuAD JSON (v1.1/v2.0), JSON Lines or parquet file, or hf:<hub id>",
    )


def add_subset_arguments(parser: argparse.ArgumentParser) -> None:
    """--articles, --limit and --sample-seed: the subset options every dataset command shares."""
    subset = parser.add_argument_group("subset of the dataset")
    subset.add_argument(
        "--articles",
        type=parse_articles,
        metavar="LO-HI",
        help="only articles LO..HI, inclusive, in file order (e.g. 38-47)",
    )
    subset.add_argument(
        "--limit", type=parse_positive_int, metavar="N", help="only the first N questions (after --articles)"
    )
    subset.add_argument(
        "--sample-seed",
        type=parse_int,
        metavar="S",
        help="with --limit: a seeded random sample of N questions",
    )


def run(args: argparse.Namespace) -> int:
    from qagate.data import load_dataset, load_predictions
    from qagate.scoring.squad import score

    dataset = load_dataset(
        args.dataset, limit=args.limit, seed=args.sample_seed, articles=args.articles, language=args.lang
    )
    predictions = load_predictions(args.predictions)
    scores = score(dataset, predictions)
    _warn(f"{len(scores.missing)} of {scores.total} questions have no prediction and score 0", scores.missing)
    _warn(
        f"{len(scores.unknown_ids)} predicted ids are not in dataset {dataset.name!r} and are ignored",
        scores.unknown_ids,
    )

    if args.as_json:
        out = {"dataset": dataset.name, "version": dataset.version, **scores.summary()}
    else:
        out = scores.official()
    if args.ci:
        from qagate.scoring.stats import score_intervals

        intervals = score_intervals(scores, level=args.level, n_resamples=args.resamples, seed=args.seed)
        out["intervals"] = {
            "level": args.level,
            "resamples": args.resamples,
            "seed": args.seed,
            **{name: [iv.low, iv.high] for name, iv in intervals.items()},
        }
    indent = 2 if (args.as_json or dataset.version == "2.0") else None
    print(json.dumps(out, indent=indent))
    return 0


def _warn(message: str, ids: list[str]) -> None:
    if ids:
        shown = ", ".join(ids[:_PREVIEW]) + (", ..." if len(ids) > _PREVIEW else "")
        print(f"qagate score: warning: {message} (e.g. {shown})", file=sys.stderr)
