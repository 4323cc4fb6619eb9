"""Latency: warm-up, repeats, median, percentiles; replayed files have no speed."""

from __future__ import annotations

import time

import pytest

from qagate.data import QAExample
from qagate.errors import QagateError
from qagate.inference.base import Predictions
from qagate.timing.latency import measure_latency, percentile


class Sleeper:
    """A model that spends a known time per question."""

    name = "sleeper"

    def __init__(self, per_question: float) -> None:
        self.per_question = per_question
        self.calls = 0

    def predict(self, examples):
        self.calls += 1
        began = time.perf_counter()
        seconds = {}
        for ex in examples:
            time.sleep(self.per_question)
            seconds[ex.id] = self.per_question
        return Predictions({ex.id: "" for ex in examples}, {}, seconds, time.perf_counter() - began)

    def fingerprint(self):
        return "sleeper"

    def info(self):
        return {"device": "cpu"}


EXAMPLES = [QAExample(id=str(i), title="t", context="c", question="q") for i in range(5)]


def test_percentile_matches_linear_interpolation():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 90) == 5
    assert percentile([0, 10], 90) == 9.0


def test_measure_latency_runs_warmup_and_repeats():
    model = Sleeper(0.004)
    latency = measure_latency(model, EXAMPLES, warmup=2, repeats=3)
    assert model.calls == 5
    assert 0.004 <= latency.seconds_per_question < 0.05
    assert latency.p50 == pytest.approx(0.004) and latency.p90 >= latency.p50
    assert latency.questions == 5 and latency.device == "cpu"


def test_replay_and_bad_arguments_are_refused(tmp_path):
    from qagate.inference.replay import ReplayModel

    path = tmp_path / "p.json"
    path.write_text('{"0": "x"}')
    with pytest.raises(QagateError, match="replays stored answers"):
        measure_latency(ReplayModel("r", path), EXAMPLES)
    with pytest.raises(QagateError, match="zero questions"):
        measure_latency(Sleeper(0.0), [])
    with pytest.raises(QagateError, match="repeats >= 1"):
        measure_latency(Sleeper(0.0), EXAMPLES, repeats=0)


def test_tiny_model_latency(tiny_qa_model_dir):
    pytest.importorskip("torch")
    from qagate.inference.extractive import ExtractiveModel

    model = ExtractiveModel("tiny", str(tiny_qa_model_dir()), device="cpu")
    latency = measure_latency(model, EXAMPLES, warmup=1, repeats=2)
    assert 0 < latency.p50 <= latency.p90 and latency.seconds_per_question > 0
