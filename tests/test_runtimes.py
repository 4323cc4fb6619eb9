"""The optimised runtimes of issue 25 on the tiny random teacher: ONNX Runtime's transformer
optimizer (cached with the export, its level in the key), ``runtime: openvino`` in fp32, bf16 and
int8, ``dtype: bf16`` refused on CPUs without bf16 instructions, and the fingerprint discipline
(runtime, optimisation level, dtype and batching in the prediction cache's key). Tests that need
openvino, nncf or onnxruntime skip with the reason when the package is absent."""

from __future__ import annotations

import sys

import pytest

from qagate.core.errors import QagateError
from qagate.inference import onnx_export, variants
from qagate.inference.engine import EngineSettings
from qagate.inference.extractive import ExtractiveModel
from test_variants import home, sample, teacher_dir  # noqa: F401 (the variants' fixtures, shared)

BF16_CPU = frozenset({"avx512f", "avx512_bf16"})


@pytest.fixture(scope="module")
def torch_answers(teacher_dir, sample):
    return ExtractiveModel("tiny", str(teacher_dir), device="cpu").predict(sample).answers


def model(source, runtime="torch", quantize="none", dtype="auto", **keys) -> ExtractiveModel:
    return ExtractiveModel(
        "tiny", str(source), runtime=runtime, quantize=quantize, dtype=dtype, device="cpu", **keys
    )


def agreement(a: dict, b: dict) -> float:
    return sum(a[k] == b[k] for k in a) / len(a)


def needs_bf16_cpu() -> None:
    if not any(flag in variants.cpu_flags() for flag in variants.BF16_FLAGS):
        pytest.skip("this CPU has no avx512_bf16 or AMX instructions")


# -- ONNX Runtime's transformer optimizer ---------------------------------------------------


def test_onnxruntime_runs_the_optimized_graph_made_once_beside_the_export(
    teacher_dir, home, sample, torch_answers, monkeypatch
):
    pytest.importorskip("onnxruntime")
    import onnx

    fused = model(teacher_dir, "onnxruntime").onnx_file()
    assert fused.name == onnx_export.optimized_name(onnx_export.OPTIMIZATION)
    assert fused.is_relative_to(home / "onnx") and (fused.parent / "model.onnx").is_file()
    ops = {node.op_type for node in onnx.load(str(fused)).graph.node}
    assert {"MultiHeadAttention", "SkipLayerNormalization", "BiasGelu"} <= ops  # fused
    assert "Softmax" not in ops  # the attention's plain ops are gone

    def again(*args, **kwargs):
        raise AssertionError("optimised or exported again")

    monkeypatch.setattr(onnx_export, "optimize_onnx", again)
    monkeypatch.setattr(onnx_export, "export_onnx_bytes", again)
    reloaded = model(teacher_dir, "onnxruntime")
    assert reloaded.onnx_file() == fused
    assert reloaded.predict(sample).answers == torch_answers  # fp32: the same answers as PyTorch


def test_the_optimisation_level_is_in_the_file_name_and_the_fingerprint(teacher_dir, home, monkeypatch):
    before = model(teacher_dir, "onnxruntime").fingerprint()
    int8_before = model(teacher_dir, "onnxruntime", "int8").fingerprint()
    monkeypatch.setattr(onnx_export, "OPTIMIZATION", "ort-bert-mha-2")
    assert model(teacher_dir, "onnxruntime").fingerprint() != before
    assert model(teacher_dir, "onnxruntime", "int8").fingerprint() == int8_before  # int8: no optimizer
    assert onnx_export.optimized_name("ort-bert-mha-2") == "model-ort-bert-mha-2.onnx"
    with pytest.raises(QagateError, match="unknown ONNX optimisation level 'O9'"):
        onnx_export.ensure_onnx(teacher_dir, "none", "x", lambda: b"", optimization="O9")


# -- runtime: openvino ----------------------------------------------------------------------


def test_openvino_fp32_gives_the_torch_answers(teacher_dir, home, sample, torch_answers):
    pytest.importorskip("openvino", reason="runtime: openvino needs the openvino package")
    ov = model(teacher_dir, "openvino")
    assert ov.predict(sample).answers == torch_answers
    assert ov.onnx_file().name == "model.onnx"  # the plain export: OpenVINO fuses it itself
    info = ov.info()
    assert (info["runtime"], info["dtype"], info["device"]) == ("openvino", "fp32", "cpu")


def test_openvino_bf16_answers_close_to_fp32(teacher_dir, home, sample, torch_answers, record_property):
    pytest.importorskip("openvino", reason="runtime: openvino needs the openvino package")
    needs_bf16_cpu()
    bf16 = model(teacher_dir, "openvino", dtype="bf16")
    assert bf16.dtype == "bf16"
    share = agreement(bf16.predict(sample).answers, torch_answers)
    record_property("agreement_openvino_bf16", round(share, 4))
    assert share >= 0.8  # a random tiny model's logits are close together; MiniLM: bench/README.md


def test_openvino_int8_is_compressed_once_into_the_cache(
    teacher_dir, home, sample, torch_answers, monkeypatch, record_property
):
    pytest.importorskip("openvino", reason="runtime: openvino needs the openvino package")
    pytest.importorskip("nncf", reason="quantize: int8 with runtime: openvino needs the nncf package")
    from qagate.inference import openvino_runtime

    int8 = model(teacher_dir, "openvino", "int8")
    share = agreement(int8.predict(sample).answers, torch_answers)
    record_property("agreement_openvino_int8", round(share, 4))
    assert share >= 0.8
    irs = sorted((home / "onnx").glob("openvino-*/model-int8.xml"))
    assert len(irs) == 1 and irs[0].with_suffix(".bin").is_file()
    monkeypatch.setattr(openvino_runtime, "_nncf", lambda: pytest.fail("compressed again"))
    assert openvino_runtime.int8_ir(int8.onnx_file()) == irs[0]


def test_a_missing_openvino_is_one_line_saying_what_to_install(teacher_dir, home, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino raises ImportError
    with pytest.raises(QagateError) as info:
        model(teacher_dir, "openvino").load()
    message = str(info.value)
    assert "runtime: openvino needs the openvino package" in message
    assert "pip install 'pytest-qagate[openvino]'" in message and "\n" not in message


# -- dtype: bf16 on the CPU -----------------------------------------------------------------


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n\n")
    assert {"avx512_bf16", "avx512_vnni"} <= variants.cpu_flags(cpuinfo)
    assert variants.cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize("runtime", ["torch", "openvino"])
def test_bf16_is_refused_on_a_cpu_without_bf16_instructions(teacher_dir, monkeypatch, runtime):
    monkeypatch.setattr(variants, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    bf16 = model(teacher_dir, runtime, dtype="bf16")
    with pytest.raises(QagateError) as info:
        bf16.fingerprint()
    message = str(info.value)
    assert "dtype: bf16 on the CPU needs avx512_bf16 or AMX instructions" in message
    assert "use dtype: auto or fp32" in message and "\n" not in message
    monkeypatch.setattr(variants, "cpu_flags", lambda: BF16_CPU)
    assert bf16.dtype == "bf16"


def test_torch_bf16_answers_on_a_bf16_cpu(teacher_dir, sample, torch_answers, record_property):
    needs_bf16_cpu()
    share = agreement(model(teacher_dir, dtype="bf16").predict(sample).answers, torch_answers)
    record_property("agreement_torch_bf16", round(share, 4))
    assert share >= 0.8


# -- the prediction cache's key -------------------------------------------------------------

VARIANTS = [
    ("torch", "none", "fp32"),
    ("torch", "none", "bf16"),
    ("torch", "int8", "fp32"),
    ("onnxruntime", "none", "fp32"),
    ("onnxruntime", "int8", "fp32"),
    ("openvino", "none", "fp32"),
    ("openvino", "none", "bf16"),
    ("openvino", "int8", "fp32"),
]


def test_every_runtime_dtype_and_batching_has_its_own_fingerprint(teacher_dir, monkeypatch):
    """No variant is handed another's cached answers: runtime, quantisation, dtype and (for all
    but plain PyTorch fp32, whose answers do not depend on batching) the batch settings are in
    the key. Computing a fingerprint needs neither openvino nor onnxruntime."""
    monkeypatch.setattr(variants, "cpu_flags", lambda: BF16_CPU)

    def printed(runtime, quantize, dtype, **settings):
        return model(teacher_dir, runtime, quantize, dtype, settings=EngineSettings(**settings)).fingerprint()

    prints = {v: printed(*v) for v in VARIANTS}
    assert len(set(prints.values())) == len(VARIANTS)
    assert (
        prints[("torch", "none", "fp32")]
        == ExtractiveModel("t", str(teacher_dir), device="cpu").fingerprint()
    )
    for v in VARIANTS:
        for settings in ({"cpu_batch_tokens": 4096}, {"batch_size": 8}):
            moved = printed(*v, **settings) != prints[v]
            assert moved == (v != ("torch", "none", "fp32")), (v, settings)
