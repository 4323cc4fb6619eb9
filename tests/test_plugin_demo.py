"""The embedded default (the packed demo zoo) and the speed-up gate with tiny BERT models.

These run torch: ``flock /tmp/qagate-torch.lock`` when other torch jobs share the machine.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tiny_models import RECIPES, build_tiny_model

ROOT = Path(__file__).resolve().parents[1]


def test_embedded_default_passes_on_a_clean_checkout(tmp_path):
    """`pytest quality_tests/` as a user runs it, with a cold prediction cache."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "quality_tests/gate_release.yaml",
            "-rA",
            "-p",
            "no:cacheprovider",
            "--qagate-cache",
            str(tmp_path / "cache"),
            # the default 60 s timing budget is exercised by quality_tests/ in the same suite;
            # here the point is a green cold-cache run (speedup >= 1.5 is a point rule)
            "--qagate-speed-budget=10",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "minilm3-distilled" in result.stdout and "speedup>=" in result.stdout
    assert "created baseline" not in result.stdout and "regenerated" not in result.stdout


def test_tiny_models_are_deterministic(tmp_path):
    recipe = RECIPES["tiny-student"]
    first = build_tiny_model(tmp_path / "a" / "tiny-student", recipe)
    second = build_tiny_model(tmp_path / "b" / "tiny-student", recipe)
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    build_tiny_model(first, recipe)  # same recipe: nothing rebuilt
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp


def test_speedup_gate_and_latency_fixture(pytester, tmp_path_factory):
    import torch  # noqa: F401  (loaded before pytester snapshots sys.modules)
    import transformers  # noqa: F401

    built = tmp_path_factory.mktemp("tiny-models")
    models = pytester.mkdir("models")
    for name, role in (("tiny-teacher", "teacher"), ("tiny-student", "student")):
        target = build_tiny_model(built / name, RECIPES[name])
        (models / f"{name}.yaml").write_text(
            f"name: {name}\nrole: {role}\nkind: extractive\nsource: {target}\n"
            f"max_seq_len: 256\ndoc_stride: 96\ndevice: cpu\n"
        )
    pytester.makefile(
        ".yaml",
        gate_speed=textwrap.dedent("""\
        rules:
          - apply_to: students
            require: [speedup >= 2, speedup >= 1000, seconds_per_question <= 0.5 * teacher]
        """),
    )
    pytester.makepyfile(
        test_speed="""
        from qagate.assertions import assert_gate

        def test_student_is_faster(students, teacher, qagate_latency):
            for student in students:
                assert_gate("speedup >= 2", None, latency=qagate_latency(student),
                            teacher_latency=qagate_latency(teacher), model=student.name)
        """
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-rA", "--qagate-models", "models", "--qagate-latency-questions", "16"
    )
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    assert "FAILED gate_speed.yaml::tiny-student::speedup>=1000" in out
    assert "qagate gate FAIL: tiny-student :: speedup>=1000 on sample (65 questions)" in out
    assert "PASSED gate_speed.yaml::tiny-student::speedup>=2" in out
