"""Throughput of the generative path on CPU: batched greedy decoding against one question at a time.

    python bench/bench_generative.py [--model DIR_OR_HUB_ID] [--limit 64] [--batch-size 16]
                                     [--max-new-tokens 16] [--threads 2] [--json FILE]

Without ``--model`` it builds a random-weight GPT-NeoX the shape of Pythia-70M (6 layers, hidden
512) with the tests' tiny byte-level tokenizer, so it runs offline; answers are then noise, but
the cost of prompts, padding, the KV cache and stopping is real. Prints questions/s and
generated tokens/s at batch size 1 and at ``--batch-size``, and whether the answers agree.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_random_model(folder: Path) -> Path:
    """A Pythia-70M-shaped GPT-NeoX with seeded random weights and the tests' tiny tokenizer."""
    sys.path.insert(0, str(REPO / "tests"))
    from tiny_models import build_tiny_causal

    recipe = {"arch": "gpt_neox", "layers": 6, "hidden": 512, "heads": 8, "seed": 0, "init": 0.02}
    return build_tiny_causal(folder / "pythia70m-shaped", recipe)


def run(model_source: str, limit: int, batch_size: int, max_new_tokens: int) -> dict:
    from qagate.data import load_dataset
    from qagate.inference.generation import GenerationSettings
    from qagate.inference.generative import GenerativeModel

    examples = load_dataset("sample", limit=limit).examples
    out: dict = {"model": model_source, "questions": len(examples), "max_new_tokens": max_new_tokens}
    answers = {}
    for size in (1, batch_size):
        settings = GenerationSettings(batch_size=size, max_new_tokens=max_new_tokens, stop=("\n",))
        model = GenerativeModel("bench", model_source, settings=settings, device="cpu")
        model.predict(examples[: min(4, len(examples))])  # warm-up: load, first-call overheads
        start = time.perf_counter()
        predictions = model.predict(examples)
        wall = time.perf_counter() - start
        tokens = sum(predictions.tokens.values())
        out[f"batch_{size}"] = {
            "seconds": round(wall, 3),
            "questions_per_second": round(len(examples) / wall, 2),
            "tokens_per_second": round(tokens / wall, 1),
            "tokens": tokens,
        }
        answers[size] = predictions.answers
    out["speedup"] = round(out["batch_1"]["seconds"] / out[f"batch_{batch_size}"]["seconds"], 2)
    same = sum(answers[1][qid] == answers[batch_size][qid] for qid in answers[1])
    out["same_answers"] = f"{same}/{len(examples)}"  # fp32 sums differ with padding: near-ties may flip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="causal LM folder or hub id (default: a random Pythia-70M shape)")
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        source = args.model or str(build_random_model(Path(tmp)))
        result = run(source, args.limit, args.batch_size, args.max_new_tokens)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
