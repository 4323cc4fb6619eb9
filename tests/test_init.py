"""``qagate init``: a release gate scaffolded into a project (issue 27 item 3).

The zoo scaffold is run as a user runs it, from an empty folder, with pytest in a subprocess
(torch: one process at a time on shared machines); the rest uses replay models and needs no torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from qagate import cli
from test_plugin import predictions, squad

ZOO = ["--teacher", "zoo:minilm6-squad-teacher", "--student", "zoo:minilm3-squad-distilled"]


def init(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["init", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def replay_project(tmp_path: Path, monkeypatch) -> Path:
    """An existing project: a dataset and two predictions files (replay models), nothing else."""
    (tmp_path / "data.json").write_text(json.dumps(squad()))
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "teacher.json").write_text(json.dumps(predictions(1.0)))
    (tmp_path / "runs" / "student.json").write_text(json.dumps(predictions(0.99)))
    monkeypatch.chdir(tmp_path)
    return tmp_path


REPLAY = ["--teacher", "runs/teacher.json", "--student", "runs/student.json", "--dataset", "data.json"]


def test_the_zoo_scaffold_runs_green_offline_from_an_empty_folder(pytester):
    """Init, then `pytest quality_tests/` twice: the first run writes the baselines and says NEW
    (green, but not a check); the second compares with them and passes."""
    root = Path(pytester.path)
    done = subprocess.run(
        [sys.executable, "-m", "qagate.cli", "init", *ZOO], cwd=root, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "every model is a zoo model, which does not reach the card" in done.stdout
    assert "reports those gates NEW (not a check)" in done.stdout
    gate = (root / "quality_tests" / "gate_release.yaml").read_text()
    assert "exact_match >= 0.75 * teacher" in gate and "confidence: 0.95" in gate
    assert "f1 >= baseline - 0.5" in gate and "`exact_match >= 0.95 * teacher` and `speedup >= 4`" in gate

    def pytest_run(*more: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "quality_tests/", "-rA", "-p", "no:cacheprovider", *more],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=900,
        )

    first = pytest_run("--qagate-speed-budget=10")  # the point speed-up rule needs no long timing
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    out = first.stdout
    assert "exact_match>=0.75*teacher@95%" in out and "speedup>=1.5" in out
    assert "NEW" in out and "f1>=baseline-0.5" in out
    written = sorted(p.name for p in (root / "baselines" / "sample").glob("*.json"))
    assert written == ["minilm3-squad-distilled.json", "minilm6-squad-teacher.json"]
    second = pytest_run("--qagate-speed-budget=10")  # the cached predictions; a shorter timing
    assert second.returncode == 0, second.stdout[-4000:]
    assert "NEW" not in second.stdout.split("gates:")[-1]
    assert "5 passed" in second.stdout  # EM, F1, speed-up of the student; both baselines


def test_nothing_is_overwritten_without_force(replay_project, capsys):
    assert init(capsys, *REPLAY)[0] == 0
    gate = replay_project / "quality_tests" / "gate_release.yaml"
    gate.write_text("# mine\n")
    (replay_project / "qa_models" / "student.yaml").unlink()
    code, out, err = init(capsys, *REPLAY)
    assert code == 2 and out == ""
    assert (
        err.strip()
        == (
            "qagate init: error: qa_models/student.yaml already exists: nothing was written "
            "(pass --force to overwrite it)"
        )
        or "already exists: nothing was written" in err
    )
    assert len(err.strip().splitlines()) == 1
    assert gate.read_text() == "# mine\n"
    assert not (replay_project / "qa_models" / "student.yaml").exists()  # nothing written at all
    assert init(capsys, *REPLAY, "--force")[0] == 0
    assert "speedup >= 4" in gate.read_text() and (replay_project / "qa_models" / "student.yaml").exists()


def test_replay_declarations_ini_and_the_card_by_default(replay_project, capsys):
    code, out, _ = init(capsys, *REPLAY)
    assert code == 0 and "zoo" not in out
    teacher = yaml.safe_load((replay_project / "qa_models" / "teacher.yaml").read_text())
    assert teacher == {
        "name": "teacher",
        "role": "teacher",
        "kind": "replay",
        "source": "../runs/teacher.json",
    }
    assert (replay_project / "pytest.ini").read_text() == (
        "[pytest]\nqagate_models = qa_models\nqagate_dataset = data.json\n"
    )
    gate = yaml.safe_load((replay_project / "quality_tests" / "gate_release.yaml").read_text())
    assert gate["rules"][0]["require"] == ["exact_match >= 0.95 * teacher", "f1 >= 0.95 * teacher"]
    assert gate["rules"][0]["confidence"] == 0.95
    assert gate["rules"][1]["require"] == ["speedup >= 4"]
    # the scaffold is a gate pytest collects: one item per rule and model
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "quality_tests/", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=replay_project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "gate_release.yaml::student::exact_match>=0.95*teacher@95%" in result.stdout
    assert "gate_release.yaml::teacher::f1>=baseline-0.5" in result.stdout


def test_thresholds_names_and_no_ci(replay_project, capsys):
    args = ["--teacher", "big=runs/teacher.json", "--student", "small=runs/student.json", "--ci", "none"]
    code, _, _ = init(capsys, *args, "--em-ratio", "0.9", "--speedup", "2", "--confidence", "0.99")
    assert code == 0
    gate = (replay_project / "quality_tests" / "gate_release.yaml").read_text()
    assert "exact_match >= 0.9 * teacher" in gate and "speedup >= 2" in gate and "confidence: 0.99" in gate
    assert (replay_project / "qa_models" / "big.yaml").exists()
    assert not (replay_project / ".github").exists()
    assert "qagate_dataset = sample" in (replay_project / "pytest.ini").read_text()


@pytest.mark.parametrize(
    ("name", "text", "section"),
    [
        ("pyproject.toml", '[project]\nname = "x"\n', None),
        (
            "pyproject.toml",
            '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n\n[tool.ruff]\nline-length = 99\n',
            1,
        ),
        ("tox.ini", "[tox]\nenvlist = py\n\n[pytest]\naddopts = -q\n", 1),
        ("setup.cfg", "[metadata]\nname = x\n[tool:pytest]\naddopts = -q\n", 1),
    ],
)
def test_the_ini_lines_go_where_pytest_reads_them(replay_project, capsys, name, text, section):
    (replay_project / name).write_text(text)
    assert init(capsys, *REPLAY)[0] == 0
    assert not (replay_project / "pytest.ini").exists()
    from qagate.cli.history import find_ini

    found, _ = find_ini(replay_project)
    assert found == replay_project / name
    written = (replay_project / name).read_text()
    if name == "pyproject.toml":
        tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads TOML")
        options = tomllib.loads(written)["tool"]["pytest"]["ini_options"]
        assert options["qagate_models"] == "qa_models" and options["qagate_dataset"] == "data.json"
        if section:
            assert options["testpaths"] == ["tests"] and tomllib.loads(written)["tool"]["ruff"]
    else:
        import configparser

        parser = configparser.ConfigParser()
        parser.read_string(written)
        part = "pytest" if name == "tox.ini" else "tool:pytest"
        assert parser.get(part, "qagate_dataset") == "data.json" and parser.get(part, "addopts") == "-q"
    import shutil

    for folder in ("qa_models", "quality_tests", ".github"):
        shutil.rmtree(replay_project / folder)
    code, _, err = init(capsys, *REPLAY)  # only the ini keys are there now
    assert code == 2 and "qagate_models is already set" in err and name in err


def test_the_workflow_runs_the_gate_strictly(replay_project, capsys):
    assert init(capsys, *REPLAY)[0] == 0
    flow = yaml.safe_load((replay_project / ".github" / "workflows" / "qagate.yml").read_text())
    runs = [step.get("run", "") for step in flow["jobs"]["gate"]["steps"]]
    assert any(r.startswith("pytest quality_tests/ --qagate-strict") for r in runs)
    assert any("qagate summary --markdown" in r for r in runs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--teacher", "zoo:minilm6-teacher", "--student", "runs/student.json"], "did you mean"),
        (["--teacher", "runs/teacher.json", "--student", "runs/nope.json"], "'runs/nope.json': no such file"),
        (["--teacher", "runs/teacher.json", "--student", "data.txt"], "not a predictions JSON file"),
        (
            [
                "--teacher",
                "runs/teacher.json",
                "--student",
                "x=runs/student.json",
                "--student",
                "x=runs/teacher.json",
            ],
            "two models would be named 'x'",
        ),
        ([*REPLAY[:4], "--dataset", "missing.json"], "--dataset 'missing.json': no such file"),
        ([*REPLAY, "--confidence", "95"], "strictly between 0 and 1"),
        ([*REPLAY, "--dir", "nowhere"], "no such folder"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(replay_project, capsys, args, message):
    (replay_project / "data.txt").write_text("x")
    with pytest.raises(SystemExit) if "--confidence" in args else _nothing():
        code, _, err = init(capsys, *args)
    if "--confidence" in args:
        err = capsys.readouterr().err
    else:
        assert code == 2
        assert len(err.strip().splitlines()) == 1
    assert message in err and "Traceback" not in err
    assert not (replay_project / "qa_models").exists() and not (replay_project / "pytest.ini").exists()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


def test_sources_give_the_kind_and_the_name(replay_project, capsys):
    causal = replay_project / "models" / "tiny-lm"
    causal.mkdir(parents=True)
    (causal / "config.json").write_text(json.dumps({"architectures": ["GPTNeoXForCausalLM"]}))
    encoder = replay_project / "models" / "my-encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"architectures": ["BertForQuestionAnswering"]}))
    args = [
        "--teacher",
        "deepset/roberta-base-squad2",
        "--student",
        "models/tiny-lm",
        "--student",
        "models/my-encoder",
    ]
    assert init(capsys, *args, "--ci", "none")[0] == 0
    declared = {p.stem: yaml.safe_load(p.read_text()) for p in (replay_project / "qa_models").glob("*.yaml")}
    assert declared["roberta-base-squad2"]["source"] == "deepset/roberta-base-squad2"
    assert declared["roberta-base-squad2"]["kind"] == "extractive"
    assert (
        declared["tiny-lm"]["kind"] == "generative" and declared["tiny-lm"]["source"] == "../models/tiny-lm"
    )
    assert "max_seq_len" not in declared["tiny-lm"]
    assert declared["my-encoder"]["kind"] == "extractive" and declared["my-encoder"]["max_seq_len"] == 384
    from qagate.inference.config import load_model_specs

    specs = {spec.name: spec for spec in load_model_specs(replay_project / "qa_models")}
    assert specs["tiny-lm"].source == str(causal) and specs["roberta-base-squad2"].role == "teacher"
