"""The Hugging Face ``evaluate`` metric of qagate: loaded offline, it reports the gate's numbers.

The metric is loaded through ``evaluate.load`` from the installed package, with the hub
switched off, sockets refused and a temporary HF_HOME / modules cache, and must give exactly
what ``qagate.scoring.squad.score`` and ``qagate.scoring.stats.score_intervals`` give: a
training loop's ``compute_metrics`` then reports what the release gate will judge.
``evaluate`` and ``datasets`` are imported inside the fixture only, so collection stays light.
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import qagate
from qagate.core.errors import QagateError
from qagate.data import Dataset, QAExample, load_dataset
from qagate.scoring import hf_metric
from qagate.scoring.squad import score
from qagate.scoring.stats import score_intervals

TOL = 1e-9


@pytest.fixture(scope="module")
def offline_evaluate(tmp_path_factory) -> Iterator[Any]:
    """``evaluate`` with no hub, no network and a private, temporary cache.

    evaluate reads its cache paths from the environment when first imported, so they are set
    both in the environment and on ``evaluate.config``; ``sys.path`` and earlier dynamic
    ``evaluate_modules`` are restored afterwards.
    """
    home = tmp_path_factory.mktemp("hf-home")
    with pytest.MonkeyPatch.context() as mp:
        env = {
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "HF_EVALUATE_OFFLINE": "1",
            "HF_HOME": str(home),
            "HF_MODULES_CACHE": str(home / "modules"),
            "HF_METRICS_CACHE": str(home / "metrics"),
        }
        for name, value in env.items():
            mp.setenv(name, value)
        mp.setattr(sys, "path", list(sys.path))
        before = {name for name in sys.modules if name.split(".")[0] == "evaluate_modules"}
        for name in before:
            mp.delitem(sys.modules, name)

        def refuse(self: socket.socket, address: Any) -> None:
            raise OSError(f"test_hf_evaluate: network access to {address!r} attempted")

        mp.setattr(socket.socket, "connect", refuse)
        import evaluate

        mp.setattr(evaluate.config, "HF_MODULES_CACHE", home / "modules")
        mp.setattr(evaluate.config, "HF_METRICS_CACHE", home / "metrics")
        mp.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)
        yield evaluate
        for name in [n for n in sys.modules if n.split(".")[0] == "evaluate_modules"]:
            if name not in before:
                del sys.modules[name]


@pytest.fixture(scope="module")
def sample() -> Dataset:
    return load_dataset("sample")


def reference(ex: QAExample) -> dict:
    """A reference in the format of the hub's ``squad`` metric."""
    return {"id": ex.id, "answers": {"text": list(ex.answers), "answer_start": list(ex.answer_starts)}}


def mixed_answers(dataset: Dataset, shift: int = 0) -> dict[str, str]:
    """Right, partly right (extra words: F1 between 0 and 1) and wrong answers, one per question;
    some under an id that is not in the dataset, so that question has no prediction (it scores
    0, as in the gate) and the unknown id is ignored. evaluate pairs the two columns row by row,
    hence one prediction per reference."""
    answers = {}
    for i, ex in enumerate(dataset):
        kind = (i + shift) % 5
        gold = ex.answers[0] if ex.answers else ""
        if kind == 0:
            answers[ex.id] = "completely unrelated words"
        elif kind == 1:
            answers[ex.id] = f"{gold} and some more text"
        elif kind == 2 and i % 2:
            answers[f"unknown-{ex.id}"] = gold
        else:
            answers[ex.id] = gold
    return answers


def as_predictions(answers: dict[str, str]) -> list[dict]:
    return [{"id": qid, "prediction_text": text} for qid, text in answers.items()]


def assert_same_as_qagate(result: dict, dataset: Dataset, answers: dict[str, str], **interval_kw: Any):
    scores = score(dataset, answers)
    assert result["exact_match"] == pytest.approx(scores.exact_match, abs=TOL)
    assert result["f1"] == pytest.approx(scores.f1, abs=TOL)
    if interval_kw:
        intervals = score_intervals(scores, **interval_kw)
        for name in ("exact_match", "f1"):
            assert result[f"{name}_ci"] == pytest.approx([intervals[name].low, intervals[name].high], abs=TOL)
            assert intervals[name].low <= result[name] <= intervals[name].high
    return scores


def test_metric_loads_offline_from_the_installed_package(offline_evaluate, sample):
    script = Path(hf_metric.PATH) / "qagate_squad.py"
    assert script.is_file()
    assert script.resolve().is_relative_to(Path(qagate.__file__).resolve().parent)
    metric = offline_evaluate.load(hf_metric.PATH, keep_in_memory=True)
    assert isinstance(metric, offline_evaluate.Metric)
    assert type(metric).__name__ == "QagateSquad"
    result = metric.compute(
        predictions=[{"id": "q1", "prediction_text": "The 1976 census."}],
        references=[{"id": "q1", "answers": {"text": ["1976 census"], "answer_start": [4]}}],
    )
    assert result == {"exact_match": 100.0, "f1": 100.0}  # no intervals without confidence


def test_scores_and_intervals_equal_qagate_scoring(offline_evaluate, sample):
    metric = hf_metric.load(keep_in_memory=True)
    answers = mixed_answers(sample)
    predictions, references = as_predictions(answers), [reference(ex) for ex in sample]

    result = metric.compute(predictions=predictions, references=references, confidence=0.95)
    scores = assert_same_as_qagate(result, sample, answers, level=0.95)
    assert set(result) == {"exact_match", "f1", "exact_match_ci", "f1_ci"}
    assert 0 < scores.exact_match < scores.f1 < 100  # partial answers exercise F1
    assert scores.missing and scores.unknown_ids  # missing and unknown ids are exercised too

    result = metric.compute(
        predictions=predictions, references=references, confidence=0.9, n_resamples=300, seed=7
    )
    assert_same_as_qagate(result, sample, answers, level=0.9, n_resamples=300, seed=7)


def test_squad_v2_references_follow_the_v2_rules(offline_evaluate, sample):
    examples = tuple(
        dataclasses.replace(ex, answers=(), answer_starts=(), is_impossible=True) if i % 4 == 3 else ex
        for i, ex in enumerate(sample)
    )
    dataset = Dataset(name="sample-v2", source="test", examples=examples, version="2.0")
    answers = mixed_answers(dataset, shift=1)
    answers.update({ex.id: "" for ex in examples[3::8] if ex.id in answers})  # "no answer"
    predictions = [dict(p, no_answer_probability=0.5) for p in as_predictions(answers)]

    metric = hf_metric.load(keep_in_memory=True)
    result = metric.compute(
        predictions=predictions, references=[reference(ex) for ex in dataset], confidence=0.95
    )
    scores = assert_same_as_qagate(result, dataset, answers, level=0.95)
    official = scores.official()
    for key in (
        "total",
        "HasAns_exact",
        "HasAns_f1",
        "HasAns_total",
        "NoAns_exact",
        "NoAns_f1",
        "NoAns_total",
    ):
        assert result[key] == pytest.approx(official[key], abs=TOL), key
    assert 0 < result["NoAns_exact"] < 100


def make_compute_metrics(dataset: Dataset, metric: Any, batch_size: int = 16) -> Callable:
    """What a training loop would write: evaluation yields (question ids, decoded answer texts);
    they go to the metric batch by batch, and one ``compute`` reports the gate's numbers."""
    references = {ex.id: reference(ex) for ex in dataset}

    def compute_metrics(eval_pred: tuple[list[str], list[str]]) -> dict:
        ids, texts = eval_pred
        for start in range(0, len(ids), batch_size):
            chunk = range(start, min(start + batch_size, len(ids)))
            metric.add_batch(
                predictions=[{"id": ids[i], "prediction_text": texts[i]} for i in chunk],
                references=[references[ids[i]] for i in chunk],
            )
        return metric.compute(confidence=0.95)

    return compute_metrics


def test_compute_metrics_through_add_batch(offline_evaluate, sample):
    metric = hf_metric.load()  # on disk, in the temporary metrics cache, as in training
    compute_metrics = make_compute_metrics(sample, metric)
    for epoch in range(2):  # compute() resets the metric: each evaluation stands alone
        answers = mixed_answers(sample, shift=epoch)
        ids = [ex.id for ex in sample]
        texts = [answers.get(qid, "") for qid in ids]
        result = compute_metrics((ids, texts))
        assert_same_as_qagate(result, sample, dict(zip(ids, texts)), level=0.95)


def test_malformed_inputs_give_clear_errors(offline_evaluate, sample):
    metric = hf_metric.load(keep_in_memory=True)
    predictions = as_predictions(mixed_answers(sample))
    references = [reference(ex) for ex in sample]
    no_id = [dict(r) for r in references]
    del no_id[1]["id"]
    with pytest.raises(ValueError, match=r"^references\[1\]: has no 'id' \(keys: \['answers'\]\)$") as info:
        metric.compute(predictions=predictions, references=no_id)
    assert isinstance(info.value, QagateError)

    bad_text = [dict(p) for p in predictions]
    bad_text[2]["prediction_text"] = ["a", "list"]
    with pytest.raises(ValueError, match=r"^predictions\[2\]: 'prediction_text' is list, not str$"):
        metric.compute(predictions=bad_text, references=references)

    bad_answers = [dict(r) for r in references]
    bad_answers[0]["answers"] = "Vell Point Lighthouse"
    with pytest.raises(ValueError, match=r"^references\[0\] \(vell-p1-q1\): 'answers' must be"):
        metric.compute(predictions=predictions, references=bad_answers)

    with pytest.raises(ValueError, match=r"^references: 1 reference ids occur twice: "):
        metric.compute(predictions=predictions + predictions[:1], references=references + references[:1])


def test_importing_hf_metric_does_not_import_evaluate():
    probe = (
        "import sys, qagate, qagate.scoring, qagate.scoring.hf_metric as m; "
        "print(sorted(n for n in ('evaluate', 'datasets') if n in sys.modules)); "
        "print(m.PATH)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    heavy, path = result.stdout.splitlines()
    assert heavy == "[]"
    assert path == hf_metric.PATH
