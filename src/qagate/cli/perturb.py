"""``qagate perturb DATASET --with NAME[,NAME] --seed S --out FILE``: write a seeded perturbed copy
of a dataset as SQuAD JSON (same question ids; every answer a valid span of its new context)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from qagate.cli.score import add_dataset_argument, add_subset_arguments
from qagate.core.argtypes import parse_int
from qagate.data.perturb import KINDS, parse_kinds

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_argument(parser)
    parser.add_argument(
        "--with",
        dest="kinds",
        type=parse_kinds,
        required=True,
        metavar="NAME[,NAME]",
        help=f"perturbations to apply, in order ({', '.join(KINDS)})",
    )
    parser.add_argument(
        "--seed", type=parse_int, default=0, metavar="S", help="perturbation seed (default 0)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="where to write the SQuAD JSON"
    )
    add_subset_arguments(parser)


def to_squad(dataset: "Dataset") -> dict:
    """The dataset as a SQuAD JSON object: one article per title, one paragraph per distinct
    context in a row (perturbed questions of one paragraph usually get contexts of their own)."""
    articles: list[dict] = []
    for example in dataset.examples:
        if not articles or articles[-1]["title"] != example.title:
            articles.append({"title": example.title, "paragraphs": []})
        paragraphs = articles[-1]["paragraphs"]
        if not paragraphs or paragraphs[-1]["context"] != example.context:
            paragraphs.append({"context": example.context, "qas": []})
        qa: dict = {
            "id": example.id,
            "question": example.question,
            "answers": [
                {"text": t, "answer_start": s} for t, s in zip(example.answers, example.answer_starts)
            ],
        }
        if dataset.version != "1.1":
            qa["is_impossible"] = example.is_impossible
        paragraphs[-1]["qas"].append(qa)
    return {"version": dataset.version, "data": articles}


def run(args: argparse.Namespace) -> int:
    from qagate.core.files import atomic_write_text
    from qagate.data import load_dataset
    from qagate.data.perturb import perturb_dataset

    dataset = load_dataset(args.dataset, limit=args.limit, seed=args.sample_seed, articles=args.articles)
    perturbed = perturb_dataset(dataset, args.kinds, args.seed)
    atomic_write_text(args.out, json.dumps(to_squad(perturbed), ensure_ascii=False, indent=1) + "\n")
    print(f"{perturbed.name}: {len(perturbed)} questions -> {args.out}", file=sys.stderr)
    return 0
