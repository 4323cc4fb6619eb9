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

from qagate.timing.paired import Timing


def unavailable(config: Any) -> str | None:
    """Why speed cannot be measured in this run (pytest-benchmark off), or None."""
    session = getattr(config, "_benchmarksession", None)
    if session is None:
        return "pytest-benchmark is not active (-p no:benchmark): speed rules have no clock"
    if session.skip:
        return "--benchmark-skip: speed rules are not judged without pytest-benchmark's clock"
    if session.disabled:
        return (
            "benchmarks are disabled (--benchmark-disable, or pytest-xdist workers): speed "
            "rules are not judged on another clock"
        )
    return None


def record(
    config: Any, timing: Timing, *, nodeid: str, group: str, extra_info: dict[str, Any]
) -> dict[str, Any] | None:
    """Add ``timing``'s rounds to pytest-benchmark's session; returns its stats (or None)."""
    session = getattr(config, "_benchmarksession", None)
    if session is None or unavailable(config):
        return None
    from pytest_benchmark.fixture import BenchmarkFixture

    node = SimpleNamespace(name=timing.model, nodeid=f"{nodeid}[{timing.model}]")
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
