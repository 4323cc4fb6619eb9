"""Load QA datasets and prediction files: SQuAD JSON, JSON Lines, parquet/arrow, the hub.

Validation of answer offsets and deterministic subsets happen here; one-line errors name the
file and item. Standard library only at module level (``datasets`` is imported lazily).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from qagate.core.errors import QagateError, quote
from qagate.core.files import check_user_file, path_problem, read_user_text
from qagate.data.examples import build_examples, check_text, kind_of, preview, subset
from qagate.data.mlqa import check_language, language_of
from qagate.data.records import SAMPLE, Dataset, sample_path


def load_dataset(
    spec: str | os.PathLike,
    *,
    limit: int | None = None,
    seed: int | None = None,
    articles: tuple[int, int] | None = None,
    split: str | None = None,
    strict: bool = True,
    language: str | None = None,
) -> Dataset:
    """Load, validate and (optionally) subset a QA dataset.

    ``spec`` is ``"sample"`` (the built-in sample), ``"hf:<hub id>"`` (Hugging Face
    ``datasets``; ``split`` defaults to ``"validation"``), or a path: official SQuAD JSON
    (v1.1 or v2.0), JSON Lines (``.jsonl``/``.ndjson``, or a ``.json`` file holding a list of
    records), or ``.parquet``/``.arrow`` (read through ``datasets``).

    Subsets are deterministic: ``articles=(lo, hi)`` keeps articles ``lo..hi`` inclusive (file
    order), then ``limit=N`` keeps the first N questions, or, with ``seed``, a seeded sample of
    N kept in file order. ``seed`` without ``limit`` changes nothing. Records (JSON Lines,
    ``datasets``) take their article numbers from the first appearance of each title, and a
    record without answers is unanswerable (SQuAD v2.0).

    Every reference answer must equal ``context[answer_start:answer_start + len(text)]``.
    ``strict=False`` re-locates a mismatching answer at the occurrence of its text nearest to
    the given offset (for hand-made or converted files); an answer whose text does not occur in
    its context is always an error.

    MLQA files (``dev-context-de-question-es.json``) get the context's language from their name;
    ``language`` sets it for any file. A dataset with a language is scored as MLQA's official
    script scores it.
    """
    spec_text = os.fspath(spec)
    if split is not None and not spec_text.startswith("hf:"):
        raise QagateError(
            "split only applies to hf:<hub id> datasets",
            path=spec_text,
            hint="drop the split, or load the split's own file",
        )
    if spec_text == SAMPLE:
        name, source, version, records = SAMPLE, str(sample_path()), *_read_squad(sample_path())
    elif spec_text.startswith("hf:"):
        hub_id = spec_text[3:]
        split = split or "validation"
        records = _read_hub(hub_id, split)
        name, source, version = _safe_name(f"{hub_id}-{split}"), spec_text, "1.1"
    else:
        path = Path(spec_text)
        version, records = _read_path(path)
        name, source = _safe_name(path.stem if path.is_file() else path.name), str(path)
    examples = build_examples(records, source, strict=strict)
    if any(ex.is_impossible for ex in examples):
        version = "2.0"
    if language is not None:
        language = check_language(language, spec_text)
    elif spec_text != SAMPLE and not spec_text.startswith("hf:"):
        language = language_of(spec_text)
    examples, suffix = subset(examples, source, limit=limit, seed=seed, articles=articles)
    return Dataset(name=name + suffix, source=source, examples=examples, version=version, language=language)


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file, turning every way it can be unreadable into a one-line QagateError."""
    text = _read_text(path)
    return _loads(text, path)


def read_json_object(path: str | os.PathLike, mapping: str, *, hint: str) -> dict[str, Any]:
    """A JSON file that must hold one object (``mapping`` says of what to what); one line naming
    the file when it holds anything else."""
    obj = read_json(path)
    if not isinstance(obj, dict):
        raise QagateError(
            f"expected a JSON object mapping {mapping}, found {kind_of(obj)}", path=path, hint=hint
        )
    return obj


def read_label_file(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """A side file of labels: a JSON object ``{"<question id>": {"<key>": "<value>"}}``."""
    from qagate.data.slices import check_labels

    obj = read_json_object(
        path, "question id -> labels", hint='write {"<question id>": {"domain": "legal"}, ...}'
    )
    return {
        str(qid): dict(check_labels(labels, path, f"question {quote(qid)}")) for qid, labels in obj.items()
    }


def load_predictions(path: str | os.PathLike) -> dict[str, str]:
    """Read an official SQuAD predictions file: one JSON object, question id -> answer text."""
    obj = read_json_object(
        path, "question id -> answer text", hint='write {"<question id>": "<answer text>", ...}'
    )
    for key, value in obj.items():
        check_text(key, path, quote(key), "question id")
        if isinstance(value, str):
            check_text(value, path, quote(key), "answer")
    bad = [key for key, value in obj.items() if not isinstance(value, str)]
    if bad:
        hint = 'each value must be the answer text; use "" for no answer'
        if "data" in obj and isinstance(obj.get("data"), list):
            hint = "this looks like a SQuAD dataset file: give the dataset first, predictions second"
        first = obj[bad[0]]
        raise QagateError(
            f"{len(bad)} prediction(s) are not strings ({preview(bad)}; {quote(bad[0])} is {kind_of(first)})",
            path=path,
            hint=hint,
        )
    return obj


# --- reading files -------------------------------------------------------------------------


def _read_text(path: str | os.PathLike) -> str:
    text = read_user_text(path)
    if not text.strip():
        raise QagateError("file is empty", path=path)
    return text


#: Python refuses to turn longer digit strings into integers (CVE-2020-10735); say so in one line.
MAX_INT_DIGITS = 4300


class _NumberTooLong(Exception):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise _NumberTooLong(len(text))
    return int(text)


def _loads(text: str, path: object, line_offset: int = 0) -> Any:
    """``json.loads`` with every way it fails as one QagateError naming the file (and line)."""
    line = f" (line {line_offset + 1})" if line_offset else ""
    try:
        return json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise _json_error(exc, text, path, line_offset=line_offset) from None
    except _NumberTooLong as exc:
        raise QagateError(
            f"a number{line} has {exc.digits} digits (at most {MAX_INT_DIGITS})", path=path
        ) from None
    except RecursionError:
        raise QagateError(
            f"JSON{line} is nested too deeply (lists or objects ~1,000 levels deep)", path=path
        ) from None


def _json_error(exc: json.JSONDecodeError, text: str, path: object, line_offset: int = 0) -> QagateError:
    where = f"line {exc.lineno + line_offset}, column {exc.colno}"
    # A string that runs to the end of the text is "unterminated" (raw newlines are invalid
    # inside JSON strings), so it means truncation just as an error at the very end does.
    if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
        return QagateError(f"JSON ends early at {where} ({exc.msg}); the file looks truncated", path=path)
    return QagateError(f"not valid JSON at {where}: {exc.msg}", path=path)


def _read_path(path: Path) -> tuple[str, list[dict]]:
    """(file version, raw records) for a local file, by extension and content."""
    suffix = path.suffix.lower()
    if not os.path.lexists(path) and path_problem(path) is None:
        raise QagateError(
            "no such file",
            path=path,
            hint=f"give a SQuAD .json, .jsonl or .parquet file, {SAMPLE!r}, or hf:<hub id>",
        )
    check_user_file(path, "dataset")
    if suffix in (".parquet", ".arrow"):
        return "1.1", _read_local_with_datasets(path, suffix)
    if suffix in (".jsonl", ".ndjson"):
        return "1.1", _read_json_lines(path)
    text = _read_text(path)
    try:
        obj = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # a .json file holding JSON Lines (datasets' to_json)
            return "1.1", _records_from_lines(text, path)
        obj = _loads(text, path)  # raises the one-line error
    except (_NumberTooLong, RecursionError):
        obj = _loads(text, path)
    if isinstance(obj, dict) and "data" in obj:
        return _squad_records(obj, path)
    if isinstance(obj, list):
        return "1.1", [_user_record(r, path, f"record {i}") for i, r in enumerate(obj)]
    raise QagateError(
        f'expected official SQuAD JSON (an object with a "data" list) or a list '
        f"of question records, found {kind_of(obj)}"
        + (f" with keys {preview(list(obj))}" if isinstance(obj, dict) else ""),
        path=path,
    )


def _read_squad(path: Path) -> tuple[str, list[dict]]:
    obj = read_json(path)
    if not (isinstance(obj, dict) and "data" in obj):
        raise QagateError('expected official SQuAD JSON: an object with a "data" list', path=path)
    return _squad_records(obj, path)


def _read_json_lines(path: Path) -> list[dict]:
    return _records_from_lines(_read_text(path), path)


def _records_from_lines(text: str, path: Path) -> list[dict]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        obj = _loads(line, path, line_offset=number - 1)
        records.append(_user_record(obj, path, f"line {number}"))
    return records


def _read_local_with_datasets(path: Path, suffix: str) -> list[dict]:
    import datasets  # heavy: only for the files that need it

    builder = "parquet" if suffix == ".parquet" else "arrow"
    try:
        table = datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as exc:  # datasets raises many types; the user needs the one line
        raise QagateError(f"cannot read with datasets: {_first_line(exc)}", path=path) from None
    return _records_from_columns(table, path)


def _read_hub(hub_id: str, split: str) -> list[dict]:
    if not hub_id:
        raise QagateError("empty hub id", path="hf:", hint="write hf:<hub id>, e.g. hf:squad")
    import datasets

    try:
        table = datasets.load_dataset(hub_id, split=split)
    except Exception as exc:
        raise QagateError(
            f"cannot load split {split!r} from the Hugging Face hub: {_first_line(exc)}",
            path=f"hf:{hub_id}",
            hint="check the id and split, and that the hub (or its cache) is reachable",
        ) from None
    return _records_from_columns(table, f"hf:{hub_id}")


def _records_from_columns(table: Any, source: object) -> list[dict]:
    missing = [c for c in ("id", "context", "question", "answers") if c not in table.column_names]
    if missing:
        raise QagateError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(table.column_names)}",
            path=source,
            hint="expected the SQuAD schema: id, title, context, question, answers",
        )
    return [_user_record(record, source, f"row {n}") for n, record in enumerate(table.to_list())]


# --- shapes --------------------------------------------------------------------------------


def _squad_records(obj: dict, path: object) -> tuple[str, list[dict]]:
    """Flatten official SQuAD JSON into one record per question, checking its shape."""
    data = obj["data"]
    if not isinstance(data, list):
        raise QagateError(f'"data" must be a list of articles, found {kind_of(data)}', path=path)
    version = "2.0" if str(obj.get("version", "")).lstrip("v").startswith("2") else "1.1"
    records = []
    for a, article in enumerate(data):
        where = f"data[{a}]"
        article = _require_object(article, path, where)
        title = article.get("title", "")
        paragraphs = _require_list(article, "paragraphs", path, where)
        for p, paragraph in enumerate(paragraphs):
            pwhere = f"{where}.paragraphs[{p}]"
            paragraph = _require_object(paragraph, path, pwhere)
            if "context" not in paragraph:
                raise QagateError('missing "context"', path=path, item=pwhere)
            for q, qa in enumerate(_require_list(paragraph, "qas", path, pwhere)):
                qa = _require_object(qa, path, f"{pwhere}.qas[{q}]")
                records.append(
                    {
                        "id": qa.get("id"),
                        "title": title,
                        "context": paragraph["context"],
                        "question": qa.get("question"),
                        "answers": qa.get("answers"),
                        "is_impossible": qa.get("is_impossible", False),
                        "_article": a,
                        "_where": f"{pwhere}.qas[{q}]",
                    }
                )
    return version, records


def _require_object(value: Any, path: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise QagateError(f"expected a JSON object, found {kind_of(value)}", path=path, item=where)
    return value


def _user_record(value: Any, path: object, where: str) -> dict:
    """A question record from a user's file, without the fields the loaders use internally
    (``_article``, ``_where``: SQuAD JSON's article number and location), which a record must
    not be able to set."""
    record = _require_object(value, path, where)
    if any(key in record for key in _INTERNAL_KEYS):
        record = {key: item for key, item in record.items() if key not in _INTERNAL_KEYS}
    return record


_INTERNAL_KEYS = ("_article", "_where")


def _require_list(obj: dict, key: str, path: object, where: str) -> list:
    if key not in obj:
        raise QagateError(f'missing "{key}"', path=path, item=where)
    if not isinstance(obj[key], list):
        raise QagateError(f'"{key}" must be a list, found {kind_of(obj[key])}', path=path, item=where)
    return obj[key]


# --- small helpers -------------------------------------------------------------------------


def _safe_name(text: str) -> str:
    """A file-system-safe dataset name: letters, digits, '.', '_' and '-' only."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return name or "dataset"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
