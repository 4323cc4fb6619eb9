"""One benchmark record per model and dataset, a compare that refuses an ambiguous stored run, and
a models table whose speed-up is the judged one (issue 28 item 3). No model is run: timings are
made by hand."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from qagate.pytest_plugin.session import QagateSession
from qagate.timing.compare import ComparedRun, record_name
from qagate.timing.paired import PairedTiming, Timing


def record(model: str, mean: float, paired_with: str | None = None) -> dict:
    extra = {"paired_with": paired_with} if paired_with else {}
    return {"fullname": record_name("sample", model), "stats": {"mean": mean}, "extra_info": extra}


def test_a_compared_run_holding_a_name_twice_is_refused_with_one_line():
    teacher = record_name("sample", "teacher")
    compared = ComparedRun(
        path="/b/0001_x.json",
        records={teacher: record("teacher", 0.024, "b"), record_name("sample", "a"): record("a", 0.01)},
        repeated={teacher: [record("teacher", 0.021, "a"), record("teacher", 0.024, "b")]},
        any_machine=True,
    )
    value, problems = compared.reference("seconds_per_question", "sample", "teacher")
    assert value is None and len(problems) == 1
    assert "holds 2 timings named qagate::sample[teacher] (paired with: a, b)" in problems[0]
    assert "ambiguous" in problems[0]
    assert compared.reference("seconds_per_question", "sample", "a") == (0.01, [])


def test_a_model_timed_in_two_pairings_is_recorded_once(pytester: pytest.Pytester):
    pytest.importorskip("pytest_benchmark")
    pytester.makeconftest(
        textwrap.dedent(
            """\
            from qagate.timing.benchmark import record
            from qagate.timing.paired import Timing

            def test_timings(request):
                config = request.config
                for partner, seconds in (("a", 0.021), ("b", 0.024)):
                    info = {"dataset": "sample", "kind": "batched", "paired_with": partner}
                    record(config, Timing("teacher", [seconds] * 3, questions=8), extra_info=info)
                    alone = {"dataset": "sample"}
                    record(config, Timing(partner, [seconds / 2] * 3, questions=8), extra_info=alone)
            """
        )
    )
    pytester.makepyfile(test_x="from conftest import test_timings\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-json=out.json", "-q")
    assert result.ret == 0, result.stdout.str()
    benches = json.loads((Path(pytester.path) / "out.json").read_text())["benchmarks"]
    names = [b["fullname"] for b in benches]
    assert sorted(names) == sorted(record_name("sample", m) for m in ("teacher", "a", "b"))
    (teacher,) = [b for b in benches if b["fullname"] == record_name("sample", "teacher")]
    assert teacher["extra_info"]["paired_with"] == "a" and teacher["stats"]["mean"] == pytest.approx(0.021)


def test_the_models_table_shows_the_judged_paired_speedup():
    folder, key = Path("models"), ("sample",)
    first = PairedTiming(Timing("teacher", [0.020, 0.020]), Timing("a", [0.010, 0.010]), warmup=1)
    second = PairedTiming(Timing("teacher", [0.024, 0.024]), Timing("b", [0.006, 0.006]), warmup=1)
    session = QagateSession.__new__(QagateSession)
    session._evals = {(folder, "b", key): SimpleNamespace(metrics={})}  # type: ignore[attr-defined]
    session._latency = {(folder, "teacher", key): first.reference, (folder, "b", key): second.model}  # type: ignore[attr-defined]
    session._paired = {(folder, "a", "teacher", key): first, (folder, "b", "teacher", key): second}  # type: ignore[attr-defined]
    session._datasets = {}  # type: ignore[attr-defined]
    session.teacher_name = lambda _folder: "teacher"  # type: ignore[method-assign]
    (row,) = session.evaluated()
    # the teacher's first timing (paired with a) would give 0.020 / 0.006 = 3.33x; judged: 4x
    assert row.speedup == pytest.approx(second.speedup) == pytest.approx(4.0)
