"""What one pytest session knows: datasets, declared models, evaluations, latencies, baselines.

Everything is computed on first use and kept for the session, so a model that twenty rules
mention is built, evaluated (through the prediction cache, keyed by the weights) and timed once.
Latency is always measured fresh in this session, never read from a cache: timings do not carry
across runs or machines, so speed is gated as a ratio against the teacher timed in the same run.

Heavy modules (torch via the model registry, numpy via the statistics) are imported inside the
methods that need them; importing this module is cheap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from qagate.store import baselines as store
from qagate.errors import QagateError
from qagate.gating.gatefile import DatasetRequest, GateCase, GateFile
from qagate.gating.judge import Verdict, check, rule_interval
from qagate.scoring.registry import METRICS
from qagate.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset
    from qagate.scoring.evaluation import EvalResult
    from qagate.inference.config import ModelSpec
    from qagate.timing.latency import Latency


@dataclass
class CaseOutcome:
    """A verdict plus what the report needs to explain it."""

    verdict: Verdict
    dataset: "Dataset"
    result: "EvalResult | None"
    teacher_result: "EvalResult | None" = None
    baseline_action: str | None = None    # "created" | "updated" | "regenerated"
    baseline_path: Path | None = None


@dataclass
class Record:
    """One gate item's result for the terminal summary."""

    nodeid: str
    model: str
    rule: str                  # the rule's id, e.g. exact_match>=0.95*teacher@95%
    metric: str
    op: str
    dataset: str
    status: str                # pass | fail | undecided | skipped | error
    obtained: float | None = None
    threshold: float | None = None


class QagateSession:
    """Session-wide caches behind the fixtures and the gate items."""

    def __init__(self, settings: Settings, *, prepare_model: Callable[["ModelSpec"], Any] | None = None):
        self.settings = settings
        self._prepare_model = prepare_model
        self._lock = threading.RLock()
        self._datasets: dict[tuple, "Dataset"] = {}
        self._specs: dict[Path, list["ModelSpec"]] = {}
        self._models: dict[tuple[Path, str], Any] = {}
        self._evals: dict[tuple, "EvalResult"] = {}
        self._latency: dict[tuple, "Latency"] = {}
        self._baseline_actions: dict[Path, str] = {}
        self._baselines: dict[Path, "store.Baseline | None"] = {}
        self._scorer: Any = None
        self.bertscore_models: set[tuple[Path, str]] = set()   # filled at collection
        self.records: dict[str, Record] = {}

    # --- declarations and data --------------------------------------------------------------

    def specs(self, folder: Path | None = None) -> list["ModelSpec"]:
        folder = Path(folder or self.settings.models)
        with self._lock:
            if folder not in self._specs:
                from qagate.inference.config import load_model_specs

                if not folder.is_dir():
                    raise QagateError("models folder does not exist", path=folder,
                                      hint="set --qagate-models or the ini key qagate_models, "
                                           "or 'models:' in the gate file")
                self._specs[folder] = list(load_model_specs(folder))
            return self._specs[folder]

    def roles(self, folder: Path | None = None) -> dict[str, str]:
        return {spec.name: spec.role for spec in self.specs(folder)}

    def spec(self, name: str, folder: Path | None = None) -> "ModelSpec":
        for spec in self.specs(folder):
            if spec.name == name:
                return spec
        names = ", ".join(s.name for s in self.specs(folder)) or "(none)"
        raise QagateError(f"no model named {name!r}; declared: {names}",
                          path=Path(folder or self.settings.models))

    def teacher_name(self, folder: Path | None = None) -> str:
        teachers = [s.name for s in self.specs(folder) if s.role == "teacher"]
        if len(teachers) != 1:
            raise QagateError(f"exactly one model needs 'role: teacher' (found: "
                              f"{', '.join(teachers) or 'none'})",
                              path=Path(folder or self.settings.models))
        return teachers[0]

    def request(self, gate_request: DatasetRequest | None = None) -> DatasetRequest:
        """The gate file's dataset, with the session's subset options where it names none."""
        s = self.settings
        if gate_request is None:
            return DatasetRequest(s.dataset, s.limit, s.seed, s.articles)
        return DatasetRequest(
            gate_request.spec,
            gate_request.limit if gate_request.limit is not None else s.limit,
            gate_request.seed if gate_request.seed is not None else s.seed,
            gate_request.articles if gate_request.articles is not None else s.articles,
            gate_request.perturb, gate_request.perturb_seed)

    def dataset(self, request: DatasetRequest | None = None) -> "Dataset":
        request = request or self.request()
        with self._lock:
            if request.key() not in self._datasets:
                from qagate.data import load_dataset

                dataset = load_dataset(request.spec, limit=request.limit, seed=request.seed,
                                       articles=request.articles)
                if request.perturb:
                    from qagate.data.perturb import perturb_dataset

                    dataset = perturb_dataset(dataset, request.perturb, request.perturb_seed)
                self._datasets[request.key()] = dataset
            return self._datasets[request.key()]

    # --- models, evaluations, latencies -------------------------------------------------------

    def model(self, name: str, folder: Path | None = None) -> Any:
        folder = Path(folder or self.settings.models)
        with self._lock:
            key = (folder, name)
            if key not in self._models:
                from qagate.inference.registry import build_model

                spec = self.spec(name, folder)
                if self._prepare_model is not None:
                    self._prepare_model(spec)
                self._models[key] = build_model(spec, device=self.settings.device)
            return self._models[key]

    def evaluation(self, name: str, folder: Path | None = None,
                   request: DatasetRequest | None = None, *, bertscore: bool | None = None) -> "EvalResult":
        """Evaluate once per session per (model, dataset); predictions come from the disk cache
        when the weights, tokenizer, dataset and engine settings are unchanged."""
        folder = Path(folder or self.settings.models)
        request = request or self.request()
        if bertscore is None:
            bertscore = (folder, name) in self.bertscore_models
        with self._lock:
            key = (folder, name, request.key())
            cached = self._evals.get(key)
            if cached is not None and (not bertscore or "bertscore_f1" in cached.metrics):
                return cached
            from qagate.scoring.evaluation import evaluate

            result = evaluate(self.model(name, folder), self.dataset(request),
                              cache_dir=self.settings.cache, bertscore=bertscore,
                              scorer=self._bertscorer() if bertscore else None)
            self._evals[key] = result
            return result

    def _bertscorer(self) -> Any:
        """One BERTScore scorer for the whole session (loading its encoder is the slow part)."""
        if self._scorer is None:
            from qagate.scoring.bertscore import BertScorer

            device = self.settings.device
            self._scorer = BertScorer(model=self.settings.bertscore_model,
                                      device=device if device and device != "auto" else "cpu")
        return self._scorer

    def latency(self, name: str, folder: Path | None = None,
                request: DatasetRequest | None = None) -> "Latency":
        """Fresh per-question latency on the first ``latency_questions`` questions."""
        folder = Path(folder or self.settings.models)
        request = request or self.request()
        with self._lock:
            key = (folder, name, request.key())
            if key not in self._latency:
                from qagate.timing.latency import measure_latency

                examples = list(self.dataset(request).examples[: self.settings.latency_questions])
                self._latency[key] = measure_latency(self.model(name, folder), examples)
            return self._latency[key]

    def metric(self, metric: str, name: str, folder: Path | None = None,
               request: DatasetRequest | None = None) -> float | None:
        """One metric of one model: quality from the evaluation, timings measured fresh."""
        if metric == "speedup":
            teacher = self.latency(self.teacher_name(folder), folder, request)
            mine = self.latency(name, folder, request)
            return teacher.seconds_per_question / mine.seconds_per_question
        if metric == "seconds_per_question":
            return self.latency(name, folder, request).seconds_per_question
        if metric == "questions_per_second":
            return 1.0 / self.latency(name, folder, request).seconds_per_question
        value = self.evaluation(name, folder, request).metrics.get(metric)
        return None if value is None else float(value)

    # --- one gate case -------------------------------------------------------------------------

    def run_case(self, gate: GateFile, case: GateCase) -> CaseOutcome:
        folder = gate.models or self.settings.models
        request = self.request(gate.dataset)
        rule = case.rule
        dataset = self.dataset(request)
        needs_eval = not METRICS[rule.metric].timing
        result = self.evaluation(case.model, folder, request) if needs_eval else None
        obtained = self.metric(rule.metric, case.model, folder, request)
        if rule.reference == "baseline":
            return self._baseline_case(case, folder, request, dataset, result, obtained)
        teacher_result = None
        reference_value = None
        if rule.reference == "teacher":
            teacher = self.teacher_name(folder)
            reference_value = self.metric(rule.metric, teacher, folder, request)
            if needs_eval:
                teacher_result = self.evaluation(teacher, folder, request)
        interval = None
        if rule.confidence is not None and result is not None:
            interval = rule_interval(rule, _per_question(result, rule.metric, dataset),
                                     _per_question(teacher_result, rule.metric, dataset)
                                     if teacher_result is not None else None)
        verdict = check(rule, case.model, obtained, reference_value=reference_value,
                        interval=interval)
        return CaseOutcome(verdict, dataset, result, teacher_result)

    def _baseline_case(self, case: GateCase, folder: Path, request: DatasetRequest,
                       dataset: "Dataset", result: "EvalResult", obtained: float | None) -> CaseOutcome:
        s = self.settings
        path = store.baseline_path(s.baselines, dataset.name, case.model)
        model = self.model(case.model, folder)
        fingerprint = str(model.fingerprint())
        provenance = self._provenance(case.model, folder, dataset, fingerprint)
        rule = case.rule
        with self._lock:
            if path not in self._baselines:
                # Read once per session: every rule of this model is judged against the
                # baseline as it was when the session started, whatever this session rewrites.
                if s.regen_all:
                    store.write_baseline(path, result.metrics, provenance)
                    self._baseline_actions[path] = "regenerated"
                self._baselines[path] = store.load_baseline(path)
            stored = self._baselines[path]
            if stored is None:
                if path not in self._baseline_actions:
                    store.write_baseline(path, result.metrics, provenance)
                    self._baseline_actions[path] = "created"
                verdict = Verdict("fail", case.model, rule, obtained, None, None, notes=(
                    f"created baseline {path}; run again to compare against it (commit it to "
                    f"make it the reference)",))
                return CaseOutcome(verdict, dataset, result, baseline_action="created",
                                   baseline_path=path)
            blocking, info = store.provenance_notes(stored, dataset_fingerprint=dataset.fingerprint,
                                                    model_fingerprint=fingerprint)
            reference_value = stored.metrics.get(rule.metric)
            if reference_value is None:
                blocking.append(f"baseline {path} has no {rule.metric}; accept the current "
                                f"numbers with --qagate-update-baselines")
            verdict = check(rule, case.model, obtained, reference_value=reference_value,
                            notes=blocking + info)
            if blocking:
                verdict = _failed(verdict, None)
            action = self._baseline_actions.get(path)
            if not verdict.passed and s.update_baselines:
                if action is None:
                    store.write_baseline(path, result.metrics, provenance)
                    self._baseline_actions[path] = action = "updated"
                if action == "updated":
                    verdict = _failed(verdict, f"updated baseline {path} with the obtained "
                                               f"numbers (--qagate-update-baselines); run again "
                                               f"to verify")
            return CaseOutcome(verdict, dataset, result, baseline_action=action,
                               baseline_path=path)

    def _provenance(self, name: str, folder: Path, dataset: "Dataset", fingerprint: str) -> dict:
        spec = self.spec(name, folder)
        engine = {key: getattr(spec, key, None) for key in store.ENGINE_SETTINGS}
        return store.make_provenance(dataset_name=dataset.name,
                                     dataset_fingerprint=dataset.fingerprint,
                                     dataset_size=len(dataset), model_name=name,
                                     model_fingerprint=fingerprint, engine=engine)

    @property
    def baseline_actions(self) -> dict[Path, str]:
        return dict(self._baseline_actions)

    def evaluated(self) -> list[tuple[str, str, "EvalResult", "Latency | None", float | None]]:
        """(model, dataset name, result, fresh latency, speed-up) for everything evaluated."""
        rows = []
        for (folder, name, key), result in self._evals.items():
            latency = self._latency.get((folder, name, key))
            speedup = None
            try:
                teacher = self.teacher_name(folder)
                t_latency = self._latency.get((folder, teacher, key))
                if latency is not None and t_latency is not None and name != teacher:
                    speedup = t_latency.seconds_per_question / latency.seconds_per_question
            except QagateError:
                pass
            dataset = self._datasets.get(key)
            rows.append((name, dataset.name if dataset else str(key[0]), result, latency, speedup))
        return rows


def _per_question(result: "EvalResult", metric: str, dataset: "Dataset") -> list[float]:
    """Per-question scores in the metric's units (percent), in dataset order."""
    table = result.scores.per_question_em if metric == "exact_match" else result.scores.per_question_f1
    return [100.0 * float(table.get(example.id, 0.0)) for example in dataset.examples]


def _failed(verdict: Verdict, note: str | None) -> Verdict:
    notes = verdict.notes + ((note,) if note else ())
    return replace(verdict, status="fail", notes=notes)

