"""The small protocol every model adapter follows (answers come back as ``Predictions``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from qagate.data.predictions import Predictions

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data.records import QAExample

__all__ = ["Predictions", "QAModel"]


@runtime_checkable
class QAModel(Protocol):
    """What every adapter (extractive, replay, later generative/onnx) implements."""

    name: str

    def predict(self, examples: Sequence["QAExample"]) -> Predictions: ...

    def fingerprint(self) -> str:
        """A stable hash of what determines the outputs (weights, tokenizer, settings)."""
        ...

    def info(self) -> Mapping[str, object]:
        """Provenance and size: parameter count, size on disk, revision, engine settings."""
        ...
