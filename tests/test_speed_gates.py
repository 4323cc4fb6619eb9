"""Speed rules judge pytest-benchmark's records: one clock, paired rounds, intervals."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def speed_project(request, tiny_qa_model_dir):
    pytest.importorskip("torch")
    # Build the models (importing torch) before pytester snapshots sys.modules.
    sources = {
        name: tiny_qa_model_dir(layers=layers, hidden=64) for name, layers in (("big", 4), ("small", 1))
    }
    pytester = request.getfixturevalue("pytester")
    for name, role in (("big", "teacher"), ("small", "student")):
        declaration = (
            f"name: {name}\nrole: {role}\nkind: extractive\nsource: {sources[name]}\n"
            "device: cpu\nmax_seq_len: 128\ndoc_stride: 32\n"
        )
        pytester.makefile(".yaml", **{f"qa_models/{name}": declaration})
    pytester.makefile(
        ".yaml",
        gate_speed=(
            "dataset: {source: sample, limit: 8}\nrules:\n  - apply_to: students\n    require:\n"
            "      - speedup >= 0.01\n      - rule: speedup >= 0.02\n        confidence: 0.95\n"
            "      - seconds_per_question <= 10\n      - latency_p95 <= 10 * teacher\n"
        ),
    )
    return pytester


def test_the_judged_speedup_is_the_ratio_of_the_stored_benchmark_stats(speed_project):
    result = speed_project.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--benchmark-json=bench.json",
        "--junitxml=junit.xml",
        "--qagate-latency-questions",
        "4",
        "--qagate-speed-budget",
        "5",
    )
    result.assert_outcomes(passed=4)
    stored = json.loads((speed_project.path / "bench.json").read_text())
    batched = [b for b in stored["benchmarks"] if b["extra_info"]["kind"] == "batched"]
    means = {b["name"]: b["stats"]["mean"] for b in batched}
    assert {"big", "small"} <= set(means)
    big = next(b for b in batched if b["name"] == "big")
    assert big["extra_info"]["declaration"]["role"] == "teacher" and big["extra_info"]["questions"] == 4
    import xml.etree.ElementTree as ET

    judged = {}
    for case in ET.parse(speed_project.path / "junit.xml").iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        judged[props.get("qagate.rule")] = props
    assert float(judged["speedup>=0.01"]["qagate.obtained"]) == pytest.approx(means["big"] / means["small"])
    assert "qagate.interval_low" in judged["speedup>=0.02@95%"]


def test_speed_rules_are_skipped_without_the_benchmark_clock(speed_project):
    result = speed_project.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-disable", "-rs")
    result.assert_outcomes(skipped=4)
    assert "never judged" in result.stdout.str() or "not judged on another clock" in result.stdout.str()


# --- speed regressions against a stored run (--benchmark-compare) -----------------------------

SLOW_CONFTEST = """
import os, time
from qagate.inference.extractive import ExtractiveModel

_predict = ExtractiveModel.predict


def _slowed(self, examples, progress=None):
    # every model does 10 ms of work per question: the tiny models alone answer in well under a
    # millisecond, where a busy machine's scheduling jitter alone moved a round 10x (flaky)
    time.sleep(0.01 * len(examples))
    if self.name == os.environ.get("QAGATE_TEST_SLOW"):
        time.sleep(0.05 * len(examples))  # a regression of this model only: 6x
    return _predict(self, examples, progress=progress)


ExtractiveModel.predict = _slowed
"""

REGRESSION_GATE = (
    "dataset: {source: sample, limit: 8}\nrules:\n"
    "  - apply_to: big\n    require:\n      - seconds_per_question <= 3 * baseline\n"
    "  - apply_to: small\n    require:\n      - seconds_per_question <= 3 * baseline\n"
    "      - latency_p50 <= 3 * baseline\n"
)


@pytest.fixture
def compare_project(speed_project):
    speed_project.makeconftest(SLOW_CONFTEST)
    speed_project.makefile(".yaml", gate_speed=REGRESSION_GATE)
    return speed_project


def _run(project, *args, slow=""):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QAGATE_TEST_SLOW", slow)
        return project.runpytest_subprocess(
            "-p",
            "no:cacheprovider",
            "-rs",
            "--junitxml=junit.xml",
            "--benchmark-storage=file://stored",
            "--qagate-latency-questions",
            "4",
            "--qagate-speed-budget",
            "2",
            *args,
        )


def _verdicts(project) -> dict[str, str]:
    import xml.etree.ElementTree as ET

    out = {}
    for case in ET.parse(project.path / "junit.xml").iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        status = (
            "fail"
            if case.find("failure") is not None
            else "skip"
            if case.find("skipped") is not None
            else "pass"
        )
        out[f"{props.get('qagate.model')}::{props.get('qagate.rule')}"] = status
    return out


def test_benchmark_compare_catches_the_slowed_model_only(compare_project):
    stored = _run(compare_project, "--benchmark-autosave")
    stored.assert_outcomes(skipped=3)  # nothing to compare with yet: skipped with the reason
    assert "--benchmark-compare" in stored.stdout.str()
    # it was passed: no advice to pass it, but what the next compare will use
    assert "this run is stored: the next --benchmark-compare uses it" in stored.stdout.str()
    assert "store runs with --benchmark-autosave" not in stored.stdout.str()
    assert list((compare_project.path / "stored").rglob("*.json")), "the run was not stored"

    same = _run(compare_project, "--benchmark-compare")
    same.assert_outcomes(passed=3)

    slowed = _run(compare_project, "--benchmark-compare", slow="small")
    slowed.assert_outcomes(passed=1, failed=2)
    assert _verdicts(compare_project) == {
        "big::seconds_per_question<=3*baseline": "pass",
        "small::seconds_per_question<=3*baseline": "fail",
        "small::latency_p50<=3*baseline": "fail",
    }
    assert "compared with run 0001" in slowed.stdout.str()


def test_a_run_stored_on_another_machine_is_refused_unless_overridden(compare_project):
    _run(compare_project, "--benchmark-autosave").assert_outcomes(skipped=3)
    stored = next((compare_project.path / "stored").rglob("*.json"))
    data = json.loads(stored.read_text())
    data["machine_info"]["cpu"]["brand_raw"] = "Imaginary CPU 9000"
    data["machine_info"]["qagate_gpus"] = ["NVIDIA H200"]
    stored.write_text(json.dumps(data))

    refused = _run(compare_project, "--benchmark-compare")
    refused.assert_outcomes(failed=3)
    line = next(x for x in refused.stdout.lines if "do not carry across machines" in x)
    assert "Imaginary CPU 9000" in line and "NVIDIA H200" in line

    _run(compare_project, "--benchmark-compare", "--qagate-compare-any-machine").assert_outcomes(passed=3)
