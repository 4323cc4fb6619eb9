"""Causal language models for distillation: telling a causal teacher from an extractive one,
loading one for training, and the two kinds of causal student (the teacher with a subset of its
decoder layers, or a smaller causal LM that reads the same tokens)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qagate.core.errors import QagateError
from qagate.training.models import _quiet_transformers, set_attention_dropout

#: Class-name endings of causal-LM checkpoints (``GPTNeoXForCausalLM``, ``GPT2LMHeadModel``);
#: the same test the generative adapter applies to a declaration's source.
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")

# "<prefix>.<index>.<rest>" for stacked decoder blocks: "gpt_neox.layers.N." (GPT-NeoX),
# "model.layers.N." (Llama, Qwen2, Mistral, ...), "transformer.h.N." (GPT-2).
_LAYER_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?(?:layers|h))\.(?P<index>\d+)\.(?P<rest>.+)$")


def is_causal_lm(path: str | Path) -> bool:
    """Whether a model directory holds a causal LM: its config's ``architectures`` end in
    ``ForCausalLM``/``LMHeadModel``, or (none listed) its model type is a causal LM and not a
    masked-LM encoder. A directory that cannot be read is not causal (the caller's loader says
    what is wrong with it)."""
    config_file = Path(path) / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    archs = config.get("architectures") or []
    if archs:
        return any(str(a).endswith(CAUSAL_SUFFIXES) for a in archs)
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = config.get("model_type")
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def load_causal_lm(
    path: str | Path, *, what: str = "teacher", attention_dropout: float | None = None
) -> tuple[Any, Any]:
    """A local causal LM as fp32 ``AutoModelForCausalLM`` with its tokenizer (no remote code)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    directory = Path(path)
    if not (directory / "config.json").is_file():
        raise QagateError(
            f"{what} is not a Hugging Face model directory (no config.json)",
            path=directory,
            hint="give a local model directory (config.json, weights, tokenizer)",
        )
    if not is_causal_lm(directory):
        raise QagateError(
            f"{what} is not a causal language model, but the teacher is",
            path=directory,
            hint="a causal teacher needs a *ForCausalLM student",
        )
    try:
        config = AutoConfig.from_pretrained(directory)
        if attention_dropout is not None:
            set_attention_dropout(config, attention_dropout, what=what, path=directory)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        with _quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(directory, config=config, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise QagateError(
            f"cannot load the {what} as a causal language model: {first}", path=directory
        ) from None
    if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token  # what the generation engine pads with
    if tokenizer.pad_token_id is None:
        raise QagateError(
            f"the {what}'s tokenizer has neither a padding nor an end-of-text token", path=directory
        )
    return model, tokenizer


def causal_student_from_layers(teacher: Any, layers: Sequence[int]) -> Any:
    """A copy of causal ``teacher`` keeping only decoder ``layers`` (student layer i = teacher
    layer ``layers[i]``); embeddings, final norm, LM head and generation config copied."""
    import copy

    from qagate.training.students import student_from_layers

    def keep_layer_types(config: Any, count: int) -> None:
        kinds = getattr(config, "layer_types", None)  # per-layer attention kind (Qwen2, Gemma, ...)
        if isinstance(kinds, list) and len(kinds) == count:
            config.layer_types = [kinds[i] for i in layers]

    student = student_from_layers(
        teacher, layers, layer_key=_LAYER_KEY, stack="decoder", configure=keep_layer_types
    )
    student.generation_config = copy.deepcopy(teacher.generation_config)
    return student


def load_causal_student(
    path: str | Path, teacher_tokenizer: Any, *, attention_dropout: float | None = None
) -> Any:
    """A user-supplied causal student; it must read and write the teacher's tokens."""
    student, tokenizer = load_causal_lm(path, what="student", attention_dropout=attention_dropout)
    if tokenizer.get_vocab() != teacher_tokenizer.get_vocab():
        raise QagateError(
            "the student's vocabulary differs from the teacher's, so their next-token "
            "distributions do not line up token by token",
            path=path,
            hint="use a student built on the teacher's tokenizer (e.g. a smaller model of the same family)",
        )
    width = student.get_output_embeddings().weight.shape[0]
    if width < len(teacher_tokenizer):
        raise QagateError(
            f"the student predicts {width} tokens but the tokenizer has {len(teacher_tokenizer)}",
            path=path,
            hint="resize the student's embeddings to the tokenizer",
        )
    return student
