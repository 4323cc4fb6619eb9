"""How many questions a sequential rule needs: the leaderboard replays on the full dev set.

Real per-question scores: the SQuAD v1.1 leaderboard prediction files (``../shared/data/squad``)
on all 10,570 dev questions, the BERT ensemble as the teacher. For each rule and each of
``--orders`` seeded random orders, the gate's own loop (:class:`qagate.gating.sequential.
SequentialLoop` fed by :func:`qagate.gating.judge.rule_values`, the code a ``sequential:`` rule
runs) looks every ``--look-every`` questions and stops at the first decision; the table gives
the verdicts and the questions used (median, 90th percentile, mean) against the 10,570 a fixed-n
gate evaluates.

    python bench/bench_sequential.py [--orders 200] [--look-every 256] [--min-questions 0]
                                     [--plan PILOT] [--shared ../shared] [--json out.json]

``--plan PILOT`` adds ``qagate plan``'s estimate of where each rule's loop stops (from the whole
dev set, and from 20 random pilots of PILOT questions at the rule's true margin) beside the
simulated median (issue 23 item 6).

numpy only (replayed answers, no torch); about a minute on 2 CPU cores at the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from qagate.data import load_dataset, load_predictions
from qagate.gating.judge import rule_values
from qagate.gating.rules import parse_rule
from qagate.gating.sequential import SequentialLoop, SequentialSpec, question_order
from qagate.scoring.squad import score

SYSTEMS = {
    "BERT": "bert-ensemble-google.json",
    "r-net": "r-net-msra.json",
    "SLQA+": "slqa-alibaba.json",
    "Match-LSTM": "match-lstm-smu.json",
}
TEACHER = "BERT"
RULES = [  # (student, rule): the quotes of DESIGN.md and issue 23 item 5
    ("r-net", "f1 >= 0.9 * teacher"),
    ("r-net", "exact_match >= 0.95 * teacher"),
    ("Match-LSTM", "exact_match >= 0.95 * teacher"),
    ("SLQA+", "exact_match >= 0.95 * teacher"),
    ("r-net", "exact_match >= 80"),
    ("Match-LSTM", "f1 >= 80"),
]


def per_question(shared: Path) -> tuple[list[str], dict[str, dict[str, np.ndarray]]]:
    """Question ids in dataset order and each system's per-question EM and F1 (percent)."""
    squad = shared / "data" / "squad"
    dataset = load_dataset(squad / "dev-v1.1.json")
    ids = [example.id for example in dataset.examples]
    values: dict[str, dict[str, np.ndarray]] = {}
    for name, file in SYSTEMS.items():
        scores = score(dataset, load_predictions(squad / "predictions" / file))
        values[name] = {
            "exact_match": 100.0 * np.array([scores.per_question_em.get(i, 0.0) for i in ids]),
            "f1": 100.0 * np.array([scores.per_question_f1.get(i, 0.0) for i in ids]),
        }
    return ids, values


def run(values: dict[str, dict[str, np.ndarray]], orders: int, spec: SequentialSpec) -> list[dict]:
    size = next(iter(values.values()))["f1"].size
    rows = []
    for student, text in RULES:
        rule = parse_rule(text, confidence=0.95)
        mine = values[student][rule.metric]
        theirs = values[TEACHER][rule.metric] if rule.reference == "teacher" else None
        full = rule_values(rule, mine, theirs)
        margin = float(full.mean()) - rule.offset  # the truth on the whole dev set
        ratio = float(mine.mean() / theirs.mean()) if theirs is not None else None
        used, statuses = [], {"pass": 0, "fail": 0, "undecided": 0}
        started = time.perf_counter()
        for seed in range(orders):
            order = np.asarray(question_order(size, seed))
            shuffled = full[order]
            loop = SequentialLoop([rule], spec, size)
            for start, stop in loop.chunks():
                loop.update(stop, {rule.id: shuffled[start:stop]})
            decision = loop.decisions()[rule.id]
            used.append(decision.used)
            statuses[decision.status] += 1
        rows.append(
            {
                "student": student,
                "rule": text,
                "teacher": TEACHER if rule.reference == "teacher" else None,
                "margin": margin,
                "ratio": ratio,  # the student's metric over the teacher's, whole set
                "orders": orders,
                **statuses,
                "median": float(np.median(used)),
                "p90": float(np.percentile(used, 90)),
                "mean": float(np.mean(used)),
                "available": size,
                "seconds": time.perf_counter() - started,
            }
        )
        print(_line(rows[-1]), flush=True)
    return rows


VALIDITY_PAIRS = ["r-net", "SLQA+", "Match-LSTM"]  # students of BERT


def validity(
    values: dict[str, dict[str, np.ndarray]],
    orders: int,
    look_every: int,
    most: int,
    resamples: int = 1000,
    seed: int = 0,
) -> list[dict]:
    """Each student's ``exact_match >= c * teacher`` with c its true full-set ratio (the truth on
    the boundary): the share of orders whose first decision is PASS or FAIL when looking after
    every chunk, for the sequential rule (:func:`batch_bounds` with the bets tuned to MOST, the
    loop's code vectorised over orders) and for a naive gate that recomputes a fixed-n paired
    percentile bootstrap after every chunk and stops at its first decision. At the boundary each
    side of a valid 95% rule errs at most 2.5% of the time."""
    from qagate.gating.judge import rule_sequence
    from qagate.gating.rules import Rule
    from qagate.scoring.confseq import batch_bounds

    rng = np.random.default_rng(seed)
    rows = []
    teacher = values[TEACHER]["exact_match"] / 100.0
    size = teacher.size
    permutations = np.stack([np.asarray(question_order(size, s)) for s in range(orders)])
    last = min(most, size)
    looks = list(range(look_every, last + 1, look_every))
    if not looks or looks[-1] != last:  # the loop's last look: the questions run out
        looks.append(last)
    for student in VALIDITY_PAIRS:
        mine = values[student]["exact_match"] / 100.0
        coef = float(mine.mean() / teacher.mean())
        rule = Rule(
            "exact_match",
            ">=",
            "teacher",
            coef=coef,
            confidence=0.95,
            text=f"exact_match>={coef:.5f}*teacher",
        )
        sequence = rule_sequence(rule)
        outcome = (mine * 2 + teacher).astype(int)  # 0: both wrong, 1: teacher only, 2: student only, 3: both
        worth = np.array([0.0, -100.0 * coef, 100.0, 100.0 * (1.0 - coef)])
        d = worth[outcome][permutations]
        cats = outcome[permutations]
        decided = {name: np.zeros(orders, dtype="U4") for name in ("sequential", "naive")}
        started = time.perf_counter()
        for n in looks:
            low, high = batch_bounds(d[:, :n], sequence.lo, sequence.hi, 0.95, sequential=True, horizon=last)
            _first(decided["sequential"], low >= 0, high < 0)
            counts = np.stack([(cats[:, :n] == k).sum(axis=1) for k in range(4)], axis=1)
            draws = rng.multinomial(n, counts / n, size=(resamples, orders))
            means = draws @ worth / n
            naive_low, naive_high = np.quantile(means, [0.025, 0.975], axis=0)
            _first(decided["naive"], naive_low > 0, naive_high < 0)
        row = {"student": student, "coef": coef, "orders": orders, "looks": len(looks), "most": looks[-1]}
        for name, first in decided.items():
            row[f"{name}_pass"] = float((first == "pass").mean())
            row[f"{name}_fail"] = float((first == "fail").mean())
        row["seconds"] = time.perf_counter() - started
        rows.append(row)
        print(
            f"| {student} | exact_match >= {coef:.4f} * teacher | {row['sequential_pass']:.1%} / "
            f"{row['sequential_fail']:.1%} | {row['naive_pass']:.1%} / {row['naive_fail']:.1%} |",
            flush=True,
        )
    return rows


def plan_check(
    values: dict[str, dict[str, np.ndarray]], rows: list[dict], pilot: int, pilots: int
) -> list[dict]:
    """``qagate plan``'s estimate against the simulation: for each rule of ``rows`` (the output of
    :func:`run`), where :func:`qagate.reports.plan.plan_rule` says the sequential loop stops,
    from the whole dev set and from ``pilots`` random pilots of ``pilot`` questions (the first
    ``pilot`` of orders 10,000 + k) at the rule's true margin, beside the simulated median."""
    from qagate.reports.plan import plan_rule

    size = next(iter(values.values()))["f1"].size
    spec = (
        SequentialSpec(look_every=rows[0]["look_every"])
        if rows and "look_every" in rows[0]
        else SequentialSpec()
    )
    out = []
    for row in rows:
        rule = parse_rule(row["rule"], confidence=0.95)
        mine = values[row["student"]][rule.metric]
        theirs = values[TEACHER][rule.metric] if rule.reference == "teacher" else None
        full = rule_values(rule, mine, theirs)
        whole = plan_rule(row["student"], rule, full, sequential=spec, available=size)
        stops, undecided = [], 0
        for k in range(pilots):
            sample = full[np.asarray(question_order(size, 10_000 + k))[:pilot]]
            plan = plan_rule(
                row["student"], rule, sample, margin=row["margin"], sequential=spec, available=size
            )
            stops.append(plan.stops)
            undecided += plan.stop_status == "undecided"
        median = float(np.median(stops))
        out.append(
            {
                **{
                    key: row[key]
                    for key in ("student", "rule", "margin", "median", "p90", "undecided", "orders")
                },
                "whole": whole.stops,
                "whole_status": whole.stop_status,
                "whole_fixed": whole.fixed.get("questions"),
                "pilot": pilot,
                "pilots": pilots,
                "pilot_median": median,
                "pilot_min": min(stops),
                "pilot_max": max(stops),
                "pilot_undecided": undecided,
                "ratio": median / row["median"],
            }
        )
        print(_plan_line(out[-1]), flush=True)
    return out


def _plan_line(row: dict) -> str:
    undecided = row["undecided"] * 2 > row["orders"]
    simulated = f"{row['median']:,.0f} / {row['p90']:,.0f}" + (" (mostly undecided)" if undecided else "")
    whole = f"{row['whole']:,}" + (" (undecided)" if row["whole_status"] == "undecided" else "")
    fixed = "-" if row["whole_fixed"] is None else f"{row['whole_fixed']:,}"
    return (
        f"| {row['student']} | {row['rule']} | {row['margin']:+.2f} | {simulated} | {whole} | "
        f"{row['pilot_median']:,.0f} [{row['pilot_min']:,}-{row['pilot_max']:,}]"
        + (f", {row['pilot_undecided']} undecided" if row["pilot_undecided"] else "")
        + f" | {row['ratio']:.2f} | {fixed} |"
    )


def _first(state: np.ndarray, passed: np.ndarray, failed: np.ndarray) -> None:
    """Record the first decision of each order (later looks do not change it)."""
    open_ = state == ""
    state[open_ & passed] = "pass"
    state[open_ & ~passed & failed] = "fail"


def _line(row: dict) -> str:
    return (
        f"| {row['student']} | {row['rule']} | "
        + ("-" if row["ratio"] is None else f"{row['ratio']:.2%}")
        + f" | {row['margin']:+.2f} | {row['pass']} / {row['fail']} / "
        f"{row['undecided']} | {row['median']:,.0f} | {row['p90']:,.0f} | {row['mean']:,.0f} | "
        f"{row['available']:,} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--look-every", type=int, default=256)
    parser.add_argument("--min-questions", type=int, default=0)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--plan",
        type=int,
        default=0,
        metavar="PILOT",
        help="also: qagate plan's predicted stop (from the whole set and from 20 pilots of PILOT "
        "questions, at the true margin) beside the simulated median",
    )
    parser.add_argument(
        "--validity",
        type=int,
        default=0,
        metavar="MOST",
        help="instead: the error at the boundary over --orders orders, looking up to MOST questions",
    )
    args = parser.parse_args(argv)
    if not (args.shared / "data" / "squad" / "dev-v1.1.json").exists():
        print(f"no shared data at {args.shared}: pass --shared", file=sys.stderr)
        return 2
    spec = SequentialSpec(look_every=args.look_every, min_questions=args.min_questions)
    started = time.perf_counter()
    _, values = per_question(args.shared)
    if args.validity:
        print(
            f"# at the boundary (c = the student's true EM ratio to {TEACHER}'s), looks every "
            f"{args.look_every} up to {args.validity}, {args.orders} orders; nominal 2.5% each side; "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
        )
        print("| student | rule | sequential PASS / FAIL | naive bootstrap per chunk PASS / FAIL |")
        print("|---|---|---|---|")
        rows = validity(values, args.orders, args.look_every, args.validity)
        print(f"# {time.perf_counter() - started:.0f} s")
        if args.json:
            args.json.write_text(json.dumps({"validity": rows}, indent=1) + "\n")
        return 0
    print(
        f"# sequential rules on the leaderboard replays: teacher {TEACHER}, 95%, {spec.describe()} "
        f"(seed = order 0..{args.orders - 1}); {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        "| student | rule | of the teacher's | true margin | pass / fail / undecided | median | p90 | mean | "
        "fixed-n |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rows = run(values, args.orders, spec)
    print(f"# {time.perf_counter() - started:.0f} s")
    checked: list[dict] = []
    if args.plan:
        for row in rows:
            row["look_every"] = spec.look_every
        print(
            f"# qagate plan's estimate (reports/plan.py: the loop once on questions like the pilot's) "
            f"against the simulated median; pilots of {args.plan} questions"
        )
        print(
            "| student | rule | true margin | simulated median / p90 | plan, whole dev set | "
            f"plan, 20 pilots of {args.plan:,}: median [range] | pilots' median / simulated | "
            "fixed-n needs |"
        )
        print("|---|---|---|---|---|---|---|---|")
        checked = plan_check(values, rows, args.plan, 20)
        print(f"# {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps({"spec": spec.describe(), "rows": rows, "plan": checked}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
