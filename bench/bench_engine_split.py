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

Prints one row per run and the ratios (pipeline wall time / engine wall time, engine peak RSS /
pipeline peak RSS) and how many answers are identical. Targets (issue 11): >= 1.3x as a whole
process, peak memory <= the pipeline's, identical answers.
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
    model = ExtractiveModel("split", job["model"], settings=settings, device="cpu", runtime=job["runtime"])
    engine = model.load()
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
    engine.model = timed("forward", engine.model)
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
        json.dumps({"answers": answers, "stages": stages, "peak_mb": peaks["answer"], "peaks": peaks})
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
        "--runtime", default="torch", help="comma-separated: torch, onnxruntime (one run each per batch size)"
    )
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
    unknown = sorted(set(runtimes) - {"torch", "onnxruntime"})
    if unknown:
        parser.error(f"--runtime {','.join(unknown)}: choose from torch, onnxruntime")
    from qagate.data import load_dataset

    examples = load_dataset(args.data, articles=args.articles, limit=limit).examples
    common["questions"] = [{"id": e.id, "question": e.question, "context": e.context} for e in examples]
    runs: dict[str, tuple[dict, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_pipeline:
            job_file = Path(tmp) / "pipeline.json"
            job_file.write_text(json.dumps(common))
            python = ensure_venv(args.venv, "cpu")
            runs["pipeline 4.x"] = run_child([str(python), "-c", PIPELINE_CHILD, str(job_file)], env)
        for runtime in runtimes:
            for tokens in (int(t) for t in args.batch_tokens.split(",")):
                job_file = Path(tmp) / f"engine-{runtime}-{tokens}.json"
                job_file.write_text(json.dumps({**common, "runtime": runtime, "batch_tokens": tokens}))
                label = f"engine {runtime} {tokens} tok"
                runs[label] = run_child([sys.executable, __file__, "--child", str(job_file)], env)

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
        "runs": {
            k: {"wall_s": w, **{x: r[x] for x in ("stages", "peaks", "peak_mb")}}
            for k, (r, w) in runs.items()
        },
    }
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
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
