"""Rules: parse ``"exact_match >= 0.95 * teacher"`` and friends into a typed :class:`Rule`."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from qagate.core.argtypes import did_you_mean as _did_you_mean
from qagate.core.errors import QagateError, quote
from qagate.data.slices import BUILT_IN as SLICE_LABELS
from qagate.data.slices import KEY_RE as _SLICE_KEY_RE
from qagate.data.slices import MIN_SLICE
from qagate.data.slices import VALUE_RE as _SLICE_VALUE_RE
from qagate.scoring.registry import METRICS

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}

REFERENCES = ("teacher", "baseline")
# Operators people write by mistake -> what they meant (None: no rule operator means that).
OPERATOR_MISTAKES: dict[str, str | None] = {
    "=>": ">=",
    "=<": "<=",
    "==": None,
    "=": None,
    "!=": None,
    "<>": None,
}
# Other names for metrics (lower case), which difflib would not find: "em" is not like "exact_match".
METRIC_ALIASES = {
    "em": "exact_match",
    "exact": "exact_match",
    "exactmatch": "exact_match",
    "exact_match_score": "exact_match",
    "accuracy": "exact_match",
    "f1_score": "f1",
    "f1score": "f1",
    "f": "f1",
    "bertscore": "bertscore_f1",
    "bert_score": "bertscore_f1",
    "bertscore_f": "bertscore_f1",
    "latency": "seconds_per_question",
    "seconds": "seconds_per_question",
    "spq": "seconds_per_question",
    "time_per_question": "seconds_per_question",
    "throughput": "questions_per_second",
    "qps": "questions_per_second",
    "speed_up": "speedup",
    "speed": "speedup",
    "params": "parameter_count",
    "parameters": "parameter_count",
    "num_parameters": "parameter_count",
    "n_params": "parameter_count",
    "size": "size_on_disk_mb",
    "size_mb": "size_on_disk_mb",
    "model_size": "size_on_disk_mb",
    "disk_size": "size_on_disk_mb",
}

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_RULE_RE = re.compile(r"(?P<metric>[A-Za-z_][A-Za-z0-9_]*)(?P<op>>=|<=|>|<|==|=|!=)(?P<rhs>.*)")
# The metric and operator exactly as written (hyphens and spacing kept), for error messages.
_HEAD_RE = re.compile(r"\s*(?P<metric>[A-Za-z_][A-Za-z0-9_-]*)\s*(?P<op>[<>=!]+)")
_ABSOLUTE_RE = re.compile(rf"(?P<num>-?{_NUM})")
_RELATIVE_RE = re.compile(
    rf"(?:(?P<coef>{_NUM})\*)?(?P<ref>[A-Za-z_]+)(?:\*(?P<coef2>{_NUM}))?"
    rf"(?:(?P<sign>[+-])(?P<off>{_NUM}))?"
)

#: Longer than any rule people write; a longer "rule" is a paste gone wrong.
MAX_RULE_LENGTH = 200

RULE_FORMS = (
    "'f1 >= 80'",
    "'exact_match >= 0.95 * teacher'",
    "'f1 >= teacher - 2'",
    "'f1 >= baseline - 0.5'",
    "'speedup >= 4'",
)


# --- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One requirement: ``metric op coef * reference + offset`` (reference None: absolute)."""

    metric: str
    op: str
    reference: str | None  # "teacher" | "baseline" | None
    coef: float = 1.0
    offset: float = 0.0
    confidence: float | None = None
    text: str = ""  # canonical, no spaces: reads like the rule in the test id
    line: int | None = None
    perturb: tuple[str, ...] = ()  # robustness rule (``f1@addsent``): measured on this perturbed copy
    drop: bool = False  # ``drop(f1@addsent)``: clean value minus perturbed value
    slice: tuple[str, str] | None = None  # ``f1[question=how_many]``: judged on that slice's questions
    min_slice: int | None = None  # a smaller slice is undecided (None: the file's, else MIN_SLICE)
    cluster: str | None = None  # the interval's sampling unit: article | paragraph | none (None: none)

    @property
    def slice_name(self) -> str | None:
        """``"question=how_many"`` for a slice rule, else None."""
        return None if self.slice is None else f"{self.slice[0]}={self.slice[1]}"

    @property
    def least_slice(self) -> int:
        """The fewest questions a slice rule is judged on (below: undecided)."""
        return MIN_SLICE if self.min_slice is None else self.min_slice

    @property
    def stored_key(self) -> str:
        """Where a baseline keeps this rule's value: ``f1``, or ``f1[question=how_many]``."""
        return self.metric if self.slice is None else f"{self.metric}[{self.slice_name}]"

    @property
    def id(self) -> str:
        if self.confidence is None:
            return self.text
        return f"{self.text}@{_format_number(self.confidence * 100)}%"

    def threshold(self, reference_value: float | None) -> float:
        if self.reference is None:
            return self.offset
        if reference_value is None:
            raise ValueError(f"rule {self.text} needs the {self.reference}'s value")
        return self.coef * reference_value + self.offset


def parse_rule(
    text: str, *, confidence: float | None = None, line: int | None = None, where: str = ""
) -> Rule:
    """Parse ``"exact_match >= 0.95 * teacher"`` and friends; QagateError names what is wrong."""
    if len(str(text)) > MAX_RULE_LENGTH:
        raise QagateError(
            f"rule {quote(text)} is {len(str(text))} characters long (at most {MAX_RULE_LENGTH}); "
            f"a rule reads like {RULE_FORMS[1]}",
            path=where or None,
        )
    if "[" in str(text) or "]" in str(text):
        return _finite(_slice_rule(str(text), confidence, line, where), text, where)
    return _finite(_parse_rule(text, confidence, line, where), text, where)


def _finite(rule: Rule, text: str, where: str) -> Rule:
    """A rule whose numbers overflow (``f1 >= 1e999``) would be judged against infinity: refused."""
    for value in (rule.coef, rule.offset):
        if not math.isfinite(value):
            raise QagateError(
                f"rule {quote(text)}: a number in it is too large to be a threshold ({value}); "
                "write an ordinary number",
                path=where or None,
            )
    return rule


def _parse_rule(text: str, confidence: float | None, line: int | None, where: str) -> Rule:
    _check_head(str(text), where)
    compact = re.sub(r"\s+", "", str(text))
    if "@" in compact:
        return _robustness_rule(str(text), compact, confidence, line, where)
    match = _RULE_RE.fullmatch(compact)
    if not match:
        raise QagateError(
            f"malformed rule {quote(text)}: expected '<metric> <op> <value>' such as {', '.join(RULE_FORMS)}",
            path=where or None,
        )
    metric, op, rhs = match["metric"], match["op"], match["rhs"]
    if metric not in METRICS:
        raise QagateError(
            f"unknown metric {quote(metric)} in rule {quote(text)}{_suggest_metric(metric)};"
            f" valid metrics: {', '.join(METRICS)}",
            path=where or None,
        )
    if op not in OPERATORS:
        raise QagateError(
            f"unsupported operator {quote(op)} in rule {quote(text)}; use one of "
            f"{', '.join(OPERATORS)} (equality is not meaningful for measured "
            f"numbers)",
            path=where or None,
        )
    if metric in ROBUSTNESS_METRICS and metric not in ("exact_match", "f1"):
        raise QagateError(
            f"rule {quote(text)}: {metric} compares answers on a perturbed copy with the clean ones; "
            f"name the perturbation, e.g. '{metric}@question_noise {op} {rhs}'",
            path=where or None,
        )
    info = METRICS[metric]
    absolute = _ABSOLUTE_RE.fullmatch(rhs)
    if absolute:
        rule = Rule(metric, op, None, 1.0, float(absolute["num"]), confidence, compact, line)
    else:
        relative = _RELATIVE_RE.fullmatch(rhs)
        if not relative:
            raise QagateError(
                f"malformed right-hand side {quote(rhs)} in rule {quote(text)}: expected a "
                f"number, '<coef> * teacher|baseline', or 'teacher|baseline +/- "
                f"<number>' (forms: {', '.join(RULE_FORMS)})",
                path=where or None,
            )
        ref = relative["ref"]
        if ref not in REFERENCES:
            raise QagateError(
                f"unknown reference {quote(ref)} in rule {quote(text)}"
                f"{_did_you_mean(ref, REFERENCES)}; valid references: "
                f"{', '.join(REFERENCES)} (or a plain number)",
                path=where or None,
            )
        if relative["coef"] and relative["coef2"]:
            raise QagateError(
                f"rule {quote(text)} has two coefficients; write one, e.g. '0.95 * {ref}'", path=where or None
            )
        coef = float(relative["coef"] or relative["coef2"] or 1.0)
        offset = float(relative["off"] or 0.0) * (-1.0 if relative["sign"] == "-" else 1.0)
        rule = Rule(metric, op, ref, coef, offset, confidence, compact, line)
    if metric == "speedup" and rule.reference is not None:
        raise QagateError(
            f"rule {quote(text)}: speedup is already relative to the teacher measured "
            f"in this session; compare it with a number, e.g. 'speedup >= 4'",
            path=where or None,
        )
    if rule.reference == "baseline" and not info.baseline and not info.timing:
        raise QagateError(
            f"rule {quote(text)}: {metric} is not stored in baselines; "
            f"baseline metrics: {', '.join(m for m in METRICS if METRICS[m].baseline)}",
            path=where or None,
        )
    if confidence is not None:
        if not info.bootstrappable:
            raise QagateError(
                f"rule {quote(text)}: confidence needs per-question scores or timed rounds; it works "
                f"for {', '.join(m for m in METRICS if METRICS[m].bootstrappable)}",
                path=where or None,
            )
        if rule.reference == "baseline" and not info.per_question:
            raise QagateError(
                f"rule {quote(text)}: confidence against a baseline pairs per-question scores "
                f"({', '.join(m for m in METRICS if METRICS[m].per_question and METRICS[m].baseline)}); "
                f"a compared pytest-benchmark run keeps no per-question values",
                path=where or None,
            )
    return _percent_threshold(rule, text, where)


def _percent_threshold(rule: Rule, text: str, where: str) -> Rule:
    """``f1 >= 0.9`` on a 0-100 metric passes a model with F1 12: a threshold between 0 and 1
    on a percent metric is refused, with the rule that was probably meant (``f1 >= 90``)."""
    info = METRICS.get(rule.metric)
    if rule.reference is not None or rule.drop or info is None or info.unit != "%":
        return rule
    if 0.0 < rule.offset < 1.0:
        left = rule.metric + (f"@{'+'.join(rule.perturb)}" if rule.perturb else "")
        meant = f"{left} {rule.op} {_format_number(rule.offset * 100)}"
        raise QagateError(
            f"rule {quote(text)}: {rule.metric} is in percent (0-100), so {_format_number(rule.offset)} "
            f"would {'pass' if rule.op in ('>=', '>') else 'fail'} almost any model; did you mean '{meant}'?",
            path=where or None,
        )
    return rule


# --- slice rules: metric[key=value] ------------------------------------------------------------

SLICE_METRICS = ("exact_match", "f1")
SLICE_FORMS = ("'f1[question=how_many] >= 0.9 * teacher'", "'exact_match[answer=date] >= baseline - 2'")
_SLICE_RE = re.compile(r"\s*(?P<metric>[A-Za-z_][A-Za-z0-9_-]*)\s*\[(?P<body>[^\[\]]*)\]")


def _slice_rule(text: str, confidence: float | None, line: int | None, where: str) -> Rule:
    """``f1[question=how_many] >= 0.9 * teacher``: a rule on the questions of one slice
    (:mod:`qagate.data.slices`); ``key=*`` is expanded to one rule per slice when collected."""

    def error(message: str) -> QagateError:
        return QagateError(f"rule {quote(text)}: {message}", path=where or None)

    match = _SLICE_RE.match(text)
    if not match or "[" in text[match.end() :] or "]" in text[match.end() :]:
        raise error(f"a slice is written in brackets right after the metric, e.g. {SLICE_FORMS[0]}")
    metric = match["metric"]
    if metric not in SLICE_METRICS:
        hint = _suggest_metric(metric) if metric not in METRICS else ""
        raise error(
            f"slices apply to {', '.join(SLICE_METRICS)} (per-question scores), not {quote(metric)}{hint}"
        )
    key, sep, value = (part.strip() for part in match["body"].partition("="))
    if not sep or not key or not value:
        raise error(
            f"a slice reads key=value, e.g. question=how_many; built-in keys: {', '.join(SLICE_LABELS)}"
        )
    if not _SLICE_KEY_RE.fullmatch(key):
        raise error(f"slice key {quote(key)} is not a name (letters, digits, _)")
    if value != "*" and not _SLICE_VALUE_RE.fullmatch(value):
        raise error(f"slice value {quote(value)} is not a word (letters, digits, _ . -) or *")
    if key in SLICE_LABELS and value != "*" and value not in SLICE_LABELS[key]:
        known = SLICE_LABELS[key]
        raise error(
            f"unknown {key} slice {quote(value)}{_did_you_mean(value, known)}; "
            f"{key} slices: {', '.join(known)}"
        )
    rest = metric + text[match.end() :]
    if "@" in rest:
        raise error("a slice rule cannot also be a robustness rule (metric@perturbation)")
    rule = _parse_rule(rest, confidence, line, where)
    head = f"{metric}[{key}={value}]"
    return replace(rule, slice=(key, value), text=head + rule.text[len(metric) :])


# --- robustness rules: metric@perturbation ------------------------------------------------------

ROBUSTNESS_METRICS = ("exact_match", "f1", "invariance")
ROBUSTNESS_FORMS = (
    "'f1@addsent >= 0.8 * clean'",
    "'drop(f1@addsent) <= teacher + 5'",
    "'invariance@question_noise >= 0.9'",
)
_ROBUST_RE = re.compile(
    r"(?P<drop>drop\()?(?P<metric>[A-Za-z_][A-Za-z0-9_]*)@(?P<kinds>[A-Za-z_][A-Za-z0-9_,+]*)"
    r"(?(drop)\))(?P<op>>=|<=|>|<|==|=|!=)(?P<rhs>.*)"
)


def _robustness_rule(text: str, compact: str, confidence: float | None, line: int | None, where: str) -> Rule:
    """``f1@addsent >= 0.8 * clean``, ``drop(f1@addsent) <= teacher + 5``,
    ``invariance@question_noise >= 0.9``: a metric on a perturbed copy of the gate's data."""
    from qagate.data.perturb import check_kinds

    match = _ROBUST_RE.fullmatch(compact)

    def error(message: str) -> QagateError:
        return QagateError(f"rule {quote(text)}: {message}", path=where or None)

    if not match:
        raise error(f"malformed robustness rule; forms: {', '.join(ROBUSTNESS_FORMS)}")
    metric, op, rhs, drop = match["metric"], match["op"], match["rhs"], bool(match["drop"])
    if metric not in ROBUSTNESS_METRICS:
        raise error(
            f"unknown robustness metric {quote(metric)}{_did_you_mean(metric, ROBUSTNESS_METRICS)}; "
            f"use one of {', '.join(ROBUSTNESS_METRICS)}"
        )
    if op not in OPERATORS:
        raise error(f"unsupported operator {quote(op)}; use one of {', '.join(OPERATORS)}")
    kinds = check_kinds(re.split(r"[+,]", match["kinds"]), where=f"rule {quote(text)}")
    if drop and metric == "invariance":
        raise error(
            "invariance is already a comparison with the clean answers; drop() is for f1 and exact_match"
        )
    absolute = _ABSOLUTE_RE.fullmatch(rhs)
    if absolute:
        rule = Rule(metric, op, None, 1.0, float(absolute["num"]), confidence, compact, line, kinds, drop)
        return _percent_threshold(rule, text, where)
    relative = _RELATIVE_RE.fullmatch(rhs)
    references = ("teacher",) if drop or metric == "invariance" else ("clean", "teacher")
    if not relative or relative["ref"] not in references:
        found = relative["ref"] if relative else rhs
        raise error(
            f"compare with a number or {' or '.join(references)} (not {quote(found)}); "
            f"forms: {', '.join(ROBUSTNESS_FORMS)}"
        )
    if relative["coef"] and relative["coef2"]:
        raise error(f"two coefficients; write one, e.g. '0.8 * {relative['ref']}'")
    coef = float(relative["coef"] or relative["coef2"] or 1.0)
    offset = float(relative["off"] or 0.0) * (-1.0 if relative["sign"] == "-" else 1.0)
    return Rule(metric, op, relative["ref"], coef, offset, confidence, compact, line, kinds, drop)


def _suggest_metric(name: str) -> str:
    """`` (did you mean 'exact_match'?)`` for a metric typo, case slip or another name for it."""
    aliases = {alias: target for alias, target in METRIC_ALIASES.items() if target in METRICS}
    return _did_you_mean(name, METRICS, aliases)


def _check_head(text: str, where: str) -> None:
    """Errors that the compacted rule would misreport: a hyphenated metric name (the regex would
    split it at the hyphen) and a mistyped operator such as ``=>`` (quoted as written)."""
    head = _HEAD_RE.match(text)
    if not head:
        return
    metric, op = head["metric"], head["op"]
    if "-" in metric:
        fixed = metric.replace("-", "_")
        hint = f" (did you mean {fixed!r}?)" if fixed in METRICS else _suggest_metric(fixed)
        raise QagateError(
            f"metric {quote(metric)} in rule {quote(text)} has a hyphen; metric names use "
            f"underscores{hint}; valid metrics: {', '.join(METRICS)}",
            path=where or None,
        )
    if metric not in METRICS or op in OPERATORS or op not in OPERATOR_MISTAKES:
        return  # an unknown metric is reported first; garbage such as '>>=' is "malformed"
    meant = OPERATOR_MISTAKES[op]
    why = f" (did you mean {meant!r}?)" if meant else ""
    note = "" if meant else " (equality is not meaningful for measured numbers)"
    raise QagateError(
        f"unsupported operator {quote(op)} in rule {quote(text)}{why}; "
        f"use one of {', '.join(OPERATORS)}{note}",
        path=where or None,
    )


def _format_number(value: float) -> str:
    return f"{value:.6g}"
