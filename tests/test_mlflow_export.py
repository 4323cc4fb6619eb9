"""``qagate history export --mlflow [URI]`` against a local MLflow file store (issue 27 item 5).

Needs mlflow (the ``mlflow`` extra: mlflow-skinny); skipped with the reason when it is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from qagate import cli
from qagate.store.history import append_run, build_run

SECRET = "hunter2-secret"


def gate(model: str, rule: str, status: str, obtained: float, threshold: float, **extra) -> dict:
    row = {"nodeid": f"quality_tests/gate_release.yaml::{model}::{rule}", "model": model, "rule": rule}
    row.update(metric=rule.split(">")[0].split("<")[0], op=">=", dataset="sample", status=status)
    row.update(obtained=obtained, threshold=threshold, **extra)
    return row


def history(tmp_path: Path, runs: int = 2) -> tuple[Path, list[dict]]:
    path = tmp_path / "history.db"
    made = []
    for n in range(runs):
        run = build_run(
            results=[
                gate(
                    "student",
                    "exact_match>=0.95*teacher@95%",
                    "undecided",
                    75.4,
                    71.6,
                    interval_low=-13.8,
                    interval_high=18.2,
                    level=0.95,
                ),
                gate("student", "speedup>=1.5", "pass", 2.4 + n, 1.5),
                gate("teacher", "f1>=baseline-0.5", "new" if n == 0 else "pass", 86.0, 85.5),
            ],
            metrics=[
                {"model": "student", "dataset": "sample", "exact_match": 75.4, "f1": 85.8},
                {"model": "teacher", "dataset": "sample", "exact_match": 75.4, "f1": 86.0},
            ],
            started=1_700_000_000 + 60 * n,
            exit_status=1,
            rootdir=tmp_path,
            settings={
                "dataset": "sample",
                "gates": {"quality_tests/gate_release.yaml": "sample"},
                "limit": None,
                "models": "qa_models",
                "args": [
                    "quality_tests/",
                    f"--db-password={SECRET}",
                    "--qagate-history",
                    f"postgresql://u:{SECRET}@db/q",
                ],
            },
        )
        run["git"] = {"commit": f"{n}" * 40, "branch": "main", "dirty": False}
        append_run(path, run)
        made.append(run)
    return path, made


@pytest.fixture
def mlflow(monkeypatch):
    found = pytest.importorskip(
        "mlflow", reason="mlflow is not installed (pip install 'pytest-qagate[mlflow]')"
    )
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # what the export sets for a folder
    return found


def runs_in(store: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.as_uri())
    experiment = client.get_experiment_by_name("qagate")
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def test_each_run_becomes_one_mlflow_run_and_export_is_idempotent(mlflow, tmp_path, capsys, monkeypatch):
    path, made = history(tmp_path)
    store = tmp_path / "mlruns"
    monkeypatch.chdir(tmp_path)
    assert cli.main(["history", "export", "--mlflow", str(store), "--history", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 run(s) logged to file://" in out and "(experiment 'qagate'), 0 already there" in out
    logged = runs_in(store)
    assert [r.data.tags["qagate.run_id"] for r in logged] == [run["id"] for run in made]
    first = logged[0]
    assert first.info.run_name == made[0]["id"] and first.info.status == "FINISHED"
    assert first.info.start_time == 1_700_000_000 * 1000
    tags, params, metrics = first.data.tags, first.data.params, first.data.metrics
    assert tags["qagate.outcome"] == "undecided" and tags["mlflow.source.git.commit"] == "0" * 40
    assert tags["qagate.branch"] == "main"
    assert tags["verdict/student/exact_match_ge_0.95xteacher_at_95pct"] == "undecided"
    assert tags["verdict/teacher/f1_ge_baseline-0.5"] == "new"
    assert params["models"] == "student, teacher" and params["settings.dataset"] == "sample"
    assert params["settings.models"] == "qa_models"
    assert SECRET not in str(params) + str(tags)  # masked through the store's mask_secrets
    assert "***" in params["settings.args"]
    assert metrics["gate/student/exact_match_ge_0.95xteacher_at_95pct/obtained"] == 75.4
    assert metrics["gate/student/exact_match_ge_0.95xteacher_at_95pct/interval_low"] == -13.8
    assert metrics["gate/student/speedup_ge_1.5/threshold"] == 1.5
    assert metrics["student/sample/f1"] == 85.8 and metrics["gates/pass"] == 1
    assert logged[1].data.metrics["gate/student/speedup_ge_1.5/obtained"] == pytest.approx(3.4)

    assert cli.main(["history", "export", "--mlflow", str(store), "--history", str(path)]) == 0
    assert "0 run(s) logged" in capsys.readouterr().out and len(runs_in(store)) == 2
    path, _ = history(tmp_path / "more", runs=1)  # a new run in another store: only it is added
    assert cli.main(["history", "export", "--mlflow", str(store), "--history", str(path)]) == 0
    assert "1 run(s) logged" in capsys.readouterr().out and len(runs_in(store)) == 3


def test_the_environment_names_the_tracking_uri_and_filters_apply(mlflow, tmp_path, capsys, monkeypatch):
    path, made = history(tmp_path)
    store = tmp_path / "env-store"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    assert cli.main(["history", "export", "--mlflow", "--last", "1", "--history", str(path)]) == 0
    assert "1 run(s) logged" in capsys.readouterr().out
    assert [r.data.tags["qagate.run_id"] for r in runs_in(store)] == [made[-1]["id"]]


def test_export_needs_a_target_and_says_how_to_install_mlflow(tmp_path, capsys, monkeypatch):
    path, _ = history(tmp_path, runs=1)
    assert cli.main(["history", "export", "--history", str(path)]) == 2
    assert "export to where? (qagate history export --mlflow [URI])" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    assert cli.main(["history", "export", "--mlflow", str(tmp_path / "m"), "--history", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'pytest-qagate[mlflow]'" in err


def test_an_unreachable_server_is_one_line(mlflow, tmp_path, capsys, monkeypatch):
    path, _ = history(tmp_path, runs=1)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    url = f"http://user:{SECRET}@127.0.0.1:9"
    assert cli.main(["history", "export", "--mlflow", url, "--history", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("qagate history: error: MLflow at http://user:***@")
    assert SECRET not in err and "Traceback" not in err


def test_a_database_store_without_the_full_mlflow_says_what_to_install(mlflow, tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("alembic") is not None:
        pytest.skip("the full mlflow (alembic) is installed: a database store works")
    path, _ = history(tmp_path, runs=1)
    url = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert cli.main(["history", "export", "--mlflow", url, "--history", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs the full mlflow package (pip install mlflow)" in err
