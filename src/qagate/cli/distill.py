"""``qagate distill``: distil a fine-tuned QA teacher into a smaller student (a subset of the
teacher's layers, or a model you supply) and write the student's model directory, card and
``qa_models/`` declaration. Training options are those of ``qagate finetune``. An extractive
teacher gives an extractive student; a causal LM teacher a causal student (``kind: generative``).
"""

from __future__ import annotations

import argparse
from typing import Any

from qagate.cli.finetune import (
    add_training_arguments,
    data_plan,
    output,
    recorded_command,
    report,
    set_threads,
    train_config,
)
from qagate.core.argtypes import parse_int, parse_non_negative_float
from qagate.core.errors import QagateError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kd = parser.add_argument_group("distillation")
    kd.add_argument(
        "--teacher",
        required=True,
        metavar="DIR",
        help="the teacher's model directory: an extractive QA encoder or a causal LM",
    )
    student = kd.add_mutually_exclusive_group(required=True)
    student.add_argument(
        "--student-layers",
        metavar="I,J,...",
        help="build the student from these teacher layers, e.g. 0,2,4 (DistilBERT recipe)",
    )
    student.add_argument(
        "--student", metavar="DIR", help="a student model directory with the teacher's vocabulary"
    )
    kd.add_argument(
        "--temperature", type=float, metavar="T", default=2.0, help="softmax temperature T (default: 2)"
    )
    kd.add_argument(
        "--alpha",
        type=float,
        metavar="A",
        default=0.5,
        help="weight of the hard-label loss; 1.0 = hard labels only, the ablation (default: 0.5)",
    )
    kd.add_argument(
        "--cache-teacher-logits",
        action="store_true",
        help="run the teacher once over the windows instead of at every step (extractive only; "
        "refused with an intermediate loss, which needs the teacher's hidden states at every step)",
    )
    kd.add_argument(
        "--shots",
        type=parse_int,
        choices=(0, 1),
        metavar="0|1",
        help="causal teachers: solved examples in each training prompt, as in the declaration (default: 0)",
    )
    _add_transfer_arguments(parser)
    add_training_arguments(parser, role="student")


def _add_transfer_arguments(parser: argparse.ArgumentParser) -> None:
    """Intermediate-layer transfer (TinyBERT / MiniLM) for extractive teachers: training/transfer.py."""
    group = parser.add_argument_group(
        "intermediate-layer transfer (extractive teachers; the teacher then runs at every step)"
    )
    group.add_argument(
        "--hidden-loss",
        type=parse_non_negative_float,
        default=0.0,
        metavar="W",
        help="weight of the MSE between the hidden states of mapped layers and of the embeddings, "
        "through a learned projection when the widths differ (default: 0 = off)",
    )
    group.add_argument(
        "--attention-loss",
        type=parse_non_negative_float,
        default=0.0,
        metavar="W",
        help="weight of the KL between the self-attention distributions of mapped layers, head by "
        "head; needs equal head counts (default: 0 = off)",
    )
    group.add_argument(
        "--value-relation-loss",
        type=parse_non_negative_float,
        default=0.0,
        metavar="W",
        help="weight of MiniLM's value-relation KL on the deepest mapped layer (default: 0 = off)",
    )
    group.add_argument(
        "--layer-map",
        metavar="S:T,...",
        help="student layer S learns from teacher layer T, e.g. 0:1,1:3,2:5 (default: the layers "
        "--student-layers copied, else the uniform map whose last layers meet)",
    )


def _transfer(args: argparse.Namespace) -> Any:
    """The intermediate-loss settings, or None when every weight is 0 and no map is given."""
    from qagate.training.transfer import Transfer, parse_layer_map

    weights = (args.hidden_loss, args.attention_loss, args.value_relation_loss)
    if not any(weights) and args.layer_map is None:
        return None
    layer_map = parse_layer_map(args.layer_map) if args.layer_map is not None else None
    return Transfer(*weights, layer_map=layer_map)


def run(args: argparse.Namespace) -> int:
    from qagate.training.causal_models import is_causal_lm
    from qagate.training.distill import distill
    from qagate.training.students import parse_layers

    cfg, plan, out = train_config(args), data_plan(args), output(args)
    layers = parse_layers(args.student_layers) if args.student_layers else None
    transfer = _transfer(args)
    set_threads(args.threads)
    if is_causal_lm(args.teacher):
        if transfer is not None:
            raise QagateError(
                "--hidden-loss, --attention-loss, --value-relation-loss and --layer-map apply to "
                "extractive teachers only",
                path=args.teacher,
                hint="leave them out for a causal teacher",
            )
        return _run_causal(args, cfg, plan, out, layers)
    if args.shots is not None:
        raise QagateError(
            "--shots applies to causal LM teachers only", path=args.teacher, hint="leave out --shots"
        )
    held_out = distill(
        teacher_dir=args.teacher,
        plan=plan,
        output=out,
        cfg=cfg,
        student_layers=layers,
        student_dir=args.student,
        temperature=args.temperature,
        alpha=args.alpha,
        cache_teacher_logits=args.cache_teacher_logits,
        transfer=transfer,
        resume=args.resume,
        save_every=args.save_every,
        command=recorded_command("distill", args),
        progress=not args.quiet,
    )
    report(out, held_out)
    return 0


def _run_causal(args: argparse.Namespace, cfg: Any, plan: Any, out: Any, layers: list[int] | None) -> int:
    """A causal teacher: the student is trained on (prompt, answer) pairs (training/causal_distill)."""
    from qagate.training.causal_distill import causal_distill

    if args.cache_teacher_logits:
        raise QagateError(
            "--cache-teacher-logits applies to extractive teachers only",
            path=args.teacher,
            hint="a causal teacher runs at every step; leave out the option",
        )
    held_out = causal_distill(
        teacher_dir=args.teacher,
        plan=plan,
        output=out,
        cfg=cfg,
        student_layers=layers,
        student_dir=args.student,
        shots=args.shots or 0,
        temperature=args.temperature,
        alpha=args.alpha,
        resume=args.resume,
        save_every=args.save_every,
        command=recorded_command("distill", args),
        progress=not args.quiet,
    )
    report(out, held_out)
    return 0
