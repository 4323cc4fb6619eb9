"""``qagate distill``: distil a fine-tuned QA teacher into a smaller student (a subset of the
teacher's layers, or a model you supply) and write the student's model directory, card and
``qa_models/`` declaration. Training options are those of ``qagate finetune``.
"""

from __future__ import annotations

import argparse

from qagate.cli.finetune import (
    add_training_arguments,
    data_plan,
    output,
    recorded_command,
    report,
    set_threads,
    train_config,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kd = parser.add_argument_group("distillation")
    kd.add_argument(
        "--teacher", required=True, metavar="DIR", help="the fine-tuned QA teacher's model directory"
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
        help="run the teacher once over the windows instead of at every step",
    )
    add_training_arguments(parser, role="student")


def run(args: argparse.Namespace) -> int:
    from qagate.training.distill import distill
    from qagate.training.students import parse_layers

    cfg, plan, out = train_config(args), data_plan(args), output(args)
    layers = parse_layers(args.student_layers) if args.student_layers else None
    set_threads(args.threads)
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
        resume=args.resume,
        save_every=args.save_every,
        command=recorded_command("distill", args),
        progress=not args.quiet,
    )
    report(out, held_out)
    return 0
