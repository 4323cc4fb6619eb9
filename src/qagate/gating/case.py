"""One gate case (a rule applied to one model), decided from what the session measured.

The session supplies evaluations, fresh latencies and stored baselines (:class:`CaseSource`);
this module gathers the evidence, applies the baseline-writing policy (create a missing one,
update or regenerate on request) and asks the one judge for the verdict.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qagate.gating.evidence import baseline_evidence, baseline_metrics, quality_evidence
from qagate.gating.gatefile import DatasetRequest, GateCase, GateFile
from qagate.gating.judge import Verdict, judge
from qagate.scoring.registry import METRICS

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset
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
    def teacher_name(self, folder: Path | None = None) -> str: ...
    def model(self, name: str, folder: Path | None = None) -> Any: ...
    def provenance(self, name: str, folder: Path, dataset: "Dataset", fingerprint: str) -> dict: ...
    def baseline_path(self, dataset: "Dataset", name: str) -> Path: ...
    def stored_baseline(self, path: Path) -> "Baseline | None": ...
    def write_baseline(self, path: Path, metrics: dict, provenance: dict, action: str) -> None: ...
    def baseline_action(self, path: Path) -> str | None: ...


@dataclass
class CaseOutcome:
    """A verdict plus what the report needs to explain it."""

    verdict: Verdict
    dataset: "Dataset"
    result: "EvalResult | None"
    teacher_result: "EvalResult | None" = None
    baseline_action: str | None = None  # "created" | "updated" | "regenerated"
    baseline_path: Path | None = None


@dataclass(frozen=True)
class BaselinePolicy:
    """What the run was told to do with baselines (``--qagate-update-baselines``, ``--regen-all``)."""

    update: bool = False
    regenerate_all: bool = False


def decide_case(
    source: CaseSource,
    gate: GateFile,
    case: GateCase,
    *,
    models: Path,
    policy: BaselinePolicy = BaselinePolicy(),
    nodeid: str = "",
) -> CaseOutcome:
    """Measure what ``case`` needs, judge it, and write baselines as the policy says."""
    folder = gate.models or models
    request = source.request(gate.dataset)
    rule = case.rule
    dataset = source.dataset(request)
    timing = METRICS[rule.metric].timing
    result = None if timing else source.evaluation(case.model, folder, request)
    latency = source.latency(case.model, folder, request) if timing else None
    if rule.reference == "baseline":
        assert result is not None  # rules.parse_rule refuses timing metrics against baselines
        return _baseline_case(source, case, folder, dataset, result, policy, nodeid)
    teacher_result = teacher_latency = None
    teacher = None
    if rule.reference == "teacher" or rule.metric == "speedup":
        teacher = source.teacher_name(folder)
        if timing:
            teacher_latency = source.latency(teacher, folder, request)
        else:
            teacher_result = source.evaluation(teacher, folder, request)
    evidence = quality_evidence(
        rule,
        case.model,
        result.metrics if result else None,
        result.scores if result else None,
        latency=latency,
        teacher_latency=teacher_latency,
        teacher_metrics=teacher_result.metrics if teacher_result else None,
        teacher_scores=teacher_result.scores if teacher_result else None,
        ids=[example.id for example in dataset.examples],
        teacher_name=teacher or "teacher",
    )
    return CaseOutcome(judge(rule, case.model, evidence), dataset, result, teacher_result)


def _baseline_case(
    source: CaseSource,
    case: GateCase,
    folder: Path,
    dataset: "Dataset",
    result: "EvalResult",
    policy: BaselinePolicy,
    nodeid: str,
) -> CaseOutcome:
    rule = case.rule
    path = source.baseline_path(dataset, case.model)
    fingerprint = str(source.model(case.model, folder).fingerprint())
    provenance = source.provenance(case.model, folder, dataset, fingerprint)
    numbers = baseline_metrics(result.metrics)
    if policy.regenerate_all and source.baseline_action(path) is None:
        source.write_baseline(path, numbers, provenance, "regenerated")
    stored = source.stored_baseline(path)  # as it was when the session first read it
    written = False
    if stored is None:
        if source.baseline_action(path) is None:
            source.write_baseline(path, numbers, provenance, "created")
        written = True
    command = (
        f"pytest {shlex.quote(nodeid)} --qagate-update-baselines"
        if nodeid
        else "pytest --qagate-update-baselines"
    )
    evidence = baseline_evidence(
        rule,
        result.metrics.get(rule.metric),
        stored,
        path=path,
        written=written,
        write_command=command,
        dataset_fingerprint=dataset.fingerprint,
        model_fingerprint=fingerprint,
    )
    verdict = judge(rule, case.model, evidence)
    action = source.baseline_action(path)
    if verdict.status == "fail" and policy.update and stored is not None:
        if action is None:
            source.write_baseline(path, numbers, provenance, "updated")
            action = "updated"
        if action == "updated":
            verdict = replace(
                verdict,
                notes=verdict.notes
                + (
                    f"updated baseline {path} with the obtained numbers (--qagate-update-baselines); "
                    f"run again to verify",
                ),
            )
    return CaseOutcome(verdict, dataset, result, baseline_action=action, baseline_path=path)
