"""Speed regressions against a stored run: ``seconds_per_question <= 1.10 * baseline``.

With ``--benchmark-compare[=RUN]`` the ``baseline`` of a timing rule is the compared
pytest-benchmark run (the one ``--benchmark-autosave`` stored), so each model carries its own
tolerance. Timings do not carry across machines: a run stored on another CPU model, core count
or GPU is refused unless ``--qagate-compare-any-machine`` says otherwise.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qagate.timing.latency import percentile

# How a timing rule's metric reads a stored benchmark record (rounds are seconds per question).
SERVING = ("latency_p50", "latency_p95")


def record_name(dataset: str, model: str, kind: str = "batched") -> str:
    """The pytest-benchmark ``fullname`` of a model's timing: stable across runs and -k filters."""
    where = f"qagate::{dataset}" if kind == "batched" else f"qagate::{dataset}::{kind}"
    return f"{where}[{model}]"


def gpus() -> list[str]:
    """Names of this machine's NVIDIA GPUs, read from the driver (no torch import)."""
    names = []
    for info in sorted(glob.glob("/proc/driver/nvidia/gpus/*/information")):
        for line in Path(info).read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Model:"):
                names.append(line.split(":", 1)[1].strip())
    return names


def machine_key(machine_info: dict[str, Any]) -> tuple[str, int | None, tuple[str, ...]]:
    """What a timing depends on: CPU model, core count and GPUs."""
    cpu = machine_info.get("cpu") or {}
    brand = str(cpu.get("brand_raw") or machine_info.get("processor") or machine_info.get("machine") or "?")
    count = cpu.get("count")
    return brand, (int(count) if count is not None else None), tuple(machine_info.get("qagate_gpus") or ())


def machine_label(machine_info: dict[str, Any]) -> str:
    """``'AMD EPYC 7B13 x2 cores, no GPU'``: a machine in one phrase, for error messages."""
    brand, count, gpu_names = machine_key(machine_info)
    cores = f" x{count} cores" if count is not None else ""
    return f"{brand}{cores}, " + (" + ".join(gpu_names) if gpu_names else "no GPU")


def metric_from_record(metric: str, record: dict[str, Any]) -> float | None:
    """The value of a timing metric in a stored pytest-benchmark record."""
    if metric in SERVING:
        key = "p50" if metric == "latency_p50" else "p95"
        value = (record.get("extra_info") or {}).get(key)
        return None if value is None else float(value)
    mean = (record.get("stats") or {}).get("mean")
    if mean is None or mean <= 0:
        return None
    return float(mean) if metric == "seconds_per_question" else 1.0 / float(mean)


def serving_extra(rounds: list[float]) -> dict[str, float]:
    """What a serving-latency record stores beside its rounds, for later comparisons."""
    return {"p50": percentile(rounds, 50), "p95": percentile(rounds, 95)}


@dataclass
class ComparedRun:
    """The pytest-benchmark run named by ``--benchmark-compare`` (or why there is none)."""

    path: str | None = None
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    this_machine: dict[str, Any] = field(default_factory=dict)
    any_machine: bool = False
    unavailable: str | None = None
    #: names the stored run holds more than once (runs before one record per model and dataset)
    repeated: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return Path(self.path).stem if self.path else "?"

    def machine_problem(self) -> str | None:
        """A one-line refusal when the compared run was stored on another machine."""
        if self.any_machine or machine_key(self.machine) == machine_key(self.this_machine):
            return None
        return (
            f"--benchmark-compare: run {self.label} was stored on {machine_label(self.machine)}, this "
            f"machine is {machine_label(self.this_machine)}; timings do not carry across machines: "
            f"compare with a run stored here, or pass --qagate-compare-any-machine"
        )

    def reference(self, metric: str, dataset: str, model: str) -> tuple[float | None, list[str]]:
        """The compared run's value of ``metric`` for ``model``, or the problems that stop it."""
        problem = self.machine_problem()
        if problem:
            return None, [problem]
        kind = "serving" if metric in SERVING else "batched"
        name = record_name(dataset, model, kind)
        if name in self.repeated:
            partners = sorted(
                {str((r.get("extra_info") or {}).get("paired_with") or "-") for r in self.repeated[name]}
            )
            return None, [
                f"the compared run {self.label} holds {len(self.repeated[name])} timings named {name} "
                f"(paired with: {', '.join(partners)}), so its baseline is ambiguous; store a run with "
                f"this qagate ('pytest --benchmark-autosave': one timing per model and dataset) and "
                f"compare with it"
            ]
        record = self.records.get(name)
        if record is None:
            return None, [
                f"the compared run {self.label} has no timing {name}; store one with "
                f"'pytest --benchmark-autosave' on this gate first"
            ]
        value = metric_from_record(metric, record)
        if value is None:
            return None, [f"the compared run {self.label}'s record {name} has no {metric}"]
        return value, []


def stores(config: Any) -> bool:
    """Whether this run keeps its benchmarks (``--benchmark-autosave``, ``--benchmark-save``,
    ``--benchmark-json``): worth timing a model even when no rule can be judged yet."""
    session = getattr(config, "_benchmarksession", None)
    return bool(session and (session.save or session.autosave or session.json))


def compared_run(config: Any, any_machine: bool = False) -> ComparedRun:
    """Load the run ``--benchmark-compare`` names from pytest-benchmark's storage."""
    session = getattr(config, "_benchmarksession", None)
    compare = getattr(session, "compare", None) if session is not None else None
    if not compare:
        storing = (
            "this run is stored: the next --benchmark-compare uses it"
            if stores(config)
            else "store runs with --benchmark-autosave"
        )
        return ComparedRun(
            any_machine=any_machine,
            unavailable=(
                "a speed rule against 'baseline' compares with a stored run: pass "
                f"--benchmark-compare[=RUN] ({storing})"
            ),
        )
    assert session is not None
    runs = list(session.storage.load()) if compare is True else list(session.storage.load(compare))
    if not runs:
        return ComparedRun(
            any_machine=any_machine,
            unavailable=f"--benchmark-compare: no stored run matches {compare!r} in {session.storage}",
        )
    path, data = runs[-1]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for bench in data.get("benchmarks", []):
        by_name.setdefault(bench["fullname"], []).append(bench)
    return ComparedRun(
        path=str(path),
        records={name: benches[-1] for name, benches in by_name.items()},
        repeated={name: benches for name, benches in by_name.items() if len(benches) > 1},
        machine=dict(data.get("machine_info") or {}),
        this_machine=dict(session.get_machine_info()),
        any_machine=any_machine,
    )
