"""Latency measured afresh in this session: warm-up, repeats, median, GPU synchronisation.

Speed-up gates compare models measured here, in the same process, never timings from a cache
or another machine. On CUDA the clock stops only after the GPU has finished (the engine copies
results to the host; we synchronise around each repeat as well).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from qagate.errors import QagateError
from qagate.inference.base import QAModel


@dataclass
class Latency:
    """``seconds_per_question``: median over repeats of wall time / questions; ``p50``/``p90``:
    percentiles over questions of each question's median share of its batches' time."""

    seconds_per_question: float
    p50: float
    p90: float
    questions: int
    device: str
    repeats: int = 1


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), ``q`` in [0, 100] to 0.01."""
    if not values:
        raise ValueError("no values")
    steps = round(q * 100)  # statistics.quantiles' "inclusive" method interpolates
    if len(values) == 1 or steps <= 0:  # linearly, as numpy does
        return min(values)
    if steps >= 10_000:
        return max(values)
    return statistics.quantiles(values, n=10_000, method="inclusive")[steps - 1]


def measure_latency(model: QAModel, examples: Sequence, *, warmup: int = 1, repeats: int = 3) -> Latency:
    """Time ``model.predict(examples)`` ``repeats`` times after ``warmup`` untimed runs."""
    if not examples:
        raise QagateError("cannot measure latency on zero questions")
    if repeats < 1 or warmup < 0:
        raise QagateError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats} warmup={warmup}")
    device = str(model.info().get("device", "cpu"))
    for _ in range(warmup):
        model.predict(examples)
    walls: list[float] = []
    per_question: dict[str, list[float]] = {}
    for _ in range(repeats):
        _synchronize(device)
        began = time.perf_counter()
        predictions = model.predict(examples)
        _synchronize(device)
        walls.append(time.perf_counter() - began)
        if predictions.total_seconds is None:
            raise QagateError(
                f"model {model.name!r} replays stored answers: it has no speed to measure",
                hint="gate speed only on models that run",
            )
        for qid, seconds in predictions.seconds.items():
            per_question.setdefault(qid, []).append(seconds)
    medians = [statistics.median(v) for v in per_question.values()] or [
        statistics.median(walls) / len(examples)
    ]
    return Latency(
        seconds_per_question=statistics.median(walls) / len(examples),
        p50=percentile(medians, 50),
        p90=percentile(medians, 90),
        questions=len(examples),
        device=device,
        repeats=repeats,
    )
