"""Gate files and rules: parse the YAML into typed rules, and decide a rule from observed numbers.

A gate file (``gate_*.yaml``) says which requirements each model must meet::

    description: release gate for the MiniLM students
    dataset: sample                  # optional; else the session's --qagate-dataset
    models: ../qa_models             # optional folder of model declarations; else --qagate-models
    requires: [../../shared/data]    # optional; the whole file is skipped when one is missing
    rules:
      - apply_to: students           # students | teacher | all | a name | [names]
        require:
          - exact_match >= 0.95 * teacher
          - f1 >= baseline - 0.5
          - speedup >= 4
          - rule: f1 >= 0.9 * teacher
            confidence: 0.95

Deciding a rule (:func:`check`) is pure: it takes numbers (and per-question scores for
confidence rules) and returns a :class:`Verdict`; loading models and measuring them is the
session's job. Standard library and PyYAML only (imported at collection time).
"""

from __future__ import annotations

import math
import operator
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from qagate.errors import QagateError
from qagate.stats import Interval  # numpy-free at import time

# --- metrics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricInfo:
    name: str
    unit: str
    baseline: bool        # may be stored as a baseline (quality and size, never timings)
    per_question: bool    # has per-question scores, so a rule on it may ask for confidence
    timing: bool          # measured fresh in this session (never from the prediction cache)


METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    MetricInfo("exact_match", "%", baseline=True, per_question=True, timing=False),
    MetricInfo("f1", "%", baseline=True, per_question=True, timing=False),
    MetricInfo("bertscore_f1", "", baseline=True, per_question=False, timing=False),
    MetricInfo("parameter_count", "", baseline=True, per_question=False, timing=False),
    MetricInfo("size_on_disk_mb", "MB", baseline=True, per_question=False, timing=False),
    MetricInfo("seconds_per_question", "s", baseline=False, per_question=False, timing=True),
    MetricInfo("questions_per_second", "q/s", baseline=False, per_question=False, timing=True),
    MetricInfo("speedup", "x", baseline=False, per_question=False, timing=True),
)}

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
}

REFERENCES = ("teacher", "baseline")
APPLY_TO_GROUPS = ("students", "teacher", "all")
GATE_KEYS = ("description", "dataset", "models", "requires", "rules")
DATASET_KEYS = ("source", "limit", "seed", "articles", "perturb", "perturb_seed")
BLOCK_KEYS = ("apply_to", "require", "confidence")
RULE_KEYS = ("rule", "confidence")

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


# --- gate files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetRequest:
    """Which dataset a gate file runs on (None fields: the session's settings)."""

    spec: str
    limit: int | None = None
    seed: int | None = None
    articles: tuple[int, int] | None = None
    perturb: tuple[str, ...] = ()          # qagate.perturb kinds; () = the data as it is
    perturb_seed: int = 0

    def key(self) -> tuple:
        return (self.spec, self.limit, self.seed, self.articles, self.perturb, self.perturb_seed)


@dataclass(frozen=True)
class GateCase:
    """One collected test: a rule applied to one model."""

    model: str
    rule: Rule


@dataclass(frozen=True)
class GateFile:
    path: Path
    description: str
    dataset: DatasetRequest | None
    models: Path | None
    requires: tuple[Path, ...]
    blocks: tuple["RuleBlock", ...]

    def missing_requirements(self) -> list[Path]:
        return [p for p in self.requires if not p.exists()]


@dataclass(frozen=True)
class RuleBlock:
    apply_to: tuple[str, ...] | str        # a group name or explicit model names
    apply_line: int | None
    rules: tuple[Rule, ...]


def load_gate_file(path: Path, *, default_level: float = 0.95) -> GateFile:
    """Read and validate a gate file; every error names the file and line and the valid choices."""
    import yaml  # PyYAML: light, but only needed when a gate file is collected

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QagateError(f"cannot read gate file: {exc}", path=path) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise QagateError(f"invalid YAML: {problem}", path=where) from None
    reader = _Reader(path)
    if root is None:
        raise QagateError("empty gate file; it needs at least 'rules:'", path=f"{path}:1")
    top = reader.mapping(root, "gate file", GATE_KEYS)
    if "rules" not in top:
        raise QagateError(f"no 'rules:' key (keys: {', '.join(GATE_KEYS)})", path=reader.at(root))
    description = reader.string(top["description"], "description") if "description" in top else ""
    dataset = reader.dataset(top["dataset"]) if "dataset" in top else None
    models = reader.path(top["models"], "models") if "models" in top else None
    requires: tuple[Path, ...] = ()
    if "requires" in top:
        node = top["requires"]
        items = node.value if _is_sequence(node) else [node]
        requires = tuple(reader.path(item, "requires") for item in items)
    rules_node = top["rules"]
    if not _is_sequence(rules_node) or not rules_node.value:
        raise QagateError("'rules' must be a non-empty list of blocks with 'apply_to' and "
                          "'require'", path=reader.at(rules_node))
    blocks = tuple(reader.block(node, default_level) for node in rules_node.value)
    return GateFile(path, description, dataset, models, requires, blocks)


def resolve_cases(gate: GateFile, roles: Mapping[str, str], *, models_source: str) -> list[GateCase]:
    """Expand every block to (model, rule) cases, checking model names against the declarations.

    ``roles`` maps model name -> role ("teacher" | "student" | "model"), in declaration order.
    Rules relative to the teacher (and speedup) skip the teacher itself when it is reached
    through a group, and are an error when the teacher is named explicitly.
    """
    teachers = [name for name, role in roles.items() if role == "teacher"]
    cases: list[GateCase] = []
    seen: dict[tuple[str, str], int | None] = {}
    for block in gate.blocks:
        where = f"{gate.path}:{block.apply_line}" if block.apply_line else str(gate.path)
        if isinstance(block.apply_to, str):
            group = block.apply_to
            if group == "all":
                names = list(roles)
            elif group == "teacher":
                names = teachers
            else:
                names = [name for name, role in roles.items() if role == "student"]
            explicit = False
        else:
            unknown = [name for name in block.apply_to if name not in roles]
            if unknown:
                raise QagateError(
                    f"unknown model {unknown[0]!r}{_did_you_mean(unknown[0], roles)} in apply_to; "
                    f"models declared in {models_source}: {', '.join(roles) or '(none)'}; groups: "
                    f"{', '.join(APPLY_TO_GROUPS)}", path=where)
            names = list(block.apply_to)
            explicit = True
        if not names:
            raise QagateError(f"apply_to {block.apply_to!r} matches no model declared in "
                              f"{models_source} (models: {', '.join(roles) or '(none)'})",
                              path=where)
        for rule in block.rules:
            rule_where = f"{gate.path}:{rule.line}" if rule.line else where
            needs_teacher = rule.reference == "teacher" or rule.metric == "speedup"
            if needs_teacher and len(teachers) != 1:
                found = ", ".join(teachers) if teachers else "none"
                raise QagateError(f"rule {rule.text} compares with the teacher, so exactly one "
                                  f"model in {models_source} needs 'role: teacher' (found: "
                                  f"{found})", path=rule_where)
            for name in names:
                if needs_teacher and roles[name] == "teacher":
                    if explicit:
                        raise QagateError(f"rule {rule.text} compares {name} with itself (it is "
                                          f"the teacher); apply it to students", path=rule_where)
                    continue
                key = (name, rule.id)
                if key in seen:
                    raise QagateError(f"rule {rule.id} is applied to {name} twice (first at line "
                                      f"{seen[key]})", path=rule_where)
                seen[key] = rule.line
                cases.append(GateCase(name, rule))
    return cases


class _Reader:
    """Turns PyYAML nodes into values while keeping their line numbers for error messages."""

    def __init__(self, path: Path) -> None:
        import yaml

        self.file = path
        self._constructor = yaml.constructor.SafeConstructor()

    def at(self, node: Any) -> str:
        return f"{self.file}:{node.start_mark.line + 1}"

    def value(self, node: Any) -> Any:
        return self._constructor.construct_object(node, deep=True)

    def mapping(self, node: Any, what: str, keys: Sequence[str]) -> dict[str, Any]:
        import yaml

        if not isinstance(node, yaml.MappingNode):
            raise QagateError(f"{what} must be a mapping with keys {', '.join(keys)}",
                              path=self.at(node))
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(self.value(key_node))
            if key not in keys:
                raise QagateError(f"unknown key {key!r} in {what}{_did_you_mean(key, keys)}; "
                                  f"valid keys: {', '.join(keys)}", path=self.at(key_node))
            if key in result:
                raise QagateError(f"duplicate key {key!r} in {what}", path=self.at(key_node))
            result[key] = value_node
        return result

    def string(self, node: Any, what: str) -> str:
        value = self.value(node)
        if not isinstance(value, str) or not value.strip():
            raise QagateError(f"{what} must be a non-empty string, got {value!r}",
                              path=self.at(node))
        return value.strip()

    def expand(self, node: Any, what: str) -> str:
        try:
            return expand_vars(self.string(node, what))
        except QagateError as exc:
            raise QagateError(str(exc), path=self.at(node)) from None

    def path(self, node: Any, what: str) -> Path:
        text = self.expand(node, what)
        return (self.file.parent / Path(text).expanduser()).resolve()

    def dataset(self, node: Any) -> DatasetRequest:
        import yaml

        if not isinstance(node, yaml.MappingNode):
            return DatasetRequest(self._dataset_spec(node))
        fields = self.mapping(node, "dataset", DATASET_KEYS)
        if "source" not in fields:
            raise QagateError(f"dataset needs 'source' (keys: {', '.join(DATASET_KEYS)})",
                              path=self.at(node))
        request = DatasetRequest(self._dataset_spec(fields["source"]))
        limit = seed = None
        articles = None
        if "limit" in fields:
            limit = self.value(fields["limit"])
            if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
                raise QagateError(f"dataset limit must be a positive integer, got {limit!r}",
                                  path=self.at(fields["limit"]))
        if "seed" in fields:
            seed = self.value(fields["seed"])
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise QagateError(f"dataset seed must be an integer, got {seed!r}",
                                  path=self.at(fields["seed"]))
        if "articles" in fields:
            text = str(self.value(fields["articles"]))
            match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
            if not match or (match[2] and int(match[2]) < int(match[1])):
                raise QagateError(f"dataset articles must be a range such as 38-47, got {text!r}",
                                  path=self.at(fields["articles"]))
            articles = (int(match[1]), int(match[2] or match[1]))
        perturb: tuple[str, ...] = ()
        perturb_seed = 0
        if "perturb" in fields:
            from qagate.perturb import KINDS

            kinds = self.value(fields["perturb"])
            kinds = [kinds] if isinstance(kinds, str) else kinds
            if (not isinstance(kinds, list) or not kinds
                    or any(not isinstance(k, str) or k not in KINDS for k in kinds)):
                raise QagateError(f"dataset perturb must list perturbations from {', '.join(KINDS)}; "
                                  f"got {self.value(fields['perturb'])!r}", path=self.at(fields["perturb"]))
            perturb = tuple(dict.fromkeys(kinds))
        if "perturb_seed" in fields:
            perturb_seed = self.value(fields["perturb_seed"])
            if not isinstance(perturb_seed, int) or isinstance(perturb_seed, bool):
                raise QagateError(f"dataset perturb_seed must be an integer, got {perturb_seed!r}",
                                  path=self.at(fields["perturb_seed"]))
            if not perturb:
                raise QagateError("dataset perturb_seed without perturb: name the perturbations too",
                                  path=self.at(fields["perturb_seed"]))
        return DatasetRequest(request.spec, limit, seed, articles, perturb, perturb_seed)

    def _dataset_spec(self, node: Any) -> str:
        spec = self.expand(node, "dataset")
        if spec == "sample" or spec.startswith("hf:"):
            return spec
        return str((self.file.parent / Path(spec).expanduser()).resolve())

    def block(self, node: Any, default_level: float) -> RuleBlock:
        import yaml

        fields = self.mapping(node, "rule block", BLOCK_KEYS)
        for key in ("apply_to", "require"):
            if key not in fields:
                raise QagateError(f"rule block needs '{key}' (keys: {', '.join(BLOCK_KEYS)})",
                                  path=self.at(node))
        apply_node = fields["apply_to"]
        apply_value = self.value(apply_node)
        if isinstance(apply_value, str) and apply_value in APPLY_TO_GROUPS:
            apply_to: tuple[str, ...] | str = apply_value
        elif isinstance(apply_value, str):
            apply_to = (apply_value,)
        elif isinstance(apply_value, list) and apply_value and all(
                isinstance(v, str) for v in apply_value):
            apply_to = tuple(apply_value)
        else:
            raise QagateError(f"apply_to must be {', '.join(APPLY_TO_GROUPS)}, a model name or a "
                              f"list of model names; got {apply_value!r}", path=self.at(apply_node))
        block_level = (self.confidence(fields["confidence"], default_level)
                       if "confidence" in fields else None)
        require = fields["require"]
        entries = require.value if _is_sequence(require) else [require]
        if not entries:
            raise QagateError("'require' is empty; list at least one rule", path=self.at(require))
        rules = []
        for entry in entries:
            level = block_level
            rule_node = entry
            if isinstance(entry, yaml.MappingNode):
                rule_fields = self.mapping(entry, "rule", RULE_KEYS)
                if "rule" not in rule_fields:
                    raise QagateError(f"rule entry needs 'rule' (keys: {', '.join(RULE_KEYS)})",
                                      path=self.at(entry))
                rule_node = rule_fields["rule"]
                if "confidence" in rule_fields:
                    level = self.confidence(rule_fields["confidence"], default_level)
            if not isinstance(rule_node, yaml.ScalarNode):
                raise QagateError("a rule is a string such as 'f1 >= 0.95 * teacher' or a "
                                  f"mapping with keys {', '.join(RULE_KEYS)}",
                                  path=self.at(rule_node))
            text = str(self.value(rule_node))
            rules.append(parse_rule(text, confidence=level, line=rule_node.start_mark.line + 1,
                                    where=self.at(rule_node)))
        return RuleBlock(apply_to, apply_node.start_mark.line + 1, tuple(rules))

    def confidence(self, node: Any, default_level: float) -> float | None:
        value = self.value(node)
        if value is True:
            return default_level
        if value is False or value is None:
            return None
        if isinstance(value, (int, float)) and 0.0 < float(value) < 1.0:
            return float(value)
        raise QagateError(f"confidence must be a level between 0 and 1 (e.g. 0.95), true (the "
                          f"--qagate-confidence level) or false; got {value!r}",
                          path=self.at(node))


def _is_sequence(node: Any) -> bool:
    import yaml

    return isinstance(node, yaml.SequenceNode)


_VAR_RE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand_vars(text: str) -> str:
    """``${NAME}`` and ``${NAME:-default}`` from the environment (as in a shell)."""
    def replace(match: re.Match) -> str:
        value = os.environ.get(match["name"])
        if value:
            return value
        if match["default"] is not None:
            return match["default"]
        raise QagateError(f"environment variable {match['name']} is not set (write "
                          f"${{{match['name']}:-default}} to give a default)")
    return _VAR_RE.sub(replace, text)


# --- deciding a rule --------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The outcome of one rule on one model, with the numbers a report needs."""

    status: str                 # "pass" | "fail" | "undecided"
    model: str
    rule: Rule
    obtained: float | None
    reference_value: float | None   # the teacher's or the baseline's value of the metric
    threshold: float | None
    interval: Interval | None = None
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def delta(self) -> float | None:
        if self.obtained is None or self.reference_value is None:
            return None
        return self.obtained - self.reference_value


def check(rule: Rule, model: str, obtained: float | None, *, reference_value: float | None = None,
          interval: Interval | None = None, notes: Sequence[str] = ()) -> Verdict:
    """Decide ``obtained op threshold``; with ``interval`` (a confidence rule), decide on it.

    A confidence rule passes only when the whole interval of (left - right) lies on the passing
    side of 0, fails only when the whole interval lies on the failing side, and is "undecided"
    otherwise: the sample cannot tell, so the verdict is never a silent pass.
    """
    notes = tuple(notes)
    if obtained is None or (isinstance(obtained, float) and math.isnan(obtained)):
        return Verdict("fail", model, rule, None, reference_value, None, interval,
                       notes + (f"{model} has no value for {rule.metric}",))
    threshold = rule.threshold(reference_value)
    if interval is not None:
        status = decide_interval(rule.op, interval.low, interval.high)
    else:
        holds = OPERATORS[rule.op](round(float(obtained), 6), round(threshold, 6))
        status = "pass" if holds else "fail"
    return Verdict(status, model, rule, float(obtained), reference_value, threshold, interval, notes)


def decide_interval(op: str, low: float, high: float) -> str:
    """Where the interval of (left - right) lies with respect to 0 under ``op``."""
    if op == ">=":
        return "pass" if low >= 0 else "fail" if high < 0 else "undecided"
    if op == ">":
        return "pass" if low > 0 else "fail" if high <= 0 else "undecided"
    if op == "<=":
        return "pass" if high <= 0 else "fail" if low > 0 else "undecided"
    return "pass" if high < 0 else "fail" if low >= 0 else "undecided"


def rule_interval(rule: Rule, scores: Sequence[float], teacher_scores: Sequence[float] | None,
                  *, seed: int = 0) -> Interval:
    """The bootstrap interval of (left - right) for a confidence rule, in the metric's units.

    Against the teacher: the paired bootstrap of mean(student) - coef * mean(teacher) over the
    same questions, minus the offset. Against a number: the bootstrap of the mean, minus it.
    """
    from qagate import stats  # numpy lives there, imported only when a confidence rule runs

    assert rule.confidence is not None
    if rule.reference == "teacher":
        if teacher_scores is None:
            raise ValueError("a teacher-relative confidence rule needs the teacher's scores")
        raw = stats.paired_bootstrap(scores, teacher_scores, coef=rule.coef, level=rule.confidence,
                                     seed=seed)
    else:
        raw = stats.bootstrap_ci(scores, level=rule.confidence, seed=seed)
    return Interval(raw.estimate - rule.offset, raw.low - rule.offset, raw.high - rule.offset,
                    rule.confidence)


# --- small helpers ----------------------------------------------------------------------------


def _format_number(value: float) -> str:
    return f"{value:.6g}"


def _did_you_mean(word: str, choices: Any) -> str:
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
