"""A timing is only reported as this run's when it was measured in this run (never from a cache)."""

from __future__ import annotations

import json

import pytest

from qagate.cli import main
from qagate.store.history import read_history

TIMINGS = {"seconds_per_question", "questions_per_second"}


@pytest.fixture
def tiny_yaml(tiny_qa_model_dir, write_model_yaml):
    return write_model_yaml("tiny", source=tiny_qa_model_dir(), device="cpu", max_seq_len=128, doc_stride=32)


def test_a_cache_hit_prints_no_timing(tiny_yaml, tmp_path, capsys):
    pytest.importorskip("torch")
    argv = [
        "evaluate",
        str(tiny_yaml),
        "sample",
        "--limit",
        "6",
        "--json",
        "--no-bertscore",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert not first["from_cache"] and set(first) >= TIMINGS
    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["from_cache"]
    assert not TIMINGS & set(second), "a cached result must not carry another run's timings"
    assert second["exact_match"] == first["exact_match"] and second["f1"] == first["f1"]


def test_a_cache_hit_keeps_no_stored_seconds(tiny_qa_model_dir, tmp_path):
    pytest.importorskip("torch")
    from qagate.data import load_dataset
    from qagate.inference.engine import EngineSettings
    from qagate.inference.extractive import ExtractiveModel
    from qagate.scoring.evaluation import predict_cached

    model = ExtractiveModel(
        "tiny",
        str(tiny_qa_model_dir()),
        device="cpu",
        settings=EngineSettings(max_seq_len=128, doc_stride=32),
    )
    dataset = load_dataset("sample", limit=3)
    fresh, hit = predict_cached(model, dataset, tmp_path)
    assert not hit and fresh.total_seconds is not None and fresh.seconds
    cached, hit = predict_cached(model, dataset, tmp_path)
    assert hit and cached.answers == fresh.answers
    assert cached.total_seconds is None and not cached.seconds and cached.seconds_per_question is None


def test_history_row_of_a_cached_evaluation_has_no_timing(pytester, tiny_qa_model_dir):
    """The history (and so the dashboard) never records a cached timing as this run's."""
    pytest.importorskip("torch")
    pytester.makefile(
        ".yaml",
        **{
            "qa_models/tiny": f"name: tiny\nrole: teacher\nkind: extractive\n"
            f"source: {tiny_qa_model_dir()}\ndevice: cpu\n"
            f"max_seq_len: 128\ndoc_stride: 32\n"
        },
    )
    pytester.makefile(
        ".yaml",
        gate_q="dataset: {source: sample, limit: 5}\nrules:\n  - apply_to: teacher\n    require: [f1 >= 0]\n",
    )
    for _ in range(2):
        pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    rows = read_history(pytester.path / ".qagate" / "history.db").runs
    assert len(rows) == 2
    assert set(rows[0]["metrics"][0]) >= TIMINGS, "the first run measured its predictions"
    assert not TIMINGS & set(rows[1]["metrics"][0]), "the second run read them from the cache"
