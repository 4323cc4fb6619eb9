"""Compressed variants (``runtime: onnxruntime``, ``quantize: int8``) of the tiny random models:
same answers as PyTorch in fp32, int8 agreement recorded, keys validated, distinct fingerprints,
``qagate export`` folders that load, and the ONNX artefact cache reused."""

from __future__ import annotations

import json

import pytest

from qagate.cli import main
from qagate.core.errors import QagateError
from qagate.inference import onnx_export
from qagate.inference.config import load_model_spec
from qagate.inference.extractive import ExtractiveModel
from qagate.inference.registry import build_model, quiet_model_loading
from tiny_models import RECIPES, build_tiny_model

pytest.importorskip("onnxruntime")
VARIANTS = [("torch", "none"), ("onnxruntime", "none"), ("torch", "int8"), ("onnxruntime", "int8")]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """qagate's cache folder ($QAGATE_HOME) for this module, so exports start from nothing."""
    quiet_model_loading()
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("qagate-home")
        mp.setenv("QAGATE_HOME", str(path))
        yield path


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("variants") / "tiny-teacher", RECIPES["tiny-teacher"])


@pytest.fixture(scope="module")
def sample():
    from qagate.data import load_dataset

    return load_dataset("sample").examples


def variant(source, runtime="torch", quantize="none", **keys) -> ExtractiveModel:
    return ExtractiveModel("tiny", str(source), runtime=runtime, quantize=quantize, device="cpu", **keys)


@pytest.fixture(scope="module")
def answers(home, teacher_dir, sample):
    """Each variant's answers on the built-in sample (65 questions)."""
    return {v: variant(teacher_dir, *v).predict(sample).answers for v in VARIANTS}


def agreement(a: dict, b: dict) -> float:
    return sum(a[k] == b[k] for k in a) / len(a)


def test_fp32_onnx_gives_the_torch_answers_and_logits(answers, teacher_dir, home):
    import torch

    torch_answers, onnx_answers = answers[("torch", "none")], answers[("onnxruntime", "none")]
    assert len(torch_answers) == 65 and onnx_answers == torch_answers
    reference, onnx = variant(teacher_dir).load(), variant(teacher_dir, "onnxruntime").load()
    encoded = reference.tokenizer(
        ["Who built it?", "When?"],
        ["The tower was built by Gustave Eiffel in 1889.", "In 1889, for the fair in Paris, France."],
        padding=True,
        return_tensors="pt",
    )
    with torch.inference_mode():
        want, got = reference.model(**encoded), onnx.model(**encoded)
    for name in ("start_logits", "end_logits"):
        assert getattr(got, name).shape == getattr(want, name).shape
        assert torch.allclose(getattr(got, name), getattr(want, name), atol=1e-4)


def test_int8_variants_answer_and_their_agreement_is_recorded(answers, record_property):
    fp32 = answers[("torch", "none")]
    for runtime in ("torch", "onnxruntime"):
        int8 = answers[(runtime, "int8")]
        assert set(int8) == set(fp32) and all(isinstance(a, str) for a in int8.values())
        share = agreement(int8, fp32)
        record_property(f"agreement_{runtime}_int8", round(share, 4))
        print(f"tiny-teacher {runtime} int8: same answer as torch fp32 on {share:.1%} of the sample")
        assert share >= 0.85  # measured 100% (torch) and 95.4% (onnxruntime), per-channel int8


def test_fingerprints_differ_per_variant_and_plain_torch_keeps_its_own(teacher_dir, home):
    prints = {v: variant(teacher_dir, *v).fingerprint() for v in VARIANTS}
    assert len(set(prints.values())) == 4
    plain = ExtractiveModel("tiny", str(teacher_dir), device="cpu")  # no variant keys at all
    assert plain.fingerprint() == prints[("torch", "none")]
    info = variant(teacher_dir, "onnxruntime", "int8").info()
    assert (info["runtime"], info["quantize"], info["dtype"]) == ("onnxruntime", "int8", "fp32")
    fp32_size = variant(teacher_dir, "onnxruntime").info()["size_on_disk_mb"]
    assert isinstance(fp32_size, float) and info["size_on_disk_mb"] < 0.5 * fp32_size


def test_variant_fingerprints_follow_the_batching_and_plain_torch_ones_do_not(teacher_dir, home):
    """Dynamic int8 quantises activations with one scale per batch, and fused kernels block their
    sums by the batch's shape, so the same question can get another answer in another batch: a
    cached variant's prediction is only reused for the same batching (issue 25)."""
    from qagate.inference.engine import EngineSettings

    def printed(runtime, quantize, tokens):
        return ExtractiveModel(
            "tiny",
            str(teacher_dir),
            runtime=runtime,
            quantize=quantize,
            device="cpu",
            settings=EngineSettings(cpu_batch_tokens=tokens),
        ).fingerprint()

    for runtime in ("torch", "onnxruntime"):
        assert printed(runtime, "int8", 1024) != printed(runtime, "int8", 4096)
    assert printed("onnxruntime", "none", 1024) != printed("onnxruntime", "none", 4096)
    assert printed("torch", "none", 1024) == printed("torch", "none", 4096)


def test_the_export_is_cached_and_reused(teacher_dir, home, monkeypatch, answers):
    first = variant(teacher_dir, "onnxruntime", "int8").onnx_file()
    assert first.is_relative_to(home / "onnx") and first.name == "model-int8.onnx"
    stamp = first.stat().st_mtime_ns, (first.parent / "model.onnx").stat().st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "export_onnx_bytes", no_export)
    monkeypatch.setattr(onnx_export, "quantize_onnx", no_export)
    again = variant(teacher_dir, "onnxruntime", "int8")
    assert again.onnx_file() == first and again.load() is not None
    assert (first.stat().st_mtime_ns, (first.parent / "model.onnx").stat().st_mtime_ns) == stamp


def test_export_writes_a_folder_that_is_a_source(
    teacher_dir, home, tmp_path, write_model_yaml, sample, answers
):
    declaration = write_model_yaml("tiny-teacher", source=teacher_dir, device="cpu", runtime="onnxruntime")
    out, again = tmp_path / "exported", tmp_path / "again"
    assert main(["export", str(declaration), "--out", str(out), "--quantize", "int8"]) == 0
    assert main(["export", str(declaration), "--out", str(again), "--quantize", "int8"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert {"model.onnx", "model-int8.onnx", "config.json", "tokenizer.json", "qagate-export.json"} <= set(
        names
    )
    assert not any(n.endswith(".safetensors") for n in names)
    for name in names:  # reproducible: the same bytes on re-export
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    manifest = json.loads((out / "qagate-export.json").read_text())
    assert manifest["opset"] == onnx_export.OPSET and manifest["parameter_count"] > 0
    for quantize in ("none", "int8"):
        spec = load_model_spec(
            write_model_yaml(f"exported-{quantize}", source=out, runtime="onnxruntime", quantize=quantize)
        )
        model = build_model(spec, device="cpu")
        if quantize == "int8":
            assert model.onnx_file() == out / onnx_export.ONNX_FILES[quantize]  # used as it is
        else:  # fp32 runs the transformer optimizer's graph of it, made once into the cache
            optimized = model.onnx_file()
            assert optimized.is_relative_to(home / "onnx")
            assert optimized.name == onnx_export.optimized_name(onnx_export.OPTIMIZATION)
        assert model.predict(sample).answers == answers[("onnxruntime", quantize)]
        assert model.info()["parameter_count"] == manifest["parameter_count"]
    with pytest.raises(
        QagateError,
        match=r"no weights .* \(it has only ONNX files: declare runtime: onnxruntime or openvino\)",
    ):
        variant(out)


def test_export_and_quantisation_give_the_same_bytes_every_time(teacher_dir, home, tmp_path, answers):
    model = variant(teacher_dir, "onnxruntime")
    names = onnx_export.input_names(model.load().tokenizer)
    first = onnx_export.export_onnx_bytes(model._torch_model("cpu", "fp32"), names)
    second = onnx_export.export_onnx_bytes(model._torch_model("cpu", "fp32"), names)
    exported = model.onnx_file().parent / "model.onnx"  # beside the optimizer's graph
    assert first == second == exported.read_bytes()
    one, two = tmp_path / "one" / "model-int8.onnx", tmp_path / "two" / "model-int8.onnx"
    for target in (one, two):
        target.parent.mkdir()
        onnx_export.quantize_onnx(exported, target)
    assert one.read_bytes() == two.read_bytes()


def test_int8_of_a_folder_with_only_the_fp32_onnx_is_quantised_into_the_cache(teacher_dir, home, tmp_path):
    folder = tmp_path / "fp32-only"
    folder.mkdir()
    for path in teacher_dir.iterdir():
        if not path.name.endswith(".safetensors"):
            (folder / path.name).write_bytes(path.read_bytes())
    exported = variant(teacher_dir, "onnxruntime").onnx_file().parent / "model.onnx"
    (folder / "model.onnx").write_bytes(exported.read_bytes())
    quantised = variant(folder, "onnxruntime", "int8").onnx_file()
    assert quantised.is_relative_to(home / "onnx") and quantised.name == "model-int8.onnx"
    assert not (folder / "model-int8.onnx").exists()


@pytest.mark.parametrize(
    "keys, expected",
    [
        ("runtime: onnx", "runtime: 'onnx' is not allowed (did you mean 'onnxruntime'?)"),
        ("runtime: tensorrt", "runtime: 'tensorrt' is not allowed (allowed: torch, onnxruntime, openvino)"),
        ("quantize: int4", "quantize: 'int4' is not allowed (did you mean 'int8'?)"),
        ("quantize: true", "quantize: must be a non-empty string, got True"),
        ("quantise: int8", "unknown key 'quantise' (did you mean 'quantize'?)"),
        ("quantize: int8\ndtype: fp16", "dtype: quantize: int8 runs fp32 (or int8) weights"),
        ("runtime: onnxruntime\ndtype: bf16", "dtype: runtime: onnxruntime has no bf16 kernels for the CPU"),
        ("runtime: openvino\ndtype: fp16", "dtype: runtime: openvino runs fp32 (or int8) weights"),
        ("runtime: openvino\nquantize: int8\ndtype: bf16", "dtype: quantize: int8 runs fp32"),
        ("runtime: openvino\ndevice: cuda", "device: runtime: openvino runs on the CPU, not device: cuda"),
        ("quantize: int8\ndevice: cuda", "device: quantize: int8 with runtime: torch is PyTorch's dynamic"),
        ("runtime: onnxruntime\ndevice: mps", "device: runtime: onnxruntime runs on cpu or cuda, not mps"),
    ],
)
def test_variant_keys_are_validated(tmp_path, keys, expected):
    path = tmp_path / "m.yaml"
    path.write_text(f"name: m\nkind: extractive\nsource: org/model\n{keys}\n")
    with pytest.raises(QagateError) as info:
        load_model_spec(path)
    assert str(info.value).startswith(f"{path}: ") and expected in str(info.value)
    assert "\n" not in str(info.value)


def test_variant_keys_are_for_extractive_models_only(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nkind: replay\nsource: p.json\nruntime: onnxruntime\n")
    with pytest.raises(
        QagateError, match="'runtime' only applies to kind: extractive models, not kind: replay"
    ):
        load_model_spec(path)


def test_devices_a_variant_cannot_use_are_clear_errors(teacher_dir, monkeypatch):
    from qagate.inference import onnx_runtime

    with pytest.raises(QagateError, match="runs on the CPU only"):
        ExtractiveModel("tiny", str(teacher_dir), quantize="int8", device="cuda")
    monkeypatch.setattr(onnx_runtime, "cuda_available", lambda: False)
    onnx = ExtractiveModel("tiny", str(teacher_dir), runtime="onnxruntime", device="cuda")
    with pytest.raises(QagateError, match="needs ONNX Runtime's CUDAExecutionProvider.*onnxruntime-gpu"):
        onnx.device  # noqa: B018
    auto = ExtractiveModel("tiny", str(teacher_dir), runtime="onnxruntime", quantize="int8")
    assert auto.device == "cpu" and ExtractiveModel("t", str(teacher_dir), quantize="int8").device == "cpu"


def test_an_onnx_file_that_is_not_a_qa_model_is_a_clear_error(tmp_path):
    pytest.importorskip("onnx")
    import onnx
    from onnx import TensorProto, helper

    from qagate.inference.onnx_runtime import OnnxQA

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input_ids"], ["logits"])],
        "g",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("logits", TensorProto.INT64, ["b", "s"])],
    )
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(QagateError, match="not an extractive QA model: outputs are logits"):
        OnnxQA(path)
    path.write_bytes(b"not onnx")
    with pytest.raises(QagateError, match="ONNX Runtime cannot load this model"):
        OnnxQA(path)


def test_the_repository_declares_the_variants_beside_an_unchanged_teacher():
    from dataclasses import replace
    from pathlib import Path

    from qagate.inference.config import load_model_specs

    root = Path(__file__).resolve().parents[1] / "qa_models"
    specs = {spec.name: spec for spec in load_model_specs(root / "variants")}
    main_teacher = load_model_spec(root / "minilm6-teacher.yaml")
    assert replace(specs["minilm6-teacher"], path=None) == replace(main_teacher, path=None)
    assert {(s.name, s.role, s.runtime, s.quantize) for s in specs.values()} == {
        ("minilm6-teacher", "teacher", "torch", "none"),
        ("minilm6-teacher-onnx", "model", "onnxruntime", "none"),
        ("minilm3-distilled-int8", "student", "torch", "int8"),
        ("minilm3-distilled-onnx-int8", "student", "onnxruntime", "int8"),
    }
