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


def load_error(runtime: str, exc: Exception, path: Path) -> QagateError:
    """One line for a runtime's failure to load ``path`` (the first line of its message)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return QagateError(
        f"{runtime} cannot load this model: {first}", path=path, hint="re-export it with `qagate export`"
    )


def check_outputs(outputs: list[str], path: Path) -> None:
    """An extractive QA graph's first two outputs are its start and end logits."""
    if outputs[:2] != ["start_logits", "end_logits"]:
        raise QagateError(
            f"not an extractive QA model: outputs are {', '.join(outputs)}, "
            f"expected start_logits and end_logits",
            path=path,
            hint="export it with `qagate export`",
        )


def host_feed(input_names: tuple[str, ...], inputs: dict[str, Any], path: Path) -> dict[str, Any]:
    """The graph's inputs as host numpy arrays, from the engine's keyword tensors."""
    missing = [name for name in input_names if name not in inputs]
    if missing:
        raise QagateError(
            f"the ONNX model needs input {missing[0]!r}, which the tokenizer does not give",
            path=path,
            hint="export the ONNX file from this model's own folder",
        )
    return {name: inputs[name].detach().cpu().numpy() for name in input_names}


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
            raise load_error("ONNX Runtime", exc, self.path) from None
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        check_outputs([o.name for o in self.session.get_outputs()], self.path)

    def __call__(self, **inputs: Any) -> QAOutput:
        import torch

        feed = host_feed(self.input_names, inputs, self.path)
        first = next(iter(inputs.values()))
        start, end = self.session.run(["start_logits", "end_logits"], feed)
        return QAOutput(torch.from_numpy(start).to(first.device), torch.from_numpy(end).to(first.device))
