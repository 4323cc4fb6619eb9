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
PROBE = textwrap.dedent(
    """\
    import sys, traceback, pytest
    HEAVY = __HEAVY__
    first = []

    class Spy:  # records who imports a heavy package first, then lets the import go on
        def find_spec(self, name, path=None, target=None):
            if name in HEAVY and not first:
                frames = [f for f in traceback.extract_stack()[:-1] if "importlib" not in f.filename]
                first.append(" <- ".join(f"{f.filename}:{f.lineno}" for f in frames[-4:]))
            return None

    sys.meta_path.insert(0, Spy())
    rc = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[1:]])
    print("HEAVY=" + ",".join(m for m in HEAVY if m in sys.modules))
    print("FIRST=" + (first[0] if first else ""))
    sys.exit(int(rc))
    """
).replace("__HEAVY__", repr(HEAVY))


def collect(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def heavy_modules(result: subprocess.CompletedProcess) -> str:
    """The heavy packages imported, with the first importer (file:line chain) when any."""
    lines = [line for line in result.stdout.splitlines() if line.startswith("HEAVY=")]
    first = [line for line in result.stdout.splitlines() if line.startswith("FIRST=")]
    assert lines and first, result.stdout + result.stderr
    heavy = lines[-1][len("HEAVY=") :]
    return f"{heavy} (first imported from {first[-1][len('FIRST=') :]})" if heavy else ""


def test_collecting_the_embedded_gate_imports_nothing_heavy():
    result = collect(ROOT, "quality_tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gate_release.yaml::minilm3-distilled::" in result.stdout
    assert heavy_modules(result) == ""


def test_collecting_gate_files_and_fixture_tests_imports_nothing_heavy(tmp_path):
    (tmp_path / "models").mkdir()
    for name, role in (("t", "teacher"), ("s", "student")):
        (tmp_path / "models" / f"{name}.yaml").write_text(
            f"name: {name}\nrole: {role}\nkind: extractive\nsource: ./{name}-weights\n"
        )
        (tmp_path / "models" / f"{name}-weights").mkdir()  # a missing source is a collection error
    (tmp_path / "gate_x.yaml").write_text(
        "rules:\n  - apply_to: students\n    require: [speedup >= 2, f1 >= baseline - 1]\n"
    )
    (tmp_path / "test_x.py").write_text("def test_each(qa_model, qagate_eval, qagate_latency):\n    pass\n")
    result = collect(tmp_path, "--qagate-models", "models")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gate_x.yaml::s::speedup>=2" in result.stdout
    assert "test_x.py::test_each[t]" in result.stdout
    assert heavy_modules(result) == ""


def test_collecting_the_whole_repository_imports_nothing_heavy():
    result = collect(ROOT)
    assert result.returncode in (0, pytest.ExitCode.NO_TESTS_COLLECTED), result.stdout[-3000:]
    assert heavy_modules(result) == "", "a test module or conftest imports a heavy library at import time"
