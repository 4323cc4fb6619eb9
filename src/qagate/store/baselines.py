"""Stored baselines: ``<baselines>/<dataset name>/<model name>.json``, one per model and dataset.

A baseline is plain, diffable JSON (sorted keys, floats rounded to 6 decimals) with a schema
version, the quality metrics (never timings: latency does not carry across machines, so speed
is gated by ratios measured in the same run) and provenance: which dataset (name and content
fingerprint), which weights (the model's fingerprint), which library versions and engine
settings produced it. Slice values (``f1[question=how_many]`` in :attr:`Baseline.metrics`) are
stored apart, under ``"slices": {"question=how_many": {"f1": ...}}``, which older readers
ignore; a file without it is a baseline without slice values. The per-question scores the
baseline's numbers are the means of are kept under ``"questions"``, in the compact format of
:mod:`qagate.store.questions` without their ids (a baseline is only compared on data with its
fingerprint, whose ids they are): 6-12 KB per 10,000 questions. They let a baseline rule with
``confidence:`` be judged paired per question; a file without them (written before qagate kept
them) is judged as a point comparison, and says so. Writes are atomic (a temporary
file in the same folder, then ``os.replace``), so a killed run never leaves half a file.
Standard library only.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from qagate.core.errors import QagateError
from qagate.core.files import atomic_write_text
from qagate.store.questions import FORMAT, QuestionFormatError, QuestionScores

SCHEMA_VERSION = 1
DECIMALS = 6
ENGINE_SETTINGS = ("kind", "revision", "max_seq_len", "doc_stride", "max_answer_len", "dtype")

_WRITE_LOCK = threading.Lock()
_SLICE_KEY = re.compile(r"(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\[(?P<slice>[^\[\]]+)\]")


@dataclass(frozen=True)
class Baseline:
    """A stored baseline: its metrics, provenance and (``questions``, encoded) per-question scores."""

    path: Path
    metrics: dict[str, float]
    provenance: dict[str, Any]
    questions: dict[str, Any] | None = None

    def question_scores(self, ids: Any) -> QuestionScores:
        """The stored per-question scores, on ``ids`` (the questions of the data this baseline is
        compared on, which has its fingerprint); a QagateError naming the file when they are not
        these questions' or are damaged. Only for a baseline whose ``questions`` is not None."""
        try:
            return QuestionScores.decode(self.questions, ids)
        except QuestionFormatError as exc:
            raise QagateError(
                f"baseline per-question scores: {exc}",
                path=self.path,
                hint="rewrite it with --qagate-update-baselines (or --qagate-regen-all)",
            ) from None

    @property
    def dataset_fingerprint(self) -> str | None:
        return (self.provenance.get("dataset") or {}).get("fingerprint")

    @property
    def model_fingerprint(self) -> str | None:
        return (self.provenance.get("model") or {}).get("fingerprint")


#: Longest safe name kept as it is; a longer one is cut and given a hash of the whole name, so the
#: file name (and the temporary file beside it while it is written) stays under 255 bytes.
MAX_SAFE_NAME = 200


def safe_name(name: str) -> str:
    """A file-name-safe form of a dataset or model name (letters, digits, ``.``, ``_``, ``-``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or "unnamed"
    if len(cleaned) > MAX_SAFE_NAME:
        import hashlib

        digest = hashlib.sha256(str(name).encode("utf-8", "surrogatepass")).hexdigest()[:12]
        cleaned = f"{cleaned[: MAX_SAFE_NAME - 13]}-{digest}"
    return cleaned


def baseline_path(root: Path, dataset_name: str, model_name: str) -> Path:
    return Path(root) / safe_name(dataset_name) / f"{safe_name(model_name)}.json"


def load_baseline(path: Path) -> Baseline | None:
    """The stored baseline, or None when there is none; a damaged file is a QagateError."""
    path = Path(path)
    fix = "delete it and run with --qagate-update-baselines to write a fresh one"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise QagateError(f"cannot read baseline: {exc}", path=path, hint=fix) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QagateError(
            f"baseline is not valid JSON ({exc.msg} at line {exc.lineno}); the "
            f"file is damaged or half-written",
            path=path,
            hint=fix,
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise QagateError("baseline has no 'metrics' object", path=path, hint=fix)
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise QagateError(
            f"baseline schema_version {version!r} is not the supported {SCHEMA_VERSION}", path=path, hint=fix
        )
    metrics = {}
    for key, value in data["metrics"].items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise QagateError(f"baseline metric {key!r} is not a number: {value!r}", path=path, hint=fix)
        metrics[key] = float(value)
    slices = data.get("slices", {})
    if not isinstance(slices, dict) or not all(isinstance(v, dict) for v in slices.values()):
        raise QagateError("baseline 'slices' is not an object of slice -> metrics", path=path, hint=fix)
    for name, values in slices.items():
        for key, value in values.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise QagateError(
                    f"baseline slice {name!r} metric {key!r} is not a number: {value!r}", path=path, hint=fix
                )
            metrics[f"{key}[{name}]"] = float(value)
    provenance = data.get("provenance")
    questions = data.get("questions")
    if questions is not None and (not isinstance(questions, dict) or questions.get("format") != FORMAT):
        raise QagateError(
            f"baseline 'questions' is not per-question scores of format {FORMAT}", path=path, hint=fix
        )
    return Baseline(path, metrics, provenance if isinstance(provenance, dict) else {}, questions)


def write_baseline(
    path: Path,
    metrics: Mapping[str, float | None],
    provenance: Mapping[str, Any],
    questions: QuestionScores | None = None,
) -> Baseline:
    """Write atomically the metrics given (the caller chooses them from the metric registry) and,
    when given, the per-question scores they come from (kept without their ids)."""
    path = Path(path)
    kept = {
        k: v if isinstance(v, int) and not isinstance(v, bool) else _round(float(v))
        for k, v in metrics.items()
        if v is not None
    }
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "metrics": {k: v for k, v in kept.items() if not _SLICE_KEY.fullmatch(k)},
        "provenance": _rounded(dict(provenance)),
    }
    slices: dict[str, dict[str, float]] = {}
    for key, value in kept.items():
        found = _SLICE_KEY.fullmatch(key)
        if found:
            slices.setdefault(found["slice"], {})[found["metric"]] = value
    if slices:
        document["slices"] = slices
    if questions is not None:
        document["questions"] = questions.encode(with_ids=False)
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    with _WRITE_LOCK:
        atomic_write_text(path, text)
    return Baseline(path, kept, dict(document["provenance"]), document.get("questions"))


def make_provenance(
    *,
    dataset_name: str,
    dataset_fingerprint: str,
    dataset_size: int,
    model_name: str,
    model_fingerprint: str,
    engine: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What produced a baseline: dataset, weights, engine settings, library versions, time."""
    return {
        "created_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "dataset": {"name": dataset_name, "fingerprint": dataset_fingerprint, "questions": dataset_size},
        "model": {
            "name": model_name,
            "fingerprint": model_fingerprint,
            **{k: v for k, v in dict(engine or {}).items() if v is not None},
        },
        "versions": {
            name: _version(dist)
            for name, dist in (
                ("qagate", "pytest-qagate"),
                ("transformers", "transformers"),
                ("torch", "torch"),
            )
        },
    }


def provenance_notes(
    baseline: Baseline, *, dataset_fingerprint: str | None, model_fingerprint: str | None
) -> tuple[list[str], list[str]]:
    """(blocking, informational) differences between a stored baseline and this run.

    A different dataset makes the numbers incomparable: blocking, and so is a fingerprint that
    either side lacks (a baseline written without knowing its data, or a comparison that does
    not say which data it is on): nothing shows the numbers are comparable. Different weights are
    what a baseline rule exists to judge (a retrained model against the last accepted one), so
    they are reported but do not fail by themselves.
    """
    blocking, info = [], []
    stored = baseline.dataset_fingerprint
    if not stored or not dataset_fingerprint or stored != dataset_fingerprint:
        what = "a different dataset" if stored and dataset_fingerprint else "no known dataset"
        blocking.append(
            f"baseline {baseline.path} was recorded on {what} (fingerprint {_short(stored)}, this run "
            f"{_short(dataset_fingerprint)}): the numbers are not comparable; if the dataset is the "
            f"intended one, rewrite the baseline on it with --qagate-update-baselines"
        )
    weights = baseline.model_fingerprint
    if weights and model_fingerprint and weights != model_fingerprint:
        info.append(
            f"baseline recorded with model fingerprint {weights[:12]}, this run has "
            f"{model_fingerprint[:12]} (different weights or engine settings)"
        )
    return blocking, info


def _short(fingerprint: str | None) -> str:
    return fingerprint[:12] if fingerprint else "none"


def _round(value: float) -> float:
    return round(value, DECIMALS)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return _round(value)
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
