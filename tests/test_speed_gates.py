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
    means = {b["name"]: b["stats"]["mean"] for b in stored["benchmarks"]}
    assert {"big", "small"} <= set(means)
    big = next(b for b in stored["benchmarks"] if b["name"] == "big")
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
