"""``pytest --collect-only`` must not import torch, transformers or datasets.

The plugin is loaded by every pytest run (entry point), so its start-up cost is paid by every
test suite in an environment where qagate is installed; heavy libraries load only inside the
fixtures and gate items that run a model. Checked in a fresh interpreter, as Hypothesis does.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "datasets")
PROBE = textwrap.dedent("""\
    import sys, pytest
    rc = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[1:]])
    print("HEAVY=" + ",".join(m for m in %r if m in sys.modules))
    sys.exit(int(rc))
    """ % (HEAVY,))


def collect(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def heavy_modules(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stdout.splitlines() if line.startswith("HEAVY=")]
    assert lines, result.stdout + result.stderr
    return lines[-1][len("HEAVY="):]


def test_collecting_the_embedded_gate_imports_nothing_heavy():
    result = collect(ROOT, "quality_tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gate_release.yaml::demo-student::" in result.stdout
    assert heavy_modules(result) == ""


def test_collecting_gate_files_and_fixture_tests_imports_nothing_heavy(tmp_path):
    (tmp_path / "models").mkdir()
    for name, role in (("t", "teacher"), ("s", "student")):
        (tmp_path / "models" / f"{name}.yaml").write_text(
            f"name: {name}\nrole: {role}\nkind: extractive\nsource: ./{name}-weights\n")
    (tmp_path / "gate_x.yaml").write_text(
        "rules:\n  - apply_to: students\n    require: [speedup >= 2, f1 >= baseline - 1]\n")
    (tmp_path / "test_x.py").write_text(
        "def test_each(qa_model, qagate_eval, qagate_latency):\n    pass\n")
    result = collect(tmp_path, "--qagate-models", "models")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gate_x.yaml::s::speedup>=2" in result.stdout
    assert "test_x.py::test_each[t]" in result.stdout
    assert heavy_modules(result) == ""


def test_collecting_the_whole_repository_imports_nothing_heavy():
    result = collect(ROOT)
    assert result.returncode in (0, pytest.ExitCode.NO_TESTS_COLLECTED), result.stdout[-3000:]
    assert heavy_modules(result) == "", "a test module or plugin imports a heavy library at import time"
