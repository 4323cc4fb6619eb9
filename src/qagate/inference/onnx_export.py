"""ONNX files for ``runtime: onnxruntime``: export, int8 quantisation, the artefact cache.

Where the ``.onnx`` file of a declaration comes from (:func:`ensure_onnx`):

* a source folder that holds ``model.onnx`` (``model-int8.onnx`` for ``quantize: int8``) is used
  as it is (``qagate export`` writes such folders);
* ``quantize: int8`` and only ``model.onnx`` there: it is quantised once into the cache;
* ``runtime: onnxruntime`` in fp32 runs the export after ONNX Runtime's transformer optimizer
  (:func:`optimize_onnx`: fused multi-head attention, skip-LayerNorm, bias-GELU, embedding
  LayerNorm), written once beside the export as ``model-<OPTIMIZATION>.onnx``: the level's name
  is in the file's name and in the model's fingerprint, so a new level never reuses an old file;
* otherwise the PyTorch weights are exported once into ``$QAGATE_HOME/onnx/<key>/`` (default
  ``~/.cache/qagate/onnx``), keyed by the weights' content hash, the opset and this format, under
  a file lock, every file written atomically; later loads reuse it.

The export is ``torch.onnx.export(..., dynamo=False)`` at opset 17 with dynamic batch and
sequence axes and eager attention (the same bytes on every re-export with the same torch); int8
is ONNX Runtime's dynamic quantisation of the MatMul weights (QInt8, one scale per channel,
deterministic). Heavy imports stay inside the functions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qagate.core.errors import QagateError
from qagate.core.files import atomic_write_bytes, atomic_write_text

OPSET = 17
FORMAT = 1  # bump when the export changes in a way that changes outputs: old cache entries die
ONNX_FILES = {"none": "model.onnx", "int8": "model-int8.onnx"}
# The transformer optimizer's settings, by name (bump it when they change; "none": no optimizer).
OPTIMIZATION = "ort-bert-mha-1"
MANIFEST = "qagate-export.json"
OUTPUTS = ("start_logits", "end_logits")
LOCK_TIMEOUT_S = 600  # exporting a large model takes a while; a stuck lock should not hang CI forever


def onnx_cache_root() -> Path:
    """``$QAGATE_HOME/onnx`` (default ``~/.cache/qagate/onnx``): exported and quantised files."""
    from qagate.inference.zoo import cache_root

    return cache_root().parent / "onnx"


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- export and quantise ------------------------------------------------------------------


def input_names(tokenizer: Any) -> tuple[str, ...]:
    """The tensors the extractive engine passes for this tokenizer (token type ids only where
    the tokenizer makes them), which are the inputs the exported graph takes."""
    names = getattr(tokenizer, "model_input_names", None) or ["input_ids", "attention_mask"]
    return ("input_ids", "attention_mask", *(("token_type_ids",) if "token_type_ids" in names else ()))


def _logits_module(model: Any, names: Sequence[str]) -> Any:
    """``model`` as a module taking positional tensors (in ``names`` order) and returning the
    two logit tensors, which is what the exporter traces."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> tuple[Any, Any]:
            out = self.model(**dict(zip(names, tensors)))
            return out.start_logits, out.end_logits

    # eval() here matters: the exporter restores the wrapper's training flag afterwards, and a
    # wrapper left in training mode would switch the wrapped model's dropout on for good.
    return Logits().eval()


def _example_inputs(names: Sequence[str], vocab_size: int) -> tuple[Any, ...]:
    """Two padded rows of a few tokens: enough for the tracer to see the attention mask used."""
    import torch

    ids = (torch.arange(16, dtype=torch.int64).reshape(2, 8) * 7 + 101) % max(2, vocab_size)
    values = {
        "input_ids": ids,
        "attention_mask": torch.tensor([[1] * 8, [1] * 5 + [0] * 3], dtype=torch.int64),
        "token_type_ids": torch.tensor([[0] * 4 + [1] * 4, [0] * 3 + [1] * 2 + [0] * 3], dtype=torch.int64),
    }
    return tuple(values[name] for name in names)


def _eager_attention(model: Any) -> None:
    """Trace the plain matmul-softmax attention rather than PyTorch's SDPA kernel: its graph
    ran 15-20% faster in ONNX Runtime (MiniLM-L6, 2 CPU cores) with the same logits."""
    import contextlib

    setter = getattr(model, "set_attn_implementation", None)
    if setter is not None:
        with contextlib.suppress(ValueError, ImportError):  # no eager path: keep its own
            setter("eager")


def export_onnx_bytes(model: Any, input_names: Sequence[str]) -> bytes:
    """The ONNX graph of a transformers QA model (fp32, on the CPU) taking ``input_names``."""
    import warnings

    import torch

    unknown = [n for n in input_names if n not in ("input_ids", "attention_mask", "token_type_ids")]
    if unknown:
        raise QagateError(f"cannot export a model whose tokenizer gives {unknown[0]!r} to ONNX")
    _eager_attention(model)
    module = _logits_module(model, input_names)
    vocab = int(getattr(getattr(model, "config", None), "vocab_size", 30522) or 30522)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*input_names, *OUTPUTS)}
    with tempfile.TemporaryDirectory(prefix="qagate-export-") as tmp:
        path = Path(tmp) / ONNX_FILES["none"]
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation notes about the legacy exporter
            torch.onnx.export(
                module,
                _example_inputs(input_names, vocab),
                str(path),
                input_names=list(input_names),
                output_names=list(OUTPUTS),
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        if len(list(Path(tmp).iterdir())) > 1:  # weights stored beside the graph: over 2 GB
            raise QagateError("models over 2 GB (ONNX external data) cannot be exported by qagate yet")
        return path.read_bytes()


class _NoPreprocessHint(logging.Filter):
    """ONNX Runtime's quantiser logs a hint on the root logger that would leak into every run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def quantize_onnx(source: Path, target: Path) -> Path:
    """Write ``target``: ``source`` with its MatMul weights in int8, one scale per channel (ONNX
    Runtime dynamic quantisation; activations are quantised on the fly). Written atomically.

    Per channel kept 85% of the reference MiniLM-L6's fp32 answers on 400 held-out questions
    (64% per tensor) at the same speed; ``reduce_range`` lost accuracy on this AVX2 CPU.
    """
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise QagateError(
            "int8 ONNX models need the onnxruntime package", hint="pip install onnxruntime"
        ) from None
    hint = _NoPreprocessHint()
    root = logging.getLogger()
    root.addFilter(hint)
    try:
        with tempfile.TemporaryDirectory(prefix=".qagate-quantize-", dir=target.parent) as tmp:
            out = Path(tmp) / target.name
            quantize_dynamic(str(source), str(out), per_channel=True, weight_type=QuantType.QInt8)
            atomic_write_bytes(target, out.read_bytes())
    finally:
        root.removeFilter(hint)
    return target


def optimized_name(level: str) -> str:
    """The file name of the export after the transformer optimizer at ``level``."""
    return f"model-{level}.onnx"


def _bert_shape(folder: Path) -> tuple[int, int]:
    """(attention heads, hidden size) from the model's config.json, or (0, 0) where it has none:
    the optimizer then reads them from the graph."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return int(config.get("num_attention_heads") or 0), int(config.get("hidden_size") or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return 0, 0


def optimize_onnx(source: Path, target: Path, heads: int = 0, hidden: int = 0) -> Path:
    """Write ``target``: ``source`` fused by ONNX Runtime's transformer optimizer (BERT family:
    MultiHeadAttention, SkipLayerNormalization, BiasGelu, EmbedLayerNormalization), fp32, the same
    logits to ~1e-5. Written atomically. The multi-head form keeps the Q/K/V projections as
    separate MatMuls, which ONNX Runtime's CPU kernels ran as fast as its unfused graph (the
    packed ``Attention`` form was 5-10% slower on 2 AMD EPYC cores)."""
    try:
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError:
        raise QagateError(
            "runtime: onnxruntime needs the onnxruntime package", hint="pip install onnxruntime"
        ) from None
    options = FusionOptions("bert")
    options.use_multi_head_attention = True
    quiet = logging.getLogger("onnxruntime.transformers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # fusion statistics are logged at INFO/WARNING
    try:
        model = optimize_model(
            str(source),
            model_type="bert",
            num_heads=heads,
            hidden_size=hidden,
            optimization_options=options,
            opt_level=0,  # the offline fusions only: ONNX Runtime applies its own at load
            use_gpu=False,
        )
        with tempfile.TemporaryDirectory(prefix=".qagate-optimize-", dir=target.parent) as tmp:
            out = Path(tmp) / target.name
            model.save_model_to_file(str(out))
            atomic_write_bytes(target, out.read_bytes())
    finally:
        quiet.setLevel(level)
    return target


# --- where a declaration's ONNX file comes from -------------------------------------------


def ensure_onnx(
    folder: Path,
    quantize: str,
    weights_digest: str,
    export: Callable[[], bytes],
    *,
    root: Path | None = None,
    optimization: str = "none",
) -> Path:
    """The ``.onnx`` file to run for the model in ``folder``; see the module docstring.

    ``weights_digest`` hashes the folder's weights, config and tokenizer (what the export
    depends on); ``export`` returns the fp32 ONNX bytes and is called only on a cache miss.
    ``optimization`` (fp32 only): ``none``, or :data:`OPTIMIZATION` for the transformer
    optimizer's file.
    """
    from filelock import FileLock

    if optimization not in ("none", OPTIMIZATION):
        raise QagateError(f"unknown ONNX optimisation level {optimization!r}", hint=f"use {OPTIMIZATION}")
    optimize = optimization != "none" and quantize == "none"
    folder = Path(folder)
    wanted = folder / (optimized_name(optimization) if optimize else ONNX_FILES[quantize])
    if wanted.is_file():
        return wanted
    fp32 = folder / ONNX_FILES["none"]
    if fp32.is_file():  # quantize: int8 or optimisation of a folder that only has the fp32 file
        from qagate.inference.model_files import file_sha256

        key = _sha256_text(f"quantized-from:{file_sha256(fp32)}\0format:{FORMAT}")
    else:
        key = _sha256_text(f"weights:{weights_digest}\0opset:{OPSET}\0format:{FORMAT}")
    target = (root or onnx_cache_root()) / key[:24]
    result = target / wanted.name
    if result.is_file():
        return result
    target.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=LOCK_TIMEOUT_S):
        if result.is_file():  # another process finished it while we waited
            return result
        exported = fp32 if fp32.is_file() else target / ONNX_FILES["none"]
        if not exported.is_file():
            atomic_write_bytes(exported, export())
        if optimize:
            optimize_onnx(exported, result, *_bert_shape(folder))
        elif quantize == "int8":
            quantize_onnx(exported, result)
    return result


# --- qagate export: a folder that is itself a model source ---------------------------------


def _copied_files(folder: Path) -> list[Path]:
    """Config, tokenizer and model card of ``folder``: everything but weights and ONNX files."""
    from qagate.inference.model_files import WEIGHT_SUFFIXES

    skip = (*WEIGHT_SUFFIXES, ".onnx", ".lock")
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.endswith(skip) and p.name not in (MANIFEST, "zoo.json")
    )


def write_export(
    folder: Path, out_dir: Path, quantize: str, onnx_file: Path, provenance: dict[str, Any]
) -> list[Path]:
    """Fill ``out_dir`` with ``model.onnx`` (and ``model-int8.onnx`` for int8), the config and
    tokenizer files of ``folder`` and a manifest; returns the files written, sorted.

    ``onnx_file`` is the file :func:`ensure_onnx` gave for ``quantize``; the fp32 file sits
    beside it (or in ``folder``). Same inputs, same bytes: nothing time- or path-dependent.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    sources = {ONNX_FILES["none"]: _fp32_beside(folder, onnx_file)}
    if quantize == "int8":
        sources[ONNX_FILES["int8"]] = onnx_file
    for name, path in sources.items():
        atomic_write_bytes(out_dir / name, Path(path).read_bytes())
        written.append(out_dir / name)
    for path in _copied_files(folder):
        shutil.copyfile(path, out_dir / path.name)
        written.append(out_dir / path.name)
    from qagate.inference.model_files import file_sha256

    manifest = {
        "format": FORMAT,
        "opset": OPSET,
        "quantize": quantize,
        "onnx_files": {p.name: file_sha256(p) for p in written if p.name.endswith(".onnx")},
        **provenance,
    }
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    written.append(out_dir / MANIFEST)
    return sorted(written)


def _fp32_beside(folder: Path, onnx_file: Path) -> Path:
    for candidate in (onnx_file.parent / ONNX_FILES["none"], folder / ONNX_FILES["none"]):
        if candidate.is_file():
            return candidate
    raise QagateError("no fp32 model.onnx to copy", path=onnx_file.parent)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The export manifest of ``folder`` ({} when there is none or it is unreadable)."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
