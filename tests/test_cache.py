"""Prediction cache: keyed by content (weights, tokenizer, data, settings), never by name."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from qagate.core.files import atomic_write_text
from qagate.inference.base import Predictions
from qagate.store.cache import PredictionCache, cache_key


def test_atomic_write_replaces_whole_files(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic_write_text(target, "first\n")
    atomic_write_text(target, "second\n")
    assert target.read_text() == "second\n"
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]  # no temporary left behind


def test_round_trip_and_unreadable_entries(tmp_path):
    cache = PredictionCache(tmp_path)
    key = cache_key("model-fp", "data-fp")
    assert key != cache_key("model-fp", "other-data") and key != cache_key("other-model", "data-fp")
    assert cache.get(key) is None
    stored = Predictions({"a": "x", "b": ""}, {"a": 0.5, "b": 0.0}, {"a": 0.1, "b": 0.2}, 0.3)
    cache.put(key, stored, model="m", dataset="d")
    assert cache.get(key) == stored
    cache.path(key).write_text("{ truncated")
    assert cache.get(key) is None
    cache.path(key).write_text(json.dumps({"format": 999}))
    assert cache.get(key) is None


@pytest.fixture
def sample():
    from qagate.data import load_dataset

    return load_dataset("sample", limit=12)


def test_hit_after_rename_miss_after_weight_change(tiny_qa_model_dir, tmp_path, sample):
    pytest.importorskip("torch")
    from qagate.inference.extractive import ExtractiveModel
    from qagate.scoring.evaluation import evaluate

    folder = tmp_path / "model"
    shutil.copytree(tiny_qa_model_dir(seed=0), folder)
    cache_dir = tmp_path / "cache"
    first = evaluate(ExtractiveModel("tiny", str(folder), device="cpu"), sample, cache_dir=cache_dir)
    assert not first.from_cache
    again = evaluate(ExtractiveModel("renamed", str(folder), device="cpu"), sample, cache_dir=cache_dir)
    assert again.from_cache and again.predictions.answers == first.predictions.answers
    assert again.metrics["exact_match"] == first.metrics["exact_match"]

    # New weights in the same folder, same name: recomputed.
    for name in os.listdir(tiny_qa_model_dir(seed=1)):
        shutil.copy(tiny_qa_model_dir(seed=1) / name, folder / name)
    changed = evaluate(ExtractiveModel("tiny", str(folder), device="cpu"), sample, cache_dir=cache_dir)
    assert not changed.from_cache
    assert changed.predictions.answers != first.predictions.answers
    assert len(list(cache_dir.glob("predictions-*.json"))) == 2


def test_other_data_is_a_miss(tiny_qa_model_dir, tmp_path):
    pytest.importorskip("torch")
    from qagate.data import load_dataset
    from qagate.inference.extractive import ExtractiveModel
    from qagate.scoring.evaluation import predict_cached

    model = ExtractiveModel("tiny", str(tiny_qa_model_dir()), device="cpu")
    _, hit = predict_cached(model, load_dataset("sample", limit=5), tmp_path)
    assert not hit
    _, hit = predict_cached(model, load_dataset("sample", limit=6), tmp_path)
    assert not hit
    _, hit = predict_cached(model, load_dataset("sample", limit=6), tmp_path)
    assert hit
