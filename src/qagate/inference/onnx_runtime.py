"""An ONNX Runtime session that the extractive engine calls like a transformers QA model.

:class:`OnnxQA` takes the engine's keyword tensors (``input_ids``, ``attention_mask`` and,
where the tokenizer uses them, ``token_type_ids``) and returns an object with
``start_logits``/``end_logits`` torch tensors on the inputs' device, so
:class:`~qagate.inference.engine.ExtractiveEngine` runs it unchanged. onnxruntime and torch
are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qagate.core.errors import QagateError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


@dataclass(frozen=True)
class QAOutput:
    """What the engine reads from a forward pass."""

    start_logits: Any
    end_logits: Any


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise QagateError(
            "runtime: onnxruntime needs the onnxruntime package", hint="pip install onnxruntime"
        ) from None
    return onnxruntime


def cuda_available() -> bool:
    """Whether the installed onnxruntime can run on an NVIDIA GPU (onnxruntime-gpu)."""
    return CUDA in _ort().get_available_providers()


def providers(device: str) -> list[Any]:
    """Execution providers for ``device`` (``cpu``, ``cuda`` or ``cuda:N``), best first."""
    if not device.startswith("cuda"):
        return [CPU]
    _, _, index = device.partition(":")
    return [(CUDA, {"device_id": int(index or 0)}), CPU]


def session_options(threads: int) -> Any:
    """All graph optimisations, ``threads`` intra-op threads (torch's count: the same budget as
    the PyTorch variants get, so speed comparisons are fair), one inter-op thread, no spinning."""
    ort = _ort()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    # Idle intra-op threads sleep instead of spinning: the engine's span search (torch) runs
    # between two forwards on the same cores, and spinning threads starved it.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: no optimiser chatter in captured test output
    return options


class OnnxQA:
    """A loaded ``.onnx`` QA model; call it with the engine's keyword tensors."""

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None) -> None:
        import torch

        ort = _ort()
        self.path = Path(path)
        self.device = device
        threads = torch.get_num_threads() if threads is None else threads
        try:
            self.session = ort.InferenceSession(
                str(self.path), session_options(threads), providers=providers(device)
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise QagateError(
                f"ONNX Runtime cannot load this model: {first}",
                path=self.path,
                hint="re-export it with `qagate export`",
            ) from None
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        outputs = [o.name for o in self.session.get_outputs()]
        if outputs[:2] != ["start_logits", "end_logits"]:
            raise QagateError(
                f"not an extractive QA model: outputs are {', '.join(outputs)}, "
                f"expected start_logits and end_logits",
                path=self.path,
                hint="export it with `qagate export`",
            )

    def __call__(self, **inputs: Any) -> QAOutput:
        import torch

        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise QagateError(
                f"the ONNX model needs input {missing[0]!r}, which the tokenizer does not give",
                path=self.path,
                hint="export the ONNX file from this model's own folder",
            )
        first = next(iter(inputs.values()))
        feed = {name: inputs[name].detach().cpu().numpy() for name in self.input_names}
        start, end = self.session.run(["start_logits", "end_logits"], feed)
        return QAOutput(torch.from_numpy(start).to(first.device), torch.from_numpy(end).to(first.device))
