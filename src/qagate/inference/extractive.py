"""Extractive QA models (an encoder with a span head) loaded with transformers.

Loading is lazy: building the adapter only checks that local files exist, and
:meth:`ExtractiveModel.fingerprint` hashes the files without importing torch, so a prediction
cache hit never loads the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from qagate import __version__
from qagate.data.predictions import Predictions
from qagate.errors import QagateError
from qagate.inference import zoo
from qagate.inference.engine import EngineSettings, ExtractiveEngine

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt")
# Files that describe a model but do not change its outputs.
_NOT_HASHED = {"README.md", ".gitattributes", "LICENSE", "LICENSE.txt", "NOTICE"}
_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}

# (path, size, mtime_ns) -> sha256: a weights file is hashed once per process.
_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """Content hash of a file, memoised by (path, size, modification time)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _FILE_HASHES[key] = digest.hexdigest()
    return _FILE_HASHES[key]


def model_files(folder: Path) -> list[Path]:
    """The files of a model folder that determine its outputs (weights, config, tokenizer)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name not in _NOT_HASHED and not p.name.endswith(".md")
    )


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; an unavailable device is an error.

    ``mps`` (Apple's Metal) is used only when asked for: ``auto`` never picks it, so the same
    declaration gives the same fingerprint on every CPU machine.
    """
    if device != "auto":
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise QagateError(
                    f"device {device!r} requested but no CUDA GPU is visible", hint="use device: auto or cpu"
                )
        elif device == "mps":
            import torch

            backend = getattr(torch.backends, "mps", None)
            if backend is None or not backend.is_available():
                raise QagateError(
                    "device 'mps' requested but Apple's Metal backend is not "
                    "available (torch.backends.mps.is_available() is False)",
                    hint="use device: auto or cpu; mps needs macOS on Apple silicon",
                )
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` -> fp32 on CPU (whatever the checkpoint was saved in), fp16 on CUDA."""
    if dtype != "auto":
        return dtype
    return "fp16" if device.startswith("cuda") else "fp32"


def safetensors_parameter_count(files: Sequence[Path]) -> int:
    """Parameters stored in safetensors files, read from their headers (no torch needed)."""
    total = 0
    for path in files:
        with path.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(size))
        for key, entry in header.items():
            if key != "__metadata__":
                count = 1
                for dim in entry["shape"]:
                    count *= dim
                total += count
    return total


class ExtractiveModel:
    """An extractive QA model from a local folder or a hub id, run by :class:`ExtractiveEngine`."""

    def __init__(
        self,
        name: str,
        source: str,
        *,
        revision: str | None = None,
        settings: EngineSettings = EngineSettings(),  # noqa: B008 (frozen: a shared default is safe)
        device: str = "auto",
        dtype: str = "auto",
        trust_remote_code: bool = False,
    ) -> None:
        self.name = name
        self.source = source
        self.revision = revision
        self.settings = settings
        self.requested_device = device
        self.requested_dtype = dtype
        self.trust_remote_code = trust_remote_code
        self.local_dir = self._check_local(source)
        self._engine: ExtractiveEngine | None = None
        self._device: str | None = None

    @classmethod
    def from_spec(cls, spec, *, device: str | None = None) -> "ExtractiveModel":
        settings = EngineSettings(
            max_seq_len=spec.max_seq_len,
            doc_stride=spec.doc_stride,
            max_answer_len=spec.max_answer_len,
            batch_size=spec.batch_size,
        )
        try:
            return cls(
                spec.name,
                spec.source,
                revision=spec.revision,
                settings=settings,
                device=device or spec.device,
                dtype=spec.dtype,
                trust_remote_code=spec.trust_remote_code,
            )
        except QagateError as exc:
            raise QagateError(f"model {spec.name!r}: {exc}", path=spec.path) from None

    @staticmethod
    def _check_local(source: str) -> Path | None:
        """The model folder when ``source`` is local; clear errors when its files are missing."""
        path = Path(source).expanduser()
        looks_local = path.is_absolute() or source.startswith((".", "~")) or path.exists()
        if not looks_local:
            return None  # a hub id: transformers resolves it when the model is loaded
        if not path.exists():
            raise QagateError(
                "missing model files: folder not found",
                path=path,
                hint="fix 'source' or copy the model there (save_pretrained)",
            )
        if not path.is_dir():
            raise QagateError("missing model files: 'source' is a file, not a model folder", path=path)
        if not (path / "config.json").is_file():
            raise QagateError(
                "missing model files: no config.json",
                path=path,
                hint="point 'source' at a folder written by save_pretrained",
            )
        if not any(p.name.endswith(WEIGHT_SUFFIXES) for p in path.iterdir()):
            raise QagateError("missing model files: no weights (*.safetensors or *.bin)", path=path)
        if zoo.is_packed(path):  # only what differs from a pip-installed base: rebuild it once
            return zoo.materialize(path.resolve())
        return path.resolve()

    # -- loading -----------------------------------------------------------------------------

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = resolve_device(self.requested_device)
        return self._device

    @property
    def dtype(self) -> str:
        return resolve_dtype(self.requested_dtype, self.device)

    def _check_architecture(self) -> None:
        if self.local_dir is None:
            return
        try:
            config = json.loads((self.local_dir / "config.json").read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise QagateError(f"config.json is not valid JSON: {exc}", path=self.local_dir) from None
        archs = config.get("architectures") or []
        if archs and not any(a.endswith("ForQuestionAnswering") for a in archs):
            raise QagateError(
                f"not a question-answering model (architectures: {', '.join(archs)})",
                path=self.local_dir,
                hint="use a checkpoint fine-tuned for extractive QA "
                "(*ForQuestionAnswering), or fine-tune this encoder first",
            )

    def load(self) -> ExtractiveEngine:
        """Load tokenizer and weights once; later calls return the same engine."""
        if self._engine is not None:
            return self._engine
        self._check_architecture()
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        where = str(self.local_dir or self.source)
        kwargs = {"revision": self.revision, "trust_remote_code": self.trust_remote_code}
        if self.local_dir is not None and any(self.local_dir.glob("*.safetensors")):
            kwargs["use_safetensors"] = True
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                where, revision=self.revision, trust_remote_code=self.trust_remote_code
            )
            model, loading = AutoModelForQuestionAnswering.from_pretrained(
                where, output_loading_info=True, **kwargs
            )
        except (OSError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise QagateError(
                f"cannot load an extractive QA model: {first}",
                path=where,
                hint="check 'source' and 'revision'; hub ids need network access",
            ) from None
        missing = [k for k in loading.get("missing_keys", [])]
        if missing:
            raise QagateError(
                f"not a fine-tuned question-answering model: no trained weights for "
                f"{', '.join(sorted(missing)[:3])}",
                path=where,
                hint="the QA head would be random; use a *ForQuestionAnswering checkpoint",
            )
        model = model.to(device=self.device, dtype=getattr(torch, _DTYPES[self.dtype]))
        model.eval()
        self._engine = ExtractiveEngine(model, tokenizer, self.settings, device=self.device)
        return self._engine

    # -- the QAModel protocol ----------------------------------------------------------------

    def predict(self, examples: Sequence, progress: Callable[[int], None] | None = None) -> Predictions:
        return self.load().predict(examples, progress=progress)

    def _files(self) -> list[Path]:
        if self.local_dir is not None:
            return model_files(self.local_dir)
        from huggingface_hub import snapshot_download

        try:
            folder = snapshot_download(self.source, revision=self.revision, local_files_only=True)
        except Exception:
            self.load()  # downloads into the hub cache
            folder = snapshot_download(self.source, revision=self.revision, local_files_only=True)
        return model_files(Path(folder))

    def fingerprint(self) -> str:
        """sha256 over the content of the weights, config and tokenizer files and the settings
        that change outputs; the model's name and folder are deliberately left out."""
        digest = hashlib.sha256()
        for path in self._files():
            digest.update(f"{path.name}\0{file_sha256(path)}\n".encode())
        settings = {
            "kind": "extractive",
            "max_seq_len": self.settings.max_seq_len,
            "doc_stride": self.settings.doc_stride,
            "max_answer_len": self.settings.max_answer_len,
            "candidates_per_window": self.settings.candidates_per_window,
            "dtype": self.dtype,
            "device": self.device.split(":")[0],
            "qagate": __version__,
        }
        digest.update(json.dumps(settings, sort_keys=True).encode())
        return digest.hexdigest()

    def info(self) -> Mapping[str, object]:
        files = self._files()
        weights = [p for p in files if p.name.endswith(WEIGHT_SUFFIXES)]
        safetensors = [p for p in weights if p.name.endswith(".safetensors")]
        if safetensors:
            params = safetensors_parameter_count(safetensors)
        else:
            params = sum(p.numel() for p in self.load().model.parameters())
        return {
            "kind": "extractive",
            "source": self.source,
            "revision": self.revision,
            "parameter_count": params,
            "size_on_disk_mb": round(sum(os.path.getsize(p) for p in (safetensors or weights)) / 1e6, 3),
            "device": self.device,
            "dtype": self.dtype,
            "max_seq_len": self.settings.max_seq_len,
            "doc_stride": self.settings.doc_stride,
            "max_answer_len": self.settings.max_answer_len,
            "batch_size": self.settings.batch_size,
        }
