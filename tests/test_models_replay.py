"""Replay models: a predictions file answers questions; the shared leaderboard files as models."""

from __future__ import annotations

import json

import pytest

from qagate.core.errors import QagateError
from qagate.data import QAExample
from qagate.inference.config import load_model_spec
from qagate.inference.registry import build_model
from qagate.inference.replay import ReplayModel


def ex(qid: str) -> QAExample:
    return QAExample(id=qid, title="t", context="c", question="q?", answers=("c",), answer_starts=(0,))


def test_answers_missing_ids_and_fingerprint(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"a": "Paris", "b": "", "extra": "x"}))
    model = ReplayModel("r", path)
    predictions = model.predict([ex("a"), ex("b"), ex("c")])
    assert predictions.answers == {"a": "Paris", "b": "", "c": ""}
    assert (
        predictions.total_seconds is None
        and predictions.seconds == {}
        and predictions.seconds_per_question is None
    )
    assert model.missing_ids([ex("a"), ex("c")]) == ["c"]
    assert "parameter_count" not in model.info() and model.info()["kind"] == "replay"
    before = model.fingerprint()
    path.write_text(json.dumps({"a": "London"}))
    assert ReplayModel("renamed", path).fingerprint() != before


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "file is empty"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": "x"', "looks truncated"),
        (b'["a"]', "expected a JSON object"),
        (b'{"a": 3}', r"1 prediction\(s\) are not strings \(a; 'a' is a number\)"),
    ],
)
def test_bad_files_get_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(QagateError, match=message) as info:
        ReplayModel("r", path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_missing_file_from_a_declaration(tmp_path):
    (tmp_path / "m.yaml").write_text("name: old\nkind: replay\nsource: preds/none.json\n")
    with pytest.raises(QagateError, match="none.json: no such file"):
        build_model(load_model_spec(tmp_path / "m.yaml"))


@pytest.mark.parametrize(
    "file, em, f1",
    [
        ("bert-ensemble-google.json", 86.20624408703878, 92.19557978351145),
        ("logistic-regression-stanford.json", 40.14191106906339, 50.98153647324461),
    ],
)
def test_leaderboard_files_as_models(shared_dir, tmp_path, file, em, f1):
    from qagate.data import load_dataset
    from qagate.scoring.evaluation import evaluate

    yaml_path = tmp_path / "leader.yaml"
    yaml_path.write_text(
        f"name: leader\nkind: replay\nsource: {shared_dir / 'data/squad/predictions' / file}\n"
    )
    model = build_model(load_model_spec(yaml_path))
    dataset = load_dataset(shared_dir / "data/squad/dev-v1.1.json")
    result = evaluate(model, dataset, cache_dir=tmp_path / "cache")
    assert result.metrics["exact_match"] == pytest.approx(em, abs=1e-9)
    assert result.metrics["f1"] == pytest.approx(f1, abs=1e-9)
    assert set(result.metrics) == {"exact_match", "f1"}  # no speed, no size for a replay
    assert evaluate(model, dataset, cache_dir=tmp_path / "cache").from_cache
