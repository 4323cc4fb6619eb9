"""Text a human reads: a failed gate's table, its worst questions, and the session summary.

Pure formatting: numbers in, strings out (no pytest, no I/O), so the gate items, the
``assert_gate`` helper and the terminal summary print exactly the same thing.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from qagate.gating.judge import Verdict, updating_can_pass
from qagate.scoring.registry import METRICS, fmt

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset
    from qagate.reports.outcomes import ModelRow, Record
    from qagate.scoring.evaluation import EvalResult

STATUS_WORDS = {
    "pass": "PASS",
    "fail": "FAIL",
    "undecided": "UNDECIDED",
    "skipped": "SKIP",
    "error": "ERROR",
    "new": "NEW",
    "undecided (skipped)": "UNDECIDED (skipped)",
}
__all__ = ["fmt", "failure_report", "worst_questions", "session_summary", "accept_command"]


def rule_form(verdict: Verdict) -> str:
    """The threshold as the rule wrote it, e.g. ``0.95 * teacher`` or ``baseline - 0.5``."""
    rule = verdict.rule
    if rule.reference is None:
        return f"{rule.offset:g}"
    text = rule.reference if rule.coef == 1.0 else f"{rule.coef:g} * {rule.reference}"
    if rule.offset:
        text += f" {'-' if rule.offset < 0 else '+'} {abs(rule.offset):g}"
    return text


def verdict_table(verdict: Verdict) -> str:
    """``metric | <reference> | obtained | delta | allowed`` for one verdict."""
    rule = verdict.rule
    header = ["metric"]
    row = [rule.metric]
    if rule.reference is not None:
        header.append(rule.reference)
        row.append(fmt(verdict.reference_value, rule.metric))
    header.append("obtained")
    row.append(fmt(verdict.obtained, rule.metric))
    if rule.reference is not None:
        header.append("delta")
        delta = verdict.delta
        row.append("-" if delta is None else f"{delta:+.4f}")
    header.append("allowed")
    allowed = "-" if verdict.threshold is None else f"{rule.op} {fmt(verdict.threshold, rule.metric)}"
    if rule.reference is not None:
        allowed += f" ({rule_form(verdict)})"
    row.append(allowed)
    return _table([header, row])


def interval_line(verdict: Verdict) -> str | None:
    iv = verdict.interval
    if iv is None:
        return None
    rule = verdict.rule
    right = rule_form(verdict)
    side = {
        "pass": "entirely on the passing side",
        "fail": "entirely on the failing side",
        "undecided": "straddles 0: the sample cannot decide",
    }[verdict.status]
    info = METRICS.get(rule.metric)
    kind = (
        "interval (valid at every n)"
        if info is None or not info.rounds
        else "bootstrap interval over timed rounds"
        if rule.metric == "tokens_per_second"
        else "interval over blocks of timed rounds (drift-robust)"
    )
    if verdict.cluster not in (None, "none") and verdict.clusters is not None:
        kind += f" over {verdict.clusters} {verdict.cluster}s"
    return (
        f"{iv.level:.0%} {kind} of {rule.metric} - ({right}): "
        f"[{iv.low:+.4f}, {iv.high:+.4f}] (estimate {iv.estimate:+.4f}), {side}"
    )


def accept_command(verdict: Verdict, nodeid: str) -> str | None:
    """The command that accepts the obtained numbers, only where accepting can change the verdict.

    ``f1 >= baseline + 1`` can never pass against a baseline of the obtained value, so it gets
    no suggestion (the report explains the rule instead).
    """
    if verdict.rule.reference != "baseline" or verdict.status != "fail" or verdict.obtained is None:
        return None
    if not updating_can_pass(verdict.rule, verdict.obtained):
        return None
    return f"pytest {shlex.quote(nodeid)} --qagate-update-baselines"


def has_worst_questions(metric: str) -> bool:
    """Whether a failed rule on ``metric`` is explained by the worst-scoring questions."""
    return not METRICS[metric].timing and metric not in ("parameter_count", "size_on_disk_mb")


def more_questions(gate_dataset: Any, gate_file: str, session_limit: int | None) -> str:
    """Where a gate item's undecided rule gets more questions: --qagate-limit only where it applies
    (the gate file sets no limit of its own, and the run passed one), else the gate file's dataset."""
    if session_limit is not None and getattr(gate_dataset, "limit", None) is None:
        return "a larger --qagate-limit"
    if gate_dataset is not None:
        return f"a larger dataset in {gate_file}"
    return "a larger dataset: --qagate-dataset"


def failure_report(
    verdict: Verdict,
    *,
    dataset: str | None = None,
    questions: int | None = None,
    accept_command: str | None = None,
    more_questions: str = "a larger dataset",
    decide: str | None = None,
) -> str:
    """The whole failure message: headline, table, interval, notes, and how to accept.
    ``more_questions`` says where an undecided rule gets more questions (:func:`more_questions`);
    ``decide``: how many would decide it (:func:`qagate.reports.explain.decide_line`)."""
    status = STATUS_WORDS[verdict.status]
    where = f" on {dataset}" if dataset else ""
    if verdict.questions_used is not None:
        where += f" ({verdict.questions_used} of {verdict.questions_available} questions, sequential)"
    elif questions is not None:
        where += f" ({questions} questions)"
    lines = [
        f"qagate gate {status}: {verdict.model} :: {verdict.rule.id}{where}",
        _indent(verdict_table(verdict)),
    ]
    interval = interval_line(verdict)
    if interval:
        lines.append("  " + interval)
    if verdict.status == "undecided" and decide:
        lines.append(f"  {decide}")
    if verdict.status == "undecided":
        lines.append(
            f"  undecided: more questions ({more_questions}) or a lower "
            "confidence level would decide it; --qagate-undecided=skip reports it as a "
            "skip instead of a failure"
        )
    lines.extend(f"  - {note}" for note in verdict.notes)
    if accept_command:
        lines.append(f"  accept the obtained numbers as the new baseline: {accept_command}")
    elif (
        verdict.rule.reference == "baseline"
        and verdict.status == "fail"
        and verdict.obtained is not None
        and verdict.reference_value is not None
        and not updating_can_pass(verdict.rule, verdict.obtained)
    ):
        lines.append(
            f"  {verdict.rule.text} asks for more than the stored baseline, so updating "
            f"the baseline to {fmt(verdict.obtained, verdict.rule.metric)} cannot make "
            f"it pass: the model itself has to improve (or the rule has to change)"
        )
    return "\n".join(lines)


def worst_questions(
    dataset: "Dataset", result: "EvalResult", *, teacher: "EvalResult | None" = None, count: int = 10
) -> str:
    """The questions that hurt most: lowest F1 (against the teacher: largest F1 loss) first."""
    per_f1 = result.scores.per_question_f1
    teacher_f1 = teacher.scores.per_question_f1 if teacher is not None else None
    answers = result.predictions.answers

    def badness(example) -> tuple:
        mine = per_f1.get(example.id, 0.0)
        if teacher_f1 is not None:
            return (mine - teacher_f1.get(example.id, 0.0), mine, example.id)
        return (mine, example.id)

    ranked = sorted(dataset.examples, key=badness)[:count]
    what = "largest F1 loss against the teacher" if teacher is not None else "lowest F1"
    lines = [f"worst questions for {result.model} ({what} first; {len(ranked)} of {len(dataset)}):"]
    for rank, example in enumerate(ranked, 1):
        score = f"F1 {per_f1.get(example.id, 0.0):.2f}"
        if teacher_f1 is not None:
            score += f" (teacher {teacher_f1.get(example.id, 0.0):.2f})"
        references = " | ".join(repr(_short(a, 60)) for a in dict.fromkeys(example.answers))
        lines.append(f"{rank:3d}. {example.id}  {score}")
        lines.append(f"     Q: {_short(example.question, 100)}")
        lines.append(
            f"     predicted: {_short(answers.get(example.id, ''), 60)!r}   "
            f"references: {references or '(no answer)'}"
        )
    return "\n".join(lines)


def metrics_table(rows: Sequence["ModelRow"]) -> str:
    """models x metrics: quality from the evaluation, timings only when measured in this run."""
    metrics = [row.metrics() for row in rows]
    shown = [
        name
        for name, info in METRICS.items()
        if info.summary and any(m.get(name) is not None for m in metrics)
    ]
    table = [["model", "dataset"] + [METRICS[name].label for name in shown]]
    for row, values in zip(rows, metrics):
        table.append([row.model, row.dataset] + [fmt(values.get(name), name) for name in shown])
    return _table(table)


def gates_table(records: Iterable["Record"]) -> str:
    """One row per gate item; a ``questions`` column (used/available) when a rule was sequential."""
    records = list(records)
    sequential = any(getattr(record, "questions", None) for record in records)
    table = [
        ["status", "model", "rule", "dataset", "obtained", "allowed"] + (["questions"] if sequential else [])
    ]
    for record in records:
        row = [
            STATUS_WORDS.get(record.status, record.status.upper()),
            record.model,
            record.rule,
            record.dataset,
            fmt(record.obtained, record.metric),
            f"{record.op} {fmt(record.threshold, record.metric)}" if record.threshold is not None else "-",
        ]
        if sequential:
            used = getattr(record, "questions", None)
            row.append(f"{used[0]}/{used[1]}" if used else "-")
        table.append(row)
    return _table(table)


def decide_lines(records: Iterable["Record"]) -> list[str]:
    """For each undecided gate item whose explanation found it, how many questions would decide
    it (``qagate.reports.explain.decide_line``, from the facts the item kept)."""
    from qagate.reports.explain import decide_line

    lines = []
    for record in records:
        facts = record.explain if isinstance(record.explain, Mapping) else {}
        if record.status != "undecided" or "decide" not in facts:
            continue
        level = record.interval[2] if record.interval is not None else facts.get("confidence")
        line = decide_line(facts["decide"], level)
        if line:
            lines.append(f"{record.model} :: {record.rule}: {line}")
    return lines


def session_summary(
    evaluated: Sequence["ModelRow"],
    records: Sequence["Record"],
    *,
    verbosity: int = 0,
    not_gated: Mapping[str, str] | None = None,
    strict: bool = False,
    baselines: Mapping[str, str] | None = None,
    family_alpha: float | None = None,
) -> list[str]:
    """The lines of the ``qagate`` terminal section, as much as pytest's verbosity asks for.

    ``-q`` keeps the counts, what did not pass and the warnings; ``-qq`` only the counts and
    the warnings. A run in which a gate could not run says so first: it was not gated.
    """
    lines: list[str] = []
    not_gated = dict(not_gated or {})
    if not_gated:
        reasons = list(dict.fromkeys(not_gated.values()))
        action = "they FAILED (--qagate-strict)" if strict else "use --qagate-strict in CI to fail such a run"
        lines.append(
            f"RELEASE NOT GATED: {len(not_gated)} gate item(s) could not run: "
            f"{reasons[0]}"
            + (f" (and {len(reasons) - 1} more reasons)" if len(reasons) > 1 else "")
            + f"; {action}"
        )
    if evaluated and verbosity >= 0:
        lines.extend(metrics_table(evaluated).splitlines())
    if records:
        counts: dict[str, int] = {}
        for record in records:
            counts[record.status] = counts.get(record.status, 0) + 1
        if lines:
            lines.append("")
        lines.append(
            "gates: " + ", ".join(f"{n} {STATUS_WORDS.get(s, s).lower()}" for s, n in sorted(counts.items()))
        )
        shown = (
            list(records)
            if verbosity >= 0
            else [r for r in records if r.status != "pass"]
            if verbosity == -1
            else []
        )
        if shown:
            lines.extend(gates_table(shown).splitlines())
        if verbosity >= -1:
            lines.extend(decide_lines(records))
        from qagate.gating.family import family_of

        family = family_of((record.as_row() for record in records), family_alpha).line()
        if family and verbosity >= -1:
            lines.append(family)
    for path, action in sorted((baselines or {}).items()):
        if action == "created":
            lines.append(
                f"NEW baseline {path}: written from this run's numbers; review and "
                f"commit it" + (" (--qagate-strict fails until it is committed)" if strict else "")
            )
        else:
            lines.append(f"{action} baseline {path}")
    return lines


def _table(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to width; numeric columns (every body cell a number or '-') right-aligned."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    numeric = [
        i > 0 and all(_numeric(row[i]) or row[i] == "-" for row in rows[1:]) for i in range(len(widths))
    ]
    lines = []
    for row in rows:
        cells = [str(c).rjust(w) if num else str(c).ljust(w) for c, w, num in zip(row, widths, numeric)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _numeric(cell: str) -> bool:
    text = str(cell).replace(",", "").rstrip("x").lstrip("+-")
    try:
        float(text)
    except ValueError:
        return False
    return True


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def interval_text(result: Mapping[str, Any]) -> str:
    """``95% interval [74.1000, 81.2000]`` when the result recorded one (rules with a confidence
    level, the only way a gate is undecided), else ``""``; values in the metric's format."""
    low, high, level = (_history_number(result.get(k)) for k in ("interval_low", "interval_high", "level"))
    if low is None or high is None:
        return ""
    metric = str(result.get("metric") or "") or None
    word = "interval" if level is None else f"{level * 100 if level <= 1 else level:g}% interval"
    return f"{word} [{fmt(low, metric)}, {fmt(high, metric)}]"


def _history_number(value: Any) -> float | None:
    """A number a history row stored (None for anything else, booleans included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
