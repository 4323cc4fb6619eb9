"""``qagate evaluate MODEL.yaml DATASET``: EM, F1, BERTScore, seconds per question and
questions per second of a declared model."""

from __future__ import annotations

import argparse
import json

from qagate.cli.predict import add_common_arguments, load_inputs, progress_bar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument(
        "--bertscore",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also compute BERTScore F1 (default: on; offline MiniLM model)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    from qagate.scoring.evaluation import evaluate
    from qagate.scoring.registry import METRICS

    model, dataset = load_inputs(args)
    update, bar = progress_bar(len(dataset), model.name, args.quiet)
    with bar:
        result = evaluate(model, dataset, cache_dir=args.cache_dir, bertscore=args.bertscore, progress=update)
    if args.json:
        print(
            json.dumps(
                {
                    "model": result.model,
                    "dataset": result.dataset,
                    "questions": len(dataset),
                    "from_cache": result.from_cache,
                    **result.metrics,
                },
                sort_keys=True,
            )
        )
        return 0
    print(f"model     {result.model}")
    print(f"dataset   {result.dataset} ({len(dataset)} questions)")
    for name, info in METRICS.items():
        if name in result.metrics:
            print(f"{name:<22} {info.format(result.metrics[name])}")
    if result.from_cache:
        print("(predictions came from the cache: no timing was measured in this run)")
    return 0
