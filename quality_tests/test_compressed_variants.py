"""Answer by answer: the compressed variants of qa_models/variants/ against their fp32 selves.

A gate file compares scores; agreement needs the answers themselves, so this module builds the
variants from their declarations and reads their predictions through the session's prediction
cache (the gate file's run of the same models fills it, keyed by the weights and the variant).
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def answers_of(declaration: Path, settings, dataset) -> dict[str, str]:
    from qagate.inference.config import load_model_spec
    from qagate.inference.registry import build_model, quiet_model_loading
    from qagate.scoring.evaluation import predict_cached

    quiet_model_loading()
    model = build_model(load_model_spec(declaration), device=settings.device)
    return predict_cached(model, dataset, settings.cache)[0].answers


def same_answers(a: dict[str, str], b: dict[str, str]) -> float:
    return sum(a[k] == b[k] for k in b) / len(b)


@pytest.mark.parametrize(
    "variant, reference, at_least",
    [
        # fp32 ONNX is the same computation: every answer the same, one near-tie of slack
        ("variants/minilm6-teacher-onnx.yaml", "minilm6-teacher.yaml", 0.98),
        # int8 rounds the weights: measured 84.6% (PyTorch) and 90.8% (ONNX Runtime)
        ("variants/minilm3-distilled-int8.yaml", "minilm3-distilled.yaml", 0.8),
        ("variants/minilm3-distilled-onnx-int8.yaml", "minilm3-distilled.yaml", 0.8),
    ],
)
def test_variant_gives_the_answers_of_its_fp32_self(
    variant, reference, at_least, qagate_settings, qagate_dataset, record_property
):
    mine = answers_of(ROOT / "qa_models" / variant, qagate_settings, qagate_dataset)
    theirs = answers_of(ROOT / "qa_models" / reference, qagate_settings, qagate_dataset)
    share = same_answers(mine, theirs)
    record_property("same_answers", round(share, 4))
    assert share >= at_least, (
        f"{Path(variant).stem} gives the answer of {Path(reference).stem} on {share:.1%} of "
        f"{qagate_dataset.name}, below {at_least:.0%}"
    )
