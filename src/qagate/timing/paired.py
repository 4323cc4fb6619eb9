"""Paired, interleaved timing: reference and model rounds alternate on the same questions.

Rounds run in counterbalanced order, R M M R R M M R ... (ABBA), after untimed warm-up rounds
(first CUDA calls, kernel autotuning), so load drift on a shared machine hits both models alike
and a steady trend favours neither. The speed-up is the ratio of mean seconds per question
(:mod:`qagate.timing.speed`, the one definition every output uses) with an interval on its log
from consecutive blocks of rounds, which drift does not fool. Rounds are added until
``min_rounds`` are in and the interval at ``stop_level`` is narrow enough, or the round limit
or the time budget is reached. The clock stops only when the device has finished (CUDA is
synchronised around every round).
"""

from __future__ import annotations

import functools
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qagate.core.clocklock import timing_alone
from qagate.core.errors import QagateError
from qagate.scoring.stats import Interval
from qagate.timing import speed

Clock = Callable[[], float]


@dataclass(frozen=True)
class TimingPlan:
    """How long to time: warm-up rounds, round limits, the target relative width, the budget."""

    warmup: int = 1
    min_rounds: int = 20  # enough rounds for blocks of 4-7 (the interval's blocks, speed.BLOCKS)
    max_rounds: int = 40
    relative_width: float = 0.10  # stop when (high - low) / estimate of the speed-up is below
    budget_seconds: float = 60.0  # per pair of models, warm-up included
    level: float = 0.95
    # The early stop looks at the interval at this (stricter) level: stopping when a 95%
    # interval happens to look narrow picks the samples whose spread was underestimated, and
    # under drift that cost coverage (0.905 for AR 0.8 in bench/bench_speed_validity.py).
    stop_level: float = 0.99


@dataclass
class Timing:
    """One model's rounds: seconds per question of each timed round, and how it ran."""

    model: str
    rounds: list[float] = field(default_factory=list)
    questions: int = 0
    environment: dict[str, Any] = field(default_factory=dict)
    tokens: list[int] = field(default_factory=list)  # generated per round (generative models)

    @property
    def seconds_per_question(self) -> float:
        """Mean seconds per question over the rounds (:func:`qagate.timing.speed.seconds_per_question`)."""
        return speed.seconds_per_question(self.rounds)

    @property
    def questions_per_second(self) -> float:
        """``1 / seconds_per_question`` (:func:`qagate.timing.speed.questions_per_second`)."""
        return speed.questions_per_second(self.rounds)

    def add(self, seconds_per_question: float, tokens: int | None) -> None:
        """One timed round (and the tokens it generated, if the model generates)."""
        self.rounds.append(seconds_per_question)
        if tokens is not None:
            self.tokens.append(tokens)

    def tokens_per_second(self) -> list[float]:
        """Generated tokens per second of each round; empty for models that do not generate."""
        if len(self.tokens) != len(self.rounds):
            return []
        return [t / (s * self.questions) for t, s in zip(self.tokens, self.rounds) if s > 0]

    def interval(self, level: float = 0.95) -> Interval:
        """Interval of the mean seconds per question, from consecutive blocks of rounds."""
        return speed.mean_interval(self.rounds, level)


@dataclass
class PairedTiming:
    """A model timed against a reference (its teacher), round for round."""

    reference: Timing
    model: Timing
    warmup: int
    stopped_because: str = ""

    @property
    def speedup(self) -> float:
        """The reference's mean seconds per question / the model's (:func:`qagate.timing.speed.speedup`)."""
        return speed.speedup(self.reference.rounds, self.model.rounds)

    def interval(self, level: float = 0.95) -> Interval:
        """Interval of the speed-up on the log scale, from consecutive blocks of paired rounds
        (:func:`qagate.timing.speed.speedup_interval`): robust to drift."""
        return speed.speedup_interval(self.reference.rounds, self.model.rounds, level)


def environment(model: Any) -> dict[str, Any]:
    """Device, dtype, batch size, threads and torch version: what a timing depends on."""
    info = dict(model.info()) if hasattr(model, "info") else {}
    env: dict[str, Any] = {
        "device": str(info.get("device", "cpu")),
        "dtype": info.get("dtype"),
        "batch_size": info.get("batch_size"),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
    }
    try:
        import torch

        env["threads"] = torch.get_num_threads()
        env["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return {key: value for key, value in env.items() if value is not None}


@functools.cache  # one function per device, so a pair on one GPU syncs once
def synchronizer(device: str) -> Callable[[], None]:
    """A function that waits until ``device`` has finished its queued work (no-op on the CPU);
    ``cuda:1`` waits for that GPU, not the current one (an xdist worker per GPU)."""
    if str(device).startswith("cuda"):
        import torch

        return functools.partial(torch.cuda.synchronize, str(device))
    return lambda: None


def time_round(model: Any, examples: Sequence[Any], clock: Clock, sync: Callable[[], None]) -> float:
    """Seconds per question of one ``model.predict(examples)``, the device synchronised."""
    return timed_round(model, examples, clock, sync)[0]


def timed_round(
    model: Any, examples: Sequence[Any], clock: Clock, sync: Callable[[], None]
) -> tuple[float, int | None]:
    """Seconds per question of one ``model.predict(examples)`` and the tokens it generated."""
    sync()
    began = clock()
    predictions = model.predict(examples)
    sync()
    elapsed = clock() - began
    if getattr(predictions, "total_seconds", 0) is None:
        raise QagateError(
            f"model {model.name!r} replays stored answers: it has no speed to measure",
            hint="gate speed only on models that run",
        )
    tokens = getattr(predictions, "tokens", None)
    return elapsed / len(examples), (sum(tokens.values()) if tokens else None)


@timing_alone()  # no other process times or computes meanwhile (qagate.core.clocklock)
def measure_paired(
    reference: Any,
    model: Any,
    examples: Sequence[Any],
    *,
    plan: TimingPlan = TimingPlan(),
    clock: Clock = time.perf_counter,
    sync: Callable[[], None] | None = None,
) -> PairedTiming:
    """Time ``model`` against ``reference`` on the same ``examples``, rounds interleaved."""
    if not examples:
        raise QagateError("cannot time models on zero questions")
    ref_env, env = environment(reference), environment(model)
    if sync is None:
        syncs = {synchronizer(ref_env.get("device", "cpu")), synchronizer(env.get("device", "cpu"))}
        sync = _all(syncs)
    started = clock()
    for _ in range(plan.warmup):  # first calls, allocations, autotuning: not timed
        time_round(reference, examples, clock, sync)
        time_round(model, examples, clock, sync)
    result = PairedTiming(
        Timing(reference.name, [], len(examples), ref_env),
        Timing(model.name, [], len(examples), env),
        plan.warmup,
    )
    while True:
        if speed.reference_first(len(result.model.rounds)):  # ABBA: R M, M R, R M, ...
            result.reference.add(*timed_round(reference, examples, clock, sync))
            result.model.add(*timed_round(model, examples, clock, sync))
        else:
            result.model.add(*timed_round(model, examples, clock, sync))
            result.reference.add(*timed_round(reference, examples, clock, sync))
        rounds = len(result.model.rounds)
        if rounds >= max(plan.min_rounds, 2):
            interval = result.interval(max(plan.level, plan.stop_level))
            if interval.width <= plan.relative_width * interval.estimate:
                result.stopped_because = (
                    f"{interval.level:.0%} interval within {plan.relative_width:.0%} after {rounds} rounds"
                )
                return result
        if rounds >= max(plan.max_rounds, 2):
            result.stopped_because = f"{plan.max_rounds} rounds (the most allowed)"
            return result
        if rounds >= _budget_floor(plan) and clock() - started >= plan.budget_seconds:
            result.stopped_because = f"time budget of {plan.budget_seconds:g} s spent after {rounds} rounds"
            return result


def _budget_floor(plan: TimingPlan) -> int:
    """Rounds timed even when the budget is spent: three blocks of two for the interval (a slow
    model gets a wide interval rather than a long wait), or ``min_rounds`` if fewer."""
    return max(2, min(plan.min_rounds, 2 * speed.BLOCKS[0]))


@timing_alone()
def measure_single(
    model: Any,
    examples: Sequence[Any],
    *,
    plan: TimingPlan = TimingPlan(),
    clock: Clock = time.perf_counter,
    sync: Callable[[], None] | None = None,
) -> Timing:
    """Time one model alone (absolute timing rules), with the same warm-up and stopping rule."""
    if not examples:
        raise QagateError("cannot time a model on zero questions")
    env = environment(model)
    sync = sync or synchronizer(env.get("device", "cpu"))
    started = clock()
    for _ in range(plan.warmup):
        time_round(model, examples, clock, sync)
    timing = Timing(model.name, [], len(examples), env)
    while True:
        timing.add(*timed_round(model, examples, clock, sync))
        rounds = len(timing.rounds)
        if rounds >= max(plan.min_rounds, 2):
            interval = timing.interval(max(plan.level, plan.stop_level))
            if interval.width <= plan.relative_width * interval.estimate:
                return timing
        if rounds >= max(plan.max_rounds, 2) or (
            rounds >= _budget_floor(plan) and clock() - started >= plan.budget_seconds
        ):
            return timing


@timing_alone()
def per_question_latency(
    model: Any,
    examples: Sequence[Any],
    *,
    clock: Clock = time.perf_counter,
    sync: Callable[[], None] | None = None,
) -> Timing:
    """Serving latency: each question answered alone (batch size 1), after one warm-up call;
    the rounds are the questions' seconds."""
    env = environment(model)
    sync = sync or synchronizer(env.get("device", "cpu"))
    time_round(model, examples[:1], clock, sync)
    timing = Timing(model.name, [], 1, env)
    for example in examples:
        timing.add(*timed_round(model, [example], clock, sync))
    return timing


def _all(syncs: set[Callable[[], None]]) -> Callable[[], None]:
    def run() -> None:
        for sync in syncs:
            sync()

    return run
