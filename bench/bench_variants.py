"""Speed and answer agreement of an extractive model's compressed variants.

Runs one model four ways on the same held-out SQuAD questions -- PyTorch fp32 (the reference),
ONNX Runtime fp32, PyTorch dynamic int8 and ONNX Runtime int8 -- one after the other in this
process with the same thread count, and prints each variant's answering time (best of
``--repeats`` passes after a warm-up), EM/F1, and how often its answer equals the reference's.

    python bench/bench_variants.py                          # reference MiniLM-L6, 400 questions
    python bench/bench_variants.py --model zoo:minilm3-squad-distilled --limit 1988
    python bench/bench_variants.py --model zoo:minilm3-squad-distilled --markdown bench/variants-zoo.md

Exports and quantised files go to qagate's cache ($QAGATE_HOME/onnx) as in a gate run; the
one-off export time is printed apart from the answering time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QAGATE_SHARED", ROOT.parent / "shared"))
NAMES = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime"}
VARIANTS = (("torch", "none"), ("onnxruntime", "none"), ("torch", "int8"), ("onnxruntime", "int8"))


def run_variant(source: str, runtime: str, quantize: str, examples, repeats: int) -> dict:
    """Load (export if needed), warm up, then time ``repeats`` passes over ``examples``."""
    from qagate.inference.extractive import ExtractiveModel

    model = ExtractiveModel("bench", source, runtime=runtime, quantize=quantize, device="cpu")
    began = time.perf_counter()
    model.load()
    load_seconds = time.perf_counter() - began
    model.predict(examples[:16])
    passes, answers = [], {}
    for _ in range(repeats):
        began = time.perf_counter()
        answers = model.predict(examples).answers
        passes.append(time.perf_counter() - began)
    return {"load": load_seconds, "seconds": min(passes), "answers": answers, "size": model.info()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(SHARED / "models" / "reference-minilm6-squad"))
    parser.add_argument("--data", default=str(SHARED / "data" / "squad" / "dev-v1.1.json"))
    parser.add_argument("--articles", default="38-47", help="held-out split of the shared data")
    parser.add_argument("--limit", type=int, default=400, help="first N questions of the articles")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--markdown", type=Path, help="also write the table here (what the docs include)")
    args = parser.parse_args(argv)

    import torch

    from qagate.data import load_dataset
    from qagate.inference.config import resolve_source
    from qagate.inference.registry import quiet_model_loading
    from qagate.scoring.squad import score

    torch.set_num_threads(args.threads)
    quiet_model_loading()
    source = resolve_source(args.model, "extractive", Path.cwd())
    lo, hi = (int(x) for x in args.articles.split("-"))
    dataset = load_dataset(args.data, articles=(lo, hi), limit=args.limit)
    examples = list(dataset.examples)
    results = {v: run_variant(source, *v, examples, args.repeats) for v in VARIANTS}
    reference = results[("torch", "none")]
    print(
        f"{Path(args.model).name}: {len(examples)} questions (articles {args.articles}), "
        f"{args.threads} threads, torch {torch.__version__}"
    )
    print(
        f"{'variant':24s} {'s/question':>10s} {'speed-up':>8s} {'agree':>7s} {'EM':>6s} {'F1':>6s} "
        f"{'MB':>6s} {'load s':>7s}"
    )
    rows = [
        "| variant | s/question | speed-up | same answers | EM | F1 | MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for (runtime, quantize), r in results.items():
        scores = score(dataset, r["answers"])
        same = sum(r["answers"][k] == reference["answers"][k] for k in reference["answers"])
        print(
            f"{runtime + ' ' + quantize:24s} {r['seconds'] / len(examples):10.4f} "
            f"{reference['seconds'] / r['seconds']:7.2f}x {same / len(examples):7.1%} "
            f"{scores.exact_match:6.2f} {scores.f1:6.2f} {r['size']['size_on_disk_mb']:6.1f} {r['load']:7.1f}"
        )
        name = f"{NAMES[runtime]} {'int8' if quantize == 'int8' else 'fp32'}"
        cells = (
            f"{r['seconds'] / len(examples):.4f}",
            f"{reference['seconds'] / r['seconds']:.2f}x",
            f"{same / len(examples):.1%}",
            f"{scores.exact_match:.2f}",
            f"{scores.f1:.2f}",
            f"{r['size']['size_on_disk_mb']:.1f}",
        )
        rows.append(f"| {name} | {' | '.join(cells)} |")
    if args.markdown:
        caption = (
            f"`{args.model}`, {len(examples)} questions of articles {args.articles}, {args.threads} threads, "
            f"torch {torch.__version__}, best of {args.repeats} passes, {time.strftime('%Y-%m-%d')}"
        )
        args.markdown.write_text("\n".join([caption, "", *rows, ""]))
        print(f"table written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
