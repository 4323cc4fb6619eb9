"""``qagate evaluate MODEL.yaml DATASET``: EM, F1, BERTScore, seconds per question and
questions per second of a declared model."""

from __future__ import annotations

import argparse
import json

from qagate.cli.predict import add_common_arguments, load_inputs, progress_bar

_LABELS = {
    "exact_match": ("exact match", "{:.2f}"),
    "f1": ("F1", "{:.2f}"),
    "bertscore_f1": ("BERTScore F1", "{:.4f}"),
    "seconds_per_question": ("seconds/question", "{:.4f}"),
    "questions_per_second": ("questions/second", "{:.1f}"),
    "parameter_count": ("parameters", "{:,.0f}"),
    "size_on_disk_mb": ("size on disk (MB)", "{:.1f}"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--bertscore", action=argparse.BooleanOptionalAction, default=True,
                        help="also compute BERTScore F1 (default: on; offline MiniLM model)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    from qagate.scoring.evaluation import evaluate

    model, dataset = load_inputs(args)
    update, bar = progress_bar(len(dataset), model.name, args.quiet)
    with bar:
        result = evaluate(model, dataset, cache_dir=args.cache_dir, bertscore=args.bertscore,
                          progress=update)
    if args.json:
        print(json.dumps({"model": result.model, "dataset": result.dataset, "questions": len(dataset),
                          "from_cache": result.from_cache, **result.metrics}, sort_keys=True))
        return 0
    print(f"model     {result.model}")
    print(f"dataset   {result.dataset} ({len(dataset)} questions)")
    for key, (label, fmt) in _LABELS.items():
        if key in result.metrics:
            print(f"{label:<18} {fmt.format(result.metrics[key])}")
    if result.from_cache and "seconds_per_question" in result.metrics:
        print("(predictions and their timing came from the cache)")
    return 0
