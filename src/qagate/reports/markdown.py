"""One run's verdicts as Markdown, for a pull-request comment or GitHub's job summary
(``$GITHUB_STEP_SUMMARY``): the outcome, a table of every gate (worst first), and what changed
since the previous run on the same branch (new failures, fixed, values that moved), and the
slices whose F1 changed most against the teacher and the baseline run.

Everything a run recorded (model names, rules, datasets, labels) is escaped, so a model's output
can neither break the table nor inject HTML. Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from qagate.reports.changes import Comparison, branch_of, commit_of, compare, number, value_interval_text
from qagate.scoring.registry import fmt
from qagate.store.history import STATUS_ORDER

#: A status as a symbol and a word (GitHub renders the emoji; the word reads without them).
MARKS = {
    "pass": "\u2705 PASS",
    "fail": "\u274c FAIL",
    "error": "\U0001f4a5 ERROR",
    "undecided": "\u2753 UNDECIDED",
    "undecided (skipped)": "\u2754 UNDECIDED (skipped)",
    "new": "\U0001f195 NEW",
    "skipped": "\u23ed\ufe0f SKIPPED",
    "incomplete": "\u26a0\ufe0f INCOMPLETE",
}
#: The most gate rows the table lists (the rest are counted): blocking ones always come first.
MAX_ROWS = 60
MAX_MOVED = 15
#: Slices listed under "Slices that changed most" per dataset (the largest F1 changes first).
MAX_SLICES = 8

_SPECIAL = re.compile(r"([\\`*_\[\]|~!])")


def escape(text: Any) -> str:
    """``text`` safe inside Markdown and a table cell: HTML escaped, Markdown punctuation
    backslashed, newlines flattened."""
    plain = " ".join(str(text).split())
    plain = plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", plain)


def code(text: Any) -> str:
    """``text`` as a code span (read literally, so nothing in it is markup), pipes escaped for
    tables; text with a backtick falls back to :func:`escape`."""
    plain = " ".join(str(text).split())
    return escape(plain) if "`" in plain or not plain else "`" + plain.replace("|", "\\|") + "`"


def mark(status: str) -> str:
    return MARKS.get(status, escape(status.upper()))


def summary(
    runs: Sequence[Mapping[str, Any]], index: int, *, title: str = "qagate", link: str | None = None
) -> str:
    """The Markdown summary of ``runs[index]`` (runs oldest first, as the history gives them)."""
    run = runs[index]
    results = [r for r in run.get("results") or [] if isinstance(r, Mapping)]
    rank = {status: i for i, status in enumerate(STATUS_ORDER)}
    results.sort(key=lambda r: (rank.get(str(r.get("status")), -1), str(r.get("model")), str(r.get("rule"))))
    counts: Mapping[str, Any] = run["counts"] if isinstance(run.get("counts"), Mapping) else {}
    count_text = ", ".join(f"{n} {escape(s)}" for s, n in sorted(counts.items()) if isinstance(n, int))
    heading = f"## {escape(title)}: {mark(str(run.get('outcome', '?')))}"
    lines = [heading + (f" \u2014 {count_text}" if count_text else ""), "", _run_line(run)]
    family = _family_line(run, results)
    if family:
        lines += ["", family]
    if run.get("partial") is True:
        lines.append("")
        lines.append("Partial run: only some gates were selected.")
    lines += [
        "",
        "| | model | rule | dataset | value | threshold | interval |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results[:MAX_ROWS]:
        lines.append(_row(result))
    if len(results) > MAX_ROWS:
        lines.append(f"| | \u2026 and {len(results) - MAX_ROWS} more | | | | | |")
    if not results:
        lines.append("| | no gate was judged | | | | | |")
    lines += slices_section(runs, index)
    lines += ["", *changes_section(runs, compare(runs, index))]
    if link:
        lines += ["", f"[Dashboard]({link.replace(')', '%29').replace(' ', '%20')})"]
    return "\n".join(lines).rstrip() + "\n"


def slices_section(runs: Sequence[Mapping[str, Any]], index: int) -> list[str]:
    """``### Slices that changed most``: for each gated model, the slices whose F1 moved most
    against its teacher and against its baseline run (none when the run kept no slice tables)."""
    from qagate.reports.diff import run_slice_views

    lines: list[str] = []
    for view in run_slice_views(runs, index):
        if not view.changed:
            continue
        lines += [
            "",
            f"### Slices that changed most on {escape(view.dataset)}",
            "",
            "| model / reference | slice | questions | F1 | reference F1 | change |",
            "|---|---|---|---|---|---|",
        ]
        for label, name, _, mine, theirs, questions in view.changed[:MAX_SLICES]:
            lines.append(
                f"| {escape(label)} | {code(name)} | {questions:,} | {mine:.1f} | {theirs:.1f} "
                f"| {mine - theirs:+.1f} |"
            )
        if len(view.changed) > MAX_SLICES:
            lines.append(f"| \u2026 and {len(view.changed) - MAX_SLICES} more | | | | | |")
    return lines


def changes_section(runs: Sequence[Mapping[str, Any]], change: Comparison) -> list[str]:
    """``### Since the previous run`` with new failures, fixed gates and values that moved."""
    if change.previous is None:
        return ["### Since the previous run", "", "No earlier run on this branch to compare with."]
    before = runs[change.previous]
    lines = ["### Since the previous run", "", f"Compared with {_run_line(before, 'run')}", ""]
    if change.new_failures:
        lines.append(f"**New failures ({len(change.new_failures)}):**")
        lines += [f"- {mark(str(r.get('status')))} {_gate_name(r)}" for r in change.new_failures]
        lines.append("")
    if change.fixed:
        lines.append(f"**Fixed ({len(change.fixed)}):**")
        lines += [f"- {mark('pass')} {_gate_name(r)}" for r in change.fixed]
        lines.append("")
    if change.moved:
        lines += [
            "**Values that moved:**",
            "",
            "| model | rule | before | after | change |",
            "|---|---|---|---|---|",
        ]
        for result, old, new in change.moved[:MAX_MOVED]:
            metric = _metric(result)
            lines.append(
                f"| {escape(result.get('model'))} | {code(result.get('rule'))} | {fmt(old, metric)} | "
                f"{fmt(new, metric)} | {new - old:+.4g} |"
            )
        if len(change.moved) > MAX_MOVED:
            lines.append(f"| \u2026 and {len(change.moved) - MAX_MOVED} more | | | | |")
        lines.append("")
    if change.added:
        lines.append(f"New gates since then: {len(change.added)}.")
    if not (change.new_failures or change.fixed or change.moved or change.added):
        lines.append("No verdict changed and no gated value moved.")
    return lines


def _family_line(run: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> str:
    """How many confidence rules the run judged and the bound on any wrong verdict among them
    (computed from the results, so older runs get it too)."""
    from qagate.gating.family import family_of

    settings = run.get("settings")
    alpha = settings.get("family_alpha") if isinstance(settings, Mapping) else None
    line = family_of(results, alpha if isinstance(alpha, float) else None).line()
    return escape(line[0].upper() + line[1:]) if line else ""


def _run_line(run: Mapping[str, Any], word: str = "Run") -> str:
    """``Run id on branch main at commit abc1234567, 2024-..., label X.``"""
    parts = [f"{word} {code(run.get('id') or '?')}"]
    if branch_of(run):
        parts.append(f"on branch {escape(branch_of(run))}")
    if commit_of(run):
        parts.append(f"at commit {code(commit_of(run)[:10])}")
    text = " ".join(parts)
    if run.get("started"):
        text += f", {escape(run['started'])}"
    if run.get("label"):
        text += f", label {escape(run['label'])}"
    return text + "."


def _metric(result: Mapping[str, Any]) -> str | None:
    return str(result.get("metric") or "") or None


def _gate_name(result: Mapping[str, Any]) -> str:
    return f"{escape(result.get('model'))} {code(result.get('rule'))} on {escape(result.get('dataset'))}"


def _row(result: Mapping[str, Any]) -> str:
    metric = _metric(result)
    interval = value_interval_text(result, label=escape(metric or "the value"))
    reason = f" ({escape(result['reason'])})" if result.get("reason") else ""
    used, available = number(result.get("questions_used")), number(result.get("questions_available"))
    if used is not None and available is not None:  # a sequential rule stopped after these
        reason += f" ({used:,.0f} of {available:,.0f} questions)"
    op = escape(result.get("op") or "")
    threshold = number(result.get("threshold"))
    return (
        f"| {mark(str(result.get('status')))} | {escape(result.get('model'))} | {code(result.get('rule'))}"
        f" | {escape(result.get('dataset'))} | {fmt(number(result.get('obtained')), metric)}{reason} | "
        f"{op + ' ' if threshold is not None else ''}{fmt(threshold, metric)} | {interval} |"
    )
