"""The one way qagate reads YAML (gate files, model declarations): plain data, bounded.

``yaml.safe_load`` alone lets a file crash or exhaust the reader: an explicit tag
(``!custom``, ``!!float x``, ``!!int ''``, ``!!timestamp x``) raises whatever its constructor
raises, nested aliases (``&a [*a, *a, ...]`` nine levels of nine) expand to hundreds of millions
of nodes as soon as anything walks or prints the value, and a document nested a thousand deep
overflows the stack. Here a document is composed, checked and only then constructed:

- tags: only the plain ones (strings, numbers, booleans, null, lists, mappings); an unquoted
  date stays what YAML makes of it (the declarations say "quote it");
- size: at most :data:`MAX_NODES` nodes once aliases are expanded, and :data:`MAX_DEPTH` deep;
- text: no lone surrogate escapes (``"\\ud800"``), which no file or database can store.

Every problem is a :class:`YAMLProblem` with the line it is on; the callers word it for their
file. PyYAML is imported inside the functions (the plugin imports this module at start-up).
"""

from __future__ import annotations

import re
from typing import Any

#: Nodes a document may have once its aliases are expanded (a gate file has a few hundred).
MAX_NODES = 100_000
#: How deep lists and mappings may nest.
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
PLAIN_TAGS = frozenset(_TAG + name for name in ("str", "int", "float", "bool", "null", "seq", "map"))
_CONTAINERS = frozenset((_TAG + "seq", _TAG + "map"))
_SURROGATE = re.compile("[\ud800-\udfff]")


class YAMLProblem(Exception):
    """Why a YAML document was refused; ``line`` is 1-based (None: the whole document)."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


def compose(text: str) -> Any:
    """The checked node tree of a one-document YAML text (None for an empty document)."""
    import yaml

    loader = None
    try:
        loader = yaml.SafeLoader(text)  # checks the characters: may raise already
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark is not None else None
        if isinstance(exc, yaml.reader.ReaderError):  # a control character: where it is
            line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise YAMLProblem(problem, line) from None
    except RecursionError:
        raise YAMLProblem(f"nested too deeply (at most {MAX_DEPTH} levels)") from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is not None:
        check(root)
    return root


def load(text: str) -> Any:
    """The Python value of a one-document YAML text, checked as :func:`compose` checks it."""
    import yaml

    root = compose(text)
    if root is None:
        return None
    return construct(yaml.constructor.SafeConstructor(), root)


def construct(constructor: Any, node: Any) -> Any:
    """``constructor.construct_object(node, deep=True)``; a value its tag cannot hold is a YAMLProblem."""
    import yaml

    try:
        return constructor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError, AttributeError, IndexError, OverflowError) as exc:
        if getattr(exc, "problem_mark", None) is None:
            node = _culprit(node)
        mark = getattr(exc, "problem_mark", None) or node.start_mark
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0] or type(exc).__name__
        if len(problem) > 120:
            problem = problem[:117] + "..."
        tag = getattr(node, "tag", "")
        what = f" as !!{tag[len(_TAG) :]}" if tag.startswith(_TAG) and tag not in _CONTAINERS else ""
        raise YAMLProblem(f"cannot read the value{what}: {problem}", mark.line + 1) from None
    except RecursionError:
        line = node.start_mark.line + 1
        raise YAMLProblem(f"nested too deeply (at most {MAX_DEPTH} levels)", line) from None


def _culprit(root: Any) -> Any:
    """The first scalar under ``root`` that its tag cannot hold (for the error's line), else root."""
    import yaml

    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                yaml.constructor.SafeConstructor().construct_object(node)
            except Exception:
                return node
        stack.extend(reversed(_children(node)))
    return root


def check(root: Any) -> None:
    """Refuse unsupported tags, lone surrogates, alias bombs and deep nesting (no recursion here)."""
    import yaml

    resolver = yaml.resolver.Resolver()
    size: dict[int, int] = {}  # id(node) -> nodes under it, aliases expanded
    depth: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            children = _children(node)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            open_nodes.discard(key)
            line = node.start_mark.line + 1
            if size[key] > MAX_NODES:
                raise YAMLProblem(
                    f"the document expands to more than {MAX_NODES:,} values (aliases of aliases?); "
                    "write the values out",
                    line,
                )
            if depth[key] > MAX_DEPTH:
                raise YAMLProblem(f"nested too deeply (at most {MAX_DEPTH} levels)", line)
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise YAMLProblem("an alias refers to a node that contains it", node.start_mark.line + 1)
        _check_node(node, resolver)
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in size)


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_node(node: Any, resolver: Any) -> None:
    import yaml

    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        implicit = resolver.resolve(yaml.ScalarNode, node.value, (node.style is None, node.style is not None))
        if node.tag != implicit and node.tag not in PLAIN_TAGS:
            raise _tag_problem(node.tag, line)
        found = _SURROGATE.search(node.value)
        if found:
            raise YAMLProblem(
                f"the text holds a lone surrogate escape (\\u{ord(found.group()):04x}), which is not a "
                "character; write the character itself",
                line,
            )
    else:
        expected = _TAG + ("seq" if isinstance(node, yaml.SequenceNode) else "map")
        if node.tag != expected:
            raise _tag_problem(node.tag, line)


def _tag_problem(tag: str, line: int) -> YAMLProblem:
    shown = "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return YAMLProblem(
        f"the YAML tag {shown} is not supported; write plain strings, numbers, true/false, "
        "lists and mappings",
        line,
    )
