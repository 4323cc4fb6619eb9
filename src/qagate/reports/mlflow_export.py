"""The run history as MLflow runs: ``qagate history export --mlflow [URI]``.

Each gated run becomes one MLflow run in an experiment (default ``qagate``): its start and end
times; **params**: the models it judged and its settings (dataset, gate files, limit, articles,
models folder, the pytest command line, library versions), every value masked through
:func:`qagate.store.target.mask_secrets`; **metrics**: every gated value (each gate's obtained
value, threshold and interval bounds, under ``gate/<model>/<rule>/...``), each model's metrics
(``<model>/<dataset>/<metric>``) and the counts of verdicts; **tags**: the outcome, each gate's
verdict (``verdict/<model>/<rule>``), the commit (MLflow's ``mlflow.source.git.commit`` too),
branch, label, CI job and ``qagate.run_id``.

Exporting again adds nothing: runs whose ``qagate.run_id`` the experiment holds are skipped. The
id tag is written last, after every value, so a run cut off mid-export is exported again whole
(the cut-off one is left without the tag, named ``<id> (incomplete export)``).

mlflow (``pip install 'pytest-qagate[mlflow]'``, which installs mlflow-skinny) is imported only
here, only when an export runs.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qagate.core.errors import QagateError
from qagate.store.target import mask_secrets, mask_url

EXPERIMENT = "qagate"
ID_TAG = "qagate.run_id"
#: MLflow's limits per ``log_batch`` call and on a param's value.
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
MAX_PARAM_VALUE = 6000
_OPS = ((">=", "_ge_"), ("<=", "_le_"), (">", "_gt_"), ("<", "_lt_"), ("*", "x"), ("@", "_at_"), ("%", "pct"))
_BAD = re.compile(r"[^A-Za-z0-9_\-. /]+")


@dataclass
class Exported:
    """What an export did: MLflow run ids of the runs it added, the qagate ids already there."""

    uri: str
    experiment: str
    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)


def key(text: str) -> str:
    """``text`` as an MLflow key (letters, digits, ``_-. /``): rule operators become words, so
    ``f1>=0.9*teacher@95%`` is ``f1_ge_0.9xteacher_at_95pct``."""
    for op, word in _OPS:
        text = text.replace(op, word)
    return _BAD.sub("_", text).strip()[:250] or "_"


def export(runs: Iterable[Mapping[str, Any]], uri: str | None, *, experiment: str = EXPERIMENT) -> Exported:
    """Log ``runs`` (history runs, oldest first) to the MLflow tracking server or store ``uri``
    (None: ``$MLFLOW_TRACKING_URI``, else MLflow's default), each once."""
    client, shown = _client(uri)
    try:
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
        have = existing_ids(client, experiment_id)
        done = Exported(shown, experiment)
        for run in runs:
            run_id = str(run.get("id"))
            if run_id in have:
                done.present.append(run_id)
                continue
            done.added.append(log_run(client, experiment_id, run))
            have.add(run_id)
        return done
    except QagateError:
        raise
    except Exception as exc:  # the server or store refused: one line, the URI masked
        raise _failure(exc, shown) from None


def _client(uri: str | None) -> tuple[Any, str]:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise QagateError(
            "the MLflow export needs mlflow",
            hint="pip install 'pytest-qagate[mlflow]' (or pip install mlflow-skinny)",
        ) from None
    target = uri or os.environ.get("MLFLOW_TRACKING_URI") or None
    if target and _is_local(target):
        # A folder is MLflow's file store, which MLflow 3 keeps in maintenance mode behind this
        # opt-in; naming a folder is asking for it.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        if "://" not in target:
            from pathlib import Path

            target = Path(target).expanduser().resolve().as_uri()
    shown = mask_url(target) if target else "MLflow's default tracking URI"
    try:
        return MlflowClient(tracking_uri=target), shown
    except Exception as exc:
        raise _failure(exc, shown) from None


def _failure(exc: BaseException, shown: str) -> QagateError:
    """What MLflow raised, as one line naming the (masked) URI."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = None
    if isinstance(exc, ImportError):  # mlflow-skinny has no database store (alembic, ...)
        hint = (
            "a database store (sqlite:///..., MLflow 3's default) needs the full mlflow package "
            "(pip install mlflow); mlflow-skinny logs to a tracking server (http://...) or a "
            "folder (--mlflow ./mlruns)"
        )
    return QagateError(f"MLflow at {shown}: {mask_secrets(reason)[:300]}", hint=hint)


def _is_local(uri: str) -> bool:
    return uri.startswith("file:") or "://" not in uri and not uri.startswith(("databricks", "sqlite:"))


def existing_ids(client: Any, experiment_id: str) -> set[str]:
    """The ``qagate.run_id`` tags of the experiment's runs (every page)."""
    ids: set[str] = set()
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=f"tags.`{ID_TAG}` != ''", max_results=1000, page_token=token
        )
        ids.update(str(run.data.tags[ID_TAG]) for run in page if ID_TAG in run.data.tags)
        token = getattr(page, "token", None)
        if not token:
            return ids


def log_run(client: Any, experiment_id: str, run: Mapping[str, Any]) -> str:
    """One history run as one MLflow run; its MLflow run id."""
    from mlflow.entities import Metric, Param, RunTag

    run = mask_secrets(dict(run))
    started = _millis(run.get("started")) or int(time.time() * 1000)
    finished = _millis(run.get("finished")) or started
    run_id = str(run.get("id"))
    created = client.create_run(
        experiment_id, start_time=started, run_name=f"{run_id} (incomplete export)", tags={}
    )
    mlflow_id = created.info.run_id
    metrics = [Metric(name, value, started, 0) for name, value in metric_values(run).items()]
    params = [Param(name, value) for name, value in param_values(run).items()]
    tags = [RunTag(name, value) for name, value in tag_values(run).items()]
    for start in range(0, len(metrics), MAX_METRICS):
        client.log_batch(mlflow_id, metrics=metrics[start : start + MAX_METRICS])
    for start in range(0, len(params), MAX_PARAMS):
        client.log_batch(mlflow_id, params=params[start : start + MAX_PARAMS])
    for start in range(0, len(tags), MAX_TAGS):
        client.log_batch(mlflow_id, tags=tags[start : start + MAX_TAGS])
    client.set_tag(mlflow_id, "mlflow.runName", run_id)
    client.set_tag(mlflow_id, ID_TAG, run_id)  # last: the run is whole
    client.set_terminated(mlflow_id, "FINISHED", end_time=finished)
    return str(mlflow_id)


def metric_values(run: Mapping[str, Any]) -> dict[str, float]:
    """Every gated value, each model's metrics, and the verdict counts, by MLflow key."""
    out: dict[str, float] = {}
    for result in run.get("results") or []:
        if not isinstance(result, Mapping):
            continue
        base = f"gate/{key(str(result.get('model')))}/{key(str(result.get('rule')))}"
        for name in ("obtained", "threshold", "interval_low", "interval_high"):
            number = _number(result.get(name))
            if number is not None:
                out[f"{base}/{name}"] = number
    for row in run.get("metrics") or []:
        if not isinstance(row, Mapping):
            continue
        base = f"{key(str(row.get('model')))}/{key(str(row.get('dataset')))}"
        for name, value in row.items():
            number = _number(value)
            if name not in ("model", "dataset") and number is not None:
                out[f"{base}/{key(str(name))}"] = number
    for status, count in (run.get("counts") or {}).items():
        number = _number(count)
        if number is not None:
            out[f"gates/{key(str(status))}"] = number
    return out


def param_values(run: Mapping[str, Any]) -> dict[str, str]:
    """The models judged and the run's settings, as text (masked, within MLflow's limits)."""
    models = sorted(
        {str(r.get("model")) for r in run.get("results") or [] if isinstance(r, Mapping) and r.get("model")}
        | {str(m.get("model")) for m in run.get("metrics") or [] if isinstance(m, Mapping) and m.get("model")}
        - {"-"}
    )
    out = {"models": ", ".join(models)}
    for name, value in (run.get("settings") or {}).items():
        if value is None:
            continue
        if name == "args" and isinstance(value, list):
            import shlex

            text = shlex.join(str(v) for v in value)
        elif isinstance(value, (dict, list)):
            text = json.dumps(value, sort_keys=True, ensure_ascii=False)
        else:
            text = str(value)
        out[f"settings.{key(str(name))}"] = text
    for name in ("python", "qagate"):
        if run.get(name):
            out[f"version.{name}"] = str(run[name])
    for name, version in (run.get("packages") or {}).items():
        out[f"version.{key(str(name))}"] = str(version)
    masked = mask_secrets(out)
    return {name: _bounded(str(value)) for name, value in masked.items() if str(value)}


def tag_values(run: Mapping[str, Any]) -> dict[str, str]:
    """Outcome, verdicts, commit, branch, label, CI job (not the id tag: :func:`log_run` sets it last)."""
    git = run.get("git") or {}
    out: dict[str, Any] = {
        "qagate.outcome": run.get("outcome"),
        "qagate.exit_status": run.get("exit_status"),
        "qagate.partial": run.get("partial"),
        "qagate.incomplete": run.get("incomplete"),
        "qagate.commit": git.get("commit"),
        "mlflow.source.git.commit": git.get("commit"),
        "qagate.branch": git.get("branch"),
        "mlflow.source.git.branch": git.get("branch"),
        "qagate.dirty": git.get("dirty"),
        "qagate.label": run.get("label"),
        "qagate.ci_url": run.get("ci_url"),
        "qagate.machine": run.get("host"),
    }
    for result in run.get("results") or []:
        if isinstance(result, Mapping):
            out[f"verdict/{key(str(result.get('model')))}/{key(str(result.get('rule')))}"] = result.get(
                "status"
            )
    masked = mask_secrets(
        {name: str(value).lower() if isinstance(value, bool) else value for name, value in out.items()}
    )
    return {name: _bounded(str(value)) for name, value in masked.items() if value not in (None, "")}


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_PARAM_VALUE else text[: MAX_PARAM_VALUE - 3] + "..."


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def _millis(text: Any) -> int | None:
    """An ISO 8601 UTC time (``2026-12-07T06:25:39Z``) in milliseconds since the epoch."""
    if not isinstance(text, str):
        return None
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)
