"""How often a speed verdict at `confidence: 0.95` is wrong: the old paired timing against the new.

A fake-clock simulation (qagate.timing.simulation: nothing sleeps, no torch) of whole
measurements, the warm-up, the rounds and the stopping rule included:

- **old**: rounds always R M R M ..., at least 5, stopped when a 95% percentile bootstrap over
  rounds (taken as independent) was narrower than 10% of the speed-up (qagate before issue 29);
- **new**: ``measure_paired`` as shipped: ABBA order, at least 20 rounds, the interval on the log
  of the ratio from 3/4/5 consecutive blocks of rounds (qagate.timing.speed), the early stop
  judged at 99%.

For each scenario (independent 5% noise; each model's own AR(1) drift 0.5 and 0.8 of sd 5% on
top of it; a shared AR(1) 0.8 load; a steady slowdown) it prints the coverage of the true
speed-up (4.0) by the 95% interval, the false-pass rate of ``speedup >= 4`` when the true
speed-up is 2% below it (one-sided, nominal <= 2.5%), how often it passes when the truth is
5% above it (power), and the mean number of rounds.

    python bench/bench_speed_validity.py [--runs 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from qagate.timing.paired import PairedTiming, TimingPlan, measure_paired, time_round, timed_round
from qagate.timing.simulation import SCENARIOS, Machine, Scenario, examples

TRUE = 4.0
QUESTIONS = examples(8)


def old_interval(ref: list[float], mine: list[float], level: float = 0.95) -> tuple[float, float]:
    """The percentile bootstrap of the ratio of means over rounds resampled in pairs (old code)."""
    r, m = np.asarray(ref), np.asarray(mine)
    rng = np.random.default_rng(0)
    picks = rng.integers(0, r.size, size=(2000, r.size))
    ratios = r[picks].mean(axis=1) / m[picks].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return float(low), float(high)


def old_measure(reference, model, machine: Machine) -> tuple[float, float, int]:
    """The old loop: one warm-up pair, then R M rounds until the bootstrap is within 10%."""
    clock, sync = machine.clock, lambda: None
    time_round(reference, QUESTIONS, clock, sync)
    time_round(model, QUESTIONS, clock, sync)
    ref: list[float] = []
    mine: list[float] = []
    started = clock()
    while True:
        ref.append(timed_round(reference, QUESTIONS, clock, sync)[0])
        mine.append(timed_round(model, QUESTIONS, clock, sync)[0])
        if len(ref) < 5:
            continue
        low, high = old_interval(ref, mine)
        estimate = float(np.mean(ref) / np.mean(mine))
        if high - low <= 0.10 * estimate or len(ref) >= 40 or clock() - started >= 60.0:
            return low, high, len(ref)


def new_measure(reference, model, machine: Machine) -> tuple[float, float, int]:
    paired: PairedTiming = measure_paired(reference, model, QUESTIONS, clock=machine.clock, plan=TimingPlan())
    interval = paired.interval(0.95)
    return interval.low, interval.high, len(paired.model.rounds)


def run(scenario: Scenario, method, runs: int, seed: int) -> dict[str, float]:
    covered = false_pass = power = 0
    rounds = 0
    for index in range(runs):
        machine = Machine(scenario, seed * 1_000_003 + index)
        low, high, n = method(machine.model("T", 0.04), machine.model("S", 0.01), machine)
        covered += low <= TRUE <= high
        rounds += n
        # the same measurement, truly 2% below the threshold of `speedup >= 4`
        machine = Machine(scenario, seed * 1_000_003 + index + 500_000_000)
        low, _, _ = method(machine.model("T", 0.04 * 0.98), machine.model("S", 0.01), machine)
        false_pass += low > TRUE
        # and 5% above it: how often the rule passes a model that truly meets it (power)
        machine = Machine(scenario, seed * 1_000_003 + index + 900_000_000)
        low, _, _ = method(machine.model("T", 0.04 * 1.05), machine.model("S", 0.01), machine)
        power += low > TRUE
    return {
        "coverage": covered / runs,
        "false_pass": false_pass / runs,
        "power": power / runs,
        "rounds": rounds / runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"{args.runs} measurements per cell; true speed-up {TRUE}; 95% intervals; false pass: 2% below")
    columns = ("coverage", "false pass", "pass at +5%", "rounds")
    print("| scenario | " + " | ".join(f"{c} old | {c} new" for c in columns) + " |")
    print("|---" * (1 + 2 * len(columns)) + "|")
    for scenario in SCENARIOS:
        old = run(scenario, old_measure, args.runs, args.seed)
        new = run(scenario, new_measure, args.runs, args.seed)
        cells = [f"{old[key]:.3f} | {new[key]:.3f}" for key in ("coverage", "false_pass", "power")]
        cells.append(f"{old['rounds']:.1f} | {new['rounds']:.1f}")
        print(f"| {scenario.name} | " + " | ".join(cells) + " |", flush=True)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
