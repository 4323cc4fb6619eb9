"""Extractive QA models (an encoder with a span head) loaded with transformers.

Loading is lazy: building the adapter only checks that local files exist, and
:meth:`ExtractiveModel.fingerprint` hashes the files without importing torch, so a prediction
cache hit never loads the model.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from qagate import __version__
from qagate.core.errors import QagateError
from qagate.data.predictions import Predictions
from qagate.inference import zoo
from qagate.inference.engine import EngineSettings, ExtractiveEngine
from qagate.inference.model_files import (  # noqa: F401 (also imported from here by others)
    WEIGHT_SUFFIXES,
    file_sha256,
    hub_snapshot,
    model_files,
    safetensors_parameter_count,
)
from qagate.inference.variants import (
    check_cpu_bf16,
    is_variant,
    quantize_linear_int8,
    resolve_variant_device,
    variant_problem,
)

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
ONNX_RUNTIMES = ("onnxruntime", "openvino")  # the runtimes that run the exported ONNX graph


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

    if not torch.cuda.is_available():
        return "cpu"
    return auto_cuda_device(os.environ.get("PYTEST_XDIST_WORKER"), torch.cuda.device_count())


def auto_cuda_device(worker: str | None, count: int) -> str:
    """The GPU ``device: auto`` takes: pytest-xdist worker ``gwN`` gets ``cuda:(N mod count)``
    on a machine with several GPUs, so workers do not share one; otherwise ``cuda``."""
    if count > 1 and worker and worker.startswith("gw") and worker[2:].isdigit():
        return f"cuda:{int(worker[2:]) % count}"
    return "cuda"


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` -> fp32 on CPU (whatever the checkpoint was saved in), fp16 on CUDA."""
    if dtype != "auto":
        return dtype
    return "fp16" if device.startswith("cuda") else "fp32"


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
        runtime: str = "torch",
        quantize: str = "none",
    ) -> None:
        self.name = name
        self.source = source
        self.revision = revision
        self.settings = settings
        self.requested_device = device
        self.requested_dtype = dtype
        self.trust_remote_code = trust_remote_code
        self.runtime = runtime
        self.quantize = quantize
        problem = variant_problem(runtime, quantize, device, dtype)
        if problem is not None:
            raise QagateError(problem[1])
        self.local_dir = self._check_local(source, onnx_ok=runtime in ONNX_RUNTIMES)
        self._engine: ExtractiveEngine | None = None
        self._device: str | None = None
        self._onnx_file: Path | None = None

    @classmethod
    def from_spec(cls, spec, *, device: str | None = None) -> "ExtractiveModel":
        settings = EngineSettings(
            max_seq_len=spec.max_seq_len,
            doc_stride=spec.doc_stride,
            max_answer_len=spec.max_answer_len,
            batch_size=spec.batch_size,
            null_threshold=None if spec.null_threshold is None else float(spec.null_threshold),
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
                runtime=spec.runtime,
                quantize=spec.quantize,
            )
        except QagateError as exc:
            raise QagateError(f"model {spec.name!r}: {exc}", path=spec.path) from None

    @staticmethod
    def _check_local(source: str, *, onnx_ok: bool = False) -> Path | None:
        """The model folder when ``source`` is local; clear errors when its files are missing.

        ``onnx_ok``: a folder with only ``.onnx`` weights (what ``qagate export`` writes) is fine.
        """
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
            onnx = any(p.name.endswith(".onnx") for p in path.iterdir())
            if not (onnx and onnx_ok):
                raise QagateError(
                    "missing model files: no weights (*.safetensors or *.bin)",
                    path=path,
                    hint="it has only ONNX files: declare runtime: onnxruntime or openvino" if onnx else None,
                )
        if zoo.is_packed(path):  # only what differs from a pip-installed base: rebuild it once
            return zoo.materialize(path.resolve())
        return path.resolve()

    # -- loading -----------------------------------------------------------------------------

    @property
    def device(self) -> str:
        if self._device is None:
            if is_variant(self.runtime, self.quantize):
                self._device = resolve_variant_device(self.requested_device, self.runtime, self.quantize)
            else:
                self._device = resolve_device(self.requested_device)
        return self._device

    @property
    def dtype(self) -> str:
        """The dtype the model computes in; ``bf16`` on a CPU without bf16 instructions is an error."""
        if is_variant(self.runtime, self.quantize):
            # int8 quantises fp32 weights; ONNX files are exported in fp32 and only OpenVINO
            # computes them in bf16 (its inference precision)
            bf16 = self.runtime == "openvino" and self.requested_dtype == "bf16"
            dtype = "bf16" if bf16 else "fp32"
        else:
            dtype = resolve_dtype(self.requested_dtype, self.device)
        if dtype == "bf16" and self.device.startswith("cpu"):
            check_cpu_bf16()
        return dtype

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

    def _where(self) -> str:
        return str(self.local_dir or self.source)

    def _loading_error(self, exc: Exception) -> QagateError:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return QagateError(
            f"cannot load an extractive QA model: {first}",
            path=self._where(),
            hint="check 'source' and 'revision'; hub ids need network access",
        )

    def _tokenizer(self):
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(
                self._where(), revision=self.revision, trust_remote_code=self.trust_remote_code
            )
        except (OSError, ValueError, KeyError) as exc:
            raise self._loading_error(exc) from None

    def _torch_model(self, device: str, dtype: str):
        """The transformers model on ``device`` in ``dtype``, in eval mode."""
        import torch
        from transformers import AutoModelForQuestionAnswering

        # safetensors whenever the folder has them (None lets transformers choose for hub ids)
        has_safetensors = self.local_dir is not None and any(self.local_dir.glob("*.safetensors"))
        try:
            model, loading = AutoModelForQuestionAnswering.from_pretrained(
                self._where(),
                output_loading_info=True,
                revision=self.revision,
                trust_remote_code=self.trust_remote_code,
                use_safetensors=True if has_safetensors else None,
            )
        except (OSError, ValueError, KeyError) as exc:
            raise self._loading_error(exc) from None
        missing = [k for k in loading.get("missing_keys", [])]
        if missing:
            raise QagateError(
                f"not a fine-tuned question-answering model: no trained weights for "
                f"{', '.join(sorted(missing)[:3])}",
                path=self._where(),
                hint="the QA head would be random; use a *ForQuestionAnswering checkpoint",
            )
        return model.to(device=device, dtype=getattr(torch, _DTYPES[dtype])).eval()

    def onnx_file(self) -> Path:
        """The ``.onnx`` file a ``runtime: onnxruntime`` model runs: the source's own, or one
        exported (and quantised) once into qagate's cache (:mod:`qagate.inference.onnx_export`)."""
        if self._onnx_file is None:
            from qagate.inference.onnx_export import ensure_onnx, export_onnx_bytes, input_names

            # OpenVINO reads the plain fp32 export (and compresses int8 itself); ONNX Runtime
            # runs the optimizer's fused graph, or its own int8 file
            self._onnx_file = ensure_onnx(
                self.model_folder(),
                "none" if self.runtime == "openvino" else self.quantize,
                self.files_digest(),
                lambda: export_onnx_bytes(self._torch_model("cpu", "fp32"), input_names(self._tokenizer())),
                optimization=self.onnx_optimization(),
            )
        return self._onnx_file

    def onnx_optimization(self) -> str:
        """The transformer optimizer's level for this variant's graph (``none``: the plain export)."""
        if self.runtime == "onnxruntime" and self.quantize == "none":
            from qagate.inference.onnx_export import OPTIMIZATION

            return OPTIMIZATION
        return "none"

    def load(self) -> ExtractiveEngine:
        """Load tokenizer and weights once; later calls return the same engine."""
        if self._engine is not None:
            return self._engine
        self._check_architecture()
        tokenizer = self._tokenizer()
        if self.runtime == "onnxruntime":
            from qagate.inference.onnx_runtime import OnnxQA

            model = OnnxQA(self.onnx_file(), self.device)
            # The session takes and returns host arrays (copying to the GPU itself on cuda), so
            # the engine keeps its tensors on the CPU.
            self._engine = ExtractiveEngine(model, tokenizer, self.settings, device="cpu")
            return self._engine
        if self.runtime == "openvino":
            from qagate.inference.openvino_runtime import OpenVinoQA, require_openvino

            require_openvino()  # before the export: a missing package is said at once
            ov_model = OpenVinoQA(self.onnx_file(), self.dtype, self.quantize)
            self._engine = ExtractiveEngine(ov_model, tokenizer, self.settings, device="cpu")
            return self._engine
        model = self._torch_model(self.device, self.dtype)
        if self.quantize == "int8":
            model = quantize_linear_int8(model)
        self._engine = ExtractiveEngine(model, tokenizer, self.settings, device=self.device)
        return self._engine

    # -- the QAModel protocol ----------------------------------------------------------------

    def predict(self, examples: Sequence, progress: Callable[[int], None] | None = None) -> Predictions:
        return self.load().predict(examples, progress=progress)

    def model_folder(self) -> Path:
        """The local folder of the model files (for a hub id: its snapshot in the hub cache)."""
        if self.local_dir is not None:
            return self.local_dir

        def download() -> None:  # transformers downloads what it needs into the hub cache
            self._tokenizer()
            self._torch_model("cpu", "fp32")

        return hub_snapshot(self.source, self.revision, download)

    def _files(self) -> list[Path]:
        return model_files(self.model_folder())

    def _file_lines(self) -> bytes:
        """One ``name NUL sha256`` line per file that determines the outputs."""
        return b"".join(f"{path.name}\0{file_sha256(path)}\n".encode() for path in self._files())

    def files_digest(self) -> str:
        """sha256 over the model's files alone (what an ONNX export of it depends on)."""
        return hashlib.sha256(self._file_lines()).hexdigest()

    def fingerprint(self) -> str:
        """sha256 over the content of the weights, config and tokenizer files and the settings
        that change outputs; the model's name and folder are deliberately left out."""
        digest = hashlib.sha256(self._file_lines())
        settings: dict[str, object] = {
            "kind": "extractive",
            "max_seq_len": self.settings.max_seq_len,
            "doc_stride": self.settings.doc_stride,
            "max_answer_len": self.settings.max_answer_len,
            "candidates_per_window": self.settings.candidates_per_window,
            "dtype": self.dtype,
            "device": self.device.split(":")[0],
            "qagate": __version__,
        }
        if self.settings.null_threshold is not None:  # absent: the fingerprint of before
            settings["null_threshold"] = float(self.settings.null_threshold)
        if is_variant(self.runtime, self.quantize):  # plain torch keeps the fingerprint of before
            settings.update(runtime=self.runtime, quantize=self.quantize)
        # Dynamic int8 scales activations per batch, and fused or bf16 kernels block their sums
        # by the batch's shape: batching can change answers, so it is part of the key.
        cpu_bf16 = settings["dtype"] == "bf16" and settings["device"] == "cpu"
        if is_variant(self.runtime, self.quantize) or cpu_bf16:
            settings.update(
                batch_size=self.settings.batch_size, cpu_batch_tokens=self.settings.cpu_batch_tokens
            )
        if self.runtime in ONNX_RUNTIMES:
            from qagate.inference.onnx_export import FORMAT, OPSET

            settings.update(onnx_opset=OPSET, onnx_format=FORMAT, onnx_optimization=self.onnx_optimization())
        if self.runtime == "openvino" and self.quantize == "int8":
            from qagate.inference.openvino_runtime import INT8_COMPRESSION

            settings.update(openvino_int8=INT8_COMPRESSION)
        digest.update(json.dumps(settings, sort_keys=True).encode())
        return digest.hexdigest()

    def info(self) -> Mapping[str, object]:
        files = self._files()
        weights = [p for p in files if p.name.endswith(WEIGHT_SUFFIXES)]
        safetensors = [p for p in weights if p.name.endswith(".safetensors")]
        sized: list[Path] = safetensors or weights
        if safetensors:
            params: int | None = safetensors_parameter_count(safetensors)
        elif self.runtime in ONNX_RUNTIMES:  # a `qagate export` folder records the count
            from qagate.inference.onnx_export import read_manifest

            params = read_manifest(self.model_folder()).get("parameter_count")
        else:
            params = sum(p.numel() for p in self.load().model.parameters())
        if self.runtime in ONNX_RUNTIMES:
            sized = [self.onnx_file()]  # the file that runs (int8: about a quarter of fp32)
        return {
            "kind": "extractive",
            "source": self.source,
            "revision": self.revision,
            "parameter_count": params,
            "size_on_disk_mb": round(sum(os.path.getsize(p) for p in sized) / 1e6, 3),
            "device": self.device,
            "dtype": self.dtype,
            "runtime": self.runtime,
            "quantize": self.quantize,
            "max_seq_len": self.settings.max_seq_len,
            "doc_stride": self.settings.doc_stride,
            "max_answer_len": self.settings.max_answer_len,
            "null_threshold": self.settings.null_threshold,
            "batch_size": self.settings.batch_size,
        }
