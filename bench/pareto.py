"""The quality/speed trade-off of the zoo's variants: EM ratio against speed-up, one point each.

Every variant -- a model (its layer count) x quantisation x runtime x window length -- answers
the held-out SQuAD questions (EM/F1 against the fp32 teacher's, the "EM ratio") and is timed
paired and interleaved against the fp32 PyTorch teacher at 384 tokens (qagate's own paired
clock, the one speed rules use: bootstrap interval over the rounds). Writes a table
(pareto.md), the numbers (pareto.json) and the plot (pareto.png, matplotlib) into --out, and
marks the Pareto frontier: the variants no other variant beats on both axes.

    python bench/pareto.py                              # zoo teacher and student, 16 variants
    python bench/pareto.py --student ablation/minilm3-all --limit 400 --out /tmp/pareto
    python bench/pareto.py --seq-lens 384:128 --runtimes torch   # a smaller grid

Run it alone on the machine (about 15 minutes on 2 CPU cores for the default grid).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from qagate.core.argtypes import parse_articles

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QAGATE_SHARED", ROOT.parent / "shared"))
TEACHER = "zoo:minilm6-squad-teacher"
STUDENT = "zoo:minilm3-squad-distilled"


@dataclass(frozen=True)
class Variant:
    """One point of the plot: which weights, how they run, how long the windows are."""

    model: str
    source: str
    runtime: str
    quantize: str
    max_seq_len: int
    doc_stride: int

    @property
    def label(self) -> str:
        runtime = "onnx" if self.runtime == "onnxruntime" else "torch"
        quant = "int8" if self.quantize == "int8" else "fp32"
        return f"{self.model} {runtime} {quant} {self.max_seq_len}"


def frontier(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points that no other point beats on both axes (higher is better)."""
    keep = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (ox >= x and oy >= y) and (ox > x or oy > y) for j, (ox, oy) in enumerate(points) if j != i
        )
        if not dominated:
            keep.append(i)
    return sorted(keep, key=lambda i: points[i][0])


def load(variant: Variant, threads: int):
    """The variant as a qagate model (exports/quantises once into qagate's cache)."""
    from qagate.inference.engine import EngineSettings
    from qagate.inference.extractive import ExtractiveModel

    settings = EngineSettings(max_seq_len=variant.max_seq_len, doc_stride=variant.doc_stride)
    model = ExtractiveModel(
        variant.label,
        variant.source,
        settings=settings,
        device="cpu",
        runtime=variant.runtime,
        quantize=variant.quantize,
    )
    model.load()
    return model


def layers(model) -> int:
    """The encoder's layer count, from the model's config.json."""
    config = json.loads((Path(model.model_folder()) / "config.json").read_text())
    return int(config.get("num_hidden_layers", 0))


def plot(rows: list[dict], path: Path, ratio_target: float, speed_target: float, articles: str) -> None:
    """EM ratio against speed-up (log scale), the frontier joined, the card's targets dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6), dpi=120)
    markers = {
        ("torch", "none"): "o",
        ("torch", "int8"): "s",
        ("onnxruntime", "none"): "^",
        ("onnxruntime", "int8"): "D",
    }
    models = sorted({r["model"] for r in rows})
    colours = {m: plt.get_cmap("tab10")(i) for i, m in enumerate(models)}
    for r in rows:
        ax.errorbar(
            r["speedup"],
            r["em_ratio"],
            xerr=[[r["speedup"] - r["speedup_low"]], [r["speedup_high"] - r["speedup"]]],
            fmt=markers[(r["runtime"], r["quantize"])],
            color=colours[r["model"]],
            markerfacecolor="none" if r["max_seq_len"] != rows[0]["max_seq_len"] else colours[r["model"]],
            capsize=2,
            markersize=7,
        )
        if r["frontier"]:  # only the frontier is labelled: the legend tells the rest apart
            ax.annotate(
                r["label"],
                (r["speedup"], r["em_ratio"]),
                fontsize=7,
                xytext=(5, 4),
                textcoords="offset points",
            )
    front = sorted((r for r in rows if r["frontier"]), key=lambda r: r["speedup"])
    ax.plot(
        [r["speedup"] for r in front], [r["em_ratio"] for r in front], "k--", lw=0.8, label="Pareto frontier"
    )
    ax.axhline(ratio_target, color="grey", ls=":", lw=1)
    ax.axvline(speed_target, color="grey", ls=":", lw=1)
    ax.text(speed_target, ax.get_ylim()[0], f" {speed_target:g}x", color="grey", fontsize=8, va="bottom")
    ax.text(
        ax.get_xlim()[0],
        ratio_target,
        f" EM {ratio_target:.0%} of teacher",
        color="grey",
        fontsize=8,
        va="bottom",
    )
    ax.set_xscale("log", base=2)
    ticks = [t for t in (0.75, 1, 1.5, 2, 3, 4, 6, 8) if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("speed-up against the fp32 PyTorch teacher at 384 tokens (paired, 95% interval)")
    ax.set_ylabel(f"EM / teacher EM (held-out SQuAD v1.1 articles {articles})")
    handles = [plt.Line2D([], [], color=colours[m], marker="o", ls="", label=m) for m in models]
    handles += [
        plt.Line2D([], [], color="k", marker=mk, ls="", markerfacecolor="none", label=f"{rt} {q}")
        for (rt, q), mk in markers.items()
    ]
    handles.append(plt.Line2D([], [], color="k", ls="--", label="Pareto frontier"))
    ax.legend(handles=handles, fontsize=7, loc="lower left")
    ax.set_title("qagate zoo: quality kept against speed gained (filled: 384 tokens, hollow: shorter)")
    fig.tight_layout()
    fig.savefig(path)


def table(rows: list[dict]) -> str:
    lines = [
        "| variant | layers | runtime | quantize | window | EM | F1 | EM ratio | speed-up [95%] | frontier |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['layers']} | {r['runtime']} | {r['quantize']} | {r['max_seq_len']}/"
            f"{r['doc_stride']} | {r['exact_match']:.2f} | {r['f1']:.2f} | {r['em_ratio']:.3f} | "
            f"{r['speedup']:.2f}x [{r['speedup_low']:.2f}, {r['speedup_high']:.2f}] | "
            f"{'yes' if r['frontier'] else ''} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default=TEACHER, help="the reference model (fp32, torch)")
    parser.add_argument(
        "--student", action="append", help=f"a student folder or zoo:NAME (repeatable; default {STUDENT})"
    )
    parser.add_argument("--runtimes", default="torch,onnxruntime")
    parser.add_argument("--quantize", default="none,int8")
    parser.add_argument("--seq-lens", default="384:128,256:96", help="max_seq_len:doc_stride pairs")
    parser.add_argument("--data", default=str(SHARED / "data" / "squad" / "dev-v1.1.json"))
    parser.add_argument(
        "--articles", type=parse_articles, default="38-47", help="held-out split of the shared data"
    )
    parser.add_argument("--limit", type=int, help="first N questions of the articles (default: all)")
    parser.add_argument("--time-questions", type=int, default=64, help="questions per timed round")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of paired timing per variant")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ratio-target", type=float, default=0.95)
    parser.add_argument("--speed-target", type=float, default=4.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    parser.add_argument("--replot", action="store_true", help="redraw pareto.png from --out's pareto.json")
    args = parser.parse_args(argv)
    articles = "-".join(map(str, args.articles))
    runtimes, quantize = args.runtimes.split(","), args.quantize.split(",")
    if not set(runtimes) <= {"torch", "onnxruntime"} or not set(quantize) <= {"none", "int8"}:
        parser.error("--runtimes takes torch,onnxruntime and --quantize none,int8 (comma-separated)")
    try:
        windows = [tuple(int(v) for v in pair.split(":", 1)) for pair in args.seq_lens.split(",")]
        if any(len(window) != 2 for window in windows):
            raise ValueError
    except ValueError:
        parser.error(
            f"--seq-lens {args.seq_lens!r}: expected max_seq_len:doc_stride pairs such as 384:128,256:96"
        )
    if args.replot:
        rows = json.loads((args.out / "pareto.json").read_text())
        plot(rows, args.out / "pareto.png", args.ratio_target, args.speed_target, articles)
        return 0

    import torch

    from qagate.data import load_dataset
    from qagate.inference.config import resolve_source
    from qagate.inference.registry import quiet_model_loading
    from qagate.scoring.squad import score
    from qagate.timing.paired import TimingPlan, measure_paired

    torch.set_num_threads(args.threads)
    quiet_model_loading()
    dataset = load_dataset(args.data, articles=args.articles, limit=args.limit)
    examples = list(dataset.examples)
    timed = examples[: args.time_questions]

    def named(source: str) -> tuple[str, str]:
        return Path(source.removeprefix("zoo:")).name, resolve_source(source, "extractive", Path.cwd())

    models = [named(args.teacher)] + [named(s) for s in (args.student or [STUDENT])]
    reference_variant = Variant(*models[0], "torch", "none", *windows[0])
    grid = [
        Variant(name, source, runtime, quant, length, stride)
        for name, source in models
        for length, stride in windows
        for runtime in runtimes
        for quant in quantize
    ]
    if reference_variant not in grid:  # the ratios need the reference's own row
        grid.insert(0, reference_variant)
    reference = load(reference_variant, args.threads)
    plan = TimingPlan(budget_seconds=args.budget)
    rows = []
    for variant in grid:
        model = reference if variant == reference_variant else load(variant, args.threads)
        scores = score(dataset, model.predict(examples).answers)
        if model is reference:
            speed = (1.0, 1.0, 1.0)
        else:
            interval = measure_paired(reference, model, timed, plan=plan).interval(plan.level)
            speed = (interval.estimate, interval.low, interval.high)
        row = {
            "label": variant.label,
            "model": variant.model,
            "layers": layers(model),
            "runtime": variant.runtime,
            "quantize": variant.quantize,
            "max_seq_len": variant.max_seq_len,
            "doc_stride": variant.doc_stride,
            "exact_match": scores.exact_match,
            "f1": scores.f1,
            "speedup": speed[0],
            "speedup_low": speed[1],
            "speedup_high": speed[2],
        }
        rows.append(row)
        print(
            f"{row['label']:40s} EM {row['exact_match']:6.2f} F1 {row['f1']:6.2f} "
            f"speed-up {speed[0]:5.2f}x [{speed[1]:.2f}, {speed[2]:.2f}]",
            flush=True,
        )
    teacher_em = rows[grid.index(reference_variant)]["exact_match"]
    for r in rows:
        r["em_ratio"] = r["exact_match"] / teacher_em
    on_front = set(frontier([(r["speedup"], r["em_ratio"]) for r in rows]))
    for i, r in enumerate(rows):
        r["frontier"] = i in on_front
    meets = [
        r["label"] for r in rows if r["em_ratio"] >= args.ratio_target and r["speedup"] >= args.speed_target
    ]

    args.out.mkdir(parents=True, exist_ok=True)
    header = (
        f"{len(examples)} held-out questions (articles {articles}); speed-up timed paired on "
        f"{len(timed)} of them against {reference_variant.label}; {args.threads} threads, torch "
        f"{torch.__version__}.\n\n"
    )
    verdict = (
        f"\nMeets EM ratio >= {args.ratio_target} and speed-up >= {args.speed_target}x: "
        f"{', '.join(meets) if meets else 'none'}.\n"
    )
    (args.out / "pareto.md").write_text(header + table(rows) + verdict)
    (args.out / "pareto.json").write_text(json.dumps(rows, indent=1) + "\n")
    plot(rows, args.out / "pareto.png", args.ratio_target, args.speed_target, articles)
    print(header + table(rows) + verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
