"""``qagate finetune``: fine-tune a BERT-like encoder for extractive QA on SQuAD-format data and
write a Hugging Face model directory, its model card and a ``qa_models/`` declaration.

The training options are shared with ``qagate distill`` (``add_training_arguments``).
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any

from qagate.core.argtypes import parse_articles, parse_int, parse_positive_int
from qagate.core.errors import QagateError
from qagate.data.perturb import parse_kinds

#: Model names as ``qa_models/`` declarations accept them (qagate.inference.config).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: Options that change neither the trained weights nor the numbers; left out of the recorded
#: command so the card shows the recipe, not how one particular run was nursed.
_NOT_RECIPE = {"resume", "quiet"}


def parse_non_negative_int(text: str) -> int:
    """A count where 0 means none (``--save-every 0``: never), for argparse ``type=``."""
    value = parse_int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def add_training_arguments(parser: argparse.ArgumentParser, *, role: str) -> None:
    """Data, output and optimisation options common to finetune and distill."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--train",
        required=True,
        metavar="DATASET",
        help="training data: a SQuAD v1.1/v2.0 JSON or JSON Lines file, 'sample', or hf:<id>",
    )
    data.add_argument(
        "--articles",
        type=parse_articles,
        metavar="FIRST-LAST",
        help="train on these articles only (inclusive, file order), e.g. 0-37",
    )
    data.add_argument(
        "--eval-articles",
        type=parse_articles,
        metavar="FIRST-LAST",
        help="held-out articles of the same data to report EM/F1 on, e.g. 38-47",
    )
    data.add_argument(
        "--eval-data",
        metavar="DATASET",
        help="held-out data in another file (default: --train, with --eval-articles)",
    )
    data.add_argument(
        "--limit", type=parse_positive_int, metavar="N", help="train on the first N questions only"
    )
    data.add_argument(
        "--augment",
        type=parse_kinds,
        metavar="KINDS",
        help="also train on one perturbed copy of every training question, e.g. "
        "question_noise,swap_entities,reorder (answer spans kept valid; seeded by --seed; "
        "a distilled student learns the teacher's answers on the copies too)",
    )

    out = parser.add_argument_group("output")
    out.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    out.add_argument("--name", help="model name in the declaration and card (default: the --out folder name)")
    out.add_argument(
        "--role",
        default=role,
        choices=("teacher", "student", "model"),
        help=f"role in the declaration (default: {role})",
    )
    out.add_argument(
        "--declare-in",
        metavar="DIR",
        help="folder for the NAME.yaml declaration, e.g. qa_models (default: --out)",
    )
    out.add_argument(
        "--max-answer-len",
        type=parse_positive_int,
        default=15,
        metavar="N",
        help="longest answer in tokens, for the declaration and evaluation (default: 15)",
    )

    opt = parser.add_argument_group("training")
    opt.add_argument(
        "--epochs",
        type=parse_positive_int,
        metavar="N",
        default=1,
        help="passes over the windows (default: 1)",
    )
    opt.add_argument(
        "--lr", type=float, metavar="LR", default=1e-4, help="peak learning rate (default: 1e-4)"
    )
    opt.add_argument(
        "--batch-size",
        type=parse_positive_int,
        metavar="N",
        default=16,
        help="windows per step (default: 16)",
    )
    opt.add_argument(
        "--max-seq-len",
        type=parse_positive_int,
        metavar="TOKENS",
        default=256,
        help="window length in tokens (default: 256)",
    )
    opt.add_argument(
        "--stride",
        type=parse_non_negative_int,
        metavar="TOKENS",
        default=96,
        help="token overlap between windows (default: 96)",
    )
    opt.add_argument(
        "--warmup-ratio",
        type=float,
        metavar="R",
        default=0.1,
        help="share of steps with linear warm-up, then linear decay (default: 0.1)",
    )
    opt.add_argument(
        "--weight-decay", type=float, metavar="W", default=0.01, help="AdamW weight decay (default: 0.01)"
    )
    opt.add_argument(
        "--max-grad-norm",
        type=float,
        metavar="NORM",
        default=1.0,
        help="gradient-norm clip, 0 = off (default: 1.0)",
    )
    opt.add_argument(
        "--seed",
        type=parse_int,
        metavar="N",
        default=42,
        help="seed for Python, NumPy and torch (default: 42)",
    )
    opt.add_argument(
        "--freeze-embeddings", action="store_true", help="keep the embedding block at the base model's values"
    )
    opt.add_argument(
        "--attention-dropout",
        type=float,
        metavar="P",
        help="dropout on attention probabilities while training (default: the model's own, "
        "0.1 for BERT); 0 makes CPU steps about twice as fast",
    )
    opt.add_argument(
        "--threads", type=parse_positive_int, metavar="N", help="torch CPU threads (default: torch's choice)"
    )
    opt.add_argument(
        "--save-every",
        type=parse_non_negative_int,
        default=200,
        metavar="STEPS",
        help="checkpoint every STEPS steps and at the end, 0 = never (default: 200)",
    )
    opt.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last checkpoint in --out (same result as an uninterrupted run)",
    )
    opt.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    parser.set_defaults(
        _options=[
            (a.option_strings[0], a.dest, a.nargs == 0)
            for a in parser._actions
            if a.option_strings and a.dest != "help"
        ]
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base",
        required=True,
        metavar="DIR",
        help="Hugging Face directory of a BERT-like encoder (a QA head is added if missing)",
    )
    add_training_arguments(parser, role="teacher")


def train_config(args: argparse.Namespace) -> Any:
    from qagate.training.trainer import TrainConfig

    return TrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        max_seq_len=args.max_seq_len,
        stride=args.stride,
        warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        seed=args.seed,
        freeze_embeddings=args.freeze_embeddings,
        attention_dropout=args.attention_dropout,
    )


def data_plan(args: argparse.Namespace) -> Any:
    from qagate.training.finetune import DataPlan

    return DataPlan(
        train=args.train,
        articles=args.articles,
        eval_articles=args.eval_articles,
        eval_data=args.eval_data,
        limit=args.limit,
        augment=args.augment or (),
        augment_seed=args.seed,
    )


def output(args: argparse.Namespace) -> Any:
    from qagate.training.finetune import Output

    out_dir = Path(args.out)
    name = args.name or out_dir.resolve().name
    if not _NAME.match(name):
        raise QagateError(
            f"{name!r} is not a valid model name",
            hint="pass --name with letters, digits, '_', '-' and '.', starting with a letter or digit",
        )
    return Output(
        out_dir=out_dir,
        name=name,
        role=args.role,
        declare_in=Path(args.declare_in) if args.declare_in else None,
        max_answer_len=args.max_answer_len,
    )


def recorded_command(command: str, args: argparse.Namespace) -> str:
    """The command with every recipe option spelled out, so defaults changing later cannot
    change what rerunning it does."""
    words = ["qagate", command]
    for flag, dest, is_flag in args._options:
        value = getattr(args, dest)
        if dest in _NOT_RECIPE or value is None or value is False:
            continue
        words += [flag] if is_flag else [flag, _as_typed(value)]
    return shlex.join(words)


def _as_typed(value: Any) -> str:
    """An option's parsed value as it is written on the command line (an article range back
    to ``FIRST-LAST``, perturbation kinds back to ``a,b``)."""
    if isinstance(value, tuple):
        return ("," if all(isinstance(part, str) for part in value) else "-").join(map(str, value))
    return str(value)


def set_threads(threads: int | None) -> None:
    if threads is None:
        return
    import torch

    torch.set_num_threads(threads)


def report(output: Any, held_out: dict | None) -> None:
    print(f"model: {output.out_dir}  card: {output.out_dir / 'README.md'}  declaration: {output.declaration}")
    if held_out:
        from qagate.scoring.registry import METRICS, fmt

        numbers = "  ".join(
            f"{METRICS[name].label} {fmt(held_out[name], name)}" for name in ("exact_match", "f1")
        )
        print(f"held-out ({held_out['questions']} questions): {numbers}")


def run(args: argparse.Namespace) -> int:
    from qagate.training.finetune import finetune

    cfg, plan, out = train_config(args), data_plan(args), output(args)
    set_threads(args.threads)
    held_out = finetune(
        base=args.base,
        plan=plan,
        output=out,
        cfg=cfg,
        resume=args.resume,
        save_every=args.save_every,
        command=recorded_command("finetune", args),
        progress=not args.quiet,
    )
    report(out, held_out)
    return 0
