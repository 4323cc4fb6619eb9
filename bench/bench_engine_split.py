"""Where the engine's time and memory go, as whole processes, against the transformers 4.x pipeline.

Each run is a fresh Python process that starts, imports, loads the model, answers the
questions and exits, as a CI job does; the parent measures its wall time and the child reports
its own peak RSS and the split of its time: import (torch, transformers), load (tokenizer and
weights), tokenisation (cutting questions into windows), forward (the model), span search
(probabilities and top spans), merge (word alignment and the final answer) and the rest.
The 4.x pipeline (a throw-away venv, as bench_engine_vs_pipeline.py makes it) runs the same
questions the same way, one process after the other, never at the same time.

    python bench/bench_engine_split.py                            # 400 held-out questions
    python bench/bench_engine_split.py --all                      # all 1,988 held-out questions
    python bench/bench_engine_split.py --batch-tokens 4096,2048,1024   # the CPU batch budget
    python bench/bench_engine_split.py --all --runtime torch,onnxruntime,openvino,openvino:bf16,torch:int8

``--runtime`` takes variants: ``RUNTIME`` (fp32), ``RUNTIME:bf16`` (``dtype: bf16``) or
``RUNTIME:int8`` (``quantize: int8``), one run each per batch budget.

Prints one row per run and the ratios (pipeline wall time / engine wall time, engine peak RSS /
pipeline peak RSS), how many answers are identical to the pipeline's and to the first fp32 run's,
EM/F1, and the roofline: the forward pass's achieved GFLOP/s (FLOPs counted from the model's
config and the padded shape of every batch it ran) beside this machine's matmul peak, measured
by a child process of its own (torch, the same threads, fp32 and bf16) before and after the runs.
Targets (issue 25): >= 1.6x as a whole process, peak memory <= the pipeline's, >= 99.9% identical
answers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine_vs_pipeline import add_common_arguments, ensure_venv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# The pipeline's process, split the same way as far as its API allows (its tokenisation,
# forward and span search run inside one call, so they are reported together as "answer").
PIPELINE_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import torch
t_torch = time.perf_counter()
import transformers
from transformers import pipeline
t_tf = time.perf_counter()
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
peaks = {"imports": peak()}
job = json.load(open(sys.argv[1]))
torch.set_num_threads(job["threads"])
qa = pipeline("question-answering", model=job["model"], tokenizer=job["model"], device=-1)
t_load = time.perf_counter()
peaks["load"] = peak()
kw = dict(max_seq_len=job["max_seq_len"], doc_stride=job["doc_stride"], max_answer_len=job["max_answer_len"])
answers = {}
for q in job["questions"]:
    answers[q["id"]] = qa(question=q["question"], context=q["context"], **kw)["answer"]
t_end = time.perf_counter()
stages = {"import torch": t_torch - t0, "import transformers": t_tf - t_torch, "load": t_load - t_tf,
          "answer": t_end - t_load}
peaks["answer"] = peak()
json.dump({"answers": answers, "stages": stages, "peak_mb": peaks["answer"], "peaks": peaks,
           "transformers": transformers.__version__}, open(sys.argv[2], "w"))
"""


class Question(NamedTuple):
    """What the engine reads of a question."""

    id: str
    question: str
    context: str


def peak_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def forward_flops(config: dict, batch: int, length: int) -> float:
    """FLOPs of one encoder forward on a ``(batch, length)`` padded batch: every layer's four
    attention projections and two feed-forward matrices (2 x hidden x out per token), the
    attention scores and weighted sum (2 x 2 x length x hidden per token), and the span head;
    what a dense implementation computes (softmax, LayerNorm and GELU are a few % and left out)."""
    hidden = config["hidden_size"]
    inner = config.get("intermediate_size", 4 * hidden)
    layers = config["num_hidden_layers"]
    per_token = layers * (2 * (4 * hidden * hidden + 2 * hidden * inner) + 4 * length * hidden) + 4 * hidden
    return float(batch * length * per_token)


MATMUL_CHILD = r"""
import json, os, sys, tempfile, time
import numpy as np, torch
threads, out = int(sys.argv[1]), sys.argv[2]
torch.set_num_threads(threads)
N = 1024
def gflops(product):
    for _ in range(3):
        product()
    best = float("inf")
    for _ in range(7):  # best of 7 rounds of 10 products: the least disturbed by other processes
        t = time.perf_counter()
        for _ in range(10):
            product()
        best = min(best, time.perf_counter() - t)
    return 10 * 2 * N ** 3 / best / 1e9
a, b = np.random.rand(N, N).astype(np.float32), np.random.rand(N, N).astype(np.float32)
result = {"fp32": {}, "bf16": {}}
for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
    x, y = torch.from_numpy(a).to(dtype), torch.from_numpy(b).to(dtype)
    result[name]["torch"] = gflops(lambda: x @ y)
try:  # the libraries the runtimes use for their matrix products: MLAS and oneDNN
    import onnx, onnxruntime as ort
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [N, N]) for n in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [N, N])])
    path = os.path.join(tempfile.mkdtemp(), "mm.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    options = ort.SessionOptions(); options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    result["fp32"]["onnxruntime"] = gflops(lambda: session.run(None, {"a": a, "b": b}))
    import openvino as ov
    core = ov.Core()
    for name, precision in (("fp32", "f32"), ("bf16", "bf16")):
        compiled = core.compile_model(core.read_model(path), "CPU",
            {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads})
        request = compiled.create_infer_request()
        result[name]["openvino"] = gflops(lambda: request.infer({"a": a, "b": b}))
except ImportError:
    pass
json.dump(result, open(out, "w"))
"""


def matmul_peak(threads: int, env: dict) -> dict:
    """This machine's measured matmul GFLOP/s (1024^3, fp32 and bf16) by library (torch, and
    ONNX Runtime and OpenVINO where installed), in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peak.json"
        subprocess.run([sys.executable, "-c", MATMUL_CHILD, str(threads), str(out)], check=True, env=env)
        return json.loads(out.read_text())


def parse_variant(text: str) -> dict:
    """``RUNTIME[:bf16|:int8]`` -> the model's runtime, dtype and quantize settings;
    ``onnxruntime:unfused`` is ONNX Runtime fp32 without the transformer optimizer's graph
    (what runtime: onnxruntime ran before issue 25), to show what the optimizer gives."""
    runtime, _, extra = text.partition(":")
    known = ("", "fp32", "bf16", "int8") + (("unfused",) if runtime == "onnxruntime" else ())
    if runtime not in ("torch", "onnxruntime", "openvino") or extra not in known:
        raise ValueError(text)
    return {
        "runtime": runtime,
        "dtype": "bf16" if extra == "bf16" else "fp32",
        "quantize": "int8" if extra == "int8" else "none",
        "unfused": extra == "unfused",
    }


def engine_child(job_file: str, out_file: str) -> None:
    """Runs in the child process: import, load, answer with stage timers, report."""
    t0 = time.perf_counter()
    import torch

    t_torch = time.perf_counter()
    import transformers  # noqa: F401  (timed on its own; the engine imports it lazily)

    t_tf = time.perf_counter()
    job = json.loads(Path(job_file).read_text())
    torch.set_num_threads(job["threads"])
    from qagate.inference import engine as engine_module
    from qagate.inference.engine import EngineSettings
    from qagate.inference.extractive import ExtractiveModel

    examples = [Question(**q) for q in job["questions"]]  # as the pipeline's process gets them
    peaks = {"imports": peak_mb()}
    settings = EngineSettings(
        max_seq_len=job["max_seq_len"],
        doc_stride=job["doc_stride"],
        max_answer_len=job["max_answer_len"],
        batch_size=job["batch_size"],
        cpu_batch_tokens=job["batch_tokens"],
    )
    if job["unfused"]:
        ExtractiveModel.onnx_optimization = lambda self: "none"  # type: ignore[method-assign]
    model = ExtractiveModel(
        "split",
        job["model"],
        settings=settings,
        device="cpu",
        runtime=job["runtime"],
        dtype=job["dtype"],
        quantize=job["quantize"],
    )
    engine = model.load()
    config = json.loads((model.model_folder() / "config.json").read_text())
    t_load = time.perf_counter()
    peaks["load"] = peak_mb()

    spent: dict[str, float] = {"tokenisation": 0.0, "forward": 0.0, "span search": 0.0, "merge": 0.0}

    def timed(stage, fn):
        def run(*a, **k):
            began = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[stage] += time.perf_counter() - began

        return run

    engine._tokenize = timed("tokenisation", engine._tokenize)
    engine._merge = timed("merge", engine._merge)
    forward = timed("forward", engine.model)
    work = {"flops": 0.0, "tokens": 0, "real tokens": 0, "batches": 0}

    def counted(**inputs):
        batch, length = inputs["input_ids"].shape
        work["flops"] += forward_flops(config, batch, length)
        work["tokens"] += batch * length
        work["real tokens"] += int(inputs["attention_mask"].sum())
        work["batches"] += 1
        return forward(**inputs)

    engine.model = counted
    for name in ("span_probabilities", "top_spans"):
        setattr(engine_module, name, timed("span search", getattr(engine_module, name)))
    answers = engine.predict(examples).answers
    t_end = time.perf_counter()
    answering = t_end - t_load
    stages = {
        "import torch": t_torch - t0,
        "import transformers": t_tf - t_torch,
        "load": t_load - t_tf,
        **spent,
        "rest of answering": answering - sum(spent.values()),
    }
    peaks["answer"] = peak_mb()
    Path(out_file).write_text(
        json.dumps(
            {"answers": answers, "stages": stages, "peak_mb": peaks["answer"], "peaks": peaks, "work": work}
        )
    )


def run_child(command: list[str], env: dict) -> tuple[dict, float]:
    """One whole process: its report and its wall time measured from outside."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        began = time.perf_counter()
        subprocess.run([*command, str(out)], check=True, env=env)
        wall = time.perf_counter() - began
        return json.loads(out.read_text()), wall


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--batch-tokens", default="4096", help="comma-separated cpu_batch_tokens values, one run each"
    )
    parser.add_argument(
        "--runtime",
        default="torch",
        help="comma-separated variants RUNTIME[:bf16|:int8], RUNTIME one of torch, onnxruntime, "
        "openvino (one run each per batch size)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the table (markdown) to this file")
    parser.add_argument("--no-pipeline", action="store_true", help="engine runs only")
    parser.add_argument("--child", nargs=2, metavar=("JOB", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        engine_child(*args.child)
        return 0

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    limit = None if args.all else args.limit
    common: dict = {
        "model": str(args.model),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "max_seq_len": args.max_seq_len,
        "doc_stride": args.doc_stride,
        "max_answer_len": args.max_answer_len,
    }
    runtimes = args.runtime.split(",")
    variants = {}
    for text in runtimes:
        try:
            variants[text] = parse_variant(text)
        except ValueError:
            parser.error(
                f"--runtime {text}: use RUNTIME[:bf16|:int8] (torch, onnxruntime, openvino) "
                "or onnxruntime:unfused"
            )
    from qagate.data import load_dataset
    from qagate.scoring.squad import score

    dataset = load_dataset(args.data, articles=args.articles, limit=limit)
    examples = dataset.examples
    common["questions"] = [{"id": e.id, "question": e.question, "context": e.context} for e in examples]
    runs: dict[str, tuple[dict, float]] = {}
    peak_runs = [matmul_peak(args.threads, env)]
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_pipeline:
            job_file = Path(tmp) / "pipeline.json"
            job_file.write_text(json.dumps(common))
            python = ensure_venv(args.venv, "cpu")
            runs["pipeline 4.x"] = run_child([str(python), "-c", PIPELINE_CHILD, str(job_file)], env)
        for text, variant in variants.items():
            for tokens in (int(t) for t in args.batch_tokens.split(",")):
                job_file = Path(tmp) / f"engine-{text.replace(':', '-')}-{tokens}.json"
                job_file.write_text(json.dumps({**common, **variant, "batch_tokens": tokens}))
                label = f"engine {text} {tokens} tok"
                runs[label] = run_child([sys.executable, __file__, "--child", str(job_file)], env)
    peak_runs.append(matmul_peak(args.threads, env))
    peak = {k: max(max(p[k].values()) for p in peak_runs) for k in peak_runs[0]}  # the best library
    if args.json:  # the raw reports first: a failure below loses no measurement
        raw = {k: {"report": r, "wall_s": w} for k, (r, w) in runs.items()}
        args.json.with_suffix(".raw.json").write_text(json.dumps({"peaks": peak_runs, "runs": raw}))

    n = len(next(iter(runs.values()))[0]["answers"])
    articles = "-".join(map(str, args.articles))
    print(f"{n} questions (articles {articles}), {args.threads} threads, whole processes")
    stage_names: list[str] = []
    for report, _ in runs.values():
        stage_names += [s for s in report["stages"] if s not in stage_names]
    print("seconds by stage, and peak RSS (MB) after imports / after load / at the end:")
    print(f"{'run':24} {'wall s':>7}  " + "  ".join(f"{s:>10.10}" for s in stage_names) + "  peak MB")
    for label, (report, wall) in runs.items():
        cells = "  ".join(
            f"{report['stages'][s]:10.2f}" if s in report["stages"] else f"{'-':>10}" for s in stage_names
        )
        peaks = " / ".join(f"{report['peaks'][k]:.0f}" for k in ("imports", "load", "answer"))
        print(f"{label:24} {wall:7.2f}  {cells}  {peaks}")
    result = {
        "questions": n,
        "threads": args.threads,
        "matmul_peak_gflops": peak,
        "matmul_peak_runs": peak_runs,
        "runs": {
            k: {"wall_s": w, **{x: r[x] for x in ("stages", "peaks", "peak_mb")}}
            for k, (r, w) in runs.items()
        },
    }
    for kind in peak:
        by_library = ", ".join(
            f"{lib} {' / '.join(f'{p[kind][lib]:.0f}' for p in peak_runs)}" for lib in peak_runs[0][kind]
        )
        print(f"matmul peak {kind} (1024^3, GFLOP/s before / after the runs): {by_library}")
    reference = next((k for k in runs if k != "pipeline 4.x" and ":" not in k), None)
    int8 = lambda label: ":int8" in label  # noqa: E731 (int8 products: no fp32/bf16 peak applies)
    for label, (report, _wall) in runs.items():
        scores = score(dataset, report["answers"])
        entry = result["runs"][label]
        entry.update(em=scores.exact_match, f1=scores.f1)
        if "work" in report:
            work = report["work"]
            gflops = work["flops"] / report["stages"]["forward"] / 1e9
            kind = "bf16" if ":bf16" in label else "fp32"
            entry.update(work=work, forward_gflops=gflops)
            if not int8(label):
                entry.update(share_of_peak=gflops / peak[kind])
            print(
                f"{label}: forward {report['stages']['forward']:.2f} s, {work['flops'] / 1e12:.2f} TFLOP "
                f"({work['batches']} batches, {work['tokens']:,} padded tokens, "
                f"{work['real tokens'] / work['tokens']:.1%} real), {gflops:.0f} GFLOP/s"
                + ("" if int8(label) else f" = {gflops / peak[kind]:.0%} of the {kind} matmul peak")
            )
        if reference is not None and label not in (reference, "pipeline 4.x"):
            same = sum(report["answers"][q] == a for q, a in runs[reference][0]["answers"].items())
            entry.update(identical_to_fp32=same, fp32_reference=reference)
    if "pipeline 4.x" in runs:
        ref, ref_wall = runs["pipeline 4.x"]
        for label, (report, wall) in runs.items():
            if label == "pipeline 4.x":
                continue
            same = sum(report["answers"][q] == a for q, a in ref["answers"].items())
            print(
                f"{label}: {ref_wall / wall:.2f}x the pipeline as a whole process, "
                f"peak RSS {report['peak_mb'] / ref['peak_mb']:.2f}x the pipeline's, "
                f"{same}/{n} identical answers"
            )
            result["runs"][label].update(
                speedup=ref_wall / wall, memory_ratio=report["peak_mb"] / ref["peak_mb"]
            )
            result["runs"][label]["identical"] = same
    table = markdown_table(result)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


def markdown_table(result: dict) -> str:
    """One row per run: wall, forward, GFLOP/s, peak RSS, speed-up, agreement, EM/F1."""
    peak = result["matmul_peak_gflops"]
    lines = [
        f"{result['questions']} questions, {result['threads']} threads; measured matmul peak "
        + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peak.items())
        + " (the best library; int8 runs: fp32-equivalent GFLOP/s, no peak)",
        "",
        "| run | wall s | speed-up | forward s | GFLOP/s (% of peak) | peak RSS MB "
        "| same as pipeline | same as fp32 | EM / F1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    n = result["questions"]
    for label, run in result["runs"].items():
        forward = run["stages"].get("forward")
        gflops = f"{run['forward_gflops']:.0f}" if "forward_gflops" in run else "-"
        if "share_of_peak" in run:
            gflops += f" ({run['share_of_peak']:.0%})"
        same = f"{run['identical'] / n:.2%}" if "identical" in run else "-"
        same_fp32 = f"{run['identical_to_fp32'] / n:.2%}" if "identical_to_fp32" in run else "-"
        speedup = f"{run['speedup']:.2f}x" if "speedup" in run else "-"
        lines.append(
            f"| {label} | {run['wall_s']:.2f} | {speedup} | {'-' if forward is None else f'{forward:.2f}'} "
            f"| {gflops} | {run['peak_mb']:.0f} | {same} | {same_fp32} | {run['em']:.2f} / {run['f1']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
