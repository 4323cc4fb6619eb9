"""The extractive engine: span search semantics, windows, offsets, batching, loading errors."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest

from qagate.core.errors import QagateError
from qagate.data import QAExample
from qagate.inference.engine import EngineSettings, ExtractiveEngine, best_spans
from qagate.inference.extractive import ExtractiveModel


def example(context: str, question: str = "Which span?", qid: str = "q") -> QAExample:
    return QAExample(id=qid, title="t", context=context, question=question)


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir)


def keyword_qa(tokenizer):
    """A 'model' whose start logit peaks on the token 'alpha' and end logit on 'omega'."""
    import torch

    class KeywordQA(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.start_id = tokenizer.convert_tokens_to_ids("alpha")
            self.end_id = tokenizer.convert_tokens_to_ids("omega")

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            ramp = torch.arange(input_ids.shape[1]) * 1e-4
            start = (input_ids == self.start_id).float() * 8.0 + ramp
            end = (input_ids == self.end_id).float() * 8.0 - ramp
            return SimpleNamespace(start_logits=start, end_logits=end)

    return KeywordQA()


def keyword_engine(tokenizer, **settings) -> ExtractiveEngine:
    return ExtractiveEngine(keyword_qa(tokenizer), tokenizer, EngineSettings(**settings))


# -- span search ----------------------------------------------------------------------------


def pipeline_decode(start, end, allowed, max_answer_len, topk):
    """The transformers 4.x pipeline's select_starts_ends + decode_spans (numpy, one window)."""
    import numpy as np

    undesired_mask = ~allowed
    start = np.where(undesired_mask, -10000.0, start)
    end = np.where(undesired_mask, -10000.0, end)
    start = np.exp(start - start.max())
    start = start / start.sum()
    end = np.exp(end - end.max())
    end = end / end.sum()
    start[0] = end[0] = 0.0
    outer = np.matmul(start[:, None], end[None, :])
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    flat = candidates.flatten()
    idx = np.argsort(-flat, kind="stable")[:topk]
    starts, ends = np.unravel_index(idx, candidates.shape)
    keep = allowed[starts] & allowed[ends]
    return [
        (float(candidates[s, e]), int(s), int(e))
        for s, e in zip(starts[keep], ends[keep])
        if candidates[s, e] > 0
    ]


def test_best_spans_matches_the_pipeline_decoder():
    import numpy as np
    import torch

    gen = torch.Generator().manual_seed(0)
    batch, length, max_len, k = 6, 40, 5, 12
    start = torch.randn(batch, length, generator=gen) * 3
    end = torch.randn(batch, length, generator=gen) * 3
    allowed = torch.zeros(batch, length, dtype=torch.bool)
    allowed[:, 0] = True  # [CLS]
    for row in range(batch):
        allowed[row, 8 + row : length - row] = True  # context tokens after the question
    scores, starts, ends = best_spans(start, end, allowed, max_len, k)
    for row in range(batch):
        ours = [
            (s, b, e)
            for s, b, e in zip(scores[row].tolist(), starts[row].tolist(), ends[row].tolist())
            if s > 0
        ]
        theirs = pipeline_decode(
            start[row].double().numpy(), end[row].double().numpy(), allowed[row].numpy(), max_len, k
        )
        assert [(b, e) for _, b, e in ours] == [(b, e) for _, b, e in theirs]
        assert np.allclose([s for s, _, _ in ours], [s for s, _, _ in theirs], rtol=1e-5)
        assert all(0 <= e - b < max_len and allowed[row, b] and allowed[row, e] for _, b, e in ours)


# -- answers mapped back to the context -----------------------------------------------------


@pytest.mark.parametrize(
    "context, expected",
    [
        ("Alpha beta omega, and then more words follow here.", "Alpha beta omega"),
        ("Some words come first and then alpha and omega", "alpha and omega"),
        ("Some words come first and then alpha and omega.", "alpha and omega"),
        ("Le café 🙂 naïve: Ålpha résumé 東京 ömega — fin.", "Ålpha résumé 東京 ömega"),
        ("Tabs\tand  spaces:\u00a0alpha \t two\n\nomega  after", "alpha \t two\n\nomega"),
        ("  leading blanks then alpha-centauri omega's end", "alpha-centauri omega"),
    ],
)
def test_answers_are_exact_substrings_of_the_context(tokenizer, context, expected):
    predictions = keyword_engine(tokenizer).predict([example(context)])
    assert predictions.answers["q"] == expected
    assert expected in context
    assert 0.0 < predictions.confidence["q"] <= 1.0


def test_windows_that_split_an_answer(tokenizer):
    alpha, omega = tokenizer.convert_tokens_to_ids(["alpha", "omega"])

    def straddles(context: str) -> bool:
        windows = tokenizer(
            "Which span?",
            context,
            truncation="only_second",
            max_length=48,
            stride=24,
            return_overflowing_tokens=True,
        )["input_ids"]
        return len(windows) > 3 and any((alpha in w) != (omega in w) for w in windows)

    filler = " ".join(f"w{i}" for i in range(60))
    context = next(
        c
        for n in range(40, 60)
        if straddles(c := f"{' '.join(f'x{i}' for i in range(n))} alpha one two three omega {filler}")
    )
    small = keyword_engine(tokenizer, max_seq_len=48, doc_stride=24).predict([example(context)])
    large = keyword_engine(tokenizer).predict([example(context)])
    assert small.answers["q"] == large.answers["q"] == "alpha one two three omega"


def test_max_answer_len_bounds_the_span(tokenizer):
    context = "alpha " + " ".join(f"w{i}" for i in range(30)) + " omega"
    answer = keyword_engine(tokenizer, max_answer_len=4).predict([example(context)]).answers["q"]
    assert answer.startswith("alpha") != answer.endswith("omega")  # one keyword, never both
    assert len(tokenizer.tokenize(answer)) <= 4 and answer in context


def test_same_text_in_several_windows_adds_up(tokenizer):
    filler = " ".join(f"w{i}" for i in range(40))
    context = f"{filler} alpha omega {filler}"
    one = keyword_engine(tokenizer).predict([example(context)])
    many = keyword_engine(tokenizer, max_seq_len=64, doc_stride=48).predict([example(context)])
    assert one.answers["q"] == many.answers["q"] == "alpha omega"
    assert many.confidence["q"] > one.confidence["q"]


# -- batching and timing ---------------------------------------------------------------------


def test_batch_size_does_not_change_answers(tiny_qa_model_dir):
    from qagate.data import load_dataset

    examples = load_dataset("sample").examples[:40]
    folder = tiny_qa_model_dir(layers=2, hidden=32, seed=3)
    one = ExtractiveModel(
        "b1", str(folder), settings=EngineSettings(batch_size=1, max_seq_len=96, doc_stride=32), device="cpu"
    )
    many = ExtractiveModel(
        "b32",
        str(folder),
        settings=EngineSettings(batch_size=32, max_seq_len=96, doc_stride=32),
        device="cpu",
    )
    a, b = one.predict(examples), many.predict(examples)
    assert a.answers == b.answers
    assert all(abs(a.confidence[q] - b.confidence[q]) <= 1e-4 * max(1.0, a.confidence[q]) for q in a.answers)
    assert set(b.seconds) == set(b.answers) and all(s > 0 for s in b.seconds.values())
    assert sum(b.seconds.values()) == pytest.approx(b.total_seconds, rel=0.05)


def test_duplicate_and_empty_inputs(tokenizer):
    engine = keyword_engine(tokenizer)
    assert engine.predict([]).answers == {}
    preds = engine.predict([example("alpha and omega", qid="a"), example("no keywords here", qid="b")])
    assert preds.answers["a"] == "alpha and omega"
    assert preds.answers["b"] in "no keywords here" and preds.answers["b"]


# -- loading ---------------------------------------------------------------------------------


def test_missing_model_folder(tmp_path):
    with pytest.raises(QagateError, match="missing model files: folder not found"):
        ExtractiveModel("m", str(tmp_path / "nothing"))


def test_a_model_without_a_qa_head_is_refused(minilm_dir, tiny_qa_model_dir, tmp_path):
    with pytest.raises(QagateError, match=r"not a question-answering model \(architectures: BertModel\)"):
        ExtractiveModel("enc", str(minilm_dir), device="cpu").load()
    # The same without an 'architectures' entry: caught by the missing head weights.
    folder = tmp_path / "encoder"
    shutil.copytree(minilm_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.pop("architectures", None)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        QagateError, match="not a fine-tuned question-answering model: no trained weights for qa_outputs"
    ):
        ExtractiveModel("enc", str(folder), device="cpu").load()


def test_info_and_fingerprint(tiny_qa_model_dir, tmp_path):
    folder = tiny_qa_model_dir()
    model = ExtractiveModel("tiny", str(folder), device="cpu")
    info = model.info()
    engine = model.load()
    assert info["parameter_count"] == sum(p.numel() for p in engine.model.parameters())
    assert info["size_on_disk_mb"] > 0 and info["dtype"] == "fp32" and info["device"] == "cpu"
    copy = tmp_path / "renamed-copy"
    shutil.copytree(folder, copy)
    assert ExtractiveModel("other-name", str(copy), device="cpu").fingerprint() == model.fingerprint()
    longer = ExtractiveModel("tiny", str(folder), device="cpu", settings=EngineSettings(max_answer_len=30))
    assert longer.fingerprint() != model.fingerprint()


def test_reference_model_on_held_out_questions(reference_model_dir, shared_dir):
    from qagate.data import load_dataset
    from qagate.scoring.squad import score

    dataset = load_dataset(shared_dir / "data/squad/dev-v1.1.json", articles=(38, 47), limit=30)
    model = ExtractiveModel("reference", str(reference_model_dir), device="cpu")
    predictions = model.predict(dataset.examples)
    result = score(dataset, predictions.answers)
    assert 25.0 <= result.exact_match <= 80.0 and 40.0 <= result.f1 <= 90.0
    by_question = {ex.question: predictions.answers[ex.id] for ex in dataset.examples}
    assert by_question["What UN resolution endorsed the IPCC?"] == "43/53"
