"""Compressed and optimised variants of an extractive model: which runtime runs it, in which dtype.

A declaration's ``runtime: torch | onnxruntime | openvino``, ``quantize: none | int8`` and
``dtype`` pick a variant of the same weights. This module holds the decisions that depend on
them (which device and dtype a variant may use, whether this CPU has bf16 instructions, and
PyTorch's dynamic int8 quantisation); the ONNX side is :mod:`qagate.inference.onnx_export`
(files) and :mod:`qagate.inference.onnx_runtime` / :mod:`qagate.inference.openvino_runtime`
(sessions). Standard library only at import time: the plugin reads the constants at start-up.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from qagate.core.errors import QagateError

RUNTIMES = ("torch", "onnxruntime", "openvino")
QUANTIZE = ("none", "int8")
# CPU flags (Linux /proc/cpuinfo names) that give native bf16 matrix instructions.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def is_variant(runtime: str, quantize: str) -> bool:
    """True for anything but plain PyTorch (the default)."""
    return runtime != "torch" or quantize != "none"


def variant_problem(runtime: str, quantize: str, device: str, dtype: str) -> tuple[str, str] | None:
    """(the key at fault, why) when a declaration combines settings no variant supports, else None.

    Checked when a declaration is read and again when ``--device`` overrides its device.
    """
    if not is_variant(runtime, quantize):
        return None
    allowed = ("auto", "fp32", "bf16") if runtime == "openvino" and quantize == "none" else ("auto", "fp32")
    if dtype not in allowed:
        if runtime == "onnxruntime" and dtype == "bf16":
            return "dtype", (
                "runtime: onnxruntime has no bf16 kernels for the CPU; use runtime: openvino or "
                "torch with dtype: bf16, or dtype: auto or fp32"
            )
        what = f"runtime: {runtime}" if quantize == "none" else "quantize: int8"
        return "dtype", f"{what} runs fp32 (or int8) weights, not dtype: {dtype}; use dtype: auto or fp32"
    if runtime == "torch" and not device.startswith(("auto", "cpu")):
        return "device", (
            f"quantize: int8 with runtime: torch is PyTorch's dynamic quantisation, which runs on "
            f"the CPU only, not device: {device}; use device: cpu or auto, or runtime: onnxruntime"
        )
    if runtime == "openvino" and not device.startswith(("auto", "cpu")):
        return "device", f"runtime: openvino runs on the CPU, not device: {device}; use device: cpu or auto"
    if runtime == "onnxruntime" and device == "mps":
        return "device", "runtime: onnxruntime runs on cpu or cuda, not mps; use device: cpu or auto"
    return None


def resolve_variant_device(requested: str, runtime: str, quantize: str) -> str:
    """The device a variant runs on: ``auto`` is the CPU for PyTorch int8 and OpenVINO, and the
    GPU for ONNX Runtime only when its CUDA provider is installed; impossible requests are
    one-line errors."""
    problem = variant_problem(runtime, quantize, requested, "auto")
    if problem is not None:
        raise QagateError(problem[1])
    if runtime in ("torch", "openvino"):
        return "cpu"
    from qagate.inference.onnx_runtime import cuda_available

    if requested == "auto":
        return "cuda" if cuda_available() else "cpu"
    if requested.startswith("cuda") and not cuda_available():
        raise QagateError(
            f"device {requested!r} with runtime: onnxruntime needs ONNX Runtime's "
            f"CUDAExecutionProvider, which this onnxruntime does not have",
            hint="pip install onnxruntime-gpu, or use device: cpu or auto",
        )
    return requested


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags of this machine's first CPU (empty where /proc/cpuinfo is not)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def check_cpu_bf16(flags: frozenset[str] | None = None) -> None:
    """Refuse ``dtype: bf16`` on a CPU without native bf16 instructions (avx512_bf16 or AMX),
    where it would be emulated: slower than fp32 and still less exact."""
    flags = cpu_flags() if flags is None else flags
    if not any(flag in flags for flag in BF16_FLAGS):
        cpu = platform.processor() or platform.machine() or "this CPU"
        raise QagateError(
            f"dtype: bf16 on the CPU needs avx512_bf16 or AMX instructions, which {cpu} does not report",
            hint="use dtype: auto or fp32 here, or run this variant on a machine that has them",
        )


def quantize_linear_int8(model: Any) -> Any:
    """``model`` with every ``nn.Linear`` replaced by PyTorch's dynamic int8 version (CPU only).

    Weights get one scale per output channel: on the reference MiniLM-L6 (400 held-out
    questions) that kept 73% of the fp32 answers and its F1, against 59% and -4 F1 for one
    scale per tensor, for about 20% of the speed-up. ``torch.ao.quantization`` warns that it is
    deprecated (torchao is its successor) but still works; the warning is silenced here.
    PyTorch's x86 quantised engine (fbgemm/oneDNN) uses VNNI instructions where the CPU has them.
    """
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(deprecated|torch\.ao\.quantization).*")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
