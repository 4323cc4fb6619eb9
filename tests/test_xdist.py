"""Scale-out with pytest-xdist: ``-n 2`` gives the verdicts of a serial run, and one report.

Workers evaluate and judge (a model's gate items on one worker); the controller writes the one
history entry and the summary. The prediction cache computes a key once under concurrent
writers, timings exclude each other and heavy work across processes, and ``device: auto`` gives
each worker its own GPU.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from qagate.core.clocklock import ENV as LOCK_ENV
from qagate.data.predictions import Predictions
from qagate.inference.extractive import auto_cuda_device
from qagate.pytest_plugin.scheduling import model_scope
from qagate.pytest_plugin.settings import build_settings
from qagate.pytest_plugin.workers import ControllerSession
from qagate.reports.outcomes import Record
from qagate.store.history import read_history, read_question_scores

pytest.importorskip("xdist", reason="pip install pytest-xdist")

REPO = Path(__file__).resolve().parents[1]
WRONG = "the wrong answer"


# --- a gate on replayed predictions: real verdicts, no torch, a few seconds -----------------


@pytest.fixture
def replay_project(pytester):
    """Three replayed systems on the bundled sample: a teacher that is always right, a student
    wrong on 2 questions (passes, undecided) and one wrong on half (fails)."""
    from qagate.data import load_dataset

    examples = load_dataset("sample").examples
    wrong = {"teacher": 0, "good": 2, "bad": len(examples) // 2}
    for name, count in wrong.items():
        answers = {ex.id: (WRONG if i < count else ex.answers[0]) for i, ex in enumerate(examples)}
        pytester.path.joinpath(f"{name}.json").write_text(json.dumps(answers))
        role = "teacher" if name == "teacher" else "student"
        pytester.makefile(
            ".yaml",
            **{f"qa_models/{name}": f"name: {name}\nrole: {role}\nkind: replay\nsource: ../{name}.json\n"},
        )
    pytester.makefile(
        ".yaml",
        gate_replay=textwrap.dedent("""\
        dataset: sample
        rules:
          - apply_to: students
            require:
              - exact_match >= 0.95 * teacher
              - rule: f1 >= 0.97 * teacher
                confidence: 0.95
          - apply_to: teacher
            require:
              - exact_match >= 90
          - apply_to: all
            require:
              - f1 >= baseline - 0.5
        """),
    )
    return pytester


def run(project, name: str, *args: str):
    """One run with its own JUnit file, history and baselines folder (each writes NEW ones)."""
    return project.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-v",
        f"--junitxml={name}.xml",
        f"--qagate-history={name}.db",
        f"--qagate-baselines={name}-baselines",
        *args,
    )


def junit_outcomes(path: Path) -> dict[str, tuple[str, str | None]]:
    """test id -> (outcome, qagate.status) from a JUnit XML file."""
    outcomes = {}
    for case in ET.parse(path).iter("testcase"):
        outcome = next(
            (child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed"
        )
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = (outcome, props.get("qagate.status"))
    return outcomes


def history_results(path: Path) -> list[dict]:
    runs = read_history(path).runs
    assert len(runs) == 1, f"{path}: {len(runs)} history entries, expected one"
    return runs


def stable(rows: list[dict]) -> list[dict]:
    """The rows without what names this run's own baseline files: each run here writes its own
    (``--qagate-baselines``), so the explanation's baseline path and provenance time and the notes
    that name the file differ; every other field, the rest of the explanation included, must not."""
    volatile = ("baseline", "notes")
    return [
        {
            k: ({f: x for f, x in v.items() if f not in volatile} if k == "explain" else v)
            for k, v in row.items()
        }
        for row in rows
    ]


def test_two_workers_give_the_serial_verdicts_and_one_history_entry(replay_project):
    serial = run(replay_project, "serial")
    parallel = run(replay_project, "parallel", "-n", "2")
    serial.assert_outcomes(passed=5, failed=3)  # pass and NEW pass; bad EM, bad F1, good F1 undecided
    parallel.assert_outcomes(passed=5, failed=3)
    expected = junit_outcomes(replay_project.path / "serial.xml")
    assert junit_outcomes(replay_project.path / "parallel.xml") == expected
    assert {status for _, status in expected.values()} == {"pass", "fail", "undecided", "new"}

    (serial_run,) = history_results(replay_project.path / "serial.db")
    (parallel_run,) = history_results(replay_project.path / "parallel.db")
    assert stable(parallel_run["results"]) == stable(serial_run["results"])  # same rows, same order
    assert all("explain" in row for row in parallel_run["results"])
    key = lambda rows: sorted(rows, key=lambda row: row["model"])  # noqa: E731
    assert key(parallel_run["metrics"]) == key(serial_run["metrics"])
    for field in ("outcome", "counts", "partial", "incomplete"):
        assert parallel_run[field] == serial_run[field], field
    stored = {  # every model's per-question results: the workers send them to the controller
        name: read_question_scores(replay_project.path / f"{name}.db", entry["id"], "good")
        for name, entry in (("serial", serial_run), ("parallel", parallel_run))
    }
    assert stored["parallel"] == stored["serial"] and stored["serial"].total == 65
    slices = {
        name: {e["model"]: e for e in run["slices"]} for name, run in (("s", serial_run), ("p", parallel_run))
    }
    assert (
        slices["p"] == slices["s"] and slices["s"]["bad"]["reference"] == "teacher"
    )  # the workers' slice tables
    assert (
        parallel_run["settings"]["gates"] == serial_run["settings"]["gates"] == {"gate_replay.yaml": "sample"}
    )
    created = {
        name: [Path(p).name for p in run["baselines"]["created"]]
        for name, run in (("serial", serial_run), ("parallel", parallel_run))
    }
    assert created["parallel"] == created["serial"] == ["bad.json", "good.json", "teacher.json"]
    assert "-n" in parallel_run["settings"]["args"]

    # The controller's summary holds every worker's gates; each model ran on one worker only.
    out = parallel.stdout.str()
    assert "gates: 2 fail, 3 new, 2 pass, 1 undecided" in out
    assert len(re.findall(r"^(?:PASS|FAIL|NEW|UNDECIDED) +(?:teacher|good|bad) ", out, re.M)) == 8
    assert re.search(r"^good +sample +96\.9231 +96\.9231$", out, re.M)  # the workers' metrics
    workers: dict[str, set[str]] = {}
    for worker, nodeid in re.findall(
        r"^\[(gw\d+)\] .*?(?:PASSED|FAILED) (gate_replay\.yaml::\S+)", out, re.M
    ):
        workers.setdefault(nodeid.split("::")[1], set()).add(worker)
    assert set(workers) == {"teacher", "good", "bad"} and all(len(w) == 1 for w in workers.values()), workers


def test_gate_items_are_grouped_by_model_without_changing_their_ids():
    assert model_scope("quality_tests/gate_x.yaml::student::f1>=0.9*teacher@95%") == "qagate model student"
    assert model_scope("gate_x.yml::teacher::exact_match>=90") == "qagate model teacher"
    assert model_scope("gate_x.yaml::requires") == "gate_x.yaml::requires"  # a skipped gate file
    assert model_scope("quality_tests/test_speed.py::test_latency[student]") == (
        "quality_tests/test_speed.py::test_latency[student]"
    )


# --- the controller merges what workers send ------------------------------------------------


def controller(tmp_path: Path) -> ControllerSession:
    settings = build_settings({}, {}, rootdir=tmp_path, invocation_dir=tmp_path, ini_dir=tmp_path)
    return ControllerSession(settings)


def report(records: list[tuple[str, str, int]], models: list[tuple[str, dict]]) -> dict:
    return {
        "records": [
            dict(
                Record(nodeid, model, "r", "f1", ">=", "sample", "pass", 1.0, 0.5, (0.1, 0.2, 0.95)).__dict__,
                position=position,
            )
            for nodeid, model, position in records
        ],
        "models": [{"model": m, "dataset": "sample", "values": values} for m, values in models],
        "not_gated": {},
        "baselines": {"b/sample/x.json": "created"},
        "gates": {"gate_a.yaml": "sample"},
        "partial": False,
        "timings": [],
    }


def test_the_controller_merges_reports_in_collection_order(tmp_path):
    session = controller(tmp_path)
    session.absorb(
        "gw1", report([("g::b::r", "b", 2)], [("b", {"f1": 1.0}), ("t", {"f1": 3.0, "speed": 1.0})])
    )
    session.absorb(
        "gw0", report([("g::a::r", "a", 0), ("g::t::r", "t", 1)], [("a", {"f1": 2.0}), ("t", {"f1": 3.0})])
    )
    assert list(session.records) == ["g::a::r", "g::t::r", "g::b::r"]
    assert session.records["g::a::r"].interval == (0.1, 0.2, 0.95)
    rows = session.evaluated()
    assert [row.model for row in rows] == ["a", "t", "b"]
    assert rows[1].metrics() == {"f1": 3.0, "speed": 1.0}  # one row per model, nothing lost
    assert session.baseline_changes() == {"created": [str(Path("b/sample/x.json"))]}
    assert not session.not_gated


def test_a_worker_that_reports_nothing_leaves_the_run_not_gated(tmp_path):
    session = controller(tmp_path)
    session.absorb("gw3", None)
    assert "gw3" in next(iter(session.not_gated.values())) and "NOT fully gated" in str(session.not_gated)


# --- the prediction cache under concurrent writers ------------------------------------------

WRITER = """
import sys, time
from pathlib import Path
from qagate.data.predictions import Predictions
from qagate.store.cache import PredictionCache

folder, log = Path(sys.argv[1]), Path(sys.argv[2])

def compute():
    with log.open("a") as handle:
        handle.write("computed\\n")
    time.sleep(1.0)
    return Predictions(answers={"q1": "a", "q2": "b"}, confidence={"q1": 0.5, "q2": 0.25})

predictions, hit = PredictionCache(folder).compute_once("k" * 64, compute, model="m")
print("hit" if hit else "miss", predictions.answers)
"""


def test_two_processes_wanting_the_same_predictions_compute_them_once(tmp_path):
    log = tmp_path / "computed.log"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path / "cache"), str(log)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = sorted(proc.communicate(timeout=60)[0].strip() for proc in procs)
    assert all(proc.returncode == 0 for proc in procs)
    assert log.read_text().count("computed") == 1
    assert outputs == ["hit {'q1': 'a', 'q2': 'b'}", "miss {'q1': 'a', 'q2': 'b'}"]
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")] == [
        f"predictions-{'k' * 64}.json"
    ]  # no temporary or half-written file left beside it


def test_an_entry_the_caller_rejects_is_computed_again(tmp_path):
    from qagate.store.cache import PredictionCache

    cache = PredictionCache(tmp_path)
    first = Predictions(answers={"q1": "a"}, confidence={"q1": 1.0})
    assert cache.compute_once("k", lambda: first) == (first, False)
    assert cache.compute_once("k", lambda: first)[1] is True
    more = Predictions(answers={"q1": "a", "q2": "b"}, confidence={"q1": 1.0, "q2": 1.0})
    got, hit = cache.compute_once("k", lambda: more, accept=lambda p: "q2" in p.answers)
    assert (got, hit) == (more, False) and cache.get("k") == more


# --- timings take the clock alone ------------------------------------------------------------

HOLDER = """
import sys, time
from qagate.core.clocklock import timing_alone, working

mode, seconds = sys.argv[1], float(sys.argv[2])
if mode == "stream":  # many short pieces of heavy work, back to back
    began = time.time()
    for _ in range(int(seconds / 0.05)):
        with working():
            time.sleep(0.05)
    print(began, time.time())
    sys.exit()
with (timing_alone() if mode == "timing" else working()):
    began = time.time()
    time.sleep(seconds)
    print(began, time.time())
"""


def hold(mode: str, seconds: float, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, mode, str(seconds)], stdout=subprocess.PIPE, text=True, env=env
    )


def spans(procs: list[subprocess.Popen]) -> list[tuple[float, float]]:
    out = []
    for proc in procs:
        began, ended = proc.communicate(timeout=60)[0].split()
        out.append((float(began), float(ended)))
    return out


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.fixture
def lock_env(tmp_path, monkeypatch):
    import os

    return dict(os.environ, **{LOCK_ENV: str(tmp_path / "timing.lock")})


def test_a_timing_waits_for_heavy_work_and_heavy_work_shares(lock_env):
    workers = [hold("working", 1.0, lock_env) for _ in range(2)]
    time.sleep(0.4)
    timing = hold("timing", 0.2, lock_env)
    first, second, timed = spans([*workers, timing])
    assert overlap(first, second)  # heavy work runs side by side
    assert not overlap(timed, first) and not overlap(timed, second)  # the clock runs alone


def test_a_stream_of_heavy_work_does_not_starve_a_timing(lock_env):
    streams = [hold("stream", 3.0, lock_env) for _ in range(2)]  # the shared lock never idle
    time.sleep(0.8)
    timing = hold("timing", 0.1, lock_env)
    first, second, timed = spans([*streams, timing])
    assert timed[1] < min(first[1], second[1]) - 0.5  # got in between, not after the streams


def test_two_timings_never_overlap(lock_env):
    a, b = spans([hold("timing", 0.6, lock_env), hold("timing", 0.6, lock_env)])
    assert not overlap(a, b)


def test_without_the_variable_nothing_locks_and_nesting_never_deadlocks(tmp_path, monkeypatch):
    from qagate.core.clocklock import timing_alone, working

    monkeypatch.delenv(LOCK_ENV, raising=False)
    with working(), timing_alone():
        pass
    monkeypatch.setenv(LOCK_ENV, str(tmp_path / "clock.lock"))
    with working(), timing_alone():  # a timing inside heavy work reuses this process's hold
        pass
    assert (tmp_path / "clock.lock").exists()


# --- device: auto on several GPUs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("worker", "count", "device"),
    [
        ("gw0", 4, "cuda:0"),
        ("gw5", 4, "cuda:1"),
        ("gw1", 2, "cuda:1"),
        ("gw3", 1, "cuda"),  # one GPU: every worker shares it
        (None, 4, "cuda"),  # no xdist: the current device
        ("master", 2, "cuda"),
    ],
)
def test_each_worker_takes_its_own_gpu(worker, count, device):
    assert auto_cuda_device(worker, count) == device


def test_device_auto_reads_the_worker_and_the_gpu_count(monkeypatch):
    torch = pytest.importorskip("torch")
    from qagate.inference.extractive import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    assert resolve_device("auto") == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"


# --- speed rules under xdist: judged on the clock, stored by the controller -----------------


@pytest.fixture
def speed_project(request, tiny_qa_model_dir):
    pytest.importorskip("torch")
    sources = {
        name: tiny_qa_model_dir(layers=layers, hidden=64) for name, layers in (("big", 4), ("small", 1))
    }
    pytester = request.getfixturevalue("pytester")
    for name, role in (("big", "teacher"), ("small", "student")):
        pytester.makefile(
            ".yaml",
            **{
                f"qa_models/{name}": f"name: {name}\nrole: {role}\nkind: extractive\n"
                f"source: {sources[name]}\ndevice: cpu\nmax_seq_len: 128\ndoc_stride: 32\n"
            },
        )
    pytester.makefile(
        ".yaml",
        gate_speed=(
            "dataset: {source: sample, limit: 8}\nrules:\n  - apply_to: students\n    require:\n"
            "      - speedup >= 0.01\n      - exact_match >= 0 * teacher\n"
            "  - apply_to: all\n    require:\n      - seconds_per_question <= 10\n"
        ),
    )
    return pytester


def test_speed_rules_are_judged_in_workers_and_stored_by_the_controller(speed_project):
    options = ("--qagate-latency-questions", "4", "--qagate-speed-budget", "2", "--benchmark-json=bench.json")
    parallel = run(speed_project, "parallel", "-n", "2", *options)
    parallel.assert_outcomes(passed=4)  # not skipped: pytest-benchmark's xdist switch-off is qagate's
    outcomes = junit_outcomes(speed_project.path / "parallel.xml")
    assert {status for _, status in outcomes.values()} == {"pass"}
    stored = json.loads((speed_project.path / "bench.json").read_text())
    assert {b["name"] for b in stored["benchmarks"]} >= {"big", "small"}  # the workers' timings
    (entry,) = history_results(speed_project.path / "parallel.db")
    assert {row["model"]: "seconds_per_question" in row for row in entry["metrics"]} == {
        "big": True,
        "small": True,
    }
