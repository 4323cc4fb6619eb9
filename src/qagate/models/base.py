"""The small protocol every model adapter follows, and what it returns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import QAExample


@dataclass
class Predictions:
    """Answers of one model on a set of questions.

    ``answers`` maps question id -> answer text ("" means "no answer", as in SQuAD v2.0).
    ``confidence`` and ``seconds`` map question id -> a probability-like score and the wall
    time spent on that question (share of its batch); either may be empty for replayed files.
    """

    answers: dict[str, str]
    confidence: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    total_seconds: float | None = None

    def __len__(self) -> int:
        return len(self.answers)

    @property
    def seconds_per_question(self) -> float | None:
        if self.total_seconds is not None and self.answers:
            return self.total_seconds / len(self.answers)
        if self.seconds:
            return sum(self.seconds.values()) / len(self.seconds)
        return None

    def to_official_json(self) -> str:
        """The official SQuAD predictions format: one object, question id -> answer text."""
        return json.dumps(self.answers, ensure_ascii=False, indent=1, sort_keys=True) + "\n"

    def log_lines(self) -> list[str]:
        """One JSON object per question: id, answer, confidence, seconds."""
        return [
            json.dumps({"id": qid, "answer": text, "confidence": self.confidence.get(qid),
                        "seconds": self.seconds.get(qid)}, ensure_ascii=False)
            for qid, text in self.answers.items()
        ]


@runtime_checkable
class QAModel(Protocol):
    """What every adapter (extractive, replay, later generative/onnx) implements."""

    name: str

    def predict(self, examples: Sequence["QAExample"]) -> Predictions:
        ...

    def fingerprint(self) -> str:
        """A stable hash of what determines the outputs (weights, tokenizer, settings)."""
        ...

    def info(self) -> Mapping[str, object]:
        """Provenance and size: parameter count, size on disk, revision, engine settings."""
        ...
