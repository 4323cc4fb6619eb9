"""Predictions cached on disk, keyed by what determines them -- never by a model's name.

The key is a sha256 over the model's fingerprint (content hashes of its weights, config and
tokenizer files plus the engine settings that change outputs), the dataset's fingerprint and
the qagate version. Changed weights give a new key and are recomputed; unchanged ones are
loaded instead of run. Renaming a model, or moving its folder, keeps its cache.

Beside a complete run's entry, a key may hold a partial one (``partial-<key>.json``): the answers
a sequential run needed, by question id, merged chunk by chunk. A later chunk, a later run, or a
complete evaluation of the same model on the same dataset reuses them and computes only the
questions no run has answered (:func:`qagate.scoring.evaluation.predict_ids`).

Safe under concurrent writers (pytest-xdist workers, parallel CI jobs): entries are written
atomically, and :meth:`PredictionCache.compute_once` holds a lock per key, so two processes that
want the same predictions compute them once (the second waits, then reads).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from qagate import __version__
from qagate.core.files import atomic_write_text
from qagate.data.predictions import Predictions

FORMAT = 1


def cache_key(model_fingerprint: str, dataset_fingerprint: str) -> str:
    payload = {
        "model": model_fingerprint,
        "dataset": dataset_fingerprint,
        "qagate": __version__,
        "format": FORMAT,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class PredictionCache:
    """One JSON file per key in ``folder``; unreadable entries count as misses."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"predictions-{key}.json"

    def lock_path(self, key: str) -> Path:
        """The key's lock file, kept apart so the cache folder lists only predictions."""
        return self.folder / ".locks" / f"predictions-{key}.lock"

    def compute_once(
        self,
        key: str,
        compute: Callable[[], Predictions],
        accept: Callable[[Predictions], bool] = lambda _: True,
        **provenance: object,
    ) -> tuple[Predictions, bool]:
        """The stored predictions (and True) if ``accept`` takes them, else ``compute()``'d,
        stored and returned with False. Under the key's lock: whoever comes second reads."""
        cached = self.get(key)
        if cached is not None and accept(cached):
            return cached, True
        from filelock import FileLock

        self.lock_path(key).parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.lock_path(key))):
            cached = self.get(key)  # another process may have written it while we waited
            if cached is not None and accept(cached):
                return cached, True
            predictions = compute()
            self.put(key, predictions, **provenance)
            return predictions, False

    def partial_path(self, key: str) -> Path:
        """Answers computed so far for the key, by question id (a sequential run that stopped)."""
        return self.folder / f"partial-{key}.json"

    def get_partial(self, key: str) -> Predictions | None:
        """Every answer known for the key: the complete entry's, merged with the partial one's."""
        found = [p for p in (self._read(self.path(key)), self._read(self.partial_path(key))) if p is not None]
        if not found:
            return None
        merged = Predictions(answers={}, confidence={})
        for predictions in reversed(found):  # the complete entry wins
            merged.answers.update(predictions.answers)
            merged.confidence.update(predictions.confidence)
        return merged

    def add_partial(self, key: str, predictions: Predictions, **provenance: object) -> Path:
        """Merge ``predictions`` (some questions' answers) into the key's partial entry, under the
        key's lock, written atomically: an interrupted run leaves the previous entry whole."""
        from filelock import FileLock

        self.lock_path(key).parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.lock_path(key))):
            known = self._read(self.partial_path(key)) or Predictions(answers={}, confidence={})
            known.answers.update(predictions.answers)
            known.confidence.update(predictions.confidence)
            return self._write(
                self.partial_path(key), key, Predictions(known.answers, known.confidence), provenance
            )

    def get(self, key: str) -> Predictions | None:
        return self._read(self.path(key))

    def _read(self, path: Path) -> Predictions | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                return None
            return Predictions(
                answers=dict(data["answers"]),
                confidence=dict(data["confidence"]),
                seconds=dict(data["seconds"]),
                total_seconds=data["total_seconds"],
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def put(self, key: str, predictions: Predictions, **provenance: object) -> Path:
        """Store ``predictions``; ``provenance`` (model name, dataset name) is informational."""
        return self._write(self.path(key), key, predictions, provenance)

    def _write(self, path: Path, key: str, predictions: Predictions, provenance: dict) -> Path:
        data = {
            "format": FORMAT,
            "key": key,
            "provenance": provenance,
            "answers": predictions.answers,
            "confidence": predictions.confidence,
            "seconds": predictions.seconds,
            "total_seconds": predictions.total_seconds,
        }
        atomic_write_text(path, json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n")
        return path
