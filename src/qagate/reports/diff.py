"""Two models, two prediction files or two runs compared question by question: per slice, each
side's EM and F1, the questions that flipped and an interval on the net change, then the flipped
questions themselves (``qagate diff``, the dashboard's run pages and the Markdown summary).

``A`` is the reference (the teacher, the older run) and ``B`` the model under review, as in
``git diff A B``: *lost* questions went right -> wrong from A to B. The counts and intervals
are :mod:`qagate.reports.flips`' (one anytime-valid interval engine); this module adds the
flipped questions as plain text rows, the JSON form and the HTML page. What a model or a dataset
wrote stays plain text here: the HTML template escapes it (autoescape) and the terminal form
quotes it (:func:`qagate.reports.flips.render`'s literals).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from qagate.reports.flips import F1_DROP, Side, SliceFlips, context_parts, flip_table, flipped

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset

#: Flipped questions listed per direction unless asked otherwise.
SHOWN = 10
#: A heat-map cell's colour saturates at this F1 ratio away from 1 (a 25% loss is full red).
SATURATE = 0.25


@dataclass(frozen=True)
class Flip:
    """One flipped question as text: ``direction`` "lost" (A right, B wrong) or "gained";
    ``answers`` (B's, A's) None where a side kept no answers; ``context``: (before, gold span, after)."""

    id: str
    direction: str
    question: str
    gold: tuple[str, ...]
    answers: tuple[str | None, str | None]
    f1: tuple[float, float]
    context: tuple[str, str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "direction": self.direction,
            "question": self.question,
            "gold": list(self.gold),
            "b": self.answers[0],
            "a": self.answers[1],
            "f1_b": round(self.f1[0], 6),
            "f1_a": round(self.f1[1], 6),
            "context": list(self.context),
        }

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> "Flip":
        """A stored flip back (a run's ``slices``); fields a damaged row lacks are empty."""

        def text(value: Any) -> str:
            return "" if value is None else str(value)

        def answer(value: Any) -> str | None:
            return None if value is None else str(value)

        context = row.get("context")
        parts = [text(part) for part in context][:3] if isinstance(context, list) else []
        gold = row.get("gold")
        return cls(
            text(row.get("id")),
            "gained" if row.get("direction") == "gained" else "lost",
            text(row.get("question")),
            tuple(text(g) for g in gold) if isinstance(gold, list) else (),
            (answer(row.get("b")), answer(row.get("a"))),
            (_number(row.get("f1_b")), _number(row.get("f1_a"))),
            (*parts, "", "", "")[:3],  # type: ignore[arg-type]
        )


@dataclass
class Diff:
    """B against A on one dataset: slice rows (the whole set first) and the flipped questions."""

    a: str
    b: str
    dataset: str
    questions: int
    slices: list[SliceFlips]
    lost: list[str]
    gained: list[str]
    flips: list[Flip]
    level: float = 0.95
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` object (documented on the Slices page)."""
        return {
            "a": self.a,
            "b": self.b,
            "dataset": self.dataset,
            "questions": self.questions,
            "level": self.level,
            "f1_drop": F1_DROP,
            "slices": [slice_json(row) for row in self.slices],
            "lost": self.lost,
            "gained": self.gained,
            "flips": [flip.as_dict() for flip in self.flips],
            "notes": self.notes,
        }


def slice_json(row: SliceFlips) -> dict[str, Any]:
    """One slice row as JSON: each side's EM and F1 (0-100) and the flips with their interval."""
    return {
        "slice": row.name,
        "questions": row.questions,
        "a": {"exact_match": round(row.em[1], 6), "f1": round(row.f1[1], 6)},
        "b": {"exact_match": round(row.em[0], 6), "f1": round(row.f1[0], 6)},
        "lost": row.lost,
        "gained": row.gained,
        "f1_drops": row.f1_drops,
        "net_em": round(row.net, 6),
        "interval": [round(row.low, 6), round(row.high, 6)],
    }


def compare(
    dataset: "Dataset",
    a: Side,
    b: Side,
    labels: Mapping[str, Mapping[str, str]],
    *,
    ids: Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
    only: str | None = None,
    shown: int = SHOWN,
    level: float = 0.95,
) -> Diff:
    """B against A on ``ids`` (default: every question of ``dataset``). ``keys``: the label keys
    whose slices are tabled (default all); ``only``: a slice ("answer=date") whose questions
    alone are compared and whose flips are listed; ``shown``: flipped questions per direction."""
    from qagate.data.slices import slice_table

    chosen = [ex.id for ex in dataset.examples] if ids is None else list(ids)
    if only is not None:
        key = only.partition("=")[0]
        members = set(slice_table({q: labels[q] for q in chosen if q in labels}, [key]).get(only, []))
        chosen = [qid for qid in chosen if qid in members]
        if keys is None:
            keys = []
    rows = flip_table(dataset, b, a, labels, level=level, ids=chosen, keys=keys)
    if only is not None:
        rows = [replace(rows[0], name=only)]
    lost, gained = flipped(b, a, chosen)
    by_id = dataset.by_id()
    flips = [flip_of(by_id[qid], "lost", a, b) for qid in lost[:shown]]
    flips += [flip_of(by_id[qid], "gained", a, b) for qid in gained[:shown]]
    return Diff(a.model, b.model, dataset.name, len(chosen), rows, lost, gained, flips, level)


def flip_of(example: Any, direction: str, a: Side, b: Side) -> Flip:
    """One flipped question of ``example`` as text (answers None where a side kept none)."""

    def answer(who: Side) -> str | None:
        return None if who.answers is None else str(who.answers.get(example.id, ""))

    return Flip(
        example.id,
        direction,
        example.question,
        tuple(dict.fromkeys(example.answers)),
        (answer(b), answer(a)),
        (b.f1.get(example.id, 0.0), a.f1.get(example.id, 0.0)),
        context_parts(example),
    )


# --- text ---------------------------------------------------------------------------------------


def render_text(diff: Diff) -> str:
    """The per-slice table and the flipped questions, for the terminal (model text quoted)."""
    from qagate.reports.flips import _quoted

    whole = diff.slices[0]
    lines = [
        f"{diff.b} (B) against {diff.a} (A) on {diff.dataset}, {diff.questions:,} questions: "
        f"{whole.lost} right -> wrong and {whole.gained} wrong -> right by exact match, "
        f"{whole.f1_drops} with F1 down by more than {F1_DROP:g}",
        *diff.notes,
        "",
    ]
    header = ["slice", "questions", "EM A", "EM B", "F1 A", "F1 B", "F1 B/A", "lost", "gained", "net EM"]
    header.append(f"{diff.level:.0%} interval")
    body = [header]
    for row in diff.slices:
        ratio = row.ratio
        body.append(
            [
                row.name,
                f"{row.questions:,}",
                f"{row.em[1]:.1f}",
                f"{row.em[0]:.1f}",
                f"{row.f1[1]:.1f}",
                f"{row.f1[0]:.1f}",
                "-" if ratio is None else f"{100 * ratio:.1f}%",
                str(row.lost),
                str(row.gained),
                f"{row.net:+.1f}",
                f"[{row.low:+.1f}, {row.high:+.1f}]",
            ]
        )
    widths = [max(len(line[i]) for line in body) for i in range(len(header))]
    for line in body:
        cells = [cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(line)]
        lines.append("  ".join(cells).rstrip())
    for direction, ids, what in (
        ("lost", diff.lost, "right -> wrong"),
        ("gained", diff.gained, "wrong -> right"),
    ):
        listed = [flip for flip in diff.flips if flip.direction == direction]
        if not ids:
            continue
        lines += ["", f"{what}: {len(ids)} (first {len(listed)})"]
        for flip in listed:
            gold = " | ".join(_quoted(g, 60) for g in flip.gold) or "(no answer)"
            before, span, after = flip.context
            shown_b = "(not stored)" if flip.answers[0] is None else _quoted(flip.answers[0], 60)
            shown_a = "(not stored)" if flip.answers[1] is None else _quoted(flip.answers[1], 60)
            lines += [
                f"  {_quoted(flip.id, 40)[1:-1]}  Q: {_quoted(flip.question, 100)}",
                f"    gold: {gold}",
                f"    A {diff.a}: {shown_a}   B {diff.b}: {shown_b}",
                f"    context: {_quoted(' '.join(p for p in (before, span, after) if p), 260)}",
            ]
    return "\n".join(lines)


# --- HTML ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeatCell:
    text: str
    colour: str
    ink: str
    title: str


@dataclass
class HeatRow:
    """One comparison of a heat map: ``label`` ("student / teacher"), a cell per column."""

    label: str
    cells: list[HeatCell | None]


def heat_colour(ratio: float | None) -> tuple[str, str]:
    """(background, text colour) for an F1 ratio: white at 1, red below, green above,
    saturating at :data:`SATURATE`; grey when there is no ratio."""
    if ratio is None:
        return "#e0e0e0", "#333333"
    shift = max(-1.0, min(1.0, (ratio - 1.0) / SATURATE))
    target = (198, 40, 40) if shift < 0 else (46, 125, 50)
    weight = abs(shift)
    rgb = [round(255 + (c - 255) * weight) for c in target]
    ink = "#ffffff" if weight > 0.55 else "#222222"
    return "#{:02x}{:02x}{:02x}".format(*rgb), ink


def heat_cell(name: str, questions: int, mine: float, theirs: float, who: tuple[str, str]) -> HeatCell:
    """A cell: the model's F1 on slice ``name`` as a share of the reference's, with the numbers."""
    ratio = mine / theirs if theirs > 0 else None
    colour, ink = heat_colour(ratio)
    text = "-" if ratio is None else f"{100 * ratio:.0f}"
    title = f"{name}: {who[0]} F1 {mine:.1f}, {who[1]} {theirs:.1f} ({questions:,} questions)"
    return HeatCell(text, colour, ink, title)


def heat_columns(names: Sequence[Sequence[str]]) -> list[str]:
    """The slices of several comparisons in one order: "all", then the slice order of the first
    that has each (built-in keys in their documented order)."""
    seen: dict[str, None] = {"all": None}
    for row in names:
        for name in row:
            seen.setdefault(name, None)
    return list(seen)


def diff_heat_row(diff: Diff, columns: Sequence[str]) -> HeatRow:
    by_name = {row.name: row for row in diff.slices}
    cells: list[HeatCell | None] = []
    for name in columns:
        row = by_name.get(name)
        cells.append(
            None if row is None else heat_cell(name, row.questions, row.f1[0], row.f1[1], (diff.b, diff.a))
        )
    return HeatRow(f"{diff.b} / {diff.a}", cells)


def render_html(diff: Diff, *, title: str | None = None) -> str:
    """A self-contained page (the dashboard's style, no scripts): heat map, table, flips."""
    import time

    from qagate.reports.dashboard import environment

    ordered = sorted(diff.slices[1:], key=lambda row: _slice_order(row.name))
    columns = heat_columns([[row.name for row in [diff.slices[0], *ordered]]])
    return (
        environment()
        .get_template("diff.html.j2")
        .render(
            title=title or f"qagate diff: {diff.b} against {diff.a}",
            diff=diff,
            columns=columns,
            heat=[diff_heat_row(diff, columns)],
            rows=[slice_json(row) | {"ratio": row.ratio} for row in diff.slices],
            flips=diff.flips,
            generated=time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        )
    )


def _slice_order(name: str) -> tuple[int, int, str]:
    """Built-in keys first in their order, each key's values in the documented order."""
    from qagate.data.slices import BUILT_IN

    key, _, value = name.partition("=")
    keys = list(BUILT_IN)
    if key in BUILT_IN:
        values = BUILT_IN[key]
        return keys.index(key), values.index(value) if value in values else len(values), value
    return len(keys), 0, name


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


# --- runs of the history ------------------------------------------------------------------------


def stored_side(
    target: Any, run: Mapping[str, Any], model: str | None, dataset: "Dataset", notes: list[str]
) -> Side:
    """One model's per-question results as the run stored them in the history ``target``
    (``model`` None: the run's only gated model); one line naming the run and the fix when it
    stored none, or when the model is not there or ambiguous. A note goes to ``notes`` when the
    run scored other questions than ``dataset``'s."""
    from qagate.core.errors import QagateError
    from qagate.store.history import question_score_index, read_question_scores

    run_id = str(run.get("id"))
    index = question_score_index(target, run_id)
    if not index:  # raises the store's one line: which run, and how to get a run that has them
        read_question_scores(target, run_id, model or "")
    stored = list(dict.fromkeys(str(e.get("model")) for e in index))
    if model is None:
        gated = {str(r.get("model")) for r in run.get("results") or [] if isinstance(r, Mapping)}
        candidates = [name for name in stored if name in gated] or stored
        if len(candidates) != 1:
            raise QagateError(
                f"run {run_id} stored the results of {len(candidates)} models ({', '.join(candidates)})",
                hint=f"name one: {run_id[:8]}:{candidates[0]}",
            )
        model = candidates[0]
    entries = [e for e in index if e.get("model") == model]
    chosen = next((e for e in entries if e.get("fingerprint") == dataset.fingerprint), None)
    name = str(chosen.get("dataset")) if chosen is not None and len(entries) > 1 else None
    scores = read_question_scores(target, run_id, model, name)
    ids = {ex.id for ex in dataset.examples}
    shared = len(ids.intersection(scores.ids))
    if not shared:
        raise QagateError(
            f"run {run_id} scored {model} on none of the questions of dataset {dataset.name}",
            hint="give the dataset the run was judged on ('qagate history show RUN' names it)",
        )
    if shared < len(scores.ids) or shared < len(ids):
        notes.append(
            f"run {run_id} scored {model} on {len(scores.ids):,} questions, "
            f"{shared:,} of them in {dataset.name}."
        )
    return Side(f"{model}@{run_id[:8]}", scores.per_question_em, scores.per_question_f1, None)


# --- what a run keeps for its pages -------------------------------------------------------------

#: Flipped questions a run keeps per model (right -> wrong, wrong -> right) and the longest text.
KEPT_LOST, KEPT_GAINED, KEPT_CHARS = 5, 3, 300


def run_slices(evaluated: Sequence[Any]) -> list[dict[str, Any]]:
    """What a run records under ``"slices"`` for its dashboard page and Markdown summary: for each
    evaluated (model, dataset), the questions, EM and F1 (0-100) of every slice, and for a model
    with a teacher, each slice's flips against it (lost, gained, the net-EM interval) and the first
    flipped questions as text. A few kilobytes per model, whatever the dataset's size.

    ``evaluated``: the session's rows (``EvaluatedModel``: ``model``, ``dataset``, ``result``,
    ``data``, ``teacher``); rows without their questions (an xdist worker's) are left out."""
    from qagate.data.slices import dataset_labels, slice_table
    from qagate.reports.flips import side

    rows = [r for r in evaluated if getattr(r, "data", None) is not None and getattr(r, "result", None)]
    out: list[dict[str, Any]] = []
    for row in rows:
        labels = dataset_labels(row.data)
        mine = side(row.result)
        entry: dict[str, Any] = {"model": row.model, "dataset": row.dataset, "reference": None}
        teacher = next(
            (t for t in rows if t.model == row.teacher and t.data is row.data and row.teacher is not None),
            None,
        )
        if teacher is None:
            ids = [ex.id for ex in row.data.examples]
            groups = {"all": ids, **{k: v for k, v in slice_table(labels).items() if v}}
            entry["slices"] = {
                name: {"n": len(members), "em": _mean(mine.em, members), "f1": _mean(mine.f1, members)}
                for name, members in groups.items()
            }
        else:
            theirs = side(teacher.result)
            diff = compare(row.data, theirs, mine, labels, shown=max(KEPT_LOST, KEPT_GAINED))
            entry["reference"] = teacher.model
            entry["slices"] = {
                r.name: {
                    "n": r.questions,
                    "em": round(r.em[0], 4),
                    "f1": round(r.f1[0], 4),
                    "ref_em": round(r.em[1], 4),
                    "ref_f1": round(r.f1[1], 4),
                    "lost": r.lost,
                    "gained": r.gained,
                    "low": round(r.low, 4),
                    "high": round(r.high, 4),
                }
                for r in diff.slices
            }
            kept = [f for f in diff.flips if f.direction == "lost"][:KEPT_LOST]
            kept += [f for f in diff.flips if f.direction == "gained"][:KEPT_GAINED]
            entry["flips"] = [_clipped(flip.as_dict()) for flip in kept]
        out.append(entry)
    return out


def _mean(values: Mapping[str, float], ids: Sequence[str]) -> float:
    return round(100.0 * sum(values.get(qid, 0.0) for qid in ids) / len(ids), 4) if ids else 0.0


def _clipped(value: Any) -> Any:
    """Stored text cut to :data:`KEPT_CHARS` characters (a model's answer can be any length)."""
    if isinstance(value, str):
        return value if len(value) <= KEPT_CHARS else value[: KEPT_CHARS - 1] + "…"
    if isinstance(value, list):
        return [_clipped(v) for v in value]
    if isinstance(value, dict):
        return {k: _clipped(v) for k, v in value.items()}
    return value


@dataclass
class RunSlices:
    """One dataset's slice section on a run page: the heat map (each gated model against its
    teacher, and against its baseline run when an earlier run has its slices) and each model's
    kept flipped questions against its teacher."""

    dataset: str
    columns: list[str]
    rows: list[HeatRow]
    flips: list[tuple[str, str, list[Flip]]]  # (model, teacher, flips)
    changed: list[tuple[str, str, str, float, float, int]] = field(default_factory=list)


def stored_slices(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The run's ``"slices"`` entries that are well formed (older runs have none)."""
    entries = run.get("slices")
    if not isinstance(entries, list):
        return []
    return [
        e
        for e in entries
        if isinstance(e, Mapping) and isinstance(e.get("slices"), Mapping) and e.get("model")
    ]


def baseline_run(runs: Sequence[Mapping[str, Any]], index: int, model: str, dataset: str) -> int | None:
    """The run a model's slices are compared with: the newest earlier run on the same branch
    that wrote the model's baseline and kept its slices, else the newest earlier one that kept
    them (None when none did)."""
    from qagate.reports.changes import branch_of
    from qagate.store.baselines import safe_name
    from qagate.store.history import baseline_changes

    branch = branch_of(runs[index])
    candidates = [
        i
        for i in range(index - 1, -1, -1)
        if branch_of(runs[i]) == branch and _entry(runs[i], model, dataset) is not None
    ]
    wrote = f"{safe_name(model)}.json"
    for i in candidates:
        paths = [p for kind in baseline_changes(runs[i]).values() for p in kind]
        if any(p.replace("\\", "/").rsplit("/", 1)[-1] == wrote for p in paths):
            return i
    return candidates[0] if candidates else None


def _entry(run: Mapping[str, Any], model: str, dataset: str) -> Mapping[str, Any] | None:
    return next(
        (e for e in stored_slices(run) if e.get("model") == model and e.get("dataset") == dataset), None
    )


def run_slice_views(runs: Sequence[Mapping[str, Any]], index: int) -> list[RunSlices]:
    """The slice sections of ``runs[index]``'s page, one per dataset with a gated model;
    ``changed`` lists the slices of at least ``MIN_SLICE`` questions, the largest F1 change first."""
    from qagate.data.slices import MIN_SLICE

    pending: dict[str, list[tuple[str, dict[str, tuple[int, float, float]], tuple[str, str]]]] = {}
    views: dict[str, RunSlices] = {}
    for entry in stored_slices(runs[index]):
        if not entry.get("reference"):
            continue
        model, dataset, teacher = str(entry["model"]), str(entry.get("dataset")), str(entry["reference"])
        values = _slice_values(entry)
        view = views.setdefault(dataset, RunSlices(dataset, [], [], []))
        comparisons = pending.setdefault(dataset, [])
        comparisons.append((f"{model} / {teacher}", values, (model, teacher)))
        other = baseline_run(runs, index, model, dataset)
        if other is not None:
            then = _slice_values(_entry(runs[other], model, dataset) or {"slices": {}})
            label = f"run {other + 1}"
            cells = {n: (q, f1, then[n][1]) for n, (q, f1, _) in values.items() if n in then}
            comparisons.append((f"{model} / {label}", cells, (model, label)))
        flips = [Flip.from_dict(f) for f in entry.get("flips") or [] if isinstance(f, Mapping)]
        view.flips.append((model, teacher, flips))
    for dataset, comparisons in pending.items():
        view = views[dataset]
        view.columns = heat_columns([sorted(cells, key=_slice_order) for _, cells, _ in comparisons])
        for label, cells, who in comparisons:
            view.rows.append(
                HeatRow(label, [heat_cell(n, *cells[n], who) if n in cells else None for n in view.columns])
            )
            view.changed += [  # slices too small to gate are left out: their noise would lead the list
                (label, n, who[1], c[1], c[2], c[0])
                for n, c in cells.items()
                if n != "all" and c[0] >= MIN_SLICE
            ]
        view.changed.sort(key=lambda c: -abs(c[3] - c[4]))
    return list(views.values())


def _slice_values(entry: Mapping[str, Any]) -> dict[str, tuple[int, float, float]]:
    """slice -> (questions, F1, reference F1) of a stored entry (malformed slices left out)."""
    from qagate.reports.changes import number

    out = {}
    slices = entry.get("slices")
    for name, row in slices.items() if isinstance(slices, Mapping) else []:
        if not isinstance(row, Mapping):
            continue
        n, f1, ref = number(row.get("n")), number(row.get("f1")), number(row.get("ref_f1"))
        if n is not None and f1 is not None:
            out[str(name)] = (int(n), f1, ref if ref is not None else 0.0)
    return out
