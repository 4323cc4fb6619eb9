"""How a verdict was reached: the facts a gate item keeps with the run, and their text.

:func:`facts` runs when a gate item is judged and returns a small JSON-ready dict (stored under
``"explain"`` in the run history's verdict row): the reference value and the rule's arithmetic,
the questions used, the interval's method and its settings (the betting confidence sequence:
the per-question quantity's n, mean, spread, range, seed and horizon; or the bootstrap over
timed rounds: resamples and seed), the baseline's provenance, and for an undecided verdict what
would decide it, found by running the same interval engine on larger samples like this one.

:func:`render` turns a stored verdict row (with those facts, or an older row without them)
into the lines ``qagate explain`` prints and ``pytest -v`` adds to a failed gate's report.
numpy is imported only inside the functions that need it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from qagate.gating.outcome import CaseOutcome
    from qagate.gating.rules import Rule

#: Version of the facts' layout (a reader shows what it knows of a newer one).
FACTS_VERSION = 1
#: The largest sample the search for "questions that would decide it" tries.
DECIDE_CAP = 1_000_000
#: Bins of the per-question values' histogram a verdict keeps (what ``qagate plan`` reads).
HISTOGRAM_BINS = 40
#: What the speed rules' bootstrap uses (qagate.scoring.stats and qagate.timing.paired defaults).
BOOTSTRAP_RESAMPLES = 2000
SEED = 0  # the judge's seed: the permutation of the questions, the bootstrap's resamples

CONFSEQ = "betting confidence sequence (Waudby-Smith & Ramdas 2024)"
BOOTSTRAP = "percentile bootstrap over timed rounds"  # tokens_per_second (and speed rules before 29)
#: speed-up, seconds and questions per second (qagate.timing.speed.speedup_interval)
ROUND_BLOCKS = "t over consecutive blocks of timed rounds"
ROUNDS = (BOOTSTRAP, ROUND_BLOCKS)


# --- recording: what the judge saw -----------------------------------------------------------


def facts(outcome: "CaseOutcome") -> dict[str, Any]:
    """The facts of one judged gate item (see the module docstring); never raises."""
    try:
        return _finite(_facts(outcome))
    except Exception as exc:  # an explanation must never break a gate
        return {"v": FACTS_VERSION, "error": f"{type(exc).__name__}: {exc}"[:300]}


def _finite(value: Any) -> Any:
    """JSON-safe: plain floats, NaN and infinities as None, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item"):  # a numpy number
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value if isinstance(value, int) else str(value)


def _facts(outcome: "CaseOutcome") -> dict[str, Any]:
    from qagate.scoring.registry import METRICS

    verdict = outcome.verdict
    rule = verdict.rule
    out: dict[str, Any] = {
        "v": FACTS_VERSION,
        "reference": rule.reference,
        "reference_value": verdict.reference_value,
        "coef": rule.coef,
        "offset": rule.offset,
        "confidence": rule.confidence,
        "questions": len(outcome.dataset),
    }
    if verdict.notes:
        out["notes"] = list(verdict.notes)
    info = METRICS.get(rule.metric)
    if verdict.interval is not None:
        iv = verdict.interval
        interval: dict[str, Any] = {
            "estimate": iv.estimate,
            "low": iv.low,
            "high": iv.high,
            "level": iv.level,
        }
        if info is not None and info.rounds and rule.metric != "tokens_per_second":
            from qagate.timing.speed import BLOCKS

            interval.update(method=ROUND_BLOCKS, blocks=list(BLOCKS))
        elif info is not None and info.rounds:
            interval.update(method=BOOTSTRAP, resamples=BOOTSTRAP_RESAMPLES, seed=SEED)
        else:
            sequential = getattr(verdict, "questions_used", None) is not None
            if sequential:
                interval.update(
                    method=CONFSEQ,
                    sequential={
                        "questions_used": getattr(verdict, "questions_used", None),
                        "questions_available": getattr(verdict, "questions_available", None),
                    },
                )
            else:
                interval.update(method=CONFSEQ, seed=SEED)
            values = _rule_values(outcome)  # a sequential rule: the questions it used
            if values is not None:
                interval.update(sample_facts(rule, values))
                if sequential:  # its bets were tuned to the questions it could use, not these
                    interval.pop("horizon", None)
                if verdict.status == "undecided" and getattr(verdict, "cluster", None) in (None, "none"):
                    out["decide"] = what_decides(rule, values)  # (a question-level search)
        if getattr(verdict, "cluster", None) is not None:  # the sampling unit (cluster:)
            interval.update(cluster=verdict.cluster, clusters=getattr(verdict, "clusters", None))
        out["interval"] = interval
    if outcome.baseline_path is not None:
        out["baseline"] = _baseline_facts(outcome.baseline_path, outcome.baseline_action)
    return out


def _rule_values(outcome: "CaseOutcome") -> Any:
    """The per-question quantity the judge's interval was about (None where it cannot be rebuilt
    from the outcome: a robustness rule, whose clean run the outcome does not keep)."""
    from qagate.gating.evidence import per_question
    from qagate.gating.judge import rule_values

    rule = outcome.verdict.rule
    if rule.perturb or outcome.result is None or rule.reference == "baseline":  # its scores are in the file
        return None
    ids = [example.id for example in outcome.dataset.examples]
    mine = per_question(outcome.result.scores, rule.metric, ids)
    theirs = None
    if rule.reference == "teacher":
        if outcome.teacher_result is None:
            return None
        theirs = per_question(outcome.teacher_result.scores, rule.metric, ids)
    return rule_values(rule, mine, theirs)


def sample_facts(rule: "Rule", values: Any) -> dict[str, Any]:
    """n, mean and spread of the per-question quantity, its range, and the bets' horizon."""
    import numpy as np

    from qagate.gating.judge import rule_sequence

    data = np.asarray(values, dtype=np.float64)
    sequence = rule_sequence(rule, horizon=int(data.size))
    return {
        "n": int(data.size),
        "mean": float(data.mean()),
        "sd": float(data.std(ddof=1)) if data.size > 1 else 0.0,
        "bounds": [sequence.lo, sequence.hi],
        "horizon": int(data.size),
        "paired": rule.reference is not None,
        "histogram": histogram(data, sequence.lo, sequence.hi),
    }


def histogram(values: Any, lo: float, hi: float, bins: int = HISTOGRAM_BINS) -> list[list[float]]:
    """The per-question values in ``bins`` equal bins of ``[lo, hi]``, as ``[mean, count]`` of each
    bin that holds any: what ``qagate plan`` rebuilds a pilot sample from (the mean exactly, the
    spread to within a bin). EM's values take a few exact levels, each its own bin."""
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    index = np.clip(((data - lo) / (hi - lo) * bins).astype(int), 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    sums = np.bincount(index, weights=data, minlength=bins)
    return [[float(sums[b] / counts[b]), int(counts[b])] for b in range(bins) if counts[b]]


def from_histogram(pairs: Any) -> Any:
    """The sample a :func:`histogram` stands for: each bin's mean repeated its count (None when
    the pairs are not a histogram)."""
    import numpy as np

    try:
        means = [float(mean) for mean, _ in pairs]
        counts = [int(count) for _, count in pairs]
    except (TypeError, ValueError):
        return None
    if not counts or min(counts) < 1 or not all(math.isfinite(m) for m in means):
        return None
    return np.repeat(np.asarray(means), counts)


def like_sample(values: Any, size: int) -> Any:
    """``size`` questions like ``values``: whole copies of them in the judge's seeded permutation
    (at ``size == len(values)`` exactly the judge's order), then a part of evenly spaced quantiles
    of them (their mean and spread, not a random prefix's), permuted with the same seed."""
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    n = int(data.size)
    order = np.random.default_rng(SEED).permutation(data)
    copies, extra = divmod(int(size), n)
    parts = [order] * copies
    if extra:
        spaced = np.sort(data)[((np.arange(extra) + 0.5) * n / extra).astype(int)]
        parts.append(np.random.default_rng(SEED).permutation(spaced))
    return np.concatenate(parts)


def what_decides(rule: "Rule", values: Any, *, cap: int = DECIDE_CAP) -> dict[str, Any]:
    """What would decide a confidence rule, from the interval engine itself.

    ``questions``: the fewest questions on which the rule's interval, with the bets tuned to that
    many questions, decides, when the questions look like these (:func:`like_sample`: this
    sample in the judge's seeded order, repeated, or evenly spaced quantiles of it), found by
    doubling (halving, where these questions already decide) and bisection, with
    ``undecided_at`` a size within about 3% below it where it does not yet decide; None when even
    ``cap`` questions do not (``beyond`` says so) or the estimate sits on the threshold.
    ``verdict``: what it would then say. ``level``: the highest confidence at which these
    questions already decide (None below 0.5). One look of the engine at a size costs a root
    search over that many values: about a second in all at the cap.
    """
    import numpy as np

    from qagate.gating.judge import decide_interval, rule_sequence

    data = np.asarray(values, dtype=np.float64)
    n = int(data.size)

    def status(size: int, level: float | None = None) -> str:
        use = rule if level is None else _with_level(rule, level)
        iv = rule_sequence(use, horizon=size).update(like_sample(data, size))
        return decide_interval(rule.op, iv.low - rule.offset, iv.high - rule.offset)

    out: dict[str, Any] = {"n": n, "cap": cap}
    margin = float(data.mean()) - rule.offset
    here = status(n)
    if abs(margin) < 1e-9:
        out.update(questions=None, reason="the estimate sits on the threshold")
    else:
        low: int = n
        high: int | None = None
        if here != "undecided":  # already decided: the fewest that still decide
            high, low, size = n, 0, n
            while size > 1:
                size = max(1, size // 2)
                if status(size) == "undecided":
                    low = size
                    break
                high = size
        else:
            size = n
            while size < cap:
                size = min(cap, size * 2)
                if status(size) != "undecided":
                    high = size
                    break
                low = size
        if high is None:
            out.update(questions=None, reason=f"not decided at {cap:,} questions")
        else:
            while high - low > max(1, high // 32):
                mid = (low + high) // 2
                if status(mid) != "undecided":
                    high = mid
                else:
                    low = mid
            out.update(questions=int(high), verdict=status(high), undecided_at=int(low))
    lo_level, hi_level = 0.5, float(rule.confidence or 0.95)
    if here != "undecided":
        out["level"], out["level_verdict"] = rule.confidence, here
    elif status(n, lo_level) == "undecided":
        out["level"] = None
    else:
        for _ in range(12):
            middle = (lo_level + hi_level) / 2
            if status(n, middle) != "undecided":
                lo_level = middle
            else:
                hi_level = middle
        out["level"] = math.floor(lo_level * 1000) / 1000
        out["level_verdict"] = status(n, lo_level)
    return out


def decide_line(decide: Mapping[str, Any] | None, level: float | None, used: int | None = None) -> str | None:
    """``undecided on 1,988 questions: at this margin about 7,400 would decide it at 95%``: the
    one line an undecided verdict's reports give from :func:`what_decides`' answer (None without
    one). ``used``: the questions the verdict was judged on (default: the sample's size)."""
    if not isinstance(decide, Mapping):
        return None
    n = _int(used) or _int(decide.get("n"))
    if n is None:
        return None
    at = f" at {level:.0%}" if level else ""
    questions = _int(decide.get("questions"))
    if questions is not None:
        would = str(decide.get("verdict") or "decide").upper()
        about = about_questions(questions)
        return f"undecided on {n:,} questions: at this margin about {about} would decide it{at} ({would})"
    reason = decide.get("reason") or "no sample like this one decides it"
    return f"undecided on {n:,} questions: at this margin no number of questions decides it{at} ({reason})"


def about_questions(questions: int) -> str:
    """A sample size as a reader should take it (the search is good to about 3%): 2 significant
    figures, ``7,400``."""
    if questions < 100:
        return f"{questions:,}"
    digits = len(str(questions)) - 2
    return f"{round(questions, -digits):,}"


def _with_level(rule: "Rule", level: float) -> "Rule":
    from dataclasses import replace

    return replace(rule, confidence=level)


def _baseline_facts(path: Path, action: str | None) -> dict[str, Any]:
    from qagate.store.baselines import load_baseline

    out: dict[str, Any] = {"path": _shown(path)}
    if action:
        out["action"] = action
    try:
        stored = load_baseline(path)
    except Exception:  # an unreadable baseline is the verdict's business, not the explanation's
        stored = None
    if stored is not None:
        out["provenance"] = stored.provenance
    return out


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


# --- rendering: what a reader sees ------------------------------------------------------------


def render(row: Mapping[str, Any]) -> list[str]:
    """The explanation of one stored verdict row, as lines (no trailing newline)."""
    from qagate.scoring.registry import fmt

    metric = str(row.get("metric") or "") or None
    status = str(row.get("status") or "?")
    given = row.get("explain")
    recorded: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    rule = _parsed_rule(row)
    lines = [f"gate      {row.get('nodeid')}", f"verdict   {status.upper()}"]
    where = f" on {row.get('dataset')}" if row.get("dataset") not in (None, "-") else ""
    questions = _int(recorded.get("questions"))
    if questions is not None:
        where += f" ({questions:,} questions)"
    lines.append(f"model     {row.get('model')}{where}")
    confidence = _num(recorded.get("confidence")) or _num(row.get("level"))
    lines.append(
        f"rule      {row.get('rule')}"
        + (
            f" (confidence {confidence:g}: each one-sided error at most {(1 - confidence) / 2:.1%})"
            if confidence
            else ""
        )
    )
    if row.get("reason") and status not in ("pass", "fail", "undecided", "new"):
        lines.append(f"reason    {row.get('reason')}")
    obtained, threshold = _num(row.get("obtained")), _num(row.get("threshold"))
    reference = recorded.get("reference", rule.reference if rule else None)
    coef = _num(recorded.get("coef"))
    offset = _num(recorded.get("offset"))
    if coef is None and rule is not None:
        coef, offset = rule.coef, rule.offset
    ref_value = _num(recorded.get("reference_value"))
    derived = False
    if ref_value is None and reference and threshold is not None and coef:
        ref_value, derived = (threshold - (offset or 0.0)) / coef, True
    op = str(row.get("op") or (rule.op if rule else "?"))
    values = f"{row.get('model')} {metric} {fmt(obtained, metric)}"
    if reference:
        values += f"; {reference} {fmt(ref_value, metric)}" + (" (from the threshold)" if derived else "")
    lines.append(f"values    {values}")
    if threshold is not None:
        if reference and ref_value is not None and coef is not None:
            sign = "-" if (offset or 0) < 0 else "+"
            arithmetic = f"{coef:g} x {fmt(ref_value, metric)} {sign} {abs(offset or 0):g}"
            lines.append(f"threshold {arithmetic} = {fmt(threshold, metric)}")
        else:
            lines.append(f"threshold {fmt(threshold, metric)}")
        if obtained is not None:
            lines.append(
                f"point     {fmt(obtained, metric)} {op} {fmt(threshold, metric)}: "
                f"{'holds' if _holds(op, obtained, threshold) else 'does not hold'} "
                f"(obtained - threshold = {obtained - threshold:+.4f})"
            )
    lines += _interval_lines(row, recorded, rule, op, status)
    lines += _decide_lines(recorded, op, status)
    baseline = recorded.get("baseline")
    if isinstance(baseline, Mapping):
        lines += _baseline_lines(baseline)
    elif reference == "baseline" and not recorded:
        lines.append("baseline  (its provenance was not recorded with this run)")
    notes = recorded.get("notes")
    if isinstance(notes, list) and notes:
        lines.append("notes")
        lines += [f"  - {note}" for note in notes]
    if not recorded:
        lines.append(
            "(recorded by a qagate that kept no explanation with the run: the method, the sample "
            "and the baseline's provenance are not known; run the gate again to get them)"
        )
    elif "error" in recorded:
        lines.append(f"(the explanation could not be recorded: {recorded['error']})")
    return lines


def _interval_lines(
    row: Mapping[str, Any], recorded: Mapping[str, Any], rule: "Rule | None", op: str, status: str
) -> list[str]:
    given = recorded.get("interval")
    iv: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    low = _num(iv.get("low"))
    high = _num(iv.get("high"))
    level = _num(iv.get("level")) or _num(row.get("level")) or (rule.confidence if rule else None)
    if low is None:  # an older row: the interval it kept (of the margin; older ones: of the value)
        low, high, level = (
            _num(row.get("interval_low")),
            _num(row.get("interval_high")),
            _num(row.get("level")),
        )
        if low is None or high is None:
            return (
                ["interval  none (a point comparison: the rule has no confidence level)"]
                if not row.get("level")
                else []
            )
        value, threshold = _num(row.get("obtained")), _num(row.get("threshold"))
        if value is not None and threshold is not None:
            middle = (low + high) / 2
            if abs(middle - value) < abs(middle - (value - threshold)):  # the value's own interval
                low, high = low - threshold, high - threshold
        return [
            f"interval  {level or 0:.0%} interval [{low:+.4f}, {high:+.4f}] of (left - right) "
            f"(method not recorded with this run)",
            f"decision  {_decision(op, low, high)}",
        ]
    if high is None:
        return []
    method = str(iv.get("method") or "?")
    what = _quantity(row, recorded, rule)
    lines = [
        f"interval  {level or 0:.0%} interval of {what}: [{low:+.4f}, {high:+.4f}] "
        f"(estimate {_num(iv.get('estimate')) or 0:+.4f})",
        f"method    {method}",
    ]
    if iv.get("cluster"):  # which questions the level is about (cluster:)
        from qagate.gating.clusters import describe

        lines.append(f"sampling  {describe(str(iv['cluster']), _int(iv.get('clusters')))}")
    sequential = iv.get("sequential")
    if method == CONFSEQ and isinstance(sequential, Mapping):
        used, available = _int(sequential.get("questions_used")), _int(sequential.get("questions_available"))
        counts = f"; used {used:,} of {available:,} questions" if used and available else ""
        lines.append(
            "          sequential: looked after every chunk of questions and stopped at the first look "
            f"that decided{counts}"
        )
        lines.append("          valid at every look (anytime-valid; no normal approximation)")
        lines += _look_lines(row.get("looks"))
    elif method == CONFSEQ:
        n = _int(iv.get("n"))
        if n is not None:
            bounds = iv.get("bounds") or [None, None]
            lines.append(
                f"          one look at {n:,} questions, bets tuned to {(_int(iv.get('horizon')) or n):,}, "
                f"questions in the permutation of seed {iv.get('seed')}; per question the quantity lies in "
                f"[{_g(bounds[0])}, {_g(bounds[1])}], mean {_num(iv.get('mean')) or 0:+.4f}, "
                f"sd {_num(iv.get('sd')) or 0:.4f}"
            )
        else:
            lines.append(f"          questions in the permutation of seed {iv.get('seed')}")
        lines.append("          valid at every number of questions (anytime-valid; no normal approximation)")
    elif method == BOOTSTRAP:
        lines.append(f"          {iv.get('resamples')} resamples of the timed rounds, seed {iv.get('seed')}")
    elif method == ROUND_BLOCKS:
        blocks = "/".join(str(b) for b in iv.get("blocks") or ()) or "3/4/5"
        lines.append(
            f"          the widest Student-t interval over {blocks} consecutive blocks of the timed "
            f"rounds (run in ABBA order), on the log scale for a speed-up: drift does not narrow it"
        )
    lines.append(f"decision  {_decision(op, low, high)}")
    return lines


def _look_lines(looks: Any) -> list[str]:
    """One line per look of a sequential rule (questions seen, estimate, interval); the first
    five and the last five when there were more."""
    if not isinstance(looks, list):
        return []
    rows = [look for look in looks if isinstance(look, list) and len(look) >= 4]
    shown = rows if len(rows) <= 10 else [*rows[:5], None, *rows[-5:]]
    lines = []
    for look in shown:
        if look is None:
            lines.append(f"            ... {len(rows) - 10} more looks ...")
            continue
        n, estimate, low, high = (_num(v) for v in look[:4])
        if n is None or estimate is None or low is None or high is None:
            continue
        lines.append(
            f"          look at {int(n):,} questions: estimate {estimate:+.4f}, [{low:+.4f}, {high:+.4f}]"
        )
    return lines


def _quantity(row: Mapping[str, Any], recorded: Mapping[str, Any], rule: "Rule | None") -> str:
    """What the interval bounds, in words: ``mean(student - 0.9 x teacher) - 0 per question``."""
    metric = row.get("metric")
    reference = recorded.get("reference", rule.reference if rule else None)
    coef = _num(recorded.get("coef")) or (rule.coef if rule else 1.0)
    offset = _num(recorded.get("offset"))
    offset = offset if offset is not None else (rule.offset if rule else 0.0)
    tail = f" {'-' if offset >= 0 else '+'} {abs(offset):g}" if offset or not reference else ""
    if reference in ("teacher", "clean", "baseline"):
        scale = "" if coef == 1 else f"{coef:g} x "
        body = f"mean({metric} - {scale}{reference}'s {metric}) over the questions"
    elif _mapping(recorded.get("interval")).get("method") in ROUNDS:
        body = str(metric)
    else:
        body = f"mean {metric}"
    return body + tail


def _decision(op: str, low: float, high: float) -> str:
    from qagate.gating.judge import decide_interval

    if op not in (">=", ">", "<=", "<"):
        return "?"
    verdict = decide_interval(op, low, high)
    passing, failing = {
        ">=": ("low >= 0", "high < 0"),
        ">": ("low > 0", "high <= 0"),
        "<=": ("high <= 0", "low > 0"),
        "<": ("high < 0", "low >= 0"),
    }[op]
    where = {"pass": "all on the passing side", "fail": "all on the failing side"}.get(
        verdict, "it straddles 0"
    )
    return f"'{op}' passes when {passing}, fails when {failing}; {where}: {verdict.upper()}"


def _decide_lines(recorded: Mapping[str, Any], op: str, status: str) -> list[str]:
    decide = recorded.get("decide")
    if not isinstance(decide, Mapping):
        if status != "undecided":
            return []
        if _mapping(recorded.get("interval")).get("method") in ROUNDS:
            return [
                "to decide more timed rounds narrow the interval: a larger --qagate-speed-budget "
                "(seconds a measurement may take) or --qagate-timing-questions"
            ]
        return ["to decide more questions (a larger dataset or --qagate-limit) or a lower confidence level"]
    iv = _mapping(recorded.get("interval"))
    n = _int(decide.get("n")) or 0
    spread = f"mean {_num(iv.get('mean')) or 0:+.4f}, sd {_num(iv.get('sd')) or 0:.4f}"
    questions = _int(decide.get("questions"))
    if questions is not None:
        first = (
            f"to decide about {questions:,} questions like these ({spread}) would "
            f"{str(decide.get('verdict') or 'decide it').upper()} (you have {n:,}; the same engine, "
            f"on this sample repeated to that size)"
        )
    else:
        first = f"to decide no sample like this one decides it ({decide.get('reason')}; you have {n:,})"
    lines = [first]
    level = _num(decide.get("level"))
    if level is not None:
        lines.append(
            f"          or a lower confidence: these {n:,} questions give "
            f"{str(decide.get('level_verdict')).upper()} at confidence {level:g}"
        )
    else:
        lines.append(f"          even at confidence 0.5 these {n:,} questions do not decide it")
    return lines


def _baseline_lines(baseline: Mapping[str, Any]) -> list[str]:
    lines = [
        f"baseline  {baseline.get('path')}"
        + (f" ({baseline['action']} by this run)" if baseline.get("action") else "")
    ]
    prov = baseline.get("provenance")
    if not isinstance(prov, Mapping):
        lines.append("          (no provenance recorded in the file)")
        return lines
    dataset, model, versions = (_mapping(prov.get(key)) for key in ("dataset", "model", "versions"))
    lines.append(f"          written {prov.get('created_utc', '?')}")
    lines.append(
        f"          dataset {dataset.get('name')} ({dataset.get('questions')} questions, "
        f"fingerprint {str(dataset.get('fingerprint'))[:12]})"
    )
    engine = ", ".join(f"{k} {v}" for k, v in sorted(model.items()) if k not in ("name", "fingerprint"))
    lines.append(
        f"          model {model.get('name')} (fingerprint {str(model.get('fingerprint'))[:12]}"
        + (f"; {engine}" if engine else "")
        + ")"
    )
    if versions:
        lines.append("          versions " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()) if v))
    return lines


def _parsed_rule(row: Mapping[str, Any]) -> "Rule | None":
    """The rule of a stored row, parsed again (for older rows, which kept only its text)."""
    import re

    from qagate.core.errors import QagateError
    from qagate.gating.rules import parse_rule

    text = re.sub(r"@[0-9.]+%$", "", str(row.get("rule") or ""))
    try:
        return parse_rule(text)
    except (QagateError, ValueError, KeyError):
        return None


def _holds(op: str, left: float, right: float) -> bool:
    from qagate.gating.rules import OPERATORS

    return op in OPERATORS and OPERATORS[op](round(left, 6), round(right, 6))


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _g(value: Any) -> str:
    number = _num(value)
    return "?" if number is None else f"{number:g}"


__all__: Sequence[str] = (
    "facts",
    "render",
    "what_decides",
    "sample_facts",
    "decide_line",
    "histogram",
    "from_histogram",
    "like_sample",
)
