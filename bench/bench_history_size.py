"""What ``qagate diff RUN_A RUN_B`` and the dashboard's slice pages cost in history size.

Appends runs of three replayed leaderboard models (teacher BERT ensemble, students r-net and
Match-LSTM) on the full SQuAD v1.1 dev set (10,570 questions) to fresh SQLite history stores, the
way the plugin records them: verdicts and metrics only, then with each model's per-question
results (``"questions"``, :mod:`qagate.store.questions`), then also with its slice tables and
first flips (``"slices"``, :func:`qagate.reports.diff.run_slices`). The database's growth per run
(file and WAL, after the store is closed) is divided by models and scaled to 10,000 questions.

    python bench/bench_history_size.py [--runs 10] [--out bench/history_size.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "squad"
MODELS = {
    "bert": "bert-ensemble-google.json",
    "r-net": "r-net-msra.json",
    "match-lstm": "match-lstm-smu.json",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs appended per store (default 10)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "history_size.json")
    args = parser.parse_args()

    from qagate.data import load_dataset, load_predictions
    from qagate.inference.base import Predictions
    from qagate.reports.diff import run_slices
    from qagate.reports.outcomes import EvaluatedModel, history_questions
    from qagate.scoring.evaluation import EvalResult
    from qagate.scoring.squad import score
    from qagate.store.history import append_run, build_run

    dataset = load_dataset(str(SHARED / "dev-v1.1.json"))
    rows = []
    for name, file in MODELS.items():
        answers = load_predictions(SHARED / "predictions" / file)
        scores = score(dataset, answers)
        result = EvalResult(name, dataset.name, Predictions(answers=answers), scores, scores.summary(), True)
        teacher = None if name == "bert" else "bert"
        rows.append(EvaluatedModel(name, dataset.name, result, None, None, dataset, teacher))
    started = time.perf_counter()
    slices = run_slices(rows)
    slice_seconds = time.perf_counter() - started
    questions = history_questions(rows)

    def run(with_questions: bool, with_slices: bool) -> dict:
        made = build_run(
            results=[],
            metrics=[{"model": r.model, "dataset": r.dataset, **r.metrics()} for r in rows],
            started=time.time(),
            exit_status=0,
            rootdir=ROOT,
            questions=questions if with_questions else (),
        )
        if with_slices:
            made["slices"] = slices
        return made

    def size(path: Path) -> int:
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))

    growth = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, flags in (
            ("verdicts and metrics", (False, False)),
            ("+ per-question results", (True, False)),
            ("+ slice tables and flips", (True, True)),
        ):
            db = Path(folder) / f"{label.replace(' ', '_')}.db"
            append_run(db, run(*flags))  # the first run creates the tables and writes the id list
            first = size(db)
            for _ in range(args.runs):
                append_run(db, run(*flags))
            growth[label] = {"first_run_bytes": first, "per_run_bytes": (size(db) - first) / args.runs}
    per_model = 10_000 / len(dataset) / len(rows)
    base = growth["verdicts and metrics"]["per_run_bytes"]
    with_q = growth["+ per-question results"]["per_run_bytes"]
    with_s = growth["+ slice tables and flips"]["per_run_bytes"]
    facts = {
        "machine": f"{platform.node()} ({platform.machine()}, Python {platform.python_version()}), SQLite",
        "dataset": f"SQuAD v1.1 dev, {len(dataset):,} questions",
        "models_per_run": len(rows),
        "runs": args.runs,
        "growth": growth,
        "per_question_results_kb_per_model_per_10k": round((with_q - base) * per_model / 1024, 2),
        "slices_kb_per_model_per_run": round((with_s - with_q) / len(rows) / 1024, 2),
        "slices_json_kb": round(len(json.dumps(slices)) / 1024, 2),
        "first_run_ids_kb_per_10k": round(
            (
                growth["+ per-question results"]["first_run_bytes"]
                - growth["verdicts and metrics"]["first_run_bytes"]
            )
            * 10_000
            / len(dataset)
            / 1024,
            1,
        ),
        "run_slices_seconds": round(slice_seconds, 2),
    }
    args.out.write_text(json.dumps(facts, indent=1) + "\n")
    json.dump(facts, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
