"""Inference timing of every declared model with pytest-benchmark.

Speed gates in the gate files compare models measured in the same run (``speedup >= 3``);
this module keeps the absolute timings in pytest-benchmark's store, so that a later run can
catch a slowdown of one model against an earlier run on the same machine::

    pytest quality_tests/ --benchmark-autosave               # store this run's timings
    pytest quality_tests/ --benchmark-compare --benchmark-compare-fail=mean:15%

Replayed prediction files do no inference and are skipped.
"""

from __future__ import annotations

import pytest

QUESTIONS = 16


def test_inference_latency(benchmark, qa_model, qagate_dataset):
    info = qa_model.info()
    if info.get("parameter_count") is None:
        pytest.skip(f"{qa_model.name} replays a predictions file: there is no inference to time")
    examples = list(qagate_dataset.examples[:QUESTIONS])
    benchmark.group = f"qagate inference, {len(examples)} questions of {qagate_dataset.name}"
    benchmark.extra_info.update(
        {
            "model": qa_model.name,
            "questions": len(examples),
            "device": str(info.get("device")),
            "dtype": str(info.get("dtype")),
        }
    )
    predictions = benchmark.pedantic(
        qa_model.predict, args=(examples,), rounds=5, warmup_rounds=1, iterations=1
    )
    assert set(predictions.answers) == {example.id for example in examples}
