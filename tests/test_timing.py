"""Paired, interleaved timing on a fake clock (no sleeping): order, warm-up, stopping, CUDA sync."""

from __future__ import annotations

import pytest

from qagate.core.errors import QagateError
from qagate.data import QAExample
from qagate.data.predictions import Predictions
from qagate.timing.latency import percentile
from qagate.timing.paired import (
    PairedTiming,
    Timing,
    TimingPlan,
    measure_paired,
    measure_single,
    per_question_latency,
)

EXAMPLES = [QAExample(id=str(i), title="t", context="c", question="q") for i in range(4)]


class FakeClock:
    """A clock that only moves when a fake model 'works': timings are exact and instant."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeModel:
    """Spends ``per_question`` seconds of the fake clock per question; logs its calls."""

    def __init__(
        self,
        name: str,
        per_question: float,
        clock: FakeClock,
        log: list[str],
        device: str = "cpu",
        jitter: tuple[float, ...] = (0.0,),
    ) -> None:
        self.name, self.per_question, self.clock, self.log = name, per_question, clock, log
        self.device, self.jitter, self.calls = device, jitter, 0

    def predict(self, examples):
        extra = self.jitter[self.calls % len(self.jitter)]
        self.calls += 1
        self.log.append(self.name)
        self.clock.now += len(examples) * self.per_question * (1.0 + extra)
        return Predictions({ex.id: "" for ex in examples}, total_seconds=0.0)

    def fingerprint(self):
        return self.name

    def info(self):
        return {"device": self.device, "dtype": "fp32", "batch_size": 8}


def test_percentile_matches_linear_interpolation():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 90) == 5
    assert percentile([0, 10], 90) == 9.0


def test_rounds_alternate_in_counterbalanced_order_after_untimed_warmup():
    clock, log = FakeClock(), []
    teacher = FakeModel("T", 0.04, clock, log)
    student = FakeModel("S", 0.01, clock, log)
    plan = TimingPlan(warmup=2, min_rounds=5, max_rounds=5)
    paired = measure_paired(teacher, student, EXAMPLES, plan=plan, clock=clock)
    # 2 warm-up pairs, then 5 timed pairs in ABBA order: T S, S T, S T, T S, T S
    assert log == ["T", "S"] * 2 + ["T", "S", "S", "T", "S", "T", "T", "S", "T", "S"]
    assert paired.reference.rounds == pytest.approx([0.04] * 5)
    assert paired.model.rounds == pytest.approx([0.01] * 5)
    assert paired.speedup == pytest.approx(4.0)
    assert paired.reference.environment["device"] == "cpu"


def test_rounds_stop_when_the_interval_is_narrow_or_the_budget_is_spent():
    clock, log = FakeClock(), []
    teacher = FakeModel("T", 0.04, clock, log, jitter=(0.0, 0.5, -0.3, 0.2))
    student = FakeModel("S", 0.01, clock, log, jitter=(0.1, -0.2, 0.4, 0.0))
    noisy = measure_paired(
        teacher,
        student,
        EXAMPLES,
        clock=clock,
        plan=TimingPlan(min_rounds=4, max_rounds=40, relative_width=0.01, budget_seconds=2.0),
    )
    assert "time budget" in noisy.stopped_because and len(noisy.model.rounds) < 40
    steady = measure_paired(
        FakeModel("T", 0.04, clock, []),
        FakeModel("S", 0.01, clock, []),
        EXAMPLES,
        clock=clock,
        plan=TimingPlan(min_rounds=4),
    )
    assert "interval within" in steady.stopped_because and len(steady.model.rounds) == 4
    interval = steady.interval(0.95)
    assert interval.low == pytest.approx(4.0) and interval.high == pytest.approx(4.0)


def test_speedup_interval_is_paired_round_for_round():
    paired = PairedTiming(
        Timing("T", [0.04, 0.05, 0.06, 0.04, 0.05], 8),
        Timing("S", [0.01, 0.0125, 0.015, 0.01, 0.0125], 8),
        warmup=1,
    )
    interval = paired.interval(0.95)
    assert paired.speedup == pytest.approx(4.0)
    assert interval.low == pytest.approx(4.0) and interval.high == pytest.approx(4.0)  # drift cancels


def test_cuda_rounds_are_synchronised_before_and_after():
    clock, log = FakeClock(), []
    teacher = FakeModel("T", 0.04, clock, log, device="cuda:0")
    student = FakeModel("S", 0.01, clock, log, device="cuda:0")
    syncs: list[int] = []
    measure_paired(
        teacher,
        student,
        EXAMPLES,
        clock=clock,
        sync=lambda: syncs.append(len(log)),
        plan=TimingPlan(warmup=1, min_rounds=2, max_rounds=2),
    )
    # before and after every call: the clock never stops while the GPU still works
    assert syncs == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6]


def test_single_model_timing_and_serving_latency():
    clock = FakeClock()
    model = FakeModel("M", 0.02, clock, [])
    timing = measure_single(model, EXAMPLES, clock=clock, plan=TimingPlan(min_rounds=3))
    assert timing.seconds_per_question == pytest.approx(0.02) and timing.questions == 4
    latencies = per_question_latency(model, EXAMPLES, clock=clock)
    assert latencies.rounds == pytest.approx([0.02] * 4) and latencies.questions == 1


def test_replay_and_empty_inputs_are_refused(tmp_path):
    from qagate.inference.replay import ReplayModel

    path = tmp_path / "p.json"
    path.write_text('{"0": "x"}')
    clock = FakeClock()
    with pytest.raises(QagateError, match="replays stored answers"):
        measure_single(ReplayModel("r", path), EXAMPLES, clock=clock)
    with pytest.raises(QagateError, match="zero questions"):
        measure_paired(FakeModel("T", 1, clock, []), FakeModel("S", 1, clock, []), [], clock=clock)


def test_tiny_model_is_timed_for_real(tiny_qa_model_dir):
    pytest.importorskip("torch")
    from qagate.inference.extractive import ExtractiveModel

    model = ExtractiveModel("tiny", str(tiny_qa_model_dir()), device="cpu")
    timing = measure_single(model, EXAMPLES, plan=TimingPlan(min_rounds=2, max_rounds=3))
    assert timing.seconds_per_question > 0 and timing.environment["threads"] >= 1
    assert "torch" in timing.environment


class FakeGenerator(FakeModel):
    """A generative fake: ``tokens`` generated per question, reported like the engine does."""

    def predict(self, examples):
        predictions = super().predict(examples)
        predictions.tokens = {ex.id: 5 for ex in examples}
        return predictions


def test_tokens_per_second_is_measured_on_the_timed_rounds():
    from qagate.gating.case import _in_units

    clock = FakeClock()
    timing = measure_single(
        FakeGenerator("G", 0.25, clock, []), EXAMPLES, clock=clock, plan=TimingPlan(min_rounds=3)
    )
    assert timing.tokens == [20] * len(timing.rounds)  # 4 questions x 5 tokens, every round
    assert _in_units("tokens_per_second", timing) == pytest.approx([20.0] * len(timing.rounds))
    extractive = measure_single(FakeModel("E", 0.25, clock, []), EXAMPLES, clock=clock)
    assert extractive.tokens == [] and _in_units("tokens_per_second", extractive) == []
