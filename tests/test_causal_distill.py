"""Distillation of causal LMs (``qagate distill`` with a causal teacher): prompt/answer pairs and
their masking, layer-subset students, the loss (its KL is zero for the teacher itself, it goes
down on a few steps), resume, the written ``kind: generative`` declaration, and the command.

Tiny random-weight GPT-NeoX and Qwen2 models with a byte-level tokenizer trained on the
built-in sample (tests/tiny_models.py); no hub.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from qagate.core.errors import QagateError
from qagate.data import load_dataset
from qagate.training.causal_pairs import answer_text, build_pairs, collate_pairs
from tiny_models import CAUSAL_RECIPES, build_tiny_causal, train_tiny_tokenizer

# torch and transformers are imported inside the tests: collecting this module stays light.

#: Long enough for every zero- and one-shot prompt of the sample with the tiny 400-token vocabulary.
MAX_SEQ_LEN = 768
QWEN3 = dict(CAUSAL_RECIPES["qwen2"], layers=3)  # a Qwen2 with layers to remove


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """``{"gpt_neox": dir (2 layers), "qwen2": dir (3 layers)}``, built once."""
    root = tmp_path_factory.mktemp("causal-teachers")
    return {
        "gpt_neox": build_tiny_causal(root / "gpt_neox", CAUSAL_RECIPES["gpt_neox"]),
        "qwen2": build_tiny_causal(root / "qwen2", QWEN3),
    }


@pytest.fixture(scope="module")
def sample():
    return list(load_dataset("sample", limit=8))


def _loaded(path: Path):
    from qagate.training.causal_models import load_causal_lm

    teacher, tokenizer = load_causal_lm(path)
    return teacher.eval(), tokenizer


def _pairs(teacher, tokenizer, examples, shots=0):
    from qagate.inference.generation import GenerationSettings
    from qagate.training.causal_distill import training_pairs

    return training_pairs(teacher, tokenizer, examples, GenerationSettings(shots=shots), MAX_SEQ_LEN)[0]


def _loss(teacher, tokenizer, alpha=0.5):
    from qagate.training.causal_distill import CausalDistillationLoss

    return CausalDistillationLoss(teacher, vocab_size=len(tokenizer), temperature=2.0, alpha=alpha)


# --------------------------------------------------------------------------- pairs and masking


def test_pairs_are_the_engines_prompt_then_the_answer_and_the_stop_string(teachers, sample):
    from qagate.inference.generation import GenerationEngine, GenerationSettings

    teacher, tokenizer = _loaded(teachers["gpt_neox"])
    for shots in (0, 1):
        settings = GenerationSettings(shots=shots)
        prompts = GenerationEngine(teacher, tokenizer, settings).prompts(sample)
        pairs = _pairs(teacher, tokenizer, sample, shots=shots)
        assert len(pairs) == len(sample)
        for i, ex in enumerate(sample):
            n = pairs.answer_lengths[i]
            assert tokenizer.decode(pairs.input_ids[i][:-n]) == prompts[i]
            assert tokenizer.decode(pairs.input_ids[i][-n:]) == f" {ex.answers[0]}\n"
    assert "Answer:" in prompts[0] and prompts[0].count("Question:") == 2  # the one-shot prompt


def test_unanswerable_and_too_long_pairs_are_left_out(teachers, sample):
    teacher, tokenizer = _loaded(teachers["gpt_neox"])
    impossible = dataclasses.replace(sample[0], answers=(), answer_starts=(), is_impossible=True)
    assert answer_text(impossible, ("\n",)) is None
    prompts = ["short prompt:", "short prompt:", "x " * 600]
    pairs, skipped = build_pairs(
        tokenizer, [sample[0], impossible, sample[1]], prompts, stop=("\n",), max_seq_len=MAX_SEQ_LEN
    )
    assert (len(pairs), skipped, pairs.example_index) == (1, 2, [0])
    with pytest.raises(QagateError, match="raise --max-seq-len"):
        from qagate.inference.generation import GenerationSettings
        from qagate.training.causal_distill import training_pairs

        training_pairs(teacher, tokenizer, sample, GenerationSettings(), max_seq_len=80)


def test_only_answer_tokens_carry_the_loss_and_padding_changes_nothing(teachers, sample):
    """The batch's CE equals a hand-computed CE over just the answer tokens of unpadded rows."""
    import torch
    import torch.nn.functional as F

    teacher, tokenizer = _loaded(teachers["gpt_neox"])
    pairs = _pairs(teacher, tokenizer, sample)
    rows = [0, 2, 4]  # different prompt and answer lengths: left padding in the batch
    assert len({pairs.lengths[i] for i in rows}) == 3 and len({pairs.answer_lengths[i] for i in rows}) > 1
    batch = collate_pairs(pairs, rows, tokenizer.pad_token_id)
    answers = batch["labels"][batch["label_mask"]].tolist()
    assert answers == [t for i in rows for t in pairs.input_ids[i][-pairs.answer_lengths[i] :]]
    hard, _ = _loss(teacher, tokenizer, alpha=1.0).terms(teacher, batch)

    picked, targets = [], []
    with torch.no_grad():
        for i in rows:
            ids = torch.tensor([pairs.input_ids[i]])
            logits = teacher(input_ids=ids).logits[0]
            n = pairs.answer_lengths[i]
            picked.append(logits[-n - 1 : -1])  # the positions that predict the answer tokens
            targets.append(ids[0, -n:])
        by_hand = F.cross_entropy(torch.cat(picked), torch.cat(targets))
        everything = F.cross_entropy(
            torch.cat([teacher(input_ids=torch.tensor([pairs.input_ids[i]])).logits[0, :-1] for i in rows]),
            torch.cat([torch.tensor(pairs.input_ids[i][1:]) for i in rows]),
        )
    assert torch.allclose(hard, by_hand, atol=1e-4)
    assert not torch.allclose(hard, everything, atol=1e-2)  # prompt tokens would change it


# --------------------------------------------------------------------------- students and loss


@pytest.mark.parametrize("arch,layers", [("gpt_neox", [1]), ("qwen2", [0, 2])])
def test_layer_student_keeps_exactly_the_requested_layers(teachers, arch, layers):
    import torch

    from qagate.training.causal_models import causal_student_from_layers

    teacher, _ = _loaded(teachers[arch])
    student = causal_student_from_layers(teacher, layers)
    assert student.config.num_hidden_layers == len(layers)
    blocks_t, blocks_s = teacher.base_model.layers, student.base_model.layers
    assert len(blocks_s) == len(layers)
    for new, old in enumerate(layers):
        for (name, a), (_, b) in zip(blocks_s[new].state_dict().items(), blocks_t[old].state_dict().items()):
            assert torch.equal(a, b), (new, name)
    assert torch.equal(student.get_input_embeddings().weight, teacher.get_input_embeddings().weight)
    assert torch.equal(student.get_output_embeddings().weight, teacher.get_output_embeddings().weight)
    if arch == "qwen2":
        assert len(student.config.layer_types) == len(layers)
    with pytest.raises(QagateError, match="distinct layer numbers"):
        causal_student_from_layers(teacher, [0, 7])


def test_kl_is_zero_for_the_teacher_itself_and_positive_for_a_student(teachers, sample):
    import torch

    from qagate.training.causal_models import causal_student_from_layers

    teacher, tokenizer = _loaded(teachers["gpt_neox"])
    batch = collate_pairs(_pairs(teacher, tokenizer, sample), [0, 1, 2, 3], tokenizer.pad_token_id)
    loss = _loss(teacher, tokenizer)
    with torch.no_grad():
        hard, soft = loss.terms(teacher, batch)
        assert soft is not None and abs(float(soft)) < 1e-6 and float(hard) > 0
        assert torch.allclose(loss(teacher, batch), 0.5 * hard, atol=1e-5)
        _, soft_student = loss.terms(causal_student_from_layers(teacher, [1]).eval(), batch)
    assert soft_student is not None and float(soft_student) > 1e-3


@pytest.mark.parametrize("arch", ["gpt_neox", "qwen2"])
def test_a_few_steps_lower_the_distillation_loss(tmp_path, teachers, sample, arch):
    import torch

    from qagate.training.causal_distill import collate_pairs as collate
    from qagate.training.causal_models import causal_student_from_layers
    from qagate.training.trainer import TrainConfig, set_seed, train

    teacher, tokenizer = _loaded(teachers[arch])
    pairs = _pairs(teacher, tokenizer, sample)
    set_seed(0)
    student = causal_student_from_layers(teacher, [0])
    loss = _loss(teacher, tokenizer)
    everything = collate(pairs, list(range(len(pairs))), tokenizer.pad_token_id)

    def full_loss() -> float:
        with torch.no_grad():
            return float(loss(student.eval(), everything))

    before = full_loss()
    cfg = TrainConfig(epochs=6, lr=3e-3, batch_size=4, max_seq_len=MAX_SEQ_LEN, warmup_ratio=0.0, seed=0)
    result = train(
        student,
        pairs,
        cfg,
        out_dir=tmp_path,
        loss_fn=loss,
        pad_token_id=tokenizer.pad_token_id,
        progress=False,
        collate_fn=collate,
    )
    after = full_loss()
    assert result.steps == 12
    assert after < 0.8 * before, (before, after)


# --------------------------------------------------------------------------- the recipe


def _recipe_args(tmp_path, teacher, **extra):
    from qagate.training.finetune import DataPlan, Output
    from qagate.training.trainer import TrainConfig

    return dict(
        teacher_dir=teacher,
        plan=DataPlan(train="sample", limit=6, **extra.pop("plan", {})),
        output=Output(out_dir=tmp_path, name="tiny-student", role="student"),
        cfg=TrainConfig(epochs=2, lr=1e-3, batch_size=2, max_seq_len=MAX_SEQ_LEN, seed=5),
        student_layers=[1],
        save_every=2,
        progress=False,
        **extra,
    )


def test_resuming_an_interrupted_run_gives_the_uninterrupted_weights(tmp_path, teachers, monkeypatch):
    from safetensors.torch import load_file

    from qagate.training import causal_distill as recipe

    recipe.causal_distill(**_recipe_args(tmp_path / "a", teachers["gpt_neox"]))

    class Crash(Exception):
        pass

    def crash(step, loss):
        if step == 3:
            raise Crash()

    real_train = recipe.train
    monkeypatch.setattr(recipe, "train", lambda *a, **kw: real_train(*a, **kw, on_step=crash))
    with pytest.raises(Crash):
        recipe.causal_distill(**_recipe_args(tmp_path / "b", teachers["gpt_neox"]))
    monkeypatch.setattr(recipe, "train", real_train)
    assert [p.name for p in (tmp_path / "b" / "checkpoints").iterdir()] == ["step-000002"]
    with pytest.raises(QagateError, match="--resume"):
        recipe.causal_distill(**_recipe_args(tmp_path / "b", teachers["gpt_neox"]))
    recipe.causal_distill(**_recipe_args(tmp_path / "b", teachers["gpt_neox"]), resume=True)
    straight = load_file(tmp_path / "a" / "model.safetensors")
    resumed = load_file(tmp_path / "b" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    assert all((straight[k] == resumed[k]).all() for k in straight)
    assert "after resuming at step 2" in (tmp_path / "b" / "README.md").read_text()


def test_the_written_declaration_loads_and_answers_through_the_generative_adapter(tmp_path, teachers):
    from qagate.inference.config import load_model_spec
    from qagate.inference.generative import GenerativeModel
    from qagate.inference.registry import build_model
    from qagate.training import causal_distill as recipe

    held_out = recipe.causal_distill(
        **_recipe_args(tmp_path, teachers["qwen2"], plan={"eval_data": "sample", "eval_articles": (1, 1)}),
        shots=1,
    )
    spec = load_model_spec(tmp_path / "tiny-student.yaml")
    assert (spec.kind, spec.role, spec.shots, spec.stop) == ("generative", "student", 1, ("\n",))
    assert Path(spec.source) == tmp_path.resolve()
    model = build_model(spec)
    assert isinstance(model, GenerativeModel)
    examples = list(load_dataset("sample", limit=3))
    predictions = model.predict(examples)
    assert set(predictions.answers) == {ex.id for ex in examples}
    assert held_out is not None and held_out["questions"] > 0
    card = (tmp_path / "README.md").read_text()
    assert "pipeline_tag: text-generation" in card and "kind generative, shots 1" in card
    assert "CE(gold answer tokens)" in card and "1-shot prompt" in card
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == ["model.safetensors"]


# --------------------------------------------------------------------------- the command


def _distill(tmp_path, teacher, *extra):
    from qagate import cli

    argv = ["distill", "--teacher", str(teacher), "--train", "sample", "--limit", "4"]
    argv += ["--out", str(tmp_path / "out"), "--max-seq-len", str(MAX_SEQ_LEN), "--batch-size", "2"]
    argv += ["--quiet", *extra]
    return cli.main(argv)


def test_the_command_distils_a_causal_teacher_end_to_end(tmp_path, teachers, capsys):
    from qagate.inference.config import load_model_spec

    code = _distill(tmp_path, teachers["gpt_neox"], "--student-layers", "1", "--declare-in", str(tmp_path))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "declaration:" in out and (tmp_path / "out" / "model.safetensors").is_file()
    spec = load_model_spec(tmp_path / "out.yaml")
    assert spec.kind == "generative" and spec.source == str((tmp_path / "out").resolve())
    card = (tmp_path / "out" / "README.md").read_text()
    assert "--student-layers 1" in card and "1 of the teacher's 2 decoder layers" in card


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--student-layers", "1", "--cache-teacher-logits"], "--cache-teacher-logits applies to extractive"),
        (["--student-layers", "0,5"], "distinct layer numbers in 0-1"),
        (["--student", "WRONG_VOCAB"], "vocabulary differs from the teacher's"),
        (["--student", "ENCODER"], "is not a causal language model"),
    ],
)
def test_bad_causal_input_is_a_one_line_error(tmp_path, teachers, capsys, extra, message):
    if "WRONG_VOCAB" in extra:
        other = tmp_path / "other-vocab"
        shutil.copytree(teachers["gpt_neox"], other)
        train_tiny_tokenizer(vocab_size=300).save_pretrained(str(other))
        extra = ["--student", str(other)]
    if "ENCODER" in extra:
        extra = ["--student", str(_encoder_dir(tmp_path))]
    code = _distill(tmp_path, teachers["gpt_neox"], *extra)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


def _encoder_dir(tmp_path: Path) -> Path:
    """A directory whose config declares an extractive encoder (nothing else is read)."""
    folder = tmp_path / "encoder"
    folder.mkdir()
    config = {"architectures": ["BertForQuestionAnswering"], "model_type": "bert"}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_shots_is_refused_for_an_extractive_teacher(tmp_path, capsys):
    code = _distill(tmp_path, _encoder_dir(tmp_path), "--student-layers", "0", "--shots", "1")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--shots applies to causal LM teachers only" in err
