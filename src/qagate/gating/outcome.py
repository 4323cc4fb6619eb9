"""What deciding a case reads and gives: :class:`CaseSource`, the session as the deciders see it
(its caches and baseline store), and :class:`CaseOutcome`, a verdict with what its report needs.
Its own module so that the deciders (:mod:`~qagate.gating.case`, :mod:`~qagate.gating.robustness`,
:mod:`~qagate.gating.slicing`) share them without importing one another back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qagate.gating.gatefile import DatasetRequest
from qagate.gating.judge import Verdict

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset
    from qagate.gating.rules import Rule
    from qagate.scoring.evaluation import EvalResult
    from qagate.store.baselines import Baseline


class CaseSource(Protocol):
    """What deciding a case needs from the session (its caches and its baseline store)."""

    def request(self, gate_request: DatasetRequest | None = None) -> DatasetRequest: ...
    def dataset(self, request: DatasetRequest | None = None) -> "Dataset": ...
    def evaluation(
        self, name: str, folder: Path | None = None, request: DatasetRequest | None = None
    ) -> "EvalResult": ...
    def latency(
        self, name: str, folder: Path | None = None, request: DatasetRequest | None = None
    ) -> Any: ...
    def paired_timing(
        self, name: str, folder: Path | None = None, request: DatasetRequest | None = None
    ) -> Any: ...
    def serving_latency(
        self, name: str, folder: Path | None = None, request: DatasetRequest | None = None
    ) -> Any: ...
    def teacher_name(self, folder: Path | None = None) -> str: ...
    def model(self, name: str, folder: Path | None = None) -> Any: ...
    def provenance(self, name: str, folder: Path, dataset: "Dataset", fingerprint: str) -> dict: ...
    def baseline_path(self, dataset: "Dataset", name: str) -> Path: ...
    def stored_baseline(self, path: Path) -> "Baseline | None": ...
    def write_baseline(
        self, path: Path, metrics: dict, provenance: dict, action: str, questions: Any = None
    ) -> None: ...
    def baseline_action(self, path: Path) -> str | None: ...
    def evaluation_on(
        self, name: str, folder: Path | None, request: DatasetRequest, ids: "Sequence[str]"
    ) -> "EvalResult": ...
    def sequential(
        self, name: str, folder: Path | None, request: DatasetRequest, rules: "Sequence[Rule]", spec: Any
    ) -> Any: ...


@dataclass
class CaseOutcome:
    """A verdict plus what the report needs to explain it."""

    verdict: Verdict
    dataset: "Dataset"
    result: "EvalResult | None"
    teacher_result: "EvalResult | None" = None
    baseline_action: str | None = None  # "created" | "updated" | "regenerated"
    baseline_path: Path | None = None
