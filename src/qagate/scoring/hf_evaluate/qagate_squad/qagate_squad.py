"""qagate's SQuAD EM/F1 (and bootstrap intervals) as a Hugging Face ``evaluate`` metric.

Load it offline from the installed package with ``qagate.scoring.hf_metric.load()`` or
``evaluate.load(qagate.scoring.hf_metric.PATH)``. The inputs are those of the hub's ``squad``
metric; the numbers come from ``qagate.scoring.squad.score`` and
``qagate.scoring.stats.score_intervals``, the very functions the release gate calls, so a
training loop's ``compute_metrics`` reports what the gate will judge. Nothing is copied here:
``evaluate`` copies this file into its modules cache, so it imports qagate as a library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import datasets
import evaluate

from qagate.core.errors import QagateError
from qagate.data.records import Dataset, QAExample
from qagate.scoring.squad import score
from qagate.scoring.stats import score_intervals

_DESCRIPTION = """\
SQuAD exact match and F1 exactly as the official v1.1 / v2.0 evaluation scripts define them,
computed by qagate (the numbers its release gate judges), with optional percentile bootstrap
confidence intervals from the same seeded bootstrap the gate uses.
"""

_CITATION = """\
@inproceedings{rajpurkar-etal-2016-squad,
    title = "{SQ}u{AD}: 100,000+ Questions for Machine Comprehension of Text",
    author = "Rajpurkar, Pranav and Zhang, Jian and Lopyrev, Konstantin and Liang, Percy",
    booktitle = "Proceedings of EMNLP 2016",
    year = "2016",
    pages = "2383--2392",
}
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: list of {"id": str, "prediction_text": str}; "" means "no answer" (v2.0).
        Extra keys such as "no_answer_probability" are accepted and ignored.
    references: list of {"id": str, "answers": {"text": [str, ...], "answer_start": [int, ...]}};
        empty "text" marks an unanswerable question (then SQuAD v2.0 rules apply).
    confidence: level of the bootstrap intervals (e.g. 0.95); None (default) computes none.
    n_resamples, seed: bootstrap settings; None uses qagate.scoring.stats' defaults (the gate's).
    version: "1.1" or "2.0" to force a rule set; None picks "2.0" when any question is
        unanswerable, as qagate's dataset loader does.
Returns:
    exact_match, f1: percentages (0..100), one value per reference question, missing
        predictions scoring 0 and predictions for unknown ids ignored, as in the gate.
    exact_match_ci, f1_ci: [low, high] in percent, only when confidence is given.
    v2.0 only: total and the HasAns_/NoAns_ breakdowns (exact, f1, total) of the official script.
Examples:
    >>> import qagate.scoring.hf_metric
    >>> metric = qagate.scoring.hf_metric.load()
    >>> metric.compute(predictions=[{"id": "q1", "prediction_text": "1976"}],
    ...                references=[{"id": "q1", "answers": {"text": ["1976"], "answer_start": [97]}}])
    {'exact_match': 100.0, 'f1': 100.0}
"""

_PREVIEW = 5  # how many offending ids an error message names


class MetricInputError(QagateError, ValueError):
    """Malformed predictions or references: a one-line qagate error that is also a ValueError,
    the type ``evaluate`` itself raises for bad inputs."""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class QagateSquad(evaluate.Metric):
    """SQuAD EM/F1 and intervals computed by ``qagate.scoring`` (see the module docstring)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": {
                        "id": datasets.Value("string"),
                        "prediction_text": datasets.Value("string"),
                    },
                    "references": {
                        "id": datasets.Value("string"),
                        "answers": datasets.Sequence(
                            {"text": datasets.Value("string"), "answer_start": datasets.Value("int32")}
                        ),
                    },
                }
            ),
            reference_urls=["https://rajpurkar.github.io/SQuAD-explorer/"],
        )

    def add_batch(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> None:
        """Validate (``datasets`` would store a missing id as None) and normalise, then add."""
        if predictions is not None:
            predictions = [_prediction(p, i) for i, p in enumerate(_rows(predictions, "predictions"))]
        if references is not None:
            references = [_reference(r, i) for i, r in enumerate(_rows(references, "references"))]
        super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction: Any = None, reference: Any = None, **kwargs: Any) -> None:
        """Validate and normalise one prediction/reference pair, then add it."""
        if prediction is not None:
            prediction = _prediction(prediction, 0)
        if reference is not None:
            reference = _reference(reference, 0)
        super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(
        self,
        predictions: Sequence[Mapping],
        references: Sequence[Mapping],
        confidence: float | None = None,
        n_resamples: int | None = None,
        seed: int | None = None,
        version: str | None = None,
    ) -> dict[str, Any]:
        dataset = _dataset(references, version)
        answers: dict[str, str] = {}
        conflicts = []
        for p in predictions:
            previous = answers.setdefault(p["id"], p["prediction_text"])
            if previous != p["prediction_text"]:
                conflicts.append(p["id"])
        if conflicts:
            raise MetricInputError(
                f"{len(conflicts)} prediction ids occur twice with different texts: {_preview(conflicts)}",
                item="predictions",
                hint="give each question one prediction",
            )
        scores = score(dataset, answers)
        out: dict[str, Any] = {"exact_match": scores.exact_match, "f1": scores.f1}
        if dataset.version == "2.0":
            official = scores.official()
            out.update((k, v) for k, v in official.items() if k not in ("exact", "f1"))
        if confidence is not None:
            settings = {k: v for k, v in (("n_resamples", n_resamples), ("seed", seed)) if v is not None}
            intervals = score_intervals(scores, level=confidence, **settings)
            out["exact_match_ci"] = [intervals["exact_match"].low, intervals["exact_match"].high]
            out["f1_ci"] = [intervals["f1"].low, intervals["f1"].high]
        return out


def _rows(column: Any, name: str) -> list:
    if isinstance(column, (str, bytes, Mapping)) or not hasattr(column, "__iter__"):
        raise MetricInputError(f"must be a list of dicts, got {type(column).__name__}", item=name)
    return list(column)


def _text(row: Mapping, key: str, where: str) -> str:
    if key not in row:
        raise MetricInputError(f"has no {key!r} (keys: {sorted(map(str, row))})", item=where)
    value = row[key]
    if not isinstance(value, str):
        raise MetricInputError(f"{key!r} is {type(value).__name__}, not str", item=where)
    return value


def _prediction(row: Any, index: int) -> dict:
    """``{"id", "prediction_text"}`` with string values; other keys are dropped."""
    where = f"predictions[{index}]"
    if not isinstance(row, Mapping):
        raise MetricInputError(
            f"is {type(row).__name__}, not a dict",
            item=where,
            hint='expected {"id": str, "prediction_text": str}',
        )
    return {"id": _text(row, "id", where), "prediction_text": _text(row, "prediction_text", where)}


def _reference(row: Any, index: int) -> dict:
    """``{"id", "answers": {"text": [...], "answer_start": [...]}}``; a list of
    ``{"text", "answer_start"}`` dicts is turned into that dict of lists."""
    where = f"references[{index}]"
    if not isinstance(row, Mapping):
        raise MetricInputError(
            f"is {type(row).__name__}, not a dict",
            item=where,
            hint='expected {"id": str, "answers": {"text": [...], "answer_start": [...]}}',
        )
    qid = _text(row, "id", where)
    if "answers" not in row:
        raise MetricInputError(f"has no 'answers' (keys: {sorted(map(str, row))})", item=where)
    answers = row["answers"]
    if isinstance(answers, Mapping):
        texts, starts = answers.get("text"), answers.get("answer_start")
    elif isinstance(answers, (list, tuple)) and all(isinstance(a, Mapping) for a in answers):
        texts = [a.get("text") for a in answers]
        starts = [a.get("answer_start") for a in answers]
    else:
        texts = starts = None
    if texts is None or starts is None or isinstance(texts, str) or isinstance(starts, (str, int)):
        raise MetricInputError(
            '\'answers\' must be {"text": [str, ...], "answer_start": [int, ...]}', item=f"{where} ({qid})"
        )
    texts, starts = list(texts), list(starts)
    if (
        len(texts) != len(starts)
        or not all(isinstance(t, str) for t in texts)
        or not all(isinstance(s, int) or hasattr(s, "__index__") for s in starts)
    ):
        raise MetricInputError("'answers' needs one str text per int answer_start", item=f"{where} ({qid})")
    starts = [int(s) for s in starts]
    return {"id": qid, "answers": {"text": texts, "answer_start": starts}}


def _dataset(references: Sequence[Mapping], version: str | None) -> Dataset:
    """The references as a qagate ``Dataset``, the object the gate scores."""
    if version not in (None, "1.1", "2.0"):
        raise MetricInputError(f"version must be '1.1', '2.0' or None, got {version!r}")
    if not references:
        raise MetricInputError("no references to score", hint="add_batch() before compute()")
    seen: set[str] = set()
    duplicates = []
    examples = []
    for ref in references:
        qid = ref["id"]
        if qid in seen:
            duplicates.append(qid)
        seen.add(qid)
        texts = tuple(ref["answers"]["text"])
        examples.append(
            QAExample(
                id=qid,
                title="",
                context="",
                question="",
                answers=texts,
                answer_starts=tuple(ref["answers"]["answer_start"]),
                is_impossible=not texts,
            )
        )
    if duplicates:
        raise MetricInputError(
            f"{len(duplicates)} reference ids occur twice: {_preview(duplicates)}",
            item="references",
            hint="each question once; drop the padding that distributed gathers add",
        )
    if version is None:
        version = "2.0" if any(ex.is_impossible for ex in examples) else "1.1"
    return Dataset(name="hf-evaluate", source="evaluate", examples=tuple(examples), version=version)


def _preview(ids: list[str]) -> str:
    return ", ".join(ids[:_PREVIEW]) + (", ..." if len(ids) > _PREVIEW else "")
