"""A "model" that replays a predictions file in the official SQuAD format.

Real systems' outputs (the shared leaderboard files, last release's predictions) become models
that gates can compare against without running a network. A replayed file has no speed and no
parameters: ``predict`` reports no timings and ``info`` no size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from qagate.data import load_predictions
from qagate.data.predictions import Predictions


class ReplayModel:
    """Answers read from a predictions file: ids the file lacks are answered "" (no answer)."""

    def __init__(self, name: str, path: str | Path) -> None:
        self.name = name
        self.path = Path(path)
        self._answers = load_predictions(self.path)
        self._fingerprint = hashlib.sha256(self.path.read_bytes()).hexdigest()

    @classmethod
    def from_spec(cls, spec, *, device: str | None = None) -> "ReplayModel":
        """``device`` is accepted for a uniform registry call and ignored: nothing runs."""
        return cls(spec.name, spec.source)

    def missing_ids(self, examples: Sequence) -> list[str]:
        """Ids of ``examples`` the file has no answer for (they are answered "")."""
        return [ex.id for ex in examples if ex.id not in self._answers]

    def predict(self, examples: Sequence) -> Predictions:
        return Predictions(answers={ex.id: self._answers.get(ex.id, "") for ex in examples})

    def fingerprint(self) -> str:
        return self._fingerprint

    def info(self) -> Mapping[str, object]:
        return {
            "kind": "replay",
            "source": str(self.path),
            "answers_in_file": len(self._answers),
            "sha256": self._fingerprint,
        }
