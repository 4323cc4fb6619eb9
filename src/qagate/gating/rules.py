"""Rules: parse ``"exact_match >= 0.95 * teacher"`` and friends into a typed :class:`Rule`."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Callable

from qagate.argtypes import did_you_mean as _did_you_mean
from qagate.errors import QagateError
from qagate.scoring.registry import METRICS

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
}

REFERENCES = ("teacher", "baseline")

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_RULE_RE = re.compile(r"(?P<metric>[A-Za-z_][A-Za-z0-9_]*)(?P<op>>=|<=|>|<|==|=|!=)(?P<rhs>.*)")
_ABSOLUTE_RE = re.compile(rf"(?P<num>-?{_NUM})")
_RELATIVE_RE = re.compile(
    rf"(?:(?P<coef>{_NUM})\*)?(?P<ref>[A-Za-z_]+)(?:\*(?P<coef2>{_NUM}))?"
    rf"(?:(?P<sign>[+-])(?P<off>{_NUM}))?")

RULE_FORMS = ("'f1 >= 80'", "'exact_match >= 0.95 * teacher'", "'f1 >= teacher - 2'",
              "'f1 >= baseline - 0.5'", "'speedup >= 4'")


# --- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One requirement: ``metric op coef * reference + offset`` (reference None: absolute)."""

    metric: str
    op: str
    reference: str | None      # "teacher" | "baseline" | None
    coef: float = 1.0
    offset: float = 0.0
    confidence: float | None = None
    text: str = ""              # canonical, no spaces: reads like the rule in the test id
    line: int | None = None

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


def parse_rule(text: str, *, confidence: float | None = None, line: int | None = None,
               where: str = "") -> Rule:
    """Parse ``"exact_match >= 0.95 * teacher"`` and friends; QagateError names what is wrong."""
    compact = re.sub(r"\s+", "", str(text))
    match = _RULE_RE.fullmatch(compact)
    if not match:
        raise QagateError(f"malformed rule {text!r}: expected '<metric> <op> <value>' such as "
                          f"{', '.join(RULE_FORMS)}", path=where or None)
    metric, op, rhs = match["metric"], match["op"], match["rhs"]
    if metric not in METRICS:
        raise QagateError(f"unknown metric {metric!r} in rule {text!r}{_did_you_mean(metric, METRICS)};"
                          f" valid metrics: {', '.join(METRICS)}", path=where or None)
    if op not in OPERATORS:
        raise QagateError(f"unsupported operator {op!r} in rule {text!r}; use one of "
                          f"{', '.join(OPERATORS)} (equality is not meaningful for measured "
                          f"numbers)", path=where or None)
    info = METRICS[metric]
    absolute = _ABSOLUTE_RE.fullmatch(rhs)
    if absolute:
        rule = Rule(metric, op, None, 1.0, float(absolute["num"]), confidence, compact, line)
    else:
        relative = _RELATIVE_RE.fullmatch(rhs)
        if not relative:
            raise QagateError(f"malformed right-hand side {rhs!r} in rule {text!r}: expected a "
                              f"number, '<coef> * teacher|baseline', or 'teacher|baseline +/- "
                              f"<number>' (forms: {', '.join(RULE_FORMS)})", path=where or None)
        ref = relative["ref"]
        if ref not in REFERENCES:
            raise QagateError(f"unknown reference {ref!r} in rule {text!r}"
                              f"{_did_you_mean(ref, REFERENCES)}; valid references: "
                              f"{', '.join(REFERENCES)} (or a plain number)", path=where or None)
        if relative["coef"] and relative["coef2"]:
            raise QagateError(f"rule {text!r} has two coefficients; write one, e.g. "
                              f"'0.95 * {ref}'", path=where or None)
        coef = float(relative["coef"] or relative["coef2"] or 1.0)
        offset = float(relative["off"] or 0.0) * (-1.0 if relative["sign"] == "-" else 1.0)
        rule = Rule(metric, op, ref, coef, offset, confidence, compact, line)
    if metric == "speedup" and rule.reference is not None:
        raise QagateError(f"rule {text!r}: speedup is already relative to the teacher measured "
                          f"in this session; compare it with a number, e.g. 'speedup >= 4'",
                          path=where or None)
    if rule.reference == "baseline" and not info.baseline:
        raise QagateError(f"rule {text!r}: {metric} is a timing and timings are not stored as "
                          f"baselines (they do not carry across machines); gate speed with "
                          f"'speedup >= N' or '{metric} ... teacher' measured in the same run; "
                          f"baseline metrics: {', '.join(m for m in METRICS if METRICS[m].baseline)}",
                          path=where or None)
    if confidence is not None:
        if not info.per_question:
            raise QagateError(f"rule {text!r}: confidence needs per-question scores; it works "
                              f"for {', '.join(m for m in METRICS if METRICS[m].per_question)}",
                              path=where or None)
        if rule.reference == "baseline":
            raise QagateError(f"rule {text!r}: confidence works against the teacher or a "
                              f"number; a stored baseline keeps no per-question scores",
                              path=where or None)
    return rule



def _format_number(value: float) -> str:
    return f"{value:.6g}"
