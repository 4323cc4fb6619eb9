"""What a session keeps of each gate item and each evaluated model, for the reports and the history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable

    from qagate.data import Dataset
    from qagate.scoring.evaluation import EvalResult
    from qagate.store.history import QuestionEntry
    from qagate.timing.paired import Timing


@dataclass
class Record:
    """One gate item's result for the terminal summary."""

    nodeid: str
    model: str
    rule: str  # the rule's id, e.g. exact_match>=0.95*teacher@95%
    metric: str
    op: str
    dataset: str
    status: str  # pass | fail | undecided | new | skipped | error
    obtained: float | None = None
    threshold: float | None = None
    interval: tuple[float, float, float] | None = None  # (low, high, level) of a confidence rule
    reason: str | None = None  # why it was skipped or not gated
    questions: tuple[int, int] | None = None  # a sequential rule: (questions used, available)
    looks: list | None = None  # ... and its interval at each look: [n, estimate, low, high]
    explain: dict | None = None  # how the verdict was reached (qagate.reports.explain.facts)

    def as_row(self) -> dict:
        """The JSON-ready row the run history stores."""
        row: dict = {
            "nodeid": self.nodeid,
            "model": self.model,
            "rule": self.rule,
            "metric": self.metric,
            "op": self.op,
            "dataset": self.dataset,
            "status": self.status,
            "obtained": self.obtained,
            "threshold": self.threshold,
        }
        if self.interval is not None:
            row.update(interval_low=self.interval[0], interval_high=self.interval[1], level=self.interval[2])
        if self.reason:
            row["reason"] = self.reason
        if self.questions is not None:
            row.update(questions_used=self.questions[0], questions_available=self.questions[1])
        if self.looks:
            row["looks"] = [list(look) for look in self.looks]
        if self.explain:
            row["explain"] = self.explain
        return row


class ModelRow(Protocol):
    """What the summary and the history read of an evaluated model (here or in an xdist worker)."""

    @property
    def model(self) -> str: ...

    @property
    def dataset(self) -> str: ...

    def metrics(self) -> dict[str, float]: ...


@dataclass(frozen=True)
class ReportedModel:
    """A model an xdist worker evaluated, as the controller receives it: names, metrics and its
    per-question results (:func:`encoded_questions`)."""

    model: str
    dataset: str
    values: dict[str, float]
    questions: dict | None = None

    def metrics(self) -> dict[str, float]:
        return dict(self.values)


@dataclass(frozen=True)
class EvaluatedModel:
    """One model evaluated on one dataset in this session, with the timings measured in it."""

    model: str
    dataset: str
    result: "EvalResult"
    latency: "Timing | None"
    speedup: float | None
    data: "Dataset | None" = None  # the questions it answered (slice tables of the history)
    teacher: str | None = None  # its teacher's name (None: it is the teacher, or there is none)

    def metrics(self) -> dict[str, float]:
        """The evaluation's metrics with this session's fresh timings (never cached ones)."""
        metrics = dict(self.result.metrics)
        if self.latency is not None:
            metrics["seconds_per_question"] = self.latency.seconds_per_question
            metrics["questions_per_second"] = self.latency.questions_per_second  # 1 / mean, as judged
        if self.speedup is not None:
            metrics["speedup"] = self.speedup
        return metrics


def encoded_questions(row: object) -> dict | None:
    """An evaluated model's per-question results as :mod:`qagate.store.questions` encodes them
    (with their ids and the dataset's fingerprint), or None when it has none: what a worker sends
    and the history keeps."""
    given = getattr(row, "questions", None)
    if isinstance(given, dict):
        return given
    scores = getattr(getattr(row, "result", None), "scores", None)
    if scores is None or not hasattr(scores, "per_question_f1"):
        return None
    from qagate.store.questions import QuestionScores

    data = getattr(row, "data", None)
    ids = [example.id for example in data.examples] if data is not None else None
    encoded = QuestionScores.from_scores(scores, ids).encode()
    encoded["fingerprint"] = getattr(data, "fingerprint", None)
    return encoded


def history_questions(rows: "Iterable[ModelRow]") -> list["QuestionEntry"]:
    """The per-question results of every evaluated model, for the run history."""
    from qagate.store.history import QuestionEntry
    from qagate.store.questions import QuestionScores

    out = []
    for row in rows:
        encoded = encoded_questions(row)
        if encoded is not None:
            scores = QuestionScores.decode(encoded)
            out.append(QuestionEntry(row.model, row.dataset, encoded.get("fingerprint"), scores))
    return out
