"""Score the full SQuAD v1.1 dev set: qagate vs a plain transcription of the official script.

Both run in the same process on the same parsed inputs, alternating, several repeats each;
the medians are compared. qagate must not be slower (ratio qagate/reference <= 1.0), and both
must give the same numbers. "cold" is qagate's first call on a freshly loaded dataset (it
normalises the references); later calls reuse that work, as a gate scoring several models does.

    python bench/bench_score.py [--repeats 5] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from qagate.data import load_dataset, load_predictions
from qagate.scoring.squad import score

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from squad_official import evaluate  # noqa: E402  (the reference transcription lives with the tests)

PREDICTIONS = [
    "bert-ensemble-google.json",
    "logistic-regression-stanford.json",
    "match-lstm-smu.json",
    "r-net-msra.json",
    "slqa-alibaba.json",
]


# --- the benchmark --------------------------------------------------------------------------


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> int:
    here = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--shared", type=Path, default=Path(os.environ.get("QAGATE_SHARED") or here.parent / "shared")
    )
    args = parser.parse_args()
    squad = args.shared / "data" / "squad"
    dev_path = squad / "dev-v1.1.json"
    if not dev_path.is_file():
        print(f"bench_score: {dev_path} not found (pass --shared or set QAGATE_SHARED)", file=sys.stderr)
        return 2

    raw = json.loads(dev_path.read_text(encoding="utf-8"))["data"]
    load_s, dataset = _timed(load_dataset, dev_path)
    print(
        f"dev set: {len(dataset)} questions, load + validate {load_s * 1000:.0f} ms, "
        f"fingerprint {_timed(lambda: dataset.fingerprint)[0] * 1000:.0f} ms"
    )
    print(
        f"{'predictions (median of repeats)':36s} {'reference s':>11s} {'qagate s':>9s} "
        f"{'ratio':>6s}  same numbers"
    )
    ratios = []
    total_ref = total_ours = 0.0
    cold_s = None
    for name in PREDICTIONS:
        predictions = load_predictions(squad / "predictions" / name)
        if cold_s is None:
            cold_s, _ = _timed(score, dataset, predictions)
        ref_times, our_times = [], []
        for _ in range(args.repeats):
            t_ref, ref = _timed(evaluate, raw, predictions)
            t_ours, ours = _timed(score, dataset, predictions)
            ref_times.append(t_ref)
            our_times.append(t_ours)
        same = (ours.exact_match, ours.f1) == (ref["exact_match"], ref["f1"])
        ref_med, our_med = statistics.median(ref_times), statistics.median(our_times)
        total_ref += ref_med
        total_ours += our_med
        ratios.append(our_med / ref_med)
        print(
            f"{name:36s} {ref_med:11.3f} {our_med:9.3f} {our_med / ref_med:6.3f}  "
            f"{same} (EM {ours.exact_match:.4f}, F1 {ours.f1:.4f})"
        )
        if not same:
            print(f"bench_score: numbers differ for {name}", file=sys.stderr)
            return 1
    ratio = total_ours / total_ref
    print(f"{'all five (sum of medians)':36s} {total_ref:11.3f} {total_ours:9.3f} {ratio:6.3f}")
    print(
        f"qagate/reference time ratio: {ratio:.3f} (worst file {max(ratios):.3f}; "
        f"first, cold call {cold_s:.3f} s)"
    )
    if ratio > 1.0:
        print("bench_score: qagate is slower than the reference", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
