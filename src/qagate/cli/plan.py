"""``qagate plan GATE_FILE``: how many questions each confidence rule of a gate file needs.

For every confidence rule on per-question scores, at the pilot's own margin or at ``--margin
POINTS`` (the rule's left side minus its threshold), the questions a fixed-n verdict needs to
decide and, for a sequential rule, where its loop would stop (:mod:`qagate.reports.plan`: the
judge's interval engine on questions like the pilot's). The pilot is

- by default the newest run of the gate in the run history (the store ``qagate history``
  reads): each confidence verdict keeps a histogram of its per-question values;
- or ``--pilot MODEL=PREDICTIONS`` (repeatable; the teacher's too, named by ``--teacher``)
  scored on the gate file's dataset, or on ``--dataset`` with the subset options.

The output says where the values came from.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qagate.cli.history import add_history_argument, history_target, warn_skipped
from qagate.cli.score import add_subset_arguments
from qagate.core.argtypes import parse_dataset
from qagate.core.errors import QagateError, quote


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("gate", metavar="GATE_FILE", type=Path, help="a gate file (gate_*.yaml)")
    parser.add_argument(
        "--margin",
        metavar="POINTS",
        help="plan at this margin: the rule's left side minus its threshold, in the metric's units "
        "(e.g. 1.5, or -2 for a model 2 points short); default: the pilot's own margin",
    )
    parser.add_argument(
        "--pilot",
        metavar="MODEL=PREDICTIONS",
        action="append",
        default=[],
        help="a model's predictions file (question id -> answer) as the pilot, instead of the "
        "history's last run of the gate; repeat for each model, the teacher's too",
    )
    parser.add_argument(
        "--teacher", metavar="MODEL", help="which --pilot model is the teacher (teacher-relative rules)"
    )
    parser.add_argument(
        "--dataset",
        type=parse_dataset,
        metavar="DATASET",
        help="with --pilot: the dataset the predictions answer (default: the gate file's)",
    )
    add_subset_arguments(parser)
    add_history_argument(parser)


def run(args: argparse.Namespace) -> int:
    from qagate.gating.gatefile import load_gate_file
    from qagate.reports.plan import render

    gate = load_gate_file(args.gate)
    confident = [
        (block, rule, spec)
        for block in gate.blocks
        for rule, spec in zip(block.rules, block.sequential or (None,) * len(block.rules))
        if rule.confidence is not None
    ]
    if not confident:
        raise QagateError(
            "the gate file has no confidence rule to plan (a rule with 'confidence:' or "
            "'sequential:'; point comparisons need no sample size)",
            path=args.gate,
        )
    margin = parse_margin(args.margin)
    if args.pilot:
        source, pilots = pilots_from_predictions(args, gate, confident)
    else:
        source, pilots = pilots_from_history(args, gate, confident)
    plans, notes = [], []
    for model, rule, spec, values, available in pilots:
        if rule.cluster not in (None, "none"):
            why = f"sampled by {rule.cluster} (cluster:): the plan counts questions, not {rule.cluster}s"
            values, available = None, why
        if values is None:
            notes.append(f"{model} :: {rule.id}: {available}")
            continue
        plans.append(_plan(model, rule, values, margin, spec, available))
    at = "the pilot's own margin" if margin is None else f"a margin of {margin:+g}"
    print(f"qagate plan {args.gate}: questions each confidence rule needs at {at}")
    print(f"pilot: {source}")
    if plans:
        print("\n".join(render(plans, margin=margin)))
    for note in notes:
        print(f"  - {note}")
    print(
        "fixed-n: the fewest questions on which a one-look verdict decides; sequential: where the "
        "rule's looks stop on questions like these (its bets tuned to the questions it may use); "
        "both from the judge's interval engine"
    )
    return 0


def _plan(model: str, rule: Any, values: Any, margin: float | None, spec: Any, available: Any) -> Any:
    from qagate.reports.plan import plan_rule

    try:
        return plan_rule(model, rule, values, margin=margin, sequential=spec, available=available)
    except ValueError as exc:
        raise QagateError(f"--margin for {model} :: {rule.id}: {exc}") from None


def parse_margin(text: str | None) -> float | None:
    """``--margin POINTS``: a finite number other than 0 (a margin of 0 is never decided)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value == 0:
        raise QagateError(
            f"--margin must be a finite number of points other than 0, got {quote(text)}",
            hint="the rule's left side minus its threshold, e.g. --margin 1.5 (-2: a model 2 points short)",
        )
    return value


# --- the pilot: the history's last run of the gate ---------------------------------------------


def pilots_from_history(
    args: argparse.Namespace, gate: Any, confident: Sequence[tuple[Any, Any, Any]]
) -> tuple[str, list[tuple[str, Any, Any, Any, Any]]]:
    """(where the values came from, [(model, rule, spec, values or None, questions or why not)])."""
    from qagate.reports.explain import from_histogram
    from qagate.store.history import read_history

    history = read_history(history_target(args))
    warn_skipped(history, "plan")
    runs = [run for run in history.runs if _rows_of(run, args.gate)]
    if not runs:
        raise QagateError(
            f"the run history {history.path} holds no run of {args.gate}",
            hint=f"run 'pytest {args.gate}' first (a pilot run), or give --pilot MODEL=PREDICTIONS",
        )
    run = runs[-1]
    rows = _rows_of(run, args.gate)
    pilots: list[tuple[str, Any, Any, Any, Any]] = []
    seen: set[tuple[str, str]] = set()
    for _, rule, spec in confident:
        for row in rows:
            model = str(row.get("model"))
            if row.get("rule") != rule.id or (model, rule.id) in seen:
                continue
            seen.add((model, rule.id))
            facts = _mapping(row.get("explain"))
            interval = _mapping(facts.get("interval"))
            values = from_histogram(interval.get("histogram"))
            if values is None:
                why = (
                    "timed rounds, not questions: a larger --qagate-speed-budget narrows it"
                    if str(interval.get("method", "")).endswith("rounds") or "blocks" in interval
                    else f"this run kept no per-question values for it (status {row.get('status')}; "
                    "a qagate before 'plan', or a rule without them): run the gate again or give --pilot"
                )
                pilots.append((model, rule, spec, None, why))
                continue
            available = _mapping(interval.get("sequential")).get("questions_available") or facts.get(
                "questions"
            )
            pilots.append((model, rule, spec, values, available))
    where = history.path
    source = (
        f"run {run.get('id')} (started {run.get('started')}) of the history {where}: the per-question "
        f"values each verdict kept (a histogram of {_bins()} bins)"
    )
    return source, pilots


def _rows_of(run: Mapping[str, Any], gate: Path) -> list[Mapping[str, Any]]:
    """The gate rows of ``run`` that come from the gate file ``gate`` (node ids start with its
    path from the rootdir)."""
    wanted = Path(gate).resolve().as_posix()
    rows = []
    for row in run.get("results") or []:
        if not isinstance(row, Mapping):
            continue
        file = str(row.get("nodeid", "")).split("::", 1)[0]
        if file and (wanted == file or wanted.endswith("/" + file)):
            rows.append(row)
    return rows


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _bins() -> int:
    from qagate.reports.explain import HISTOGRAM_BINS

    return HISTOGRAM_BINS


# --- the pilot: prediction files ----------------------------------------------------------------


def pilots_from_predictions(
    args: argparse.Namespace, gate: Any, confident: Sequence[tuple[Any, Any, Any]]
) -> tuple[str, list[tuple[str, Any, Any, Any, Any]]]:
    """The pilot from ``--pilot MODEL=PREDICTIONS`` files scored on the gate's dataset."""
    from qagate.data import load_dataset, load_predictions
    from qagate.gating.evidence import per_question
    from qagate.gating.judge import rule_values
    from qagate.scoring.squad import score

    files: dict[str, Path] = {}
    for text in args.pilot:
        name, sep, path = text.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise QagateError(
                f"--pilot {quote(text)}: expected MODEL=PREDICTIONS",
                hint="e.g. --pilot student=student.json --pilot teacher=teacher.json --teacher teacher",
            )
        files[name.strip()] = Path(path.strip())
    teacher = args.teacher
    if teacher is not None and teacher not in files:
        raise QagateError(f"--teacher {quote(teacher)} is not one of the --pilot models ({', '.join(files)})")
    dataset = _dataset(args, gate, load_dataset)
    ids = [example.id for example in dataset.examples]
    scores = {name: score(dataset, load_predictions(path)) for name, path in files.items()}
    pilots: list[tuple[str, Any, Any, Any, Any]] = []
    for block, rule, spec in confident:
        for model in files:
            if not _applies(block.apply_to, model, teacher):
                continue
            if rule.metric not in ("exact_match", "f1") or rule.perturb or rule.slice is not None:
                why = (
                    f"{rule.metric} has no per-question values in a predictions file"
                    if rule.metric not in ("exact_match", "f1")
                    else "a robustness or slice rule: plan it from the history's last run of the gate"
                )
                pilots.append((model, rule, spec, None, why))
                continue
            if rule.reference == "baseline":
                pilots.append((model, rule, spec, None, "a baseline rule pairs with the stored baseline"))
                continue
            theirs = None
            if rule.reference == "teacher":
                if teacher is None:
                    raise QagateError(
                        f"{rule.id} compares with the teacher: name it with --teacher and give its "
                        "predictions with --pilot"
                    )
                theirs = per_question(scores[teacher], rule.metric, ids)
            values = rule_values(rule, per_question(scores[model], rule.metric, ids), theirs)
            pilots.append((model, rule, spec, values, len(ids)))
    if not pilots:
        raise QagateError(
            f"no confidence rule of {args.gate} applies to the --pilot models ({', '.join(files)})",
            hint="name the models as the gate file's apply_to does, and the teacher with --teacher",
        )
    named = ", ".join(f"{name} {path}" for name, path in files.items())
    return f"the predictions files {named}, scored on {dataset.name} ({len(ids):,} questions)", pilots


def _dataset(args: argparse.Namespace, gate: Any, load_dataset: Any) -> Any:
    request = gate.dataset
    if args.dataset is not None:
        return load_dataset(args.dataset, limit=args.limit, seed=args.sample_seed, articles=args.articles)
    if request is None:
        raise QagateError(
            f"{args.gate} names no dataset: give the one the predictions answer with --dataset",
        )
    dataset = load_dataset(
        request.spec,
        limit=request.limit if request.limit is not None else args.limit,
        seed=request.seed if request.seed is not None else args.sample_seed,
        articles=request.articles if request.articles is not None else args.articles,
    )
    if request.perturb:
        from qagate.data.perturb import perturb_dataset

        dataset = perturb_dataset(dataset, request.perturb, request.perturb_seed)
    return dataset


def _applies(apply_to: Any, model: str, teacher: str | None) -> bool:
    if apply_to == "all":
        return True
    if apply_to == "teacher":
        return model == teacher
    if apply_to == "students":
        return model != teacher
    return model in apply_to
