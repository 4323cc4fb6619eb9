"""Gate files as pytest items: one collector per ``gate_*.yaml``, one item per (model, rule).

An item asks :mod:`qagate.gating.case` for its verdict, records it for the summary and the
history, and turns it into a pytest outcome: pass, fail (the report as the message), skip, or
NEW (a baseline written by this run: passes, fails under ``--qagate-strict``). A gate that
cannot run for missing data is never green: it is skipped with the gate file's location, the
run is recorded as incomplete, and ``--qagate-strict`` fails it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from qagate.core.errors import QagateError
from qagate.scoring.registry import METRICS

if TYPE_CHECKING:  # pragma: no cover
    from qagate.gating.gatefile import GateCase, GateFile
    from qagate.gating.outcome import CaseOutcome
    from qagate.pytest_plugin.session import QagateSession
    from qagate.timing.compare import ComparedRun

GATE_FILE_PREFIX = "gate_"
GATE_FILE_SUFFIXES = (".yaml", ".yml")
SESSION_KEY = pytest.StashKey["QagateSession"]()
COMPARED_KEY = pytest.StashKey["ComparedRun"]()


class QagateWarning(UserWarning):
    """Something about the run that a user should know but that does not fail it."""


def session_of(config: pytest.Config) -> "QagateSession":
    return config.stash[SESSION_KEY]


def compared_run_of(config: pytest.Config) -> "ComparedRun":
    """The ``--benchmark-compare`` run, loaded once per session."""
    found = config.stash.get(COMPARED_KEY, None)
    if found is None:
        from qagate.timing.compare import compared_run

        found = compared_run(config, any_machine=session_of(config).settings.compare_any_machine)
        config.stash[COMPARED_KEY] = found
    return found


def is_gate_file(path: Path) -> bool:
    return path.suffix in GATE_FILE_SUFFIXES and path.name.startswith(GATE_FILE_PREFIX)


def unreadable_gate_files(folder: pytest.Directory) -> list["GateFileCollector"]:
    """Collectors for the ``gate_*.yaml`` entries of a folder that pytest passes over because they
    are neither a file nor a folder (a dangling or looping symbolic link): collecting them fails
    with the reason, so a gate that cannot be read is never green. (A folder named like a gate
    file reaches :class:`GateFileCollector` through ``pytest_collect_directory``.)"""
    from qagate.core.files import file_problem

    try:
        entries = sorted(os.scandir(folder.path), key=lambda entry: entry.name)
    except OSError:
        return []
    found = []
    for entry in entries:
        path = Path(entry.path)
        if not is_gate_file(path):
            continue
        try:
            seen_by_pytest = entry.is_file() or entry.is_dir()
        except OSError:
            seen_by_pytest = False
        if seen_by_pytest or file_problem(path) is None:
            continue
        if folder.ihook.pytest_ignore_collect(collection_path=path, config=folder.config):
            continue
        found.append(GateFileCollector.from_parent(folder, path=path))
    return found


class GateFileCollector(pytest.File):
    """A ``gate_*.yaml`` file: one child per model, one test per (rule, model)."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        from qagate.gating.gatefile import load_gate_file, resolve_cases

        session = session_of(self.config)
        gate = load_gate_file(self.path, default_level=session.settings.confidence)
        for mark in gate.marks:  # the file's 'marks:' reach every item below it, so -m selects
            self.add_marker(mark)
        folder = gate.models or session.settings.models
        missing = gate.missing_requirements()
        try:
            cases = resolve_cases(
                gate,
                session.roles(folder),
                models_source=relative(folder, self.config),
                slice_values=_slice_values(session, gate),
            )
        except QagateError:
            if not missing:
                raise
            yield GateSkipped.from_parent(
                self, name="requires", gate=gate, reason=missing_reason(gate, missing)
            )
            return
        # A conftest that implements pytest_qagate_prepare_model may build the files at run time.
        if not missing and not self.config.hook.pytest_qagate_prepare_model.get_hookimpls():
            for name in dict.fromkeys(case.model for case in cases):
                session.check_source(name, folder)
        if gate.dataset is not None and session.settings.dataset_from_command_line:
            spec = gate.dataset.spec
            shown = spec if spec == "sample" or spec.startswith("hf:") else relative(Path(spec), self.config)
            warnings.warn(
                QagateWarning(
                    f"{relative(self.path, self.config)} names its own dataset ({shown}); "
                    f"--qagate-dataset does not apply to it"
                ),
                stacklevel=1,
            )
        by_model: dict[str, list["GateCase"]] = {}
        for case in cases:
            by_model.setdefault(case.model, []).append(case)
        for model, model_cases in by_model.items():
            yield GateModel.from_parent(self, name=model, gate=gate, cases=model_cases)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> Any:
        if excinfo.errisinstance(QagateError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


def _shows_flips(outcome: "CaseOutcome") -> bool:
    """A failed (or undecided) exact_match/f1 rule against the teacher shows its flips."""
    rule = outcome.verdict.rule
    return (
        rule.reference == "teacher"
        and rule.metric in ("exact_match", "f1")
        and not rule.perturb
        and outcome.result is not None
        and outcome.teacher_result is not None
        and len(outcome.dataset) > 0
    )


def _slice_values(session: "QagateSession", gate: "GateFile") -> Any:
    """The gate's slice labels (key -> values present), read once and only when a slice rule
    needs them at collection (``key=*``, or a key that is not built in)."""
    found: list[dict[str, list[str]]] = []

    def values() -> dict[str, list[str]]:
        if not found:
            from qagate.gating.slicing import present_values

            found.append(present_values(session, gate))
        return found[0]

    return values


class GateModel(pytest.Collector):
    """The rules of one gate file that apply to one model."""

    def __init__(self, *, gate: "GateFile", cases: list["GateCase"], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate
        self.cases = cases

    def collect(self) -> Iterator[pytest.Item]:
        for case in self.cases:
            yield GateItem.from_parent(self, name=case.rule.id, gate=self.gate, case=case)


class GateFailure(Exception):
    """A gate that did not pass; the message is the full report (no traceback is shown)."""


class GateItem(pytest.Item):
    """One rule applied to one model."""

    def __init__(self, *, gate: "GateFile", case: "GateCase", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate
        self.case = case
        self.add_marker("qagate")

    @property
    def models_folder(self) -> Path:
        return self.gate.models or session_of(self.config).settings.models

    def setup(self) -> None:
        missing = self.gate.missing_requirements()
        if missing:
            not_gated(self, missing_reason(self.gate, missing))

    def runtest(self) -> None:
        from qagate.gating.case import BaselinePolicy, decide_case
        from qagate.reports import terminal as report

        session = session_of(self.config)
        settings = session.settings
        if self.nodeid in session.not_gated:  # strict: a gate that cannot run fails
            raise GateFailure(strict_failure(session.not_gated[self.nodeid]))
        compared = None
        if METRICS[self.case.rule.metric].timing:
            from qagate.timing.benchmark import unavailable
            from qagate.timing.compare import stores

            reason = unavailable(self.config)
            if reason:
                raise pytest.skip.Exception(f"qagate: {reason}", _use_item_location=True)
            if self.case.rule.reference == "baseline":
                compared = compared_run_of(self.config)
                if compared.unavailable:
                    if stores(self.config):  # time it anyway: the stored run is the next reference
                        from qagate.gating.case import time_for_comparison

                        time_for_comparison(session, self.gate, self.case, models=settings.models)
                    raise pytest.skip.Exception(f"qagate: {compared.unavailable}", _use_item_location=True)
        outcome = decide_case(
            session,
            self.gate,
            self.case,
            models=settings.models,
            policy=BaselinePolicy(settings.update_baselines, settings.regen_all),
            nodeid=self.nodeid,
            compared=compared,
            siblings=self._selected_siblings(),
        )
        verdict = outcome.verdict
        session.record(self.nodeid, verdict, outcome.dataset.name)
        from qagate.reports import explain

        facts = session.records[self.nodeid].explain = explain.facts(outcome)
        self._attach_properties(outcome)
        if verdict.passed:
            return
        text = report.failure_report(
            verdict,
            dataset=outcome.dataset.name,
            questions=len(outcome.dataset),
            accept_command=report.accept_command(verdict, self.nodeid),
            more_questions=report.more_questions(self.gate.dataset, self.gate.path.name, settings.limit),
            decide=explain.decide_line(
                facts.get("decide"), verdict.interval.level if verdict.interval else verdict.rule.confidence
            ),
        )
        if self.config.get_verbosity() > 0:  # -v: how the verdict was reached (as qagate explain)
            row = session.records[self.nodeid].as_row()
            text += "\n  how the verdict was reached:\n" + "\n".join(
                "    " + line for line in explain.render(dict(row, explain=facts))[3:]
            )
        elif verdict.status in ("fail", "undecided"):
            text += (
                "\n  (pytest -v, or 'qagate explain last NODEID' after the run, "
                "shows how the verdict was reached)"
            )
        if verdict.status == "new":
            if settings.strict:
                raise GateFailure(
                    text + "\n  --qagate-strict: a new baseline must be reviewed "
                    "and committed before the gate can pass"
                )
            return
        if outcome.result is not None and report.has_worst_questions(verdict.rule.metric):
            key = (verdict.model, outcome.dataset.name)
            if session.first_worst_questions(key):
                self.add_report_section(
                    "call",
                    "qagate worst questions",
                    report.worst_questions(outcome.dataset, outcome.result, teacher=outcome.teacher_result),
                )
            else:
                text += (
                    f"\n  (the worst questions of {verdict.model} on {outcome.dataset.name} "
                    f"are shown once, under its first failed rule)"
                )
        if _shows_flips(outcome):  # which questions went right -> wrong against the teacher, per slice
            from qagate.reports import flips

            assert outcome.result is not None and outcome.teacher_result is not None
            shown = flips.render(outcome.dataset, outcome.result, outcome.teacher_result)
            if shown:
                self.add_report_section("call", "qagate flips", shown)
        if verdict.status == "undecided" and settings.undecided == "skip":
            if not settings.strict:
                raise pytest.skip.Exception(text.replace("\n", " "), _use_item_location=True)
            text += "\n  --qagate-strict: an undecided verdict fails, whatever --qagate-undecided says"
        raise GateFailure(text)

    def _selected_siblings(self) -> list["GateCase"]:
        """The cases of this model in this gate file that the run selected (``-k``, node ids):
        a sequential model stops when those are decided, not the deselected ones."""
        parent = self.parent
        cases = getattr(parent, "cases", None)
        if not isinstance(parent, GateModel) or not cases:
            return [self.case]
        selected = {item.nodeid for item in getattr(self.session, "items", None) or ()}
        chosen = [case for case in cases if f"{parent.nodeid}::{case.rule.id}" in selected]
        return chosen or [self.case]

    def _attach_properties(self, outcome: "CaseOutcome") -> None:
        """The verdict as JUnit XML properties, for CI systems that read them: metric, value,
        reference (teacher, baseline or absolute) and its value, threshold, interval, status."""
        verdict = outcome.verdict
        props: list[tuple[str, object]] = [
            ("qagate.model", verdict.model),
            ("qagate.rule", verdict.rule.id),
            ("qagate.metric", verdict.rule.metric),
            ("qagate.dataset", outcome.dataset.name),
            ("qagate.status", verdict.status),
            ("qagate.obtained", verdict.obtained),
            ("qagate.threshold", verdict.threshold),
            ("qagate.reference", verdict.rule.reference or "absolute"),
        ]
        if verdict.reference_value is not None:
            props.append((f"qagate.{verdict.rule.reference}", verdict.reference_value))
        if verdict.interval is not None:
            props += [
                ("qagate.interval_low", verdict.interval.low),
                ("qagate.interval_high", verdict.interval.high),
                ("qagate.interval_level", verdict.interval.level),
            ]
        if verdict.cluster is not None:  # the interval's sampling unit (cluster:) and how many
            props += [("qagate.cluster", verdict.cluster), ("qagate.clusters", verdict.clusters)]
        if verdict.questions_used is not None:  # a sequential rule: the questions it needed
            props += [
                ("qagate.questions_used", verdict.questions_used),
                ("qagate.questions_available", verdict.questions_available),
            ]
        if outcome.result is not None:
            props += [
                (f"qagate.metric.{k}", v) for k, v in sorted(outcome.result.metrics.items()) if v is not None
            ]
        self.user_properties.extend(props)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> Any:
        if excinfo.errisinstance((GateFailure, QagateError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = (self.case.rule.line - 1) if self.case.rule.line else 0
        return self.path, line, f"{self.case.model}::{self.case.rule.id}"


class GateSkipped(pytest.Item):
    """Stands for a whole gate file that cannot even be collected for missing requirements."""

    def __init__(self, *, gate: "GateFile", reason: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate
        self.reason = reason

    def setup(self) -> None:
        not_gated(self, self.reason)

    def runtest(self) -> None:
        raise GateFailure(strict_failure(self.reason))

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> Any:
        if excinfo.errisinstance(GateFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, (self.gate.requires_line or 1) - 1, "requires"


def not_gated(item: pytest.Item, reason: str) -> None:
    """A gate item that cannot run: recorded as not gated; skipped (at the gate file's line),
    or, under ``--qagate-strict``, left to fail in ``runtest``."""
    session = session_of(item.config)
    session.not_gated[item.nodeid] = reason
    if not session.settings.strict:
        raise pytest.skip.Exception(reason, _use_item_location=True)


def strict_failure(reason: str) -> str:
    return f"{reason} [--qagate-strict: a gate that cannot run fails]"


def missing_reason(gate: "GateFile", missing: list[Path]) -> str:
    where = relative_to_cwd(gate.path)
    line = f":{gate.requires_line}" if gate.requires_line else ""
    return (
        f"qagate: {where}{line}: requires {', '.join(relative_to_cwd(p) for p in missing)}, "
        f"which is missing: this gate was NOT checked"
    )


def relative(path: Path, config: pytest.Config) -> str:
    try:
        return str(Path(path).relative_to(config.rootpath))
    except ValueError:
        return str(path)


def relative_to_cwd(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
