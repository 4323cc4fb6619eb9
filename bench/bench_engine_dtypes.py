"""Engine throughput by dtype and batch size, and the teacher/student speed-up, on one device.

    python bench/bench_engine_dtypes.py --device cuda [--questions 512] [--batch-sizes 1,8,32,128]
                                        [--dtypes fp32,fp16,bf16] [--json FILE]
    python bench/bench_engine_dtypes.py --device cpu --dtypes fp32 --questions 64   # a dry run

The demo zoo's teacher (MiniLM-L6) and distilled student (3 layers) answer the first
``--questions`` held-out SQuAD v1.1 dev questions (articles 38-47 of ../shared, or the packaged
sample without it). Each (model, dtype, batch size) is timed with qagate's own speed clock
(warm-up excluded, CUDA synchronised around every round, adaptive rounds), and the speed-up is
measured paired (teacher and student rounds interleaved) in each dtype at the largest batch size.
Prints one table and, with ``--json``, writes it; bench/README.md quotes it with the card it
came from.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QAGATE_SHARED", ROOT.parent / "shared"))
HELD_OUT = "38-47"


def questions(limit: int) -> list:
    from qagate.data import load_dataset

    dev = SHARED / "data" / "squad" / "dev-v1.1.json"
    if dev.is_file():
        from qagate.core.argtypes import parse_articles

        return list(load_dataset(str(dev), articles=parse_articles(HELD_OUT)).examples[:limit])
    return list(load_dataset("sample").examples[:limit])


def model(name: str, dtype: str, batch_size: int, device: str):
    from qagate.inference.config import load_model_spec
    from qagate.inference.extractive import ExtractiveModel

    spec = load_model_spec(ROOT / "qa_models" / f"{name}.yaml")
    spec = dataclasses.replace(spec, dtype=dtype, batch_size=batch_size, device=device)
    return ExtractiveModel.from_spec(spec)


def card(device: str) -> str:
    import platform

    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    cpu = platform.processor() or platform.machine()
    return f"{cpu} x{torch.get_num_threads()} threads, torch {torch.__version__}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--questions", type=int, default=512)
    parser.add_argument("--batch-sizes", default="1,8,32,128")
    parser.add_argument("--dtypes", default="fp32,fp16,bf16")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per measurement")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from qagate.inference.registry import quiet_model_loading
    from qagate.timing.paired import TimingPlan, measure_paired, measure_single

    quiet_model_loading()
    examples = questions(args.questions)
    plan = TimingPlan(budget_seconds=args.budget)
    sizes = [int(x) for x in args.batch_sizes.split(",")]
    rows, teacher, student = [], "minilm6-teacher", "minilm3-distilled"
    print(f"{len(examples)} questions on {card(args.device)}")
    print(f"{'model':20s} {'dtype':5s} {'batch':>5s} {'q/s':>9s} {'ms/q':>8s} rounds")
    for dtype in args.dtypes.split(","):
        for size in sizes:
            for name in (teacher, student):
                timing = measure_single(model(name, dtype, size, args.device), examples, plan=plan)
                qps = 1.0 / timing.seconds_per_question
                rows.append({"model": name, "dtype": dtype, "batch_size": size, "questions_per_second": qps})
                print(
                    f"{name:20s} {dtype:5s} {size:5d} {qps:9.1f} {1000 * timing.seconds_per_question:8.3f} "
                    f"{len(timing.rounds)}",
                    flush=True,
                )
        paired = measure_paired(
            model(teacher, dtype, sizes[-1], args.device),
            model(student, dtype, sizes[-1], args.device),
            examples,
            plan=plan,
        )
        low, high = paired.interval().low, paired.interval().high
        rows.append(
            {"speedup": paired.speedup, "dtype": dtype, "batch_size": sizes[-1], "interval": [low, high]}
        )
        print(
            f"speed-up {dtype} batch {sizes[-1]}: {paired.speedup:.2f}x [{low:.2f}, {high:.2f}] (95%, paired)"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"card": card(args.device), "rows": rows}, indent=1), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
