"""pytest-xdist plumbing: workers evaluate and judge; the controller reports, once.

Under ``pytest -n N`` each worker runs its share of the gate items (all of a model's items on
one worker: :mod:`qagate.pytest_plugin.scheduling`) and, at the end, sends what it recorded (verdicts, the
evaluated models' metrics, baselines written, timings) to the controller, which writes the one
history entry, the terminal summary and pytest-benchmark's records. Timings take the clock
lock of :mod:`qagate.core.clocklock`, whose file the controller hands to every worker.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from qagate.core import clocklock
from qagate.pytest_plugin.session import QagateSession
from qagate.reports.outcomes import ModelRow, Record, ReportedModel, encoded_questions

REPORT = "qagate"  # the key of a worker's report in xdist's ``workeroutput``
LOCK_INPUT = "qagate_timing_lock"  # the key of the clock's lock file in ``workerinput``
TIMINGS_KEY = pytest.StashKey[list]()


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def is_controller(config: pytest.Config) -> bool:
    """Whether this process hands tests to xdist workers (``-n``, ``--dist``) and runs none."""
    return (
        not is_worker(config)
        and config.pluginmanager.hasplugin("xdist")
        and config.getoption("dist", "no") not in ("no", None)
    )


def configure(config: pytest.Config) -> type[QagateSession]:
    """Wire pytest-xdist in where it runs; the session class this process uses."""
    if is_worker(config):
        lock = config.workerinput.get(LOCK_INPUT)  # type: ignore[attr-defined]
        if lock:
            os.environ[clocklock.ENV] = lock
        return QagateSession
    if is_controller(config):
        config.pluginmanager.register(ControllerHooks(config), "qagate-xdist-controller")
        return ControllerSession
    return QagateSession


def record_timing(config: pytest.Config, timing: Any, *, extra_info: dict) -> None:
    """A timing for pytest-benchmark: recorded here, or, in a worker, kept for the controller
    (a worker's pytest-benchmark would store its own partial file)."""
    if is_worker(config):
        kept = {"timing": dataclasses.asdict(timing), "extra_info": extra_info}
        config.stash.setdefault(TIMINGS_KEY, []).append(plain(kept))
        return
    from qagate.timing.benchmark import record

    record(config, timing, extra_info=extra_info)


def send_report(
    config: pytest.Config,
    qsession: QagateSession,
    items: Iterable[pytest.Item],
    *,
    gates: Mapping[str, str],
    partial: bool,
) -> None:
    """A worker's results, as plain data, into ``workeroutput`` (sent when the worker ends)."""
    from qagate.reports.diff import run_slices

    position = {item.nodeid: index for index, item in enumerate(items)}
    report = {
        "records": [
            dict(dataclasses.asdict(record), position=position.get(nodeid))
            for nodeid, record in qsession.records.items()
        ],
        "models": [
            {
                "model": row.model,
                "dataset": row.dataset,
                "values": row.metrics(),
                "questions": encoded_questions(row),
            }
            for row in qsession.evaluated()
        ],
        "slices": run_slices(qsession.evaluated()),
        "not_gated": dict(qsession.not_gated),
        "baselines": {str(path): action for path, action in qsession.baseline_actions.items()},
        "gates": dict(gates),
        "partial": bool(partial),
        "timings": config.stash.get(TIMINGS_KEY, []),
    }
    config.workeroutput[REPORT] = plain(report)  # type: ignore[attr-defined]


def plain(data: Any) -> Any:
    """``data`` as JSON types only (numpy numbers become floats): what execnet can send."""
    return json.loads(json.dumps(data, default=_plain_value))


def _plain_value(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


class ControllerSession(QagateSession):
    """The controller's session: it runs no test, and holds what the workers report."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reported_models: dict[tuple[str, str], ReportedModel] = {}
        self.reported_slices: dict[tuple[str, str], dict[str, Any]] = {}
        self.reported_gates: dict[str, str] = {}
        self.reported_partial = False
        self._positions: dict[str, float] = {}

    def absorb(self, worker: str, report: Mapping[str, Any] | None) -> None:
        """Merge one worker's report; a worker that sent none leaves the run not gated."""
        if report is None:
            self.not_gated[f"xdist worker {worker}"] = (
                f"qagate: pytest-xdist worker {worker} ended without reporting its gate "
                f"results: this run was NOT fully gated"
            )
            return
        for row in report["records"]:
            fields = dict(row)
            position = fields.pop("position")
            for name in ("interval", "questions"):
                if fields.get(name) is not None:
                    fields[name] = tuple(fields[name])
            self.records[fields["nodeid"]] = Record(**fields)
            self._positions[fields["nodeid"]] = float("inf") if position is None else position
        self.records = dict(sorted(self.records.items(), key=lambda kv: self._positions.get(kv[0], 0)))
        for row in report["models"]:
            key = (row["model"], row["dataset"])
            known = self.reported_models.get(key)
            values = {**row["values"], **(known.values if known else {})}  # first report wins
            questions = (known.questions if known else None) or row.get("questions")
            self.reported_models[key] = ReportedModel(row["model"], row["dataset"], values, questions)
        for entry in report.get("slices") or []:  # a model against its teacher beats one alone
            key = (entry["model"], entry["dataset"])
            if key not in self.reported_slices or (
                entry.get("reference") and not self.reported_slices[key].get("reference")
            ):
                self.reported_slices[key] = entry
        self.not_gated.update(report["not_gated"])
        for path, action in report["baselines"].items():
            self._baseline_actions[Path(path)] = action
        self.reported_gates.update(report["gates"])
        self.reported_partial = self.reported_partial or bool(report["partial"])

    def evaluated(self) -> list[ModelRow]:
        """The workers' evaluated models, in the order of their first gate item."""
        first: dict[str, float] = {}
        for nodeid, record in self.records.items():
            first.setdefault(record.model, self._positions.get(nodeid, float("inf")))
        rows = sorted(self.reported_models.values(), key=lambda row: first.get(row.model, float("inf")))
        return [*super().evaluated(), *rows]


def reported_gates(qsession: QagateSession) -> dict[str, str]:
    """Gate file -> dataset label that the workers ran (the controller collects no items)."""
    return dict(qsession.reported_gates) if isinstance(qsession, ControllerSession) else {}


def reported_slices(qsession: QagateSession) -> list[dict[str, Any]]:
    """The slice tables the workers computed (qagate.reports.diff.run_slices), one per model and
    dataset, in the order the workers reported them."""
    return list(qsession.reported_slices.values()) if isinstance(qsession, ControllerSession) else []


def reported_partial(qsession: QagateSession) -> bool:
    """Whether a worker saw gate items deselected."""
    return isinstance(qsession, ControllerSession) and qsession.reported_partial


class ControllerHooks:
    """xdist hooks of the controller: hand out the clock lock, group by model, gather reports."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.lock = os.environ.get(clocklock.ENV, "").strip()
        if not self.lock:
            folder = tempfile.mkdtemp(prefix="qagate-xdist-")
            config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
            self.lock = str(Path(folder) / "timing.lock")

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[LOCK_INPUT] = self.lock

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """``-n N`` (xdist's ``--dist load``): a model's gate items go to one worker."""
        if config.getvalue("dist") != "load":
            return None
        from qagate.pytest_plugin.scheduling import ModelGroupScheduling

        return ModelGroupScheduling(config, log)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        from qagate.pytest_plugin.collect import session_of

        qsession = session_of(self.config)
        if isinstance(qsession, ControllerSession):
            worker = str(getattr(node, "workerinput", {}).get("workerid", "?"))
            report = getattr(node, "workeroutput", {}).get(REPORT)
            qsession.absorb(worker, report)
            replay_timings(self.config, (report or {}).get("timings", []))


def replay_timings(config: pytest.Config, timings: Iterable[Mapping[str, Any]]) -> None:
    """A worker's timings into the controller's pytest-benchmark session (JSON, compare)."""
    from qagate.timing.paired import Timing

    for kept in timings:
        record_timing(config, Timing(**kept["timing"]), extra_info=dict(kept["extra_info"]))
