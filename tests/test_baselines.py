"""The baseline store: stable JSON, atomic writes, clear errors, provenance checks."""

from __future__ import annotations

import json
import os

import pytest

from qagate.core.errors import QagateError
from qagate.gating.evidence import baseline_metrics
from qagate.store import baselines


def provenance(dataset_fp: str = "d" * 64, model_fp: str = "m" * 64) -> dict:
    return baselines.make_provenance(
        dataset_name="sample",
        dataset_fingerprint=dataset_fp,
        dataset_size=65,
        model_name="demo",
        model_fingerprint=model_fp,
        engine={"kind": "extractive", "max_seq_len": 384, "revision": None},
    )


def test_path_layout_and_safe_names(tmp_path):
    assert (
        baselines.baseline_path(tmp_path, "dev-v1.1", "minilm-l3") == tmp_path / "dev-v1.1" / "minilm-l3.json"
    )
    assert baselines.baseline_path(tmp_path, "a/b", "../x").name == "x.json"
    assert baselines.baseline_path(tmp_path, "a/b", "../x").parent.name == "a_b"


def test_write_is_sorted_rounded_and_keeps_only_quality_metrics(tmp_path):
    path = baselines.baseline_path(tmp_path, "sample", "demo")
    metrics = {
        "f1": 12.3456789012,
        "exact_match": 10.0,
        "seconds_per_question": 0.01,
        "questions_per_second": 100.0,
        "parameter_count": 1234,
        "bertscore_f1": None,
    }
    written = baselines.write_baseline(path, baseline_metrics(metrics), provenance())
    data = json.loads(path.read_text())
    assert data["schema_version"] == baselines.SCHEMA_VERSION
    assert data["metrics"] == {"exact_match": 10.0, "f1": 12.345679, "parameter_count": 1234.0}
    assert list(data) == sorted(data) and list(data["metrics"]) == sorted(data["metrics"])
    assert data["provenance"]["dataset"]["fingerprint"] == "d" * 64
    assert data["provenance"]["model"] == {
        "name": "demo",
        "fingerprint": "m" * 64,
        "kind": "extractive",
        "max_seq_len": 384,
    }
    assert set(data["provenance"]["versions"]) == {"qagate", "transformers", "torch"}
    assert written.metrics == baselines.load_baseline(path).metrics
    assert not [p for p in path.parent.iterdir() if p.name != "demo.json"]  # no temp files left


def test_writing_twice_gives_identical_bytes_apart_from_the_time(tmp_path):
    path = tmp_path / "b.json"
    prov = provenance()
    baselines.write_baseline(path, {"f1": 1 / 3}, prov)
    first = path.read_bytes()
    baselines.write_baseline(path, {"f1": 1 / 3}, prov)
    assert path.read_bytes() == first


def test_missing_baseline_is_none(tmp_path):
    assert baselines.load_baseline(tmp_path / "nope.json") is None


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"schema_version": 1, "metrics": {"f1": 1', "not valid JSON"),
        ("[]", "no 'metrics' object"),
        ('{"schema_version": 99, "metrics": {}}', "schema_version 99"),
        ('{"schema_version": 1, "metrics": {"f1": "high"}}', "'f1' is not a number"),
    ],
)
def test_damaged_baselines_name_the_file_and_the_fix(tmp_path, content, message):
    path = tmp_path / "demo.json"
    path.write_text(content)
    with pytest.raises(QagateError) as info:
        baselines.load_baseline(path)
    text = str(info.value)
    assert text.startswith(str(path)) and message in text
    assert "--qagate-update-baselines" in text


def test_a_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "demo.json"
    baselines.write_baseline(path, {"f1": 50.0}, provenance())
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        baselines.write_baseline(path, {"f1": 10.0}, provenance())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["demo.json"]


def test_provenance_dataset_mismatch_blocks_weights_mismatch_informs(tmp_path):
    path = tmp_path / "demo.json"
    stored = baselines.write_baseline(path, {"f1": 50.0}, provenance("a" * 64, "b" * 64))
    blocking, info = baselines.provenance_notes(
        stored, dataset_fingerprint="a" * 64, model_fingerprint="b" * 64
    )
    assert blocking == info == []
    blocking, info = baselines.provenance_notes(
        stored, dataset_fingerprint="c" * 64, model_fingerprint="e" * 64
    )
    assert "recorded on a different dataset" in blocking[0] and "not comparable" in blocking[0]
    assert "different weights" in info[0]
