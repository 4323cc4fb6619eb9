"""What a model answered: the Predictions record shared by the engines, adapters and cache."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class Predictions:
    """Answers of one model on a set of questions.

    ``answers`` maps question id -> answer text ("" means "no answer", as in SQuAD v2.0).
    ``confidence`` and ``seconds`` map question id -> a probability-like score and the wall
    time spent on that question (share of its batch); either may be empty for replayed files.
    ``tokens`` maps question id -> tokens generated for it (generative models only; else empty).
    """

    answers: dict[str, str]
    confidence: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    total_seconds: float | None = None
    tokens: dict[str, int] = field(default_factory=dict)

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
        """One JSON object per question: id, answer, confidence, seconds (and tokens, when generated)."""
        lines = []
        for qid, text in self.answers.items():
            record: dict[str, object] = {
                "id": qid,
                "answer": text,
                "confidence": self.confidence.get(qid),
                "seconds": self.seconds.get(qid),
            }
            if self.tokens:
                record["tokens"] = self.tokens.get(qid)
            lines.append(json.dumps(record, ensure_ascii=False))
        return lines

    @property
    def tokens_per_second(self) -> float | None:
        """Generated tokens per second of wall time (None without token counts or timings)."""
        if not self.tokens or not self.total_seconds:
            return None
        return sum(self.tokens.values()) / self.total_seconds
