"""Predictions cached on disk, keyed by what determines them -- never by a model's name.

The key is a sha256 over the model's fingerprint (content hashes of its weights, config and
tokenizer files plus the engine settings that change outputs), the dataset's fingerprint and
the qagate version. Changed weights give a new key and are recomputed; unchanged ones are
loaded instead of run. Renaming a model, or moving its folder, keeps its cache.

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
from qagate.data.predictions import Predictions
from qagate.files import atomic_write_text

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

    def get(self, key: str) -> Predictions | None:
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
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
        data = {
            "format": FORMAT,
            "key": key,
            "provenance": provenance,
            "answers": predictions.answers,
            "confidence": predictions.confidence,
            "seconds": predictions.seconds,
            "total_seconds": predictions.total_seconds,
        }
        path = self.path(key)
        atomic_write_text(path, json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n")
        return path
