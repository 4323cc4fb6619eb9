"""Evaluate a model on a dataset: predictions (cached), official EM/F1, BERTScore, speed, size.

A timing is only ever reported as this run's when it was measured in this run: predictions
loaded from the cache carry no timings, so a cached result has no ``seconds_per_question`` or
``questions_per_second``. Speed rules never read these: they time rounds afresh
(:mod:`qagate.timing.paired`). Replayed prediction files have no speed and no size either.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qagate.core.clocklock import working
from qagate.inference.base import Predictions, QAModel
from qagate.store.cache import PredictionCache, cache_key

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset, QAExample
    from qagate.scoring.bertscore import BertScorer
    from qagate.scoring.squad import Scores


@dataclass
class EvalResult:
    """One model on one dataset. ``metrics``: exact_match and f1 (0-100, as the official
    script; on SQuAD v2.0 also HasAns_/NoAns_ exact and f1), parameter_count, size_on_disk_mb,
    bertscore_f1 (0-1, mean over questions) when asked, and seconds_per_question /
    questions_per_second only when the predictions were computed in this run (``from_cache``
    False)."""

    model: str
    dataset: str
    predictions: Predictions
    scores: "Scores"
    metrics: dict[str, float]
    from_cache: bool


@working()  # never while another process times a model (pytest-xdist workers)
def run_predict(
    model: QAModel, examples: Sequence["QAExample"], progress: Callable[[int], None] | None = None
) -> Predictions:
    """``model.predict``, passing a progress callback to adapters that take one."""
    if progress is not None and "progress" in inspect.signature(model.predict).parameters:
        predict: Any = model.predict  # adapters may take a progress callback (not required)
        return predict(examples, progress=progress)
    predictions = model.predict(examples)
    if progress is not None:
        progress(len(examples))
    return predictions


def predict_cached(
    model: QAModel,
    dataset: "Dataset",
    cache_dir: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[Predictions, bool]:
    """Predictions of ``model`` on ``dataset`` and whether they came from the cache."""
    if cache_dir is None:
        return run_predict(model, dataset.examples, progress), False
    ids = {ex.id for ex in dataset.examples}
    cache = PredictionCache(cache_dir)
    key = cache_key(model.fingerprint(), dataset.fingerprint)
    reused: list[bool] = []

    def compute() -> Predictions:
        """Run the questions no earlier (partial, sequential) run of this key answered."""
        known = cache.get_partial(key)
        if known is None or not ids & set(known.answers):
            return run_predict(model, dataset.examples, progress)
        reused.append(True)
        missing = [ex for ex in dataset.examples if ex.id not in known.answers]
        fresh = run_predict(model, missing, progress) if missing else Predictions(answers={})
        answers = {ex.id: known.answers[ex.id] for ex in dataset.examples if ex.id in known.answers}
        confidence = {qid: known.confidence[qid] for qid in answers if qid in known.confidence}
        answers.update(fresh.answers)
        confidence.update(fresh.confidence)
        return Predictions(answers=answers, confidence=confidence)  # no timing: not all measured now

    predictions, hit = cache.compute_once(
        key,
        compute,
        accept=lambda cached: set(cached.answers) == ids,
        model=model.name,
        dataset=dataset.name,
    )
    if hit or reused:  # the stored timings were measured by another run, perhaps on another machine
        return Predictions(answers=predictions.answers, confidence=predictions.confidence), True
    return predictions, False


def subset(dataset: "Dataset", ids: Sequence[str]) -> "Dataset":
    """``dataset``'s questions ``ids``, in that order, under the same name (a sequential run's
    chunk or prefix)."""
    from dataclasses import replace

    by_id = dataset.by_id()
    return replace(dataset, examples=tuple(by_id[qid] for qid in ids))


def predict_ids(
    model: QAModel, dataset: "Dataset", ids: Sequence[str], cache_dir: str | Path | None = None
) -> tuple[Predictions, bool]:
    """Predictions of ``model`` on questions ``ids`` of ``dataset`` (and whether all came from the
    cache). Answers are cached by question id under the key of the whole dataset (the model's and
    the dataset's fingerprints), beside a complete run's entry: a later chunk, run or complete
    evaluation reuses every answer already computed."""
    if cache_dir is None:
        return run_predict(model, subset(dataset, ids).examples), False
    cache = PredictionCache(cache_dir)
    key = cache_key(model.fingerprint(), dataset.fingerprint)
    known = cache.get_partial(key) or Predictions(answers={}, confidence={})
    missing = [qid for qid in ids if qid not in known.answers]
    if missing:
        fresh = run_predict(model, subset(dataset, missing).examples)
        cache.add_partial(key, fresh, model=model.name, dataset=dataset.name)
        known.answers.update(fresh.answers)
        known.confidence.update(fresh.confidence)
    answers = {qid: known.answers[qid] for qid in ids}
    confidence = {qid: known.confidence[qid] for qid in ids if qid in known.confidence}
    return Predictions(answers=answers, confidence=confidence), not missing


def evaluate_ids(
    model: QAModel,
    dataset: "Dataset",
    ids: Sequence[str],
    *,
    cache_dir: str | Path | None = None,
    whole: Predictions | None = None,
) -> EvalResult:
    """``model`` scored on questions ``ids`` of ``dataset`` (answers through :func:`predict_ids`,
    or read from ``whole``, a complete run's predictions): EM and F1 of those questions, no
    timings (a chunk's are not the model's speed)."""
    from qagate.scoring.squad import score

    part = subset(dataset, ids)
    if whole is not None:
        answers = {qid: whole.answers[qid] for qid in ids if qid in whole.answers}
        confidence = {qid: whole.confidence[qid] for qid in answers if qid in whole.confidence}
        predictions, from_cache = Predictions(answers=answers, confidence=confidence), True
    else:
        predictions, from_cache = predict_ids(model, dataset, ids, cache_dir)
    scores = score(part, predictions.answers)
    metrics: dict[str, float] = {"exact_match": scores.exact_match, "f1": scores.f1}
    metrics.update(squad_v2_metrics(scores))
    return EvalResult(model.name, dataset.name, predictions, scores, metrics, from_cache)


@working()
def bertscore_f1(
    examples: Sequence["QAExample"], answers: dict[str, str], scorer: "BertScorer | None" = None
) -> float:
    """Mean BERTScore F1 (0-1) of the answers against each question's references."""
    from qagate.scoring.bertscore import BertScorer

    scorer = scorer or BertScorer()
    values = scorer.score([answers.get(ex.id, "") for ex in examples], [ex.answers for ex in examples])
    return sum(values) / len(values) if values else 0.0


def squad_v2_metrics(scores: "Scores") -> dict[str, float]:
    """``HasAns_exact``/``HasAns_f1``/``NoAns_exact``/``NoAns_f1`` of a SQuAD v2.0 scoring
    (none for v1.1, nor for a group without questions)."""
    metrics: dict[str, float] = {}
    for prefix, group in (("HasAns", scores.has_ans), ("NoAns", scores.no_ans)):
        if group is not None:
            metrics[f"{prefix}_exact"] = group["exact_match"]
            metrics[f"{prefix}_f1"] = group["f1"]
    return metrics


def evaluate(
    model: QAModel,
    dataset: "Dataset",
    *,
    cache_dir: str | Path | None = None,
    bertscore: bool = False,
    scorer: "BertScorer | None" = None,
    progress: Callable[[int], None] | None = None,
) -> EvalResult:
    """Run (or load from ``cache_dir``) ``model``'s predictions on ``dataset`` and score them."""
    from qagate.scoring.squad import score

    predictions, from_cache = predict_cached(model, dataset, cache_dir, progress)
    scores = score(dataset, predictions.answers)
    metrics: dict[str, float] = {"exact_match": scores.exact_match, "f1": scores.f1}
    metrics.update(squad_v2_metrics(scores))
    per_question = predictions.seconds_per_question
    if not from_cache and predictions.total_seconds is not None and per_question:
        metrics["seconds_per_question"] = per_question
        metrics["questions_per_second"] = 1.0 / per_question
        if predictions.tokens_per_second is not None:  # generative models: tokens generated
            metrics["tokens_per_second"] = predictions.tokens_per_second
    info = model.info()
    for key in ("parameter_count", "size_on_disk_mb"):
        value = info.get(key)
        if isinstance(value, (int, float)):
            metrics[key] = value
    if bertscore:
        metrics["bertscore_f1"] = bertscore_f1(dataset.examples, predictions.answers, scorer)
    return EvalResult(
        model=model.name,
        dataset=dataset.name,
        predictions=predictions,
        scores=scores,
        metrics=metrics,
        from_cache=from_cache,
    )
