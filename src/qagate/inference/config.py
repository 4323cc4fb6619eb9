"""Model declarations: one YAML file per model, validated into a typed :class:`ModelSpec`.

The pytest plugin reads these at start-up, so this module uses only the standard library and
``yaml``. Every problem is a :class:`~qagate.core.errors.QagateError` naming the file, the key and
what is allowed, so a typo fails before any model is loaded.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

from qagate.core import safeyaml
from qagate.core.argtypes import (
    DEVICE_CHOICES,
    did_you_mean,
    expand_path,
    expand_user,
    expand_vars,
    parse_device,
)
from qagate.core.errors import QagateError, quote
from qagate.core.files import read_user_text
from qagate.inference.generation import DEFAULT_PROMPT
from qagate.inference.registry import KINDS
from qagate.inference.variants import QUANTIZE, RUNTIMES, variant_problem

ROLES = ("teacher", "student", "model")
DEVICES = DEVICE_CHOICES  # one set for declarations, --device and --qagate-device
DTYPES = ("auto", "fp32", "fp16", "bf16")
REQUIRED = ("name", "kind", "source")
ZOO_PREFIX = "zoo:"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # fullmatch: "$" would let "rnet\n" through
#: Model names become file names (baselines, caches) and table cells: kept short.
MAX_NAME_LENGTH = 100
_INT_KEYS = ("max_seq_len", "doc_stride", "max_answer_len", "batch_size", "max_new_tokens")
# Keys that only one family of models understands: using one with the other kind is an error.
GENERATIVE_KEYS = ("shots", "prompt", "max_new_tokens", "stop", "chat_template")
EXTRACTIVE_KEYS = ("max_seq_len", "doc_stride", "max_answer_len", "null_threshold")
_PLACEHOLDERS = ("context", "question")


@dataclass(frozen=True)
class ModelSpec:
    """A validated model declaration.

    ``source`` is a hub id, a local model directory, ``zoo:NAME`` (a model packed inside qagate)
    or (``kind: replay``) a predictions file; relative paths and ``zoo:`` names are already
    resolved to absolute paths. The inference settings
    keep the names the transformers 4.x QA pipeline gave them.
    """

    name: str
    role: str
    kind: str
    source: str
    revision: str | None = None
    max_seq_len: int = 384
    doc_stride: int = 128
    max_answer_len: int = 15
    null_threshold: float | None = None  # extractive: "" when null score - best span > this
    batch_size: int = 32
    device: str = "auto"
    dtype: str = "auto"
    # kind: extractive only: which runtime runs the weights, and int8 dynamic quantisation
    runtime: str = "torch"
    quantize: str = "none"
    trust_remote_code: bool = False
    path: Path | None = None
    description: str | None = None
    # kind: generative only (a causal LM answering from a prompt)
    shots: int = 0
    prompt: str = DEFAULT_PROMPT
    max_new_tokens: int = 32
    stop: tuple[str, ...] = ("\n",)
    chat_template: bool = False


# Keys a YAML file may use (``path`` is where the file is, not something to declare).
KEYS = tuple(f.name for f in fields(ModelSpec) if f.name != "path")


def _looks_like_path(source: str) -> bool:
    return (
        source.startswith(("/", "./", "../", "~", ".\\", "..\\"))
        or "\\" in source
        or os.path.isabs(source)
        or source.count("/") > 1
    )


def resolve_source(source: str, kind: str, base: Path) -> str:
    """A local path resolved against ``base`` (the YAML's folder), a packaged zoo model, or a hub
    id unchanged.

    ``zoo:NAME`` is the model packed inside the installed qagate. ``${VARS}`` and ``~`` are
    expanded so declarations can point at data outside the repository
    (``source: ${QAGATE_SHARED}/models/...``). A relative source that exists beside the YAML
    file is local, as transformers itself prefers a local folder over a hub id of the same name.
    """
    if source.startswith(ZOO_PREFIX):
        from qagate.inference.zoo import zoo_path

        if kind == "replay":
            raise QagateError(
                f"{quote(source)} is a packed model, not a predictions file",
                hint="zoo models are 'kind: extractive'",
            )
        return str(zoo_path(source[len(ZOO_PREFIX) :]))
    expanded = expand_user(expand_vars(source))
    candidate = expand_path(source, base)
    if kind == "replay" or candidate.exists() or _looks_like_path(expanded):
        return str(candidate)
    return expanded


def _bad(path: Path, key: str, message: str, hint: str | None = None) -> QagateError:
    return QagateError(message, path=path, item=key, hint=hint)


def _check_types(path: Path, raw: dict) -> None:
    for key, value in raw.items():
        if key in _INT_KEYS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _bad(path, key, f"must be a positive integer, got {quote(value)}")
        elif key == "shots":
            if value not in (0, 1) or isinstance(value, bool):
                raise _bad(path, key, f"must be 0 or 1, got {quote(value)}")
        elif key == "stop":
            _check_stop(path, value)
        elif key == "prompt":
            _check_prompt(path, value)
        elif key in ("trust_remote_code", "chat_template"):
            if not isinstance(value, bool):
                raise _bad(path, key, f"must be true or false, got {quote(value)}")
        elif key == "null_threshold":
            _check_null_threshold(path, value)
        elif key in ("revision", "description"):
            if value is not None and not isinstance(value, str):
                raise _bad(
                    path,
                    key,
                    f"must be a string, got {quote(value)}",
                    hint="quote it in the YAML file" if key == "revision" else None,
                )
        elif not isinstance(value, str) or not value.strip():
            raise _bad(path, key, f"must be a non-empty string, got {quote(value)}")


def _check_null_threshold(path: Path, value: object) -> None:
    """A finite number (or null: never answer "no answer", the default)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(
            path,
            "null_threshold",
            f"must be a number, got {quote(value)}",
            hint='e.g. 0.0 (SQuAD v2.0: answer "" when the null score beats the best span '
            "by more than it); remove the key to always answer",
        )


def _check_stop(path: Path, value: object) -> None:
    """``stop`` is one non-empty string or a list of them (an empty list: no stop strings)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) and s for s in items):
        raise _bad(path, "stop", f"must be a string or a list of non-empty strings, got {quote(value)}")


def _check_prompt(path: Path, value: object) -> None:
    """A prompt template uses exactly the placeholders {context} and {question} ({{ }} for braces)."""
    import string

    if not isinstance(value, str) or not value.strip():
        raise _bad(path, "prompt", f"must be a non-empty string, got {quote(value)}")
    try:
        found = [field for _, field, _, _ in string.Formatter().parse(value) if field is not None]
    except ValueError as exc:
        raise _bad(
            path, "prompt", f"is not a valid template: {exc}", hint="write {{ and }} for braces"
        ) from None
    unknown = [f for f in found if f not in _PLACEHOLDERS]
    if unknown:
        raise _bad(
            path,
            "prompt",
            f"unknown placeholder {{{unknown[0]}}}",
            hint="placeholders: {context} {question}; write {{ and }} for literal braces",
        )
    missing = [f for f in _PLACEHOLDERS if f not in found]
    if missing:
        raise _bad(
            path, "prompt", f"has no {{{missing[0]}}} placeholder", hint="use {context} and {question}"
        )


def _check_kind_keys(path: Path, raw: dict) -> None:
    """Generative-only keys on other kinds, and extractive-only keys on generative models, are errors."""
    kind = raw["kind"]
    wrong = EXTRACTIVE_KEYS if kind == "generative" else GENERATIVE_KEYS
    for key in raw:
        if key in wrong:
            owner = "extractive" if kind == "generative" else "generative"
            raise _bad(
                path,
                key,
                f"{quote(key)} only applies to kind: {owner} models, not kind: {kind}",
                hint=f"remove it, or declare kind: {owner}",
            )
    for key in ("runtime", "quantize"):
        if key in raw and kind != "extractive":
            raise _bad(
                path,
                key,
                f"{key!r} only applies to kind: extractive models, not kind: {kind}",
                hint="remove it, or declare kind: extractive",
            )


def spec_from_mapping(raw: object, path: Path) -> ModelSpec:
    """Validate one parsed declaration; ``path`` names the file in errors and anchors paths."""
    if not isinstance(raw, dict):
        raise QagateError(
            f"a model declaration must be a mapping of keys, got {type(raw).__name__}",
            path=path,
            hint=f"keys: {', '.join(KEYS)}",
        )
    for key in raw:
        if key not in KEYS:
            raise _bad(
                path,
                key,
                f"unknown key {quote(key)}{did_you_mean(key, KEYS)}",
                hint=f"allowed keys: {', '.join(KEYS)}",
            )
    for key in REQUIRED:
        if key not in raw:
            raise QagateError(
                f"missing required key {key!r}", path=path, hint=f"required keys: {', '.join(REQUIRED)}"
            )
    _check_types(path, raw)
    values = {"role": "model", **raw}
    if values["kind"] in KINDS:
        _check_kind_keys(path, raw)
    if "stop" in values:
        values["stop"] = (values["stop"],) if isinstance(values["stop"], str) else tuple(values["stop"])
    if len(values["name"]) > MAX_NAME_LENGTH:
        raise _bad(
            path,
            "name",
            f"{quote(values['name'], 40)} is {len(values['name'])} characters long",
            hint=f"at most {MAX_NAME_LENGTH}: the name becomes baseline and cache file names",
        )
    if not _NAME.fullmatch(values["name"]):
        raise _bad(
            path,
            "name",
            f"{quote(values['name'])} is not a valid name",
            hint="use letters, digits, '_', '-' and '.', starting with a letter or digit",
        )
    choices = {
        "role": ROLES,
        "kind": tuple(KINDS),
        "dtype": DTYPES,
        "runtime": RUNTIMES,
        "quantize": QUANTIZE,
    }
    for key, allowed in choices.items():
        if key in values and values[key] not in allowed:
            raise _bad(
                path,
                key,
                f"{quote(values[key])} is not allowed{did_you_mean(values[key], allowed)}",
                hint=f"allowed: {', '.join(allowed)}",
            )
    if "device" in values:
        try:
            values["device"] = parse_device(values["device"])
        except argparse.ArgumentTypeError as exc:
            raise _bad(path, "device", str(exc)) from None
    spec = ModelSpec(**values, path=path)
    problem = variant_problem(spec.runtime, spec.quantize, spec.device, spec.dtype)
    if problem is not None:
        raise _bad(path, problem[0], problem[1])
    if spec.doc_stride >= spec.max_seq_len:
        raise _bad(
            path,
            "doc_stride",
            f"{spec.doc_stride} must be smaller than max_seq_len ({spec.max_seq_len})",
            hint="the 4.x pipeline default is 128 for max_seq_len 384",
        )
    if spec.max_seq_len > 8192:
        raise _bad(path, "max_seq_len", f"{spec.max_seq_len} is implausibly large", hint="at most 8192")
    try:
        source = resolve_source(spec.source, spec.kind, path.parent)
    except QagateError as exc:
        raise _bad(path, "source", str(exc)) from None
    return ModelSpec(**{**{f.name: getattr(spec, f.name) for f in fields(ModelSpec)}, "source": source})


def load_model_spec(path: str | os.PathLike) -> ModelSpec:
    """Read and validate one model declaration (YAML)."""
    path = Path(path)
    if not os.path.lexists(path):
        raise QagateError("model declaration not found", path=path)
    text = read_user_text(path, "model declaration")
    try:
        raw = safeyaml.load(text)
    except safeyaml.YAMLProblem as exc:
        where = f"line {exc.line}: " if exc.line is not None else ""
        raise QagateError(f"not valid YAML: {where}{exc.problem}", path=path) from None
    if raw is None:
        raise QagateError("empty model declaration", path=path, hint=f"required keys: {', '.join(REQUIRED)}")
    return spec_from_mapping(raw, path)


def load_model_specs(folder: str | os.PathLike) -> list[ModelSpec]:
    """Every ``*.yaml`` / ``*.yml`` declaration in ``folder``, sorted by model name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise QagateError(
            "model folder not found", path=folder, hint="create it with one YAML file per model"
        )
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    specs: dict[str, ModelSpec] = {}
    for file in files:
        spec = load_model_spec(file)
        if spec.name in specs:
            raise QagateError(
                f"duplicate model name {quote(spec.name)} (also declared in {specs[spec.name].path})",
                path=file,
                item="name",
                hint="model names must be unique",
            )
        specs[spec.name] = spec
    return [specs[name] for name in sorted(specs)]


def missing_source(spec: ModelSpec) -> str | None:
    """Why a declaration's local ``source`` cannot be used (it does not exist), or None.

    Hub ids are not checked (no network here); the message quotes the path as written.
    """
    source = Path(spec.source)
    if (spec.kind != "replay" and not source.is_absolute()) or source.exists():
        return None
    written = _written_source(spec.path) or spec.source
    return (
        f"source {quote(written)} does not exist (resolved to {source}); "
        "fix the path or build the model first"
    )


def _written_source(declaration: Path | None) -> str | None:
    """The ``source`` exactly as the declaration file wrote it (for error messages)."""
    if declaration is None:
        return None
    try:
        raw = safeyaml.load(read_user_text(declaration))
    except (QagateError, safeyaml.YAMLProblem):
        return None
    value = raw.get("source") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None
