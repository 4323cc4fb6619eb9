"""SQuAD v2.0 "no answer" for extractive models: the null-score rule, ``null_threshold``, gates.

The rule is the transformers 4.x pipeline's ``handle_impossible_answer``: the null score is the
smallest ``p_start[CLS] * p_end[CLS]`` over a question's windows; the answer is "" when it beats
the best (merged) span by more than ``null_threshold``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from qagate.core.errors import QagateError
from qagate.data import QAExample
from qagate.inference.config import load_model_spec
from qagate.inference.engine import (
    EngineSettings,
    ExtractiveEngine,
    best_spans,
    prefers_no_answer,
    span_probabilities,
    top_spans,
)
from qagate.inference.extractive import ExtractiveModel

V2_SAMPLE = Path(__file__).parent / "data" / "squad-v2-sample.json"
CLS_LOGIT = 7.0  # keyword windows: null << span; windows without keywords: null >> any span


def example(context: str, question: str = "Which span?", qid: str = "q") -> QAExample:
    return QAExample(id=qid, title="t", context=context, question=question)


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir)


def null_qa(tokenizer, cls_logit: float = CLS_LOGIT):
    """Start logits peak on 'alpha', end logits on 'omega', both at ``cls_logit`` on [CLS]."""
    import torch

    start_id, end_id = tokenizer.convert_tokens_to_ids(["alpha", "omega"])
    cls_id = tokenizer.cls_token_id

    def forward(input_ids, attention_mask=None, token_type_ids=None):
        ramp = torch.arange(input_ids.shape[1]) * 1e-4
        cls = (input_ids == cls_id).float() * cls_logit
        start = (input_ids == start_id).float() * 8.0 + cls + ramp
        end = (input_ids == end_id).float() * 8.0 + cls - ramp
        return SimpleNamespace(start_logits=start, end_logits=end)

    return forward


def pipeline_null_scores(tokenizer, model, ex: QAExample, settings: EngineSettings) -> list[float]:
    """The 4.x pipeline's ``select_starts_ends(handle_impossible_answer=True)`` null score of
    each window, in numpy, from the model's own logits (one window at a time, unpadded)."""
    import numpy as np
    import torch

    windows = tokenizer(
        ex.question,
        ex.context,
        truncation="only_second",
        max_length=settings.max_seq_len,
        stride=settings.doc_stride,
        return_overflowing_tokens=True,
    )
    nulls = []
    for w, ids in enumerate(windows["input_ids"]):
        out = model(torch.tensor([ids]))
        p_mask = np.array([s != 1 for s in windows.sequence_ids(w)], dtype=int)
        p_mask[np.array(ids) == tokenizer.cls_token_id] = 0
        undesired = np.abs(p_mask - 1) == 0
        start = np.where(undesired, -10000.0, out.start_logits[0].numpy())
        end = np.where(undesired, -10000.0, out.end_logits[0].numpy())
        start = np.exp(start - start.max())
        start = start / start.sum()
        end = np.exp(end - end.max())
        end = end / end.sum()
        nulls.append(float(start[0] * end[0]))
    return nulls


# -- the decision and the null score ---------------------------------------------------------


@pytest.mark.parametrize(
    "null, best, threshold, expected",
    [
        (0.6, 0.4, None, False),  # no threshold: never "no answer" (the default)
        (0.6, 0.4, 0.0, True),
        (0.4, 0.4, 0.0, False),  # a tie keeps the span, as the pipeline's stable sort does
        (0.41, 0.4, 0.0, True),
        (0.6, 0.4, 0.2, False),  # must beat the span by *more* than the threshold
        (0.61, 0.4, 0.2, True),
        (0.3, 0.4, -0.2, True),  # a negative threshold says "no answer" more readily
        (0.1, 0.4, -0.2, False),
        (0.2, 0.0, 0.0, True),  # no candidate span at all
    ],
)
def test_the_decision(null, best, threshold, expected):
    assert prefers_no_answer(null, best, threshold) is expected


def test_null_scores_are_the_pipelines_and_spans_are_unchanged():
    import numpy as np
    import torch

    gen = torch.Generator().manual_seed(1)
    batch, length = 5, 30
    start = torch.randn(batch, length, generator=gen) * 3
    end = torch.randn(batch, length, generator=gen) * 3
    allowed = torch.zeros(batch, length, dtype=torch.bool)
    allowed[:, 0] = True  # [CLS]
    for row in range(batch):
        allowed[row, 6 + row : length - row] = True
    p_start, p_end, null = span_probabilities(start, end, allowed)
    for row in range(batch):
        s = np.where(allowed[row].numpy(), start[row].double().numpy(), -10000.0)
        e = np.where(allowed[row].numpy(), end[row].double().numpy(), -10000.0)
        s, e = np.exp(s - s.max()), np.exp(e - e.max())
        expected = (s[0] / s.sum()) * (e[0] / e.sum())
        assert null[row].item() == pytest.approx(expected, rel=1e-5)
    assert (p_start[:, 0] == 0).all() and (p_end[:, 0] == 0).all()  # never part of a span
    for got, want in zip(top_spans(p_start, p_end, allowed, 5, 12), best_spans(start, end, allowed, 5, 12)):
        assert torch.equal(got, want)


def test_engine_follows_the_pipeline_rule_with_the_min_over_windows(tokenizer):
    filler = " ".join(f"w{i}" for i in range(40))
    examples = [
        example("alpha and omega", qid="span"),
        example("no keywords here at all", qid="none"),
        example(f"{filler} alpha omega {filler} {filler}", qid="long"),
    ]
    model = null_qa(tokenizer)
    base = EngineSettings(max_seq_len=64, doc_stride=8)
    plain = ExtractiveEngine(model, tokenizer, base).predict(examples)
    strict = ExtractiveEngine(
        model, tokenizer, EngineSettings(max_seq_len=64, doc_stride=8, null_threshold=0.0)
    ).predict(examples)
    assert all(plain.answers[ex.id] for ex in examples)  # without a threshold: always a span
    for ex in examples:
        nulls = pipeline_null_scores(tokenizer, model, ex, base)
        null, best = min(nulls), plain.confidence[ex.id]
        if null > best:
            assert (strict.answers[ex.id], strict.confidence[ex.id]) == ("", pytest.approx(null, rel=1e-5))
        else:
            assert (strict.answers[ex.id], strict.confidence[ex.id]) == (plain.answers[ex.id], best)
    assert strict.answers["span"] == "alpha and omega" and strict.answers["none"] == ""
    # The long context: windows without the keywords have a high null score, the one with them
    # a low one; the pipeline takes the smallest, so the span wins (the largest would say "").
    nulls = pipeline_null_scores(tokenizer, model, examples[2], base)
    assert len(nulls) > 2 and min(nulls) < plain.confidence["long"] < max(nulls)
    assert strict.answers["long"] == "alpha omega"


# -- a real (tiny) model on a SQuAD v2.0 sample ----------------------------------------------


@pytest.fixture(scope="module")
def v2_examples():
    from qagate.data import load_dataset

    dataset = load_dataset(V2_SAMPLE)
    assert dataset.version == "2.0" and any(ex.is_impossible for ex in dataset.examples)
    return dataset.examples


def tiny(folder: Path, threshold: float | None) -> ExtractiveModel:
    settings = EngineSettings(max_seq_len=96, doc_stride=32, null_threshold=threshold)
    return ExtractiveModel("tiny", str(folder), settings=settings, device="cpu")


def test_threshold_absent_high_and_low(tiny_qa_model_dir, v2_examples):
    folder = tiny_qa_model_dir(layers=1, hidden=32, seed=5)
    absent = tiny(folder, None).predict(v2_examples)
    high = tiny(folder, 1e9).predict(v2_examples)
    low = tiny(folder, -1e9).predict(v2_examples)
    assert EngineSettings().null_threshold is None
    assert absent.answers == high.answers and absent.confidence == high.confidence
    assert all(absent.answers.values())  # never "no answer" without a threshold
    assert set(low.answers.values()) == {""}
    assert all(0.0 <= c <= 1.0 for c in low.confidence.values())  # the null scores


def test_fingerprint_and_info_follow_the_threshold(tiny_qa_model_dir):
    folder = tiny_qa_model_dir()
    prints = {t: tiny(folder, t).fingerprint() for t in (None, 0.0, 0.5, -0.5)}
    assert len(set(prints.values())) == 4  # a new threshold never reuses cached predictions
    assert tiny(folder, 0.5).fingerprint() == prints[0.5]
    assert tiny(folder, 0.0).info()["null_threshold"] == 0.0
    assert tiny(folder, None).info()["null_threshold"] is None


def test_declaration_key(tmp_path, tiny_qa_model_dir):
    path = tmp_path / "m.yaml"
    path.write_text(f"name: m\nkind: extractive\nsource: {tiny_qa_model_dir()}\nnull_threshold: 0\n")
    spec = load_model_spec(path)
    model = ExtractiveModel.from_spec(spec, device="cpu")
    assert model.settings.null_threshold == 0.0 and isinstance(model.settings.null_threshold, float)
    path.write_text(f"name: m\nkind: extractive\nsource: {tiny_qa_model_dir()}\n")
    assert ExtractiveModel.from_spec(load_model_spec(path), device="cpu").settings.null_threshold is None


@pytest.mark.parametrize(
    "value, expected",
    [
        ("'0.5'", "null_threshold: must be a number, got '0.5' (e.g. 0.0"),
        ("true", "null_threshold: must be a number, got True"),
        (".inf", "null_threshold: must be a number, got inf"),
        (".nan", "null_threshold: must be a number, got nan"),
        ("[0]", "null_threshold: must be a number, got [0]"),
    ],
)
def test_bad_values_are_one_line_errors(tmp_path, value, expected):
    path = tmp_path / "m.yaml"
    path.write_text(f"name: m\nkind: extractive\nsource: x\nnull_threshold: {value}\n")
    with pytest.raises(QagateError) as info:
        load_model_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message


def test_generative_models_refuse_the_key(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("name: g\nkind: generative\nsource: x\nnull_threshold: 0.0\n")
    with pytest.raises(
        QagateError, match="null_threshold: 'null_threshold' only applies to kind: extractive"
    ):
        load_model_spec(path)


# -- SQuAD v2.0 gates and commands on engine predictions -------------------------------------

ZOO = "zoo:minilm6-squad-teacher"


def test_evaluate_reports_the_v2_groups(tmp_path, capsys):
    from qagate.cli import main

    path = tmp_path / "m.yaml"
    path.write_text(f"name: m\nkind: extractive\nsource: {ZOO}\ndevice: cpu\nnull_threshold: -0.5\n")
    args = ["evaluate", str(path), str(V2_SAMPLE), "--no-bertscore", "--json", "--quiet"]
    assert main(args) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["questions"] == 28
    assert 0 < metrics["NoAns_f1"] == metrics["NoAns_exact"] < 100  # some "" and some spans
    assert 50 < metrics["HasAns_f1"] <= 100 and metrics["HasAns_exact"] <= metrics["HasAns_f1"]
    out = tmp_path / "predictions.json"
    assert main(["predict", str(path), str(V2_SAMPLE), "--out", str(out), "--quiet"]) == 0
    answers = json.loads(out.read_text())
    assert len(answers) == 28 and "" in answers.values()


def test_v2_gate_file_on_engine_predictions(pytester, tmp_path):
    import torch  # noqa: F401  (loaded before pytester snapshots sys.modules)
    import transformers  # noqa: F401

    import qagate.store.history_db  # noqa: F401  (SQLAlchemy: imported once, outside the run)

    models = pytester.mkdir("models")
    (models / "teacher.yaml").write_text(f"name: teacher\nrole: teacher\nkind: extractive\nsource: {ZOO}\n")
    (models / "v2.yaml").write_text(
        f"name: v2\nrole: student\nkind: extractive\nsource: {ZOO}\nnull_threshold: -0.5\n"
    )
    pytester.makefile(
        ".yaml",
        gate_v2=textwrap.dedent(f"""\
        dataset: {V2_SAMPLE}
        models: models
        rules:
          - apply_to: all
            require: [NoAns_f1 >= 30, HasAns_f1 >= 0.8 * teacher]
        """),
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-p", "no:randomly", "-rA", "--qagate-cache", str(tmp_path / "cache")
    )
    lines = "\n".join(result.outlines)
    # The teacher never answers "" (NoAns_f1 = 0): only the declaration with a threshold passes.
    assert "PASSED gate_v2.yaml::v2::NoAns_f1>=30" in lines, lines[-3000:]
    assert "FAILED gate_v2.yaml::teacher::NoAns_f1>=30" in lines
    assert "PASSED gate_v2.yaml::v2::HasAns_f1>=0.8*teacher" in lines
    assert result.ret == pytest.ExitCode.TESTS_FAILED
