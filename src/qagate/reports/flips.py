"""Flipped questions: what a model got wrong that its reference (the teacher) got right, and back.

By exact match: *lost* questions went right -> wrong (the reference right, the model wrong),
*gained* ones wrong -> right; an *F1 drop* is a question whose F1 fell by more than a threshold
(half the F1 scale by default) whatever EM says. Counted for the whole set and per slice
(:mod:`qagate.data.slices`), with an interval on the net change in EM points (gained minus lost,
per question), from the same anytime-valid interval engine the gates use. A failed
teacher-relative rule's report shows the slices that lost most and the first flipped questions.

Everything shown that a model or a dataset wrote (questions, answers, context) is text: one line,
whitespace collapsed, truncated and quoted with ``repr`` (control characters escaped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset, QAExample
    from qagate.scoring.evaluation import EvalResult

F1_DROP = 0.5  # an F1 drop above this (0-1 scale) counts as a flip by F1


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a name and its per-question EM (0/1) and F1 (0-1), and its
    answers when known (a run's stored results may have none). An :class:`EvalResult` is
    turned into one by :func:`side`; a question a side lacks scores 0."""

    model: str
    em: Mapping[str, float]
    f1: Mapping[str, float]
    answers: Mapping[str, str] | None = None


def side(result: "EvalResult | Side") -> Side:
    """``result`` as a :class:`Side` (a Side is returned as it is)."""
    if isinstance(result, Side):
        return result
    scores = result.scores
    return Side(result.model, scores.per_question_em, scores.per_question_f1, result.predictions.answers)


@dataclass(frozen=True)
class SliceFlips:
    """Flips of one slice (``name`` "all" for the whole set); ``low``/``high``: the interval of
    the net change in EM points (negative: the model lost questions its reference answered)."""

    name: str
    questions: int
    lost: int
    gained: int
    f1_drops: int
    low: float
    high: float
    level: float
    #: Each side's exact_match and f1 on the slice (0-100): (model, reference).
    em: tuple[float, float] = (0.0, 0.0)
    f1: tuple[float, float] = (0.0, 0.0)

    @property
    def net(self) -> float:
        return 100.0 * (self.gained - self.lost) / self.questions if self.questions else 0.0

    @property
    def ratio(self) -> float | None:
        """The model's F1 on the slice as a share of its reference's (None when that is 0)."""
        return self.f1[0] / self.f1[1] if self.f1[1] > 0 else None


def flipped(
    result: "EvalResult | Side", reference: "EvalResult | Side", ids: Sequence[str]
) -> tuple[list[str], list[str]]:
    """(lost, gained) question ids among ``ids``, in that order, by exact match."""
    mine, theirs = side(result).em, side(reference).em
    lost = [qid for qid in ids if theirs.get(qid, 0.0) > 0.5 >= mine.get(qid, 0.0)]
    gained = [qid for qid in ids if mine.get(qid, 0.0) > 0.5 >= theirs.get(qid, 0.0)]
    return lost, gained


def slice_flips(
    name: str,
    ids: Sequence[str],
    result: "EvalResult | Side",
    reference: "EvalResult | Side",
    *,
    level: float = 0.95,
    f1_drop: float = F1_DROP,
    seed: int = 0,
) -> SliceFlips:
    """The flips among ``ids``, the interval of their net change (EM points) and both sides'
    EM and F1 on them."""
    import numpy as np

    from qagate.scoring.confseq import ConfidenceSequence

    model, other = side(result), side(reference)
    mine, theirs = model.em, other.em
    lost, gained = flipped(model, other, ids)
    drops = sum(1 for qid in ids if other.f1.get(qid, 0.0) - model.f1.get(qid, 0.0) > f1_drop)
    if not ids:
        return SliceFlips(name, 0, 0, 0, 0, -100.0, 100.0, level)
    values = np.array([mine.get(qid, 0.0) - theirs.get(qid, 0.0) for qid in ids], dtype=np.float64)
    order = np.random.default_rng(seed).permutation(values.size)
    interval = ConfidenceSequence(-1.0, 1.0, level, horizon=values.size).update(values[order])

    def mean(values: Mapping[str, float]) -> float:
        return 100.0 * sum(values.get(qid, 0.0) for qid in ids) / len(ids)

    return SliceFlips(
        name,
        len(ids),
        len(lost),
        len(gained),
        drops,
        100.0 * interval.low,
        100.0 * interval.high,
        level,
        (mean(mine), mean(theirs)),
        (mean(model.f1), mean(other.f1)),
    )


def flip_table(
    dataset: "Dataset",
    result: "EvalResult | Side",
    reference: "EvalResult | Side",
    labels: Mapping[str, Mapping[str, str]] | None = None,
    *,
    level: float = 0.95,
    ids: Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
) -> list[SliceFlips]:
    """The whole set first, then every slice present, the largest net loss first. ``ids``:
    only these questions (default: the dataset's); ``keys``: only the slices of these label keys."""
    from qagate.data.slices import dataset_labels, slice_table

    table = labels if labels is not None else dataset_labels(dataset)
    if ids is None:
        ids = [ex.id for ex in dataset.examples]
    else:
        wanted = set(ids)
        table = {qid: row for qid, row in table.items() if qid in wanted}
    model, other = side(result), side(reference)
    rows = [
        slice_flips(name, members, model, other, level=level)
        for name, members in slice_table(table, keys).items()
        if members
    ]
    rows.sort(key=lambda row: (row.net, -row.lost, row.name))
    return [slice_flips("all", ids, model, other, level=level), *rows]


def render(
    dataset: "Dataset",
    result: "EvalResult | Side",
    reference: "EvalResult | Side",
    *,
    labels: Mapping[str, Mapping[str, str]] | None = None,
    rows: int = 8,
    shown: int = 3,
) -> str:
    """The flips report: the slices that lost most, then the first flipped questions ("" when
    nothing flipped)."""
    result, reference = side(result), side(reference)
    table = flip_table(dataset, result, reference, labels)
    model, other = result.model, reference.model
    whole = table[0]
    if not (whole.lost or whole.gained or whole.f1_drops):
        return ""
    lines = [
        f"flipped questions, {model} against {other}, of {whole.questions}: {whole.lost} right -> wrong "
        f"and {whole.gained} wrong -> right by exact match, {whole.f1_drops} with F1 down by more "
        f"than {F1_DROP:g}:",
    ]
    header = ["slice", "questions", "lost", "gained", "F1 drops", "net EM", f"{whole.level:.0%} interval"]
    changed = [row for row in table[1:] if row.lost or row.gained]
    body = [header, _row(whole)] + [_row(row) for row in changed[:rows]]
    widths = [max(len(line[i]) for line in body) for i in range(len(header))]
    for line in body:
        lines.append("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
    if len(changed) > rows:
        lines.append(f"  ({len(changed) - rows} more slices with flips; the largest net loss first)")
    by_id = dataset.by_id()
    lost, gained = flipped(result, reference, [ex.id for ex in dataset.examples])
    for what, ids, count in (("right -> wrong", lost, shown), ("wrong -> right", gained, max(shown - 1, 1))):
        if not ids:
            continue
        lines.append(f"first {min(count, len(ids))} of {len(ids)} {what}:")
        for qid in ids[:count]:
            lines += _question(by_id[qid], result, reference)
    return "\n".join(lines)


def _row(row: SliceFlips) -> list[str]:
    return [
        row.name,
        str(row.questions),
        str(row.lost),
        str(row.gained),
        str(row.f1_drops),
        f"{row.net:+.1f}",
        f"[{row.low:+.1f}, {row.high:+.1f}]",
    ]


def _question(example: "QAExample", result: Side, reference: Side) -> list[str]:
    gold = " | ".join(_quoted(a, 60) for a in dict.fromkeys(example.answers)) or "(no answer)"
    return [
        f"  {_quoted(example.id, 40)[1:-1]}  Q: {_quoted(example.question, 100)}",
        f"    gold: {gold}",
        f"    {result.model}: {_answer(result, example.id)}   "
        f"{reference.model}: {_answer(reference, example.id)}",
        f"    context: {_excerpt(example)}",
    ]


def _answer(who: Side, qid: str) -> str:
    """A side's answer as a quoted literal, or ``(not stored)`` when it kept no answers."""
    if who.answers is None:
        return "(not stored)"
    return _quoted(who.answers.get(qid, ""), 60)


def _quoted(text: Any, limit: int) -> str:
    """One line of at most ``limit`` characters, whitespace collapsed, as a Python literal."""
    text = " ".join(str(text).split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _excerpt(example: "QAExample", around: int = 60) -> str:
    """The context around the first gold span (its start when unanswerable)."""
    start = example.answer_starts[0] if example.answer_starts else 0
    end = start + (len(example.answers[0]) if example.answers else 0)
    lo, hi = max(0, start - around), min(len(example.context), end + around)
    text = " ".join(example.context[lo:hi].split())[:400]
    return ("…" if lo > 0 else "") + repr(text) + ("…" if hi < len(example.context) else "")


def context_parts(example: "QAExample", around: int = 120) -> tuple[str, str, str]:
    """The context around the first gold span as (before, gold span, after), whitespace
    collapsed, "…" where it was cut: plain text for the pages to escape and mark."""
    start = example.answer_starts[0] if example.answer_starts else 0
    end = start + (len(example.answers[0]) if example.answers else 0)
    lo, hi = max(0, start - around), min(len(example.context), end + around)

    def flat(text: str) -> str:
        return " ".join(text.split())

    before = ("… " if lo > 0 else "") + flat(example.context[lo:start])
    after = flat(example.context[end:hi]) + (" …" if hi < len(example.context) else "")
    return before, flat(example.context[start:end])[:300], after
