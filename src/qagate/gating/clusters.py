"""Clusters: which questions a confidence rule's interval takes as one draw (``cluster:``).

A gate file (or one block, or one rule) that says ``cluster: article`` judges its confidence
rules with the article as the sampling unit: SQuAD's questions come about 220 to an article
(5 to a paragraph) and questions about one article succeed and fail together, so the
question-level interval (``cluster: none``, the default) is about questions from *these*
articles, and the clustered one about questions from *documents like them*. On the full
SQuAD v1.1 dev set an article-clustered bootstrap's standard errors are 1.27-2.4x the
question-level ones (issue 29).

How a cluster enters the interval (:mod:`qagate.scoring.confseq`): as one value, the mean of
its questions' values, with the weight ``size / largest``, the largest being the largest
cluster of the dataset the rule is judged on (known before any answer is scored); the
estimate is then the question-weighted mean, the rule's own value. Sequential rules take
whole clusters in a seeded random order (:func:`cluster_order`).

Standard library at import time (gate files are read at collection).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CLUSTERS = ("article", "paragraph", "none")
DEFAULT_CLUSTER = "none"
"""Questions as the sampling unit unless a gate asks for clusters: see docs/statistics.md
(a gate's dataset usually holds a few articles, on which an article-level interval rarely
decides anything; every confidence verdict says which unit it used)."""

UNITS = {"article": "articles", "paragraph": "paragraphs", "none": "questions"}


def cluster_key(example: Any, kind: str) -> str:
    """The cluster of one question (a ``QAExample``): its article (by index in the file, then
    title) or its paragraph (article and context)."""
    article = f"{getattr(example, 'article', 0)}:{getattr(example, 'title', '')}"
    if kind == "article":
        return article
    if kind == "paragraph":
        return f"{article}\n{getattr(example, 'context', '')}"
    raise ValueError(f"unknown cluster kind {kind!r}; choose from {', '.join(CLUSTERS)}")


def cluster_labels(examples: Sequence[Any], ids: Sequence[str], kind: str | None) -> tuple[str, ...] | None:
    """The cluster of each question ``ids`` (in order) among ``examples``; None for questions as
    the unit (``kind`` None or ``none``)."""
    if kind is None or kind == "none":
        return None
    by_id = {example.id: example for example in examples}
    return tuple(cluster_key(by_id[qid], kind) for qid in ids)


@dataclass(frozen=True)
class Grouped:
    """Per-question values gathered into clusters: each cluster's mean and weight (its size over
    ``largest``), in the order the clusters first appear."""

    means: Any
    weights: Any
    sizes: Any
    largest: int


def group(values: Any, labels: Sequence[str], largest: int | None = None) -> Grouped:
    """Gather ``values`` (one per question) by ``labels``; ``largest``: the bound on a cluster's
    size (default: the largest here)."""
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    if len(labels) != data.size:
        raise ValueError(f"{data.size} values but {len(labels)} cluster labels")
    index: dict[str, int] = {}
    codes = np.fromiter(
        (index.setdefault(label, len(index)) for label in labels), dtype=np.int64, count=data.size
    )
    sizes = np.bincount(codes, minlength=len(index))
    sums = np.bincount(codes, weights=data, minlength=len(index))
    bound = int(sizes.max()) if largest is None else int(largest)
    if sizes.size and bound < sizes.max():
        raise ValueError(f"a cluster of {int(sizes.max())} questions is larger than the bound {bound}")
    return Grouped(sums / np.maximum(sizes, 1), sizes / max(bound, 1), sizes, bound)


def largest_cluster(labels: Sequence[str]) -> int:
    """The size of the largest cluster among ``labels``."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return max(counts.values(), default=1)


def cluster_order(labels: Sequence[str], seed: int) -> list[int]:
    """Positions of the questions in a seeded random order of whole clusters (within a cluster,
    the dataset's order): what a sequential rule with ``cluster:`` walks through."""
    import numpy as np

    members: dict[str, list[int]] = {}
    for position, label in enumerate(labels):
        members.setdefault(label, []).append(position)
    groups = list(members.values())
    order = np.random.default_rng(seed % 2**64).permutation(len(groups))
    return [position for g in order for position in groups[int(g)]]


def describe(kind: str | None, units: int | None = None) -> str:
    """What a confidence verdict's level is about, for notes and reports."""
    kind = kind or DEFAULT_CLUSTER
    if kind == "none":
        return (
            "cluster: none (questions as the sampling unit): the level is about questions from these articles"
        )
    count = f"{units:,} {UNITS[kind]}" if units is not None else UNITS[kind]
    return (
        f"cluster: {kind} ({count} as the sampling unit): the level is about questions from "
        f"{'documents' if kind == 'article' else 'paragraphs'} like these"
    )


def with_clusters(evidence: Any, rule: Any, examples: Sequence[Any], ids: Sequence[str]) -> Any:
    """``evidence`` (a judge's :class:`~qagate.gating.judge.Evidence`) with each question's
    cluster when ``rule`` asks for one (``ids``: the order of its per-question values)."""
    from dataclasses import replace

    if rule.confidence is None or rule.cluster in (None, "none") or evidence.per_question is None:
        return evidence
    if len(ids) != len(evidence.per_question):  # not these questions: the judge says it cannot
        return evidence
    return replace(evidence, clusters=cluster_labels(examples, ids, rule.cluster))
