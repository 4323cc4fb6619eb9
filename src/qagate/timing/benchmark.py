"""The pytest-benchmark bridge: the timings speed rules judge are pytest-benchmark's records.

Each timed model's rounds go into pytest-benchmark's session as one benchmark, with EM/F1 and
the model's declaration in ``extra_info``, so ``--benchmark-autosave``, ``--benchmark-json``
and ``--benchmark-compare`` store and compare exactly the numbers a rule decided on. With
``--benchmark-disable`` or ``--benchmark-skip`` there is no clock: speed rules are skipped.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any

from qagate.timing.compare import record_name, serving_extra
from qagate.timing.paired import Timing


def unavailable(config: Any) -> str | None:
    """Why speed cannot be measured in this run (pytest-benchmark off), or None."""
    session = getattr(config, "_benchmarksession", None)
    if session is None:
        return "pytest-benchmark is not active (-p no:benchmark): speed rules have no clock"
    if session.skip:
        return "--benchmark-skip: speed rules are not judged without pytest-benchmark's clock"
    if session.disabled and not disabled_for_xdist(session):
        return "--benchmark-disable: speed rules are not judged on another clock"
    return None


def disabled_for_xdist(session: Any) -> bool:
    """pytest-benchmark turned itself off only because pytest-xdist runs. qagate still times:
    one process at a time (:mod:`qagate.core.clocklock`), and the controller stores the records."""
    return bool(getattr(session, "xdist_warning", False))


def record(config: Any, timing: Timing, *, extra_info: dict[str, Any]) -> dict[str, Any] | None:
    """Add ``timing``'s rounds to pytest-benchmark's session under the name a later
    ``--benchmark-compare`` looks for (:func:`record_name`); returns its stats (or None).
    ``extra_info["kind"]`` is ``batched`` (rounds of the timing questions) or ``serving``
    (one question at a time, with its p50/p95). A model timed again in this run (the teacher in
    each pairing) is recorded once: its first timing, the one the session keeps and rules judge,
    so a later ``--benchmark-compare`` finds one baseline per name."""
    session = getattr(config, "_benchmarksession", None)
    if session is None or unavailable(config):
        return None
    from pytest_benchmark.fixture import BenchmarkFixture

    dataset, kind = str(extra_info.get("dataset", "")), str(extra_info.get("kind", "batched"))
    name = record_name(dataset, timing.model, kind)
    if any(getattr(bench, "fullname", None) == name for bench in session.benchmarks):
        return None  # one record per model and dataset: the first timing, the one rules judge
    group = f"qagate {dataset}" if kind == "batched" else f"qagate {dataset} {kind}"
    node = SimpleNamespace(name=timing.model, nodeid=name)
    fixture = BenchmarkFixture(
        node,
        add_stats=session.benchmarks.append,
        logger=session.logger,
        warner=lambda message: warnings.warn(message, stacklevel=2),
        disabled=False,
        **dict(session.options, group=group),
    )
    fixture.extra_info.update(extra_info)
    fixture.extra_info.update(
        questions=timing.questions,
        unit="seconds per question",
        **{f"env.{k}": v for k, v in timing.environment.items()},
    )
    if kind == "serving":
        fixture.extra_info.update(serving_extra(timing.rounds))
    if timing.tokens_per_second():
        fixture.extra_info["tokens_per_second"] = sum(timing.tokens) / (sum(timing.rounds) * timing.questions)
    stats = fixture._make_stats(1)
    for seconds in timing.rounds:
        stats.update(seconds)
    return {"mean": stats.stats.mean, "rounds": stats.stats.rounds}


def extra_info(spec: Any, metrics: Any, dataset: str, against: str | None = None) -> dict[str, Any]:
    """What a timing record carries beside its rounds: EM/F1 and the model's declaration."""
    declaration = {
        key: getattr(spec, key, None)
        for key in ("name", "role", "kind", "source", "dtype", "device", "batch_size", "max_seq_len")
    }
    info: dict[str, Any] = {key: metrics[key] for key in ("exact_match", "f1") if key in metrics}
    info.update(declaration=declaration, dataset=dataset)
    if against:
        info["paired_with"] = against
    return info
