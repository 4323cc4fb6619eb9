"""Loading BERT-like encoders as extractive-QA models and saving model directories: the model I/O
that fine-tuning and distillation share, kept apart from the training loop."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qagate.core.errors import QagateError


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bar; we print what matters ourselves."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


#: Config keys for the dropout on attention probabilities (BERT-style, DistilBERT-style).
_ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")


def load_qa_model(
    path: str | Path, *, what: str = "base model", attention_dropout: float | None = None
) -> tuple[Any, Any, bool]:
    """Load a BERT-like encoder as a fp32 ``*ForQuestionAnswering`` model with its tokenizer.

    Returns ``(model, tokenizer, fresh_head)``; ``fresh_head`` is true when the directory held
    only an encoder (e.g. a plain ``BertModel``) and the span head was newly initialised
    (from torch's current RNG state: seed first). ``attention_dropout`` overrides the dropout
    on attention probabilities: on CPU it costs about half of a training step at 256 tokens.
    """
    import torch
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES,
    )

    directory = Path(path)
    if not directory.is_dir():
        raise QagateError(
            f"{what} directory does not exist",
            path=directory,
            hint="give a local Hugging Face model directory (config.json, weights, tokenizer)",
        )
    if not (directory / "config.json").is_file():
        raise QagateError(f"{what} is not a Hugging Face model directory (no config.json)", path=directory)
    config = AutoConfig.from_pretrained(directory)
    # BERT-like: a masked-LM style encoder that transformers can put a span head on.
    bert_like = (
        config.model_type in MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES
        and config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES
        and not config.is_encoder_decoder
    )
    if not bert_like:
        raise QagateError(
            f"{what} has model type {config.model_type!r}, not a BERT-like encoder with "
            "an extractive-QA head",
            path=directory,
            hint="use a bert, roberta, distilbert, electra, ... encoder",
        )
    if attention_dropout is not None:
        set_attention_dropout(config, attention_dropout, what=what, path=directory)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory)
    except (OSError, ValueError) as exc:
        raise QagateError(f"{what} has no usable tokenizer ({exc})", path=directory) from None
    if tokenizer.cls_token_id is None:
        raise QagateError(
            f"{what}'s tokenizer has no [CLS] token, which extractive QA training "
            "labels unanswerable windows with",
            path=directory,
        )
    with _quiet_transformers():
        model, info = AutoModelForQuestionAnswering.from_pretrained(
            directory, config=config, dtype=torch.float32, output_loading_info=True
        )
    missing = set(info.get("missing_keys", ()))
    encoder = model.base_model_prefix + "."
    head = {name for name, _ in model.named_parameters() if not name.startswith(encoder)}
    if missing - head:
        raise QagateError(
            f"{what} is missing encoder weights: {', '.join(sorted(missing - head)[:3])}", path=directory
        )
    return model, tokenizer, bool(missing & head)


def set_attention_dropout(config: Any, value: float, *, what: str, path: Path) -> None:
    """Override the dropout on attention probabilities in a model ``config`` (--attention-dropout)."""
    key = next((k for k in _ATTENTION_DROPOUT_KEYS if hasattr(config, k)), None)
    if key is None:
        raise QagateError(
            f"{what} ({config.model_type}) has no attention-dropout setting to override",
            path=path,
            hint="leave out --attention-dropout",
        )
    setattr(config, key, value)


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def save_model_dir(model: Any, tokenizer: Any, out_dir: Path) -> None:
    """A normal Hugging Face model directory: config, safetensors weights, tokenizer."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.architectures = [type(model).__name__]
    with _quiet_transformers():
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
