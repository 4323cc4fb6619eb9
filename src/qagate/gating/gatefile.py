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

Deciding a rule is :mod:`qagate.gating.judge`'s job: it takes numbers (and per-question scores for
confidence rules) and returns a :class:`Verdict`; loading models and measuring them is the
session's job. Standard library and PyYAML only (imported at collection time).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qagate.core import safeyaml
from qagate.core.argtypes import did_you_mean as _did_you_mean
from qagate.core.argtypes import (
    expand_path,
    expand_vars,
    parse_articles,
    parse_dataset,
    parse_int,
    parse_positive_int,
)
from qagate.core.errors import QagateError, quote
from qagate.core.files import read_user_text
from qagate.gating.clusters import CLUSTERS
from qagate.gating.rules import Rule, parse_rule
from qagate.gating.sequential import SEQUENTIAL_KEYS, SequentialSpec, sequential_problem

APPLY_TO_GROUPS = ("students", "teacher", "all")
_MARK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
GATE_KEYS = (
    "description",
    "dataset",
    "models",
    "requires",
    "marks",
    "sequential",
    "cluster",
    "labels",
    "min_slice",
    "rules",
)
DATASET_KEYS = ("source", "limit", "seed", "articles", "perturb", "perturb_seed")
BLOCK_KEYS = ("apply_to", "require", "confidence", "sequential", "cluster")
RULE_KEYS = ("rule", "confidence", "sequential", "cluster", "min_slice")
# Words people write for a cluster kind that difflib would not match (lower case).
CLUSTER_ALIASES = {
    "articles": "article",
    "document": "article",
    "documents": "article",
    "doc": "article",
    "title": "article",
    "paragraphs": "paragraph",
    "passage": "paragraph",
    "context": "paragraph",
    "question": "none",
    "questions": "none",
    "false": "none",
    "off": "none",
    "no": "none",
}


# --- gate files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetRequest:
    """Which dataset a gate file runs on (None fields: the session's settings)."""

    spec: str
    limit: int | None = None
    seed: int | None = None
    articles: tuple[int, int] | None = None
    perturb: tuple[str, ...] = ()  # qagate.data.perturb kinds; () = the data as it is
    perturb_seed: int = 0

    def key(self) -> tuple:
        return (self.spec, self.limit, self.seed, self.articles, self.perturb, self.perturb_seed)


@dataclass(frozen=True)
class GateCase:
    """One collected test: a rule applied to one model."""

    model: str
    rule: Rule
    sequential: SequentialSpec | None = None  # judged chunk by chunk (qagate.gating.sequential)


@dataclass(frozen=True)
class GateFile:
    path: Path
    description: str
    dataset: DatasetRequest | None
    models: Path | None
    requires: tuple[Path, ...]
    blocks: tuple["RuleBlock", ...]
    requires_line: int | None = None  # where 'requires:' is, for the skip message
    marks: tuple[str, ...] = ()  # pytest markers every item of the file carries (-m selects)
    labels: Path | None = None  # 'labels:': a side file of question id -> slice labels

    def missing_requirements(self) -> list[Path]:
        return [p for p in self.requires if not p.exists()]


@dataclass(frozen=True)
class RuleBlock:
    apply_to: tuple[str, ...] | str  # a group name or explicit model names
    apply_line: int | None
    rules: tuple[Rule, ...]
    sequential: tuple[SequentialSpec | None, ...] = ()  # per rule; () = none is sequential


def load_gate_file(path: Path, *, default_level: float = 0.95) -> GateFile:
    """Read and validate a gate file; every error names the file and line and the valid choices."""
    path = Path(path)
    text = read_user_text(path, "gate file")
    try:
        root = safeyaml.compose(text)
    except safeyaml.YAMLProblem as exc:
        where = f"{path}:{exc.line}" if exc.line is not None else str(path)
        raise QagateError(f"invalid YAML: {exc.problem}", path=where) from None
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
    requires_line = None
    if "requires" in top:
        node = top["requires"]
        requires_line = node.start_mark.line + 1
        items = node.value if _is_sequence(node) else [node]
        requires = tuple(reader.path(item, "requires") for item in items)
    rules_node = top["rules"]
    if not _is_sequence(rules_node) or not rules_node.value:
        raise QagateError(
            "'rules' must be a non-empty list of blocks with 'apply_to' and 'require'",
            path=reader.at(rules_node),
        )
    sequential = reader.sequential(top["sequential"]) if "sequential" in top else None
    cluster = reader.cluster(top["cluster"]) if "cluster" in top else None
    blocks = tuple(reader.block(node, default_level, sequential, cluster) for node in rules_node.value)
    marks = reader.marks(top["marks"]) if "marks" in top else ()
    labels = reader.path(top["labels"], "labels") if "labels" in top else None
    if "min_slice" in top:  # the file's smallest judged slice, for rules that do not set their own
        least = reader.min_slice(top["min_slice"])
        blocks = tuple(
            replace(block, rules=tuple(_least(rule, least) for rule in block.rules)) for block in blocks
        )
    return GateFile(path, description, dataset, models, requires, blocks, requires_line, marks, labels)


def _least(rule: Rule, least: int) -> Rule:
    """``rule`` with the file's ``min_slice`` unless the rule set its own."""
    return rule if rule.slice is None or rule.min_slice is not None else replace(rule, min_slice=least)


def resolve_cases(
    gate: GateFile,
    roles: Mapping[str, str],
    *,
    models_source: str,
    slice_values: Callable[[], Mapping[str, Sequence[str]]] | None = None,
) -> list[GateCase]:
    """Expand every block to (model, rule) cases, checking model names against the declarations.

    ``roles`` maps model name -> role ("teacher" | "student" | "model"), in declaration order.
    Rules relative to the teacher (and speedup) skip the teacher itself when it is reached
    through a group, and are an error when the teacher is named explicitly. ``slice_values``
    gives the slice labels (key -> values) the gate's questions carry, asked only for a slice
    rule with ``key=*`` (one case per value) or a key that is not built in (checked).
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
                    f"unknown model {quote(unknown[0])}"
                    f"{_did_you_mean(unknown[0], [*roles, *APPLY_TO_GROUPS])} in apply_to; "
                    f"models declared in {models_source}: {', '.join(roles) or '(none)'}; groups: "
                    f"{', '.join(APPLY_TO_GROUPS)}",
                    path=where,
                )
            names = list(block.apply_to)
            explicit = True
        if not names:
            raise QagateError(
                f"apply_to {quote(block.apply_to)} matches no model declared in "
                f"{models_source} (models: {', '.join(roles) or '(none)'})",
                path=where,
            )
        expanded = [
            (block.sequential[index] if index < len(block.sequential) else None, each)
            for index, rule in enumerate(block.rules)
            for each in _slices_of(rule, slice_values, f"{gate.path}:{rule.line}" if rule.line else where)
        ]
        for spec, rule in expanded:
            rule_where = f"{gate.path}:{rule.line}" if rule.line else where
            needs_teacher = rule.reference == "teacher" or rule.metric == "speedup"
            if needs_teacher and len(teachers) != 1:
                found = ", ".join(teachers) if teachers else "none"
                raise QagateError(
                    f"rule {rule.text} compares with the teacher, so exactly one "
                    f"model in {models_source} needs 'role: teacher' (found: "
                    f"{found})",
                    path=rule_where,
                )
            for name in names:
                if needs_teacher and roles[name] == "teacher":
                    if explicit:
                        raise QagateError(
                            f"rule {rule.text} compares {name} with itself (it is "
                            f"the teacher); apply it to students",
                            path=rule_where,
                        )
                    continue
                key = (name, rule.id)
                if key in seen:
                    raise QagateError(
                        f"rule {rule.id} is applied to {name} twice (first at line {seen[key]})",
                        path=rule_where,
                    )
                seen[key] = rule.line
                cases.append(GateCase(name, rule, spec))
    return cases


def _slices_of(
    rule: Rule, slice_values: Callable[[], Mapping[str, Sequence[str]]] | None, where: str
) -> list[Rule]:
    """``rule``, or for ``key=*`` one rule per slice value present; an unknown key or value is an
    error naming ``where``. Without ``slice_values`` a built-in ``*`` takes every built-in value."""
    from qagate.data.slices import BUILT_IN, unknown_slice

    if rule.slice is None:
        return [rule]
    key, value = rule.slice
    if key in BUILT_IN and value != "*":
        return [rule]  # checked when parsed
    if slice_values is None:  # no data to read: a key of the user's own is judged as written
        if key not in BUILT_IN:
            return [rule]
        values: Sequence[str] = BUILT_IN[key]
    else:
        known = slice_values()
        problem = unknown_slice(key, value, known)
        if problem is not None:
            raise QagateError(f"rule {rule.text}: {problem}", path=where)
        values = known.get(key, ())
    if value != "*":
        return [rule]
    head = f"{rule.metric}[{key}=*]"
    return [
        replace(rule, slice=(key, each), text=f"{rule.metric}[{key}={each}]" + rule.text[len(head) :])
        for each in values
    ]


class _Reader:
    """Turns PyYAML nodes into values while keeping their line numbers for error messages."""

    def __init__(self, path: Path) -> None:
        import yaml

        self.file = path
        self._constructor = yaml.constructor.SafeConstructor()

    def at(self, node: Any) -> str:
        return f"{self.file}:{node.start_mark.line + 1}"

    def value(self, node: Any) -> Any:
        try:
            return safeyaml.construct(self._constructor, node)
        except safeyaml.YAMLProblem as exc:
            raise QagateError(exc.problem, path=f"{self.file}:{exc.line}") from None

    def mapping(self, node: Any, what: str, keys: Sequence[str]) -> dict[str, Any]:
        import yaml

        if not isinstance(node, yaml.MappingNode):
            raise QagateError(f"{what} must be a mapping with keys {', '.join(keys)}", path=self.at(node))
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(self.value(key_node))
            if key not in keys:
                raise QagateError(
                    f"unknown key {quote(key)} in {what}{_did_you_mean(key, keys)}; "
                    f"valid keys: {', '.join(keys)}",
                    path=self.at(key_node),
                )
            if key in result:
                raise QagateError(f"duplicate key {quote(key)} in {what}", path=self.at(key_node))
            result[key] = value_node
        return result

    def marks(self, node: Any) -> tuple[str, ...]:
        """``marks: [full, nightly]``: pytest marker names (identifiers), so ``-m`` can select."""
        items = node.value if _is_sequence(node) else [node]
        names = tuple(self.value(item) for item in items)
        for item, name in zip(items, names):
            if not isinstance(name, str) or not _MARK_NAME.fullmatch(name):
                raise QagateError(
                    f"marks: {quote(str(name))} is not a pytest marker name",
                    path=self.at(item),
                    hint="write identifiers such as 'marks: [full]' and register them under "
                    "[tool.pytest.ini_options] markers",
                )
        return tuple(dict.fromkeys(names))

    def string(self, node: Any, what: str) -> str:
        value = self.value(node)
        if not isinstance(value, str) or not value.strip():
            raise QagateError(f"{what} must be a non-empty string, got {quote(value)}", path=self.at(node))
        return value.strip()

    def expand(self, node: Any, what: str) -> str:
        try:
            return expand_vars(self.string(node, what))
        except QagateError as exc:
            raise QagateError(str(exc), path=self.at(node)) from None

    def path(self, node: Any, what: str) -> Path:
        text = self.string(node, what)
        try:
            return expand_path(text, self.file.parent)
        except QagateError as exc:
            raise QagateError(str(exc), path=self.at(node)) from None

    def parsed(self, node: Any, what: str, parse: Callable[[str], Any]) -> Any:
        """A value read by an :mod:`qagate.core.argtypes` parser, so that it is checked and worded as
        on the command line and in the ini file; errors add ``file:line`` and what it is."""
        try:
            return parse(str(self.value(node)))
        except argparse.ArgumentTypeError as exc:
            raise QagateError(f"{what}: {exc}", path=self.at(node)) from None

    def dataset(self, node: Any) -> DatasetRequest:
        import yaml

        if not isinstance(node, yaml.MappingNode):
            return DatasetRequest(self._dataset_spec(node))
        fields = self.mapping(node, "dataset", DATASET_KEYS)
        if "source" not in fields:
            raise QagateError(f"dataset needs 'source' (keys: {', '.join(DATASET_KEYS)})", path=self.at(node))
        request = DatasetRequest(self._dataset_spec(fields["source"]))
        limit = (
            self.parsed(fields["limit"], "dataset limit", parse_positive_int) if "limit" in fields else None
        )
        seed = self.parsed(fields["seed"], "dataset seed", parse_int) if "seed" in fields else None
        articles = (
            self.parsed(fields["articles"], "dataset articles", parse_articles)
            if "articles" in fields
            else None
        )
        perturb: tuple[str, ...] = ()
        perturb_seed = 0
        if "perturb" in fields:
            from qagate.data.perturb import KINDS

            kinds = self.value(fields["perturb"])
            kinds = [kinds] if isinstance(kinds, str) else kinds
            if (
                not isinstance(kinds, list)
                or not kinds
                or any(not isinstance(k, str) or k not in KINDS for k in kinds)
            ):
                wrong = (
                    next((k for k in kinds if isinstance(k, str) and k not in KINDS), "")
                    if isinstance(kinds, list)
                    else ""
                )
                raise QagateError(
                    f"dataset perturb must list perturbations from {', '.join(KINDS)}; "
                    f"got {quote(self.value(fields['perturb']))}{_did_you_mean(wrong, KINDS)}",
                    path=self.at(fields["perturb"]),
                )
            perturb = tuple(dict.fromkeys(kinds))
        if "perturb_seed" in fields:
            perturb_seed = self.parsed(fields["perturb_seed"], "dataset perturb_seed", parse_int)
            if not perturb:
                raise QagateError(
                    "dataset perturb_seed without perturb: name the perturbations too",
                    path=self.at(fields["perturb_seed"]),
                )
        return DatasetRequest(request.spec, limit, seed, articles, perturb, perturb_seed)

    def _dataset_spec(self, node: Any) -> str:
        try:
            spec = parse_dataset(self.expand(node, "dataset"))
        except argparse.ArgumentTypeError as exc:
            raise QagateError(f"dataset: {exc}", path=self.at(node)) from None
        if spec == "sample" or spec.startswith("hf:"):
            return spec
        return str(self.path(node, "dataset"))

    def block(
        self,
        node: Any,
        default_level: float,
        sequential: SequentialSpec | None = None,
        cluster: str | None = None,
    ) -> RuleBlock:
        import yaml

        fields = self.mapping(node, "rule block", BLOCK_KEYS)
        for key in ("apply_to", "require"):
            if key not in fields:
                raise QagateError(
                    f"rule block needs '{key}' (keys: {', '.join(BLOCK_KEYS)})", path=self.at(node)
                )
        apply_node = fields["apply_to"]
        apply_value = self.value(apply_node)
        if isinstance(apply_value, str) and apply_value in APPLY_TO_GROUPS:
            apply_to: tuple[str, ...] | str = apply_value
        elif isinstance(apply_value, str):
            apply_to = (apply_value,)
        elif isinstance(apply_value, list) and apply_value and all(isinstance(v, str) for v in apply_value):
            apply_to = tuple(apply_value)
        else:
            raise QagateError(
                f"apply_to must be {', '.join(APPLY_TO_GROUPS)}, a model name or a "
                f"list of model names; got {quote(apply_value)}",
                path=self.at(apply_node),
            )
        block_level = self.confidence(fields["confidence"], default_level) if "confidence" in fields else None
        explicit_block = "sequential" in fields
        block_sequential = self.sequential(fields["sequential"]) if explicit_block else sequential
        block_cluster = self.cluster(fields["cluster"]) if "cluster" in fields else cluster
        require = fields["require"]
        entries = require.value if _is_sequence(require) else [require]
        if not entries:
            raise QagateError("'require' is empty; list at least one rule", path=self.at(require))
        rules = []
        specs: list[SequentialSpec | None] = []
        for entry in entries:
            level = block_level
            rule_node = entry
            spec, explicit = block_sequential, explicit_block
            sequential_node = None
            min_node = None
            cluster_node = None
            # 'confidence: false' where it was written (a point comparison), for sequential rules
            refused = fields["confidence"] if "confidence" in fields and block_level is None else None
            refused_here = refused is not None and explicit_block  # both keys on the block
            if isinstance(entry, yaml.MappingNode):
                rule_fields = self.mapping(entry, "rule", RULE_KEYS)
                if "rule" not in rule_fields:
                    raise QagateError(
                        f"rule entry needs 'rule' (keys: {', '.join(RULE_KEYS)})", path=self.at(entry)
                    )
                rule_node = rule_fields["rule"]
                min_node = rule_fields.get("min_slice")
                cluster_node = rule_fields.get("cluster")
                if "confidence" in rule_fields:
                    level = self.confidence(rule_fields["confidence"], default_level)
                    refused = rule_fields["confidence"] if level is None else None
                    refused_here = refused is not None and "sequential" in rule_fields
                if "sequential" in rule_fields:
                    sequential_node = rule_fields["sequential"]
                    spec, explicit = self.sequential(sequential_node), True
                    if "confidence" not in rule_fields:
                        refused, refused_here = None, False  # the rule's own key beats the block's
            if not isinstance(rule_node, yaml.ScalarNode):
                raise QagateError(
                    "a rule is a string such as 'f1 >= 0.95 * teacher' or a "
                    f"mapping with keys {', '.join(RULE_KEYS)}",
                    path=self.at(rule_node),
                )
            text = str(self.value(rule_node))
            rule = parse_rule(
                text, confidence=level, line=rule_node.start_mark.line + 1, where=self.at(rule_node)
            )
            if min_node is not None:
                if rule.slice is None:
                    raise QagateError(
                        f"min_slice applies to slice rules such as 'f1[question=how_many] >= 80'; "
                        f"{rule.text} has no slice",
                        path=self.at(min_node),
                    )
                rule = replace(rule, min_slice=self.min_slice(min_node))
            if spec is not None:
                problem = sequential_problem(rule)
                if problem is None and rule.slice is not None:
                    problem = "a slice rule is judged on its slice's questions of the whole dataset"
                if problem is None and refused_here:
                    raise QagateError(
                        "a sequential rule is decided on its confidence sequence, so 'confidence: "
                        "false' contradicts 'sequential:' here: drop one of them",
                        path=self.at(refused),
                    )
                if problem is None and refused is not None:
                    spec = None  # 'confidence: false' closer to the rule: a fixed-n point comparison
                elif problem is None and rule.confidence is None:  # decided on its interval
                    rule = parse_rule(
                        text, confidence=default_level, line=rule.line, where=self.at(rule_node)
                    )
                elif problem is not None:
                    if explicit:  # asked for this rule or block: say why it cannot be
                        raise QagateError(
                            f"rule {rule.text} cannot be sequential: {problem}",
                            path=self.at(sequential_node if sequential_node is not None else rule_node),
                        )
                    spec = None  # the file's default: this rule stays fixed-n
            rule = self._clustered(rule, block_cluster, cluster_node)
            if spec is not None:  # rules on other clusters walk other orders: separate runs
                spec = replace(spec, cluster=rule.cluster or "none")
            rules.append(rule)
            specs.append(spec)
        return RuleBlock(apply_to, apply_node.start_mark.line + 1, tuple(rules), tuple(specs))

    def cluster(self, node: Any) -> str:
        """``cluster: article | paragraph | none``: a confidence interval's sampling unit."""
        value = self.value(node)
        if isinstance(value, str) and value in CLUSTERS:
            return value
        word = "false" if value is False else str(value)
        raise QagateError(
            f"cluster must be one of {', '.join(CLUSTERS)}; got {quote(value)}"
            f"{_did_you_mean(word, CLUSTERS, CLUSTER_ALIASES)}",
            path=self.at(node),
        )

    def _clustered(self, rule: Rule, inherited: str | None, node: Any) -> Rule:
        """``rule`` with its cluster: its own ``cluster:`` (which must have a per-question
        interval to apply to), else the block's or the file's where it applies."""
        from qagate.scoring.registry import METRICS

        applies = rule.confidence is not None and not METRICS[rule.metric].rounds
        if node is None:
            return replace(rule, cluster=inherited) if applies and inherited is not None else rule
        kind = self.cluster(node)
        if not applies:
            why = (
                "a speed rule's interval is over timed rounds, not questions"
                if METRICS[rule.metric].rounds
                else "it is a point comparison: add 'confidence: 0.95'"
            )
            raise QagateError(
                f"cluster applies to a confidence interval over questions; {rule.text}: {why}",
                path=self.at(node),
            )
        return replace(rule, cluster=kind)

    def sequential(self, node: Any) -> SequentialSpec | None:
        """``sequential: {look_every, min_questions, max_questions, seed}``, ``true`` (the
        defaults) or ``false`` (fixed-n, e.g. one rule of a sequential file)."""
        import yaml

        where = self.at(node)
        if isinstance(node, yaml.ScalarNode):
            value = self.value(node)
            if value is True:
                return SequentialSpec(where=where)
            if value is False or value is None:
                return None
            raise QagateError(
                f"sequential must be a mapping with keys {', '.join(SEQUENTIAL_KEYS)}, true or "
                f"false; got {quote(value)}",
                path=where,
            )
        fields = self.mapping(node, "sequential", SEQUENTIAL_KEYS)
        look_every = self._count(fields, "look_every", 256)
        min_questions = self._count(fields, "min_questions", 0, zero=True)
        max_questions: int | None = None
        if "max_questions" in fields:
            raw = self.value(fields["max_questions"])
            if not (isinstance(raw, str) and raw.strip().lower() == "all"):
                max_questions = self._count(fields, "max_questions", 0)
        if max_questions is not None and max_questions < min_questions:
            raise QagateError(
                f"sequential max_questions ({max_questions}) is below min_questions "
                f"({min_questions}): raise max_questions or lower min_questions",
                path=self.at(fields["max_questions"]),
            )
        seed = self.parsed(fields["seed"], "sequential seed", parse_int) if "seed" in fields else 0
        return SequentialSpec(look_every, min_questions, max_questions, seed, where)

    def min_slice(self, node: Any) -> int:
        """``min_slice: 50``: the fewest questions a slice rule is judged on (below: undecided)."""
        value = self.value(node)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise QagateError(
                f"min_slice must be a whole number of questions >= 1; got {quote(value)}", path=self.at(node)
            )
        return value

    def _count(self, fields: dict[str, Any], key: str, default: int, *, zero: bool = False) -> int:
        """A whole number of questions (``zero``: 0 allowed), as written under ``sequential``."""
        if key not in fields:
            return default
        value = self.value(fields[key])
        smallest = 0 if zero else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
            extra = " or 'all'" if key == "max_questions" else ""
            raise QagateError(
                f"sequential {key} must be a whole number of questions >= {smallest}{extra}; "
                f"got {quote(value)}",
                path=self.at(fields[key]),
            )
        return value

    def confidence(self, node: Any, default_level: float) -> float | None:
        value = self.value(node)
        if value is True:
            return default_level
        if value is False or value is None:
            return None
        if isinstance(value, (int, float)) and 0.0 < float(value) < 1.0:
            return float(value)
        raise QagateError(
            f"confidence must be a level between 0 and 1 (e.g. 0.95), true (the "
            f"--qagate-confidence level) or false; got {quote(value)}",
            path=self.at(node),
        )


def _is_sequence(node: Any) -> bool:
    import yaml

    return isinstance(node, yaml.SequenceNode)
