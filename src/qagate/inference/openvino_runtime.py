"""``runtime: openvino``: the exported ONNX graph compiled by OpenVINO for the CPU.

:class:`OpenVinoQA` reads the same ``model.onnx`` that ``runtime: onnxruntime`` exports (OpenVINO
reads ONNX itself and applies its own fusions), compiles it with an explicit inference precision
(``f32``, or ``bf16`` for ``dtype: bf16``: OpenVINO would otherwise pick bf16 by itself on CPUs
with AMX, a silent change of answers) and is called like a transformers QA model, as
:class:`~qagate.inference.onnx_runtime.OnnxQA` is. ``quantize: int8`` compresses the MatMul
weights to int8 with NNCF (data-free, one scale per output channel, asymmetric) and lets the CPU
plugin quantise activations on the fly, so the matrix products run on VNNI instructions; the
compressed model is saved once as OpenVINO IR into qagate's ONNX cache. openvino and nncf are
imported inside the functions: both are the optional ``openvino`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qagate.core.errors import QagateError
from qagate.inference.onnx_runtime import QAOutput, check_outputs, host_feed, load_error

# NNCF's weight compression, by name (part of the cache key and of the model's fingerprint).
INT8_COMPRESSION = "nncf-int8-asym-1"
PRECISIONS = {"fp32": "f32", "bf16": "bf16"}


def _import(name: str, what: str) -> Any:
    """``import name``, or one line saying which extra to install."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise QagateError(
            f"{what} needs the {name} package", hint="pip install 'pytest-qagate[openvino]'"
        ) from None


def require_openvino() -> Any:
    """The openvino module, or one line saying what to install."""
    return _import("openvino", "runtime: openvino")


def _nncf() -> Any:
    return _import("nncf", "quantize: int8 with runtime: openvino")


def int8_ir(onnx_file: Path, root: Path | None = None) -> Path:
    """OpenVINO IR (``model.xml`` + ``.bin``) of ``onnx_file`` with int8 MatMul weights, made
    once into ``$QAGATE_HOME/onnx/openvino-<hash>/`` under a file lock and reused."""
    from filelock import FileLock

    from qagate.core.files import atomic_write_bytes
    from qagate.inference.model_files import file_sha256
    from qagate.inference.onnx_export import LOCK_TIMEOUT_S, _sha256_text, onnx_cache_root

    key = _sha256_text(f"openvino-from:{file_sha256(onnx_file)}\0{INT8_COMPRESSION}")
    target = (root or onnx_cache_root()) / f"openvino-{key[:24]}"
    xml = target / "model-int8.xml"
    if xml.is_file():
        return xml
    target.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=LOCK_TIMEOUT_S):
        if xml.is_file():
            return xml
        ov, nncf = require_openvino(), _nncf()
        import logging
        import tempfile

        logging.getLogger("nncf").setLevel(logging.ERROR)  # its bit-width table goes to stdout

        model = nncf.compress_weights(
            ov.Core().read_model(str(onnx_file)), mode=nncf.CompressWeightsMode.INT8_ASYM
        )
        with tempfile.TemporaryDirectory(prefix=".qagate-openvino-", dir=target) as tmp:
            out = Path(tmp) / xml.name
            ov.save_model(model, str(out), compress_to_fp16=False)
            # the weights first: a reader that sees the .xml finds its .bin complete
            atomic_write_bytes(xml.with_suffix(".bin"), out.with_suffix(".bin").read_bytes())
            atomic_write_bytes(xml, out.read_bytes())
    return xml


class OpenVinoQA:
    """A compiled OpenVINO QA model; call it with the engine's keyword tensors."""

    def __init__(
        self, path: str | Path, dtype: str = "fp32", quantize: str = "none", threads: int | None = None
    ) -> None:
        import torch

        ov = require_openvino()
        self.path = Path(path)
        threads = torch.get_num_threads() if threads is None else threads
        config = {
            "INFERENCE_PRECISION_HINT": PRECISIONS[dtype],
            "INFERENCE_NUM_THREADS": max(1, threads),  # torch's count, as ONNX Runtime gets
            "PERFORMANCE_HINT": "LATENCY",  # one stream: one batch at a time on every core
        }
        try:
            source = int8_ir(self.path) if quantize == "int8" else self.path
            core = ov.Core()
            self.compiled = core.compile_model(core.read_model(str(source)), "CPU", config)
        except QagateError:
            raise
        except Exception as exc:  # openvino raises its own exception types
            raise load_error("OpenVINO", exc, self.path) from None
        self.input_names = tuple(i.get_any_name() for i in self.compiled.inputs)
        check_outputs([o.get_any_name() for o in self.compiled.outputs], self.path)
        self.request = self.compiled.create_infer_request()

    def __call__(self, **inputs: Any) -> QAOutput:
        import torch

        result = self.request.infer(host_feed(self.input_names, inputs, self.path))
        # copies: the request reuses its output buffers on the next call
        start, end = (torch.from_numpy(result[i].copy()) for i in (0, 1))
        return QAOutput(start, end)
