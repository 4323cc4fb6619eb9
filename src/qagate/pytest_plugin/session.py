"""What one pytest session knows: datasets, declared models, evaluations, timings, baselines.

Everything is computed on first use and kept for the session: a model that twenty rules mention
is built, evaluated (through the prediction cache, keyed by the weights) and timed once. Timings
are always measured in this session (never cached). Heavy modules load inside the methods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qagate.core.errors import QagateError
from qagate.gating.gatefile import DatasetRequest
from qagate.pytest_plugin.settings import Settings
from qagate.reports.outcomes import EvaluatedModel, ModelRow, Record
from qagate.store import baselines as store

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset
    from qagate.gating.judge import Verdict
    from qagate.gating.rules import Rule
    from qagate.gating.sequential import Decision
    from qagate.inference.config import ModelSpec
    from qagate.scoring.evaluation import EvalResult
    from qagate.timing.paired import PairedTiming, Timing, TimingPlan


@dataclass(frozen=True)
class SequentialRun:
    """One model's sequential rules judged on one dataset: the seeded question ``order``, how
    many of them the model answered (``used``) of ``available``, and each rule's decision."""

    order: list[str]
    used: int
    available: int
    seed: int
    decisions: dict[str, "Decision"]


def answers_by_chunk(spec: "ModelSpec") -> bool:
    """Whether ``spec``'s answers to a question do not depend on the other questions of its batch,
    so that a sequential run may answer chunk by chunk and give an unchunked run's answers.

    Replayed files and fp32 extractive models: measured equal on the sample in chunks of 7 and
    16. Dynamic int8 quantisation (PyTorch and ONNX Runtime) scales activations per batch: in
    chunks of 16, 10 of the sample's 65 answers of the int8 student changed. Half precision and
    generated text (left padding) are not measured. Those models answer every question once, in
    the engine's own batches, and sequential rules read their answers in the seeded order.
    """
    if spec.kind == "replay":
        return True
    return spec.kind == "extractive" and spec.quantize == "none" and spec.dtype in ("auto", "fp32")


class QagateSession:
    """Session-wide caches behind the fixtures and the gate items."""

    def __init__(
        self,
        settings: Settings,
        *,
        prepare_model: Callable[["ModelSpec"], Any] | None = None,
        on_timing: Callable[["Timing", dict], None] | None = None,
    ):
        self.settings = settings
        self._prepare_model = prepare_model
        self._on_timing = on_timing
        self._lock = threading.RLock()
        self._datasets: dict[tuple, "Dataset"] = {}
        self._specs: dict[Path, list["ModelSpec"]] = {}
        self._models: dict[tuple[Path, str], Any] = {}
        self._evals: dict[tuple, "EvalResult"] = {}
        self._sequential: dict[tuple, "SequentialRun"] = {}
        self._latency: dict[tuple, "Timing"] = {}
        self._paired: dict[tuple, "PairedTiming"] = {}
        self._serving: dict[tuple, "Timing"] = {}
        self._baseline_actions: dict[Path, str] = {}
        self._baselines: dict[Path, "store.Baseline | None"] = {}
        self._scorer: Any = None
        self.bertscore_models: set[tuple[Path, str]] = set()  # filled at collection
        self.family_size = 0  # confidence rules selected in this run (--qagate-family-alpha)
        self.records: dict[str, Record] = {}
        self.not_gated: dict[str, str] = {}  # nodeid -> why a gate item could not run
        self._worst_shown: set[tuple[str, str]] = set()
        self._source_errors: dict[tuple[Path, str], str] = {}

    # --- declarations and data --------------------------------------------------------------

    def specs(self, folder: Path | None = None) -> list["ModelSpec"]:
        folder = Path(folder or self.settings.models)
        with self._lock:
            if folder not in self._specs:
                from qagate.inference.config import load_model_specs

                if not folder.is_dir():
                    raise QagateError(
                        "models folder does not exist",
                        path=folder,
                        hint="set --qagate-models or the ini key qagate_models, "
                        "or 'models:' in the gate file",
                    )
                self._specs[folder] = list(load_model_specs(folder))
            return self._specs[folder]

    def roles(self, folder: Path | None = None) -> dict[str, str]:
        return {spec.name: spec.role for spec in self.specs(folder)}

    def spec(self, name: str, folder: Path | None = None) -> "ModelSpec":
        for spec in self.specs(folder):
            if spec.name == name:
                return spec
        names = ", ".join(s.name for s in self.specs(folder)) or "(none)"
        raise QagateError(
            f"no model named {name!r}; declared: {names}", path=Path(folder or self.settings.models)
        )

    def teacher_name(self, folder: Path | None = None) -> str:
        teachers = [s.name for s in self.specs(folder) if s.role == "teacher"]
        if len(teachers) != 1:
            raise QagateError(
                f"exactly one model needs 'role: teacher' (found: {', '.join(teachers) or 'none'})",
                path=Path(folder or self.settings.models),
            )
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
            gate_request.perturb,
            gate_request.perturb_seed,
        )

    def dataset(self, request: DatasetRequest | None = None) -> "Dataset":
        request = request or self.request()
        with self._lock:
            if request.key() not in self._datasets:
                from qagate.data import load_dataset

                dataset = load_dataset(
                    request.spec, limit=request.limit, seed=request.seed, articles=request.articles
                )
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
                from qagate.inference.registry import build_model, quiet_model_loading

                spec = self.spec(name, folder)
                if self._prepare_model is not None:
                    self._prepare_model(spec)
                quiet_model_loading()
                self._models[key] = build_model(spec, device=self.settings.device)
            return self._models[key]

    def evaluation(
        self,
        name: str,
        folder: Path | None = None,
        request: DatasetRequest | None = None,
        *,
        bertscore: bool | None = None,
    ) -> "EvalResult":
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

            result = evaluate(
                self.model(name, folder),
                self.dataset(request),
                cache_dir=self.settings.cache,
                bertscore=bertscore,
                scorer=self._bertscorer() if bertscore else None,
            )
            self._evals[key] = result
            return result

    def evaluation_on(
        self, name: str, folder: Path | None, request: DatasetRequest, ids: "Sequence[str]"
    ) -> "EvalResult":
        """``name`` scored on questions ``ids`` of the dataset (a sequential rule's questions):
        answers from the prediction cache by question id, computed only where missing."""
        from qagate.scoring.evaluation import evaluate_ids

        folder = Path(folder or self.settings.models)
        with self._lock:
            whole = None
            if not answers_by_chunk(self.spec(name, folder)):  # answers depend on the batch: one run
                whole = self.evaluation(name, folder, request).predictions
            return evaluate_ids(
                self.model(name, folder),
                self.dataset(request),
                list(ids),
                cache_dir=self.settings.cache,
                whole=whole,
            )

    def sequential(
        self, name: str, folder: Path | None, request: DatasetRequest, rules: "Sequence[Rule]", spec: Any
    ) -> "SequentialRun":
        """Judge ``rules`` (sequential, one schedule ``spec``) for ``name`` chunk by chunk in the
        seeded order, evaluating ``name`` (and the teacher, for teacher-relative rules) only on
        the questions needed; once per session per (model, dataset, schedule, rules)."""
        from qagate.gating.sequential import SequentialLoop, question_order

        folder = Path(folder or self.settings.models)
        seed = spec.seed if self.settings.order_seed is None else self.settings.order_seed
        key = (folder, name, request.key(), spec, seed, tuple(sorted(rule.id for rule in rules)))
        with self._lock:
            if key in self._sequential:
                return self._sequential[key]
            from qagate.gating.evidence import per_question
            from qagate.gating.judge import rule_values

            dataset = self.dataset(request)
            if spec.min_questions > len(dataset):
                raise QagateError(
                    f"sequential min_questions {spec.min_questions} is above the {len(dataset)} "
                    f"questions of {dataset.name}: lower it or use more data",
                    path=spec.where or None,
                )
            labels = None
            if getattr(spec, "cluster", "none") != "none":  # whole articles (paragraphs) in the order
                from qagate.gating.clusters import cluster_key, cluster_order

                keys = [cluster_key(example, spec.cluster) for example in dataset.examples]
                positions = cluster_order(keys, seed)
                labels = [keys[i] for i in positions]
            else:
                positions = question_order(len(dataset), seed)
            order = [dataset.examples[i].id for i in positions]
            teacher = self.teacher_name(folder) if any(r.reference == "teacher" for r in rules) else None
            loop = SequentialLoop(rules, spec, len(dataset), labels)
            for start, stop in loop.chunks():
                ids = order[start:stop]
                mine = self.evaluation_on(name, folder, request, ids).scores
                theirs = self.evaluation_on(teacher, folder, request, ids).scores if teacher else None
                values = {}
                for rule in loop.undecided():
                    reference = per_question(theirs, rule.metric, ids) if theirs is not None else None
                    values[rule.id] = rule_values(rule, per_question(mine, rule.metric, ids), reference)
                loop.update(stop, values)
            run = SequentialRun(order, loop.used, len(dataset), seed, loop.decisions())
            self._sequential[key] = run
            return run

    def _bertscorer(self) -> Any:
        """One BERTScore scorer for the whole session (loading its encoder is the slow part)."""
        if self._scorer is None:
            from qagate.scoring.bertscore import BertScorer

            device = self.settings.device
            self._scorer = BertScorer(
                model=self.settings.bertscore_model, device=device if device and device != "auto" else "cpu"
            )
        return self._scorer

    def _timing_examples(self, request: DatasetRequest) -> list:
        """The questions speed rules time: ``--qagate-timing-questions`` of them, drawn across
        the dataset's articles (seeded by ``--qagate-seed``, 0 by default, so every run and
        every --benchmark-compare times the same ones), not the first N of one article."""
        from qagate.timing.speed import spread_sample

        examples = self.dataset(request).examples
        return spread_sample(examples, self.settings.timing_questions, seed=self.settings.seed or 0)

    def _plan(self) -> "TimingPlan":
        from qagate.timing.paired import TimingPlan

        return TimingPlan(budget_seconds=self.settings.speed_budget, level=self.settings.confidence)

    def latency(
        self, name: str, folder: Path | None = None, request: DatasetRequest | None = None
    ) -> "Timing":
        """``name`` timed alone in this session (warm-up, adaptive rounds), recorded for
        pytest-benchmark; a model already timed against its teacher reuses those rounds."""
        folder = Path(folder or self.settings.models)
        request = request or self.request()
        with self._lock:
            key = (folder, name, request.key())
            if key not in self._latency:
                from qagate.timing.paired import measure_single

                timing = measure_single(
                    self.model(name, folder), self._timing_examples(request), plan=self._plan()
                )
                self._latency[key] = timing
                self._report_timing(timing, name, folder, request)
            return self._latency[key]

    def paired_timing(
        self, name: str, folder: Path | None = None, request: DatasetRequest | None = None
    ) -> "PairedTiming":
        """``name`` and its teacher timed in alternating rounds on the same questions."""
        folder = Path(folder or self.settings.models)
        request = request or self.request()
        teacher = self.teacher_name(folder)
        with self._lock:
            key = (folder, name, teacher, request.key())
            if key not in self._paired:
                from qagate.timing.paired import measure_paired

                paired = measure_paired(
                    self.model(teacher, folder),
                    self.model(name, folder),
                    self._timing_examples(request),
                    plan=self._plan(),
                )
                self._paired[key] = paired
                for timing, who in ((paired.reference, teacher), (paired.model, name)):
                    self._latency.setdefault((folder, who, request.key()), timing)
                    self._report_timing(
                        timing, who, folder, request, against=name if who == teacher else None
                    )
            return self._paired[key]

    def serving_latency(
        self, name: str, folder: Path | None = None, request: DatasetRequest | None = None
    ) -> "Timing":
        """Each question answered alone (batch size 1): latency_p50 / latency_p95's rounds."""
        folder = Path(folder or self.settings.models)
        request = request or self.request()
        with self._lock:
            key = (folder, name, request.key())
            if key not in self._serving:
                from qagate.timing.paired import per_question_latency

                timing = per_question_latency(self.model(name, folder), self._timing_examples(request))
                self._serving[key] = timing
                self._report_timing(timing, name, folder, request, kind="serving")
            return self._serving[key]

    def _report_timing(
        self,
        timing: "Timing",
        name: str,
        folder: Path,
        request: DatasetRequest,
        against: str | None = None,
        kind: str = "batched",
    ) -> None:
        if self._on_timing is not None:
            from qagate.timing.benchmark import extra_info

            cached = self._evals.get((folder, name, request.key()))
            metrics = cached.metrics if cached else {}
            info = extra_info(self.spec(name, folder), metrics, self.dataset(request).name, against)
            self._on_timing(timing, dict(info, kind=kind))

    # --- what happened to each gate item ----------------------------------------------------

    def record(self, nodeid: str, verdict: "Verdict", dataset: str) -> None:
        """Keep a verdict for the summary and the history."""
        rule = verdict.rule
        interval = None
        if verdict.interval is not None:
            interval = (verdict.interval.low, verdict.interval.high, verdict.interval.level)
        self.records[nodeid] = Record(
            nodeid,
            verdict.model,
            rule.id,
            rule.metric,
            rule.op,
            dataset,
            verdict.status,
            verdict.obtained,
            verdict.threshold,
            interval,
            questions=None
            if verdict.questions_used is None
            else (verdict.questions_used, verdict.questions_available or verdict.questions_used),
            looks=[list(look) for look in verdict.looks] or None,
        )

    def record_outcome(self, nodeid: str, model: str, rule: "Rule", status: str) -> None:
        """A skip or an error of a gate item (a verdict, if any, was recorded already)."""
        record = self.records.get(nodeid)
        if record is not None:
            if status == "skipped" and record.status == "undecided":
                record.status = "undecided (skipped)"
            return
        if status == "error" and nodeid in self.not_gated:
            status = "fail"  # --qagate-strict
        self.records[nodeid] = Record(
            nodeid, model, rule.id, rule.metric, rule.op, "-", status, reason=self.not_gated.get(nodeid)
        )

    def record_file_outcome(self, nodeid: str, status: str) -> None:
        """A whole gate file that could not even be collected (missing requirements)."""
        if status == "error" and nodeid in self.not_gated:
            status = "fail"  # --qagate-strict
        self.records[nodeid] = Record(
            nodeid, "-", "requires", "-", "", "-", status, reason=self.not_gated.get(nodeid)
        )

    def first_worst_questions(self, key: tuple[str, str]) -> bool:
        """True the first time a (model, dataset) asks to print its worst questions."""
        with self._lock:
            if key in self._worst_shown:
                return False
            self._worst_shown.add(key)
            return True

    def check_source(self, name: str, folder: Path) -> None:
        """Fail collection, once per declaration, when a model's local source does not exist."""
        from qagate.inference.config import missing_source

        key = (Path(folder), name)
        if key in self._source_errors:
            raise QagateError(
                f"model {name!r} cannot be built (see the first error above: {self._source_errors[key]})"
            )
        spec = self.spec(name, folder)
        message = missing_source(spec)
        if message:
            self._source_errors[key] = f"{spec.path}: {message}"
            raise QagateError(message, path=spec.path)

    # --- baselines: read once per session, written at most once per file ------------------------

    def baseline_path(self, dataset: "Dataset", name: str) -> Path:
        return store.baseline_path(self.settings.baselines, dataset.name, name)

    def stored_baseline(self, path: Path) -> "store.Baseline | None":
        """The baseline as it was when the session first read it (or as this run regenerated it):
        every rule of a model is judged against the same numbers, whatever this run rewrites."""
        with self._lock:
            if path not in self._baselines:
                self._baselines[path] = store.load_baseline(path)
            return self._baselines[path]

    def write_baseline(
        self, path: Path, metrics: dict, provenance: dict, action: str, questions: Any = None
    ) -> None:
        """Write a baseline (with the per-question ``questions`` its numbers come from) once."""
        with self._lock:
            store.write_baseline(path, metrics, provenance, questions)
            self._baseline_actions[path] = action

    def baseline_action(self, path: Path) -> str | None:
        return self._baseline_actions.get(path)

    def provenance(self, name: str, folder: Path, dataset: "Dataset", fingerprint: str) -> dict:
        spec = self.spec(name, folder)
        engine = {key: getattr(spec, key, None) for key in store.ENGINE_SETTINGS}
        return store.make_provenance(
            dataset_name=dataset.name,
            dataset_fingerprint=dataset.fingerprint,
            dataset_size=len(dataset),
            model_name=name,
            model_fingerprint=fingerprint,
            engine=engine,
        )

    @property
    def baseline_actions(self) -> dict[Path, str]:
        return dict(self._baseline_actions)

    def baseline_changes(self, show: Callable[[Path], str] = str) -> dict[str, list[str]]:
        """Baseline files this run wrote, by action (created, updated, regenerated)."""
        changes: dict[str, list[str]] = {}
        for path, action in sorted(self._baseline_actions.items()):
            changes.setdefault(action, []).append(show(path))
        return changes

    def evaluated(self) -> list["ModelRow"]:
        """Every (model, dataset) evaluated in this session, with what was timed in it."""
        rows: list["ModelRow"] = []
        for (folder, name, key), result in self._evals.items():
            latency = self._latency.get((folder, name, key))
            speedup = None
            teacher = None
            try:
                teacher = self.teacher_name(folder)
                t_latency = self._latency.get((folder, teacher, key))
                paired = self._paired.get((folder, name, teacher, key))
                if paired is not None:  # the speed-up a rule judged: this pairing's rounds, not another's
                    speedup = paired.speedup
                elif latency is not None and t_latency is not None and name != teacher:
                    from qagate.timing.speed import speedup as ratio_of_means

                    speedup = ratio_of_means(t_latency.rounds, latency.rounds)
            except QagateError:
                pass
            dataset = self._datasets.get(key)
            rows.append(
                EvaluatedModel(
                    name,
                    dataset.name if dataset else str(key[0]),
                    result,
                    latency,
                    speedup,
                    dataset,
                    teacher if teacher != name else None,
                )
            )
        return rows
