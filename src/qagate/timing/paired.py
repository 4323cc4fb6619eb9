"""Paired, interleaved timing: reference and model rounds alternate on the same questions.

Rounds go R M R M ... after untimed warm-up rounds (first CUDA calls, kernel autotuning), so
load drift on a shared machine hits both models alike. The speed-up is the ratio of mean
seconds per question with a bootstrap interval over the paired rounds; rounds are added until
that interval is narrow enough or the time budget is spent. The clock stops only when the
device has finished (CUDA is synchronised around every round).
"""

from __future__ import annotations

import functools
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qagate.clocklock import timing_alone
from qagate.errors import QagateError
from qagate.scoring.stats import Interval

Clock = Callable[[], float]


@dataclass(frozen=True)
class TimingPlan:
    """How long to time: warm-up rounds, round limits, the target relative width, the budget."""

    warmup: int = 1
    min_rounds: int = 5
    max_rounds: int = 40
    relative_width: float = 0.10  # stop when (high - low) / estimate of the speed-up is below
    budget_seconds: float = 60.0  # per pair of models, warm-up included
    level: float = 0.95


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
        return sum(self.rounds) / len(self.rounds)

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

    def interval(self, level: float = 0.95, seed: int = 0) -> Interval:
        """Bootstrap interval of the mean seconds per question over the rounds."""
        from qagate.scoring.stats import bootstrap_ci

        return bootstrap_ci(self.rounds, level=level, seed=seed)


@dataclass
class PairedTiming:
    """A model timed against a reference (its teacher), round for round."""

    reference: Timing
    model: Timing
    warmup: int
    stopped_because: str = ""

    @property
    def speedup(self) -> float:
        """The reference's mean seconds per question / the model's."""
        return self.reference.seconds_per_question / self.model.seconds_per_question

    def interval(self, level: float = 0.95, seed: int = 0, n_resamples: int = 2000) -> Interval:
        """Bootstrap interval of the speed-up: rounds resampled in pairs (same index for both)."""
        import numpy as np

        ref = np.asarray(self.reference.rounds, dtype=float)
        mine = np.asarray(self.model.rounds, dtype=float)
        if ref.size != mine.size or ref.size < 2:
            raise QagateError("a speed-up interval needs at least two paired rounds")
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, ref.size, size=(n_resamples, ref.size))
        ratios = ref[picks].mean(axis=1) / mine[picks].mean(axis=1)
        tail = (1.0 - level) / 2.0
        low, high = np.quantile(ratios, [tail, 1.0 - tail])
        return Interval(self.speedup, float(low), float(high), level)


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


@timing_alone()  # no other process times or computes meanwhile (qagate.clocklock)
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
        result.reference.add(*timed_round(reference, examples, clock, sync))
        result.model.add(*timed_round(model, examples, clock, sync))
        rounds = len(result.model.rounds)
        if rounds < plan.min_rounds:
            continue
        interval = result.interval(plan.level)
        if interval.width <= plan.relative_width * interval.estimate:
            result.stopped_because = f"interval within {plan.relative_width:.0%} after {rounds} rounds"
            return result
        if rounds >= plan.max_rounds:
            result.stopped_because = f"{plan.max_rounds} rounds (the most allowed)"
            return result
        if clock() - started >= plan.budget_seconds:
            result.stopped_because = f"time budget of {plan.budget_seconds:g} s spent after {rounds} rounds"
            return result


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
        if len(timing.rounds) < plan.min_rounds:
            continue
        interval = timing.interval(plan.level)
        if (
            interval.width <= plan.relative_width * interval.estimate
            or len(timing.rounds) >= plan.max_rounds
            or clock() - started >= plan.budget_seconds
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
