"""Model declarations: defaults, path resolution and one-line errors for every kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from qagate.core.errors import QagateError
from qagate.inference.config import KEYS, ModelSpec, load_model_spec, load_model_specs
from qagate.inference.registry import KINDS, adapter_class, build_model, register_kind


def write(tmp_path: Path, text: str, name: str = "model.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_relative_source(tmp_path):
    (tmp_path / "weights").mkdir()
    spec = load_model_spec(
        write(tmp_path, "name: teacher\nrole: teacher\nkind: extractive\nsource: weights\n")
    )
    assert spec == ModelSpec(
        name="teacher",
        role="teacher",
        kind="extractive",
        source=str((tmp_path / "weights").resolve()),
        path=tmp_path / "model.yaml",
    )
    assert (spec.max_seq_len, spec.doc_stride, spec.max_answer_len, spec.batch_size) == (384, 128, 15, 32)
    assert (spec.device, spec.dtype, spec.trust_remote_code, spec.revision) == ("auto", "auto", False, None)


def test_all_keys(tmp_path):
    spec = load_model_spec(
        write(
            tmp_path,
            """
name: student-3l
role: student
kind: extractive
source: org/minilm-squad
revision: "0123abc"
max_seq_len: 256
doc_stride: 96
max_answer_len: 30
batch_size: 8
device: cuda:1
dtype: bf16
trust_remote_code: true
description: a 3-layer student
""",
        )
    )
    assert spec.source == "org/minilm-squad"  # a hub id stays a hub id
    assert (spec.revision, spec.max_seq_len, spec.doc_stride, spec.max_answer_len) == ("0123abc", 256, 96, 30)
    assert (spec.batch_size, spec.device, spec.dtype, spec.trust_remote_code) == (8, "cuda:1", "bf16", True)
    assert spec.description == "a 3-layer student" and spec.role == "student"
    assert set(KEYS) == {
        "name",
        "role",
        "kind",
        "source",
        "revision",
        "max_seq_len",
        "doc_stride",
        "max_answer_len",
        "null_threshold",
        "batch_size",
        "device",
        "dtype",
        "runtime",
        "quantize",
        "trust_remote_code",
        "description",
        "shots",
        "prompt",
        "max_new_tokens",
        "stop",
        "chat_template",
    }


def test_path_like_sources_resolve_against_the_yaml_folder(tmp_path, monkeypatch):
    sub = tmp_path / "qa_models"
    sub.mkdir()
    spec = load_model_spec(write(sub, "name: m\nkind: extractive\nsource: ../../shared/models/x\n"))
    assert spec.source == str((tmp_path.parent / "shared/models/x").resolve())
    replay = load_model_spec(write(sub, "name: r\nkind: replay\nsource: preds.json\n", "r.yaml"))
    assert replay.source == str((sub / "preds.json").resolve())
    monkeypatch.setenv("QAGATE_TEST_SHARED", str(tmp_path / "elsewhere"))
    env = load_model_spec(
        write(sub, "name: e\nkind: extractive\nsource: ${QAGATE_TEST_SHARED}/m\n", "e.yaml")
    )
    assert env.source == str((tmp_path / "elsewhere/m").resolve())


@pytest.mark.parametrize(
    "body, expected",
    [
        (
            "name: m\nkind: extractive\nsource: x\nmax_seqlen: 256\n",
            "max_seqlen: unknown key 'max_seqlen' (did you mean 'max_seq_len'?)",
        ),
        (
            "name: m\nkind: extractiv\nsource: x\n",
            "kind: 'extractiv' is not allowed (did you mean 'extractive'?)",
        ),
        (
            "name: m\nrole: techer\nkind: extractive\nsource: x\n",
            "role: 'techer' is not allowed (did you mean 'teacher'?)",
        ),
        ("name: m\nkind: extractive\nsource: x\ndtype: float16\n", "dtype: 'float16' is not allowed"),
        (
            "name: m\nkind: extractive\nsource: x\ndevice: gpu\n",
            "device: expected one of auto, cpu, cuda, cuda:N, mps; got 'gpu' (did you mean 'cuda'?)",
        ),
        ("name: m\nkind: extractive\nsource: x\ndevice: cuda-1\n", "device: expected one of auto, cpu"),
        (
            "name: m\nkind: extractive\nsource: x\nbatch_size: 0\n",
            "batch_size: must be a positive integer, got 0",
        ),
        (
            "name: m\nkind: extractive\nsource: x\nmax_seq_len: '384'\n",
            "max_seq_len: must be a positive integer, got '384'",
        ),
        (
            "name: m\nkind: extractive\nsource: x\ndoc_stride: true\n",
            "doc_stride: must be a positive integer, got True",
        ),
        (
            "name: m\nkind: extractive\nsource: x\ntrust_remote_code: 'yes'\n",
            "trust_remote_code: must be true or false",
        ),
        (
            "name: m\nkind: extractive\nsource: x\nrevision: 1234\n",
            "revision: must be a string, got 1234 (quote it",
        ),
        (
            "name: m\nkind: extractive\nsource: x\ndoc_stride: 384\n",
            "doc_stride: 384 must be smaller than max_seq_len (384)",
        ),
        ("name: 'my model'\nkind: extractive\nsource: x\n", "name: 'my model' is not a valid name"),
        ("name: m\nkind: extractive\n", "missing required key 'source'"),
        ("name: m\nkind: extractive\nsource: ''\n", "source: must be a non-empty string"),
        ("- name: m\n", "a model declaration must be a mapping of keys, got list"),
        ("name: m\nkind: [extractive\n", "not valid YAML: line 3"),
        ("", "empty model declaration"),
        (
            "name: m\nkind: extractive\nsource: ${QAGATE_NOT_SET_ANYWHERE}/x\n",
            "source: environment variable QAGATE_NOT_SET_ANYWHERE is not set",
        ),
        (
            "name: m\nkind: extractive\nsource: zoo:minilm6-squad-teachr\n",
            "source: no model 'minilm6-squad-teachr' in qagate's zoo "
            "(did you mean 'minilm6-squad-teacher'?); "
            "zoo models: minilm3-squad-distilled, minilm6-squad-teacher",
        ),
        (
            "name: m\nkind: replay\nsource: zoo:minilm6-squad-teacher\n",
            "is a packed model, not a predictions file",
        ),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path, body, expected):
    path = write(tmp_path, body)
    with pytest.raises(QagateError) as info:
        load_model_spec(path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "written, device",
    [("mps", "mps"), ("MPS", "mps"), ("cuda:1", "cuda:1"), ("auto", "auto"), ("cpu", "cpu")],
)
def test_devices_are_the_ones_the_options_accept(tmp_path, written, device):
    spec = load_model_spec(write(tmp_path, f"name: m\nkind: extractive\nsource: x\ndevice: {written}\n"))
    assert spec.device == device


def test_zoo_source_is_the_packed_model_inside_the_package(tmp_path):
    from qagate.inference import zoo

    spec = load_model_spec(write(tmp_path, "name: t\nkind: extractive\nsource: zoo:minilm6-squad-teacher\n"))
    assert spec.source == str(zoo.zoo_dir() / "minilm6-squad-teacher")
    assert Path(spec.source).is_dir() and zoo.is_packed(Path(spec.source))


def test_repository_declarations_use_the_zoo_and_keep_their_folder():
    """qa_models/ says zoo:NAME; it must be the same folder the relative path named (same weights)."""
    root = Path(__file__).resolve().parents[1]
    for file, folder in [
        ("minilm6-teacher.yaml", "minilm6-squad-teacher"),
        ("minilm3-distilled.yaml", "minilm3-squad-distilled"),
    ]:
        spec = load_model_spec(root / "qa_models" / file)
        assert spec.source == str((root / "src/qagate/resources/zoo" / folder).resolve())


def test_missing_file(tmp_path):
    with pytest.raises(QagateError, match="model declaration not found"):
        load_model_spec(tmp_path / "nope.yaml")


def test_load_model_specs_sorted_and_unique(tmp_path):
    write(tmp_path, "name: zeta\nkind: replay\nsource: z.json\n", "a.yaml")
    write(tmp_path, "name: alpha\nkind: replay\nsource: a.json\n", "b.yml")
    (tmp_path / "notes.txt").write_text("not a model")
    assert [s.name for s in load_model_specs(tmp_path)] == ["alpha", "zeta"]
    write(tmp_path, "name: zeta\nkind: replay\nsource: other.json\n", "c.yaml")
    with pytest.raises(QagateError, match="duplicate model name 'zeta'"):
        load_model_specs(tmp_path)
    with pytest.raises(QagateError, match="model folder not found"):
        load_model_specs(tmp_path / "missing")


def test_registry_unknown_kind_and_extension(tmp_path):
    with pytest.raises(QagateError, match="unknown model kind 'replya' \\(did you mean 'replay'\\?\\)"):
        adapter_class("replya")
    register_kind("custom-test-kind", "qagate.inference.replay:ReplayModel")
    try:
        spec = load_model_spec(write(tmp_path, "name: c\nkind: custom-test-kind\nsource: p.json\n"))
        assert adapter_class(spec.kind).__name__ == "ReplayModel"
    finally:
        del KINDS["custom-test-kind"]


def test_missing_model_files_is_a_build_time_error(tmp_path):
    spec = load_model_spec(write(tmp_path, "name: gone\nkind: extractive\nsource: ./no-such-model\n"))
    with pytest.raises(QagateError, match="missing model files: folder not found"):
        build_model(spec)
    (tmp_path / "empty").mkdir()
    spec = load_model_spec(write(tmp_path, "name: empty\nkind: extractive\nsource: ./empty\n"))
    with pytest.raises(QagateError, match="missing model files: no config.json"):
        build_model(spec)


def test_reading_declarations_imports_no_torch(tmp_path):
    import subprocess
    import sys

    write(tmp_path, "name: m\nkind: extractive\nsource: org/m\n")
    code = (
        "import sys; from qagate.inference.config import load_model_specs; "
        f"load_model_specs({str(tmp_path)!r}); "
        "bad = [m for m in ('torch', 'transformers', 'datasets', 'numpy') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
