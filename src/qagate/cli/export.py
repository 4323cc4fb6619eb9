"""``qagate export MODEL.yaml --out DIR [--quantize int8]``: write a declared extractive model as
ONNX (fp32, and int8 when asked) with its config and tokenizer files, so that ``DIR`` is itself
a ``source`` for a declaration with ``runtime: onnxruntime``. Same model, same bytes."""

from __future__ import annotations

import argparse
from pathlib import Path

from qagate.core.errors import QagateError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from qagate.inference.variants import QUANTIZE

    parser.add_argument("declaration", type=Path, metavar="MODEL.yaml", help="a kind: extractive declaration")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="the folder to write (created if needed)"
    )
    parser.add_argument(
        "--quantize",
        choices=QUANTIZE,
        default=None,
        help="also write model-int8.onnx (ONNX Runtime dynamic int8); default: the declaration's "
        "'quantize' key",
    )


def _versions() -> dict[str, str | None]:
    """The versions that produced the files (same versions, same bytes)."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for dist in ("pytest-qagate", "torch", "transformers", "onnx", "onnxruntime"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = None
    return found


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from qagate.inference.config import load_model_spec
    from qagate.inference.extractive import ExtractiveModel
    from qagate.inference.onnx_export import write_export
    from qagate.inference.registry import quiet_model_loading

    spec = load_model_spec(args.declaration)
    if spec.kind != "extractive":
        raise QagateError(
            f"only kind: extractive models can be exported to ONNX, not kind: {spec.kind}",
            path=args.declaration,
            item="kind",
        )
    quantize = args.quantize or spec.quantize
    quiet_model_loading()
    variant = replace(spec, runtime="onnxruntime", quantize=quantize, dtype="auto")
    model = ExtractiveModel.from_spec(variant, device="cpu")
    folder = model.model_folder()
    if args.out.resolve() == folder.resolve():
        raise QagateError("--out is the model's own folder", path=args.out, hint="choose another folder")
    onnx_file = model.onnx_file()
    info = model.info()
    provenance = {
        "model": spec.name,
        "source_files_sha256": model.files_digest(),
        "parameter_count": info.get("parameter_count"),
        "versions": _versions(),
    }
    written = write_export(folder, args.out, quantize, onnx_file, provenance)
    size = sum(p.stat().st_size for p in written if p.name.endswith(".onnx"))
    onnx_names = ", ".join(p.name for p in written if p.name.endswith(".onnx"))
    print(
        f"exported {spec.name} -> {args.out}: {onnx_names} ({size / 1e6:.1f} MB) and "
        f"{len(written) - len(onnx_names.split(', '))} config/tokenizer/manifest files; "
        f"use it as 'source: {args.out}' with 'runtime: onnxruntime'"
    )
    return 0
