"""The QA example record and the immutable, fingerprinted Dataset that holds them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path


@dataclass(frozen=True)
class QAExample:
    """One question about one context, with its reference answers.

    ``answer_starts[i]`` is the character offset of ``answers[i]`` in ``context``.
    ``is_impossible`` is SQuAD v2.0's unanswerable flag (then ``answers`` is empty).
    ``article`` is the index of the article in file order (for by-article splits).
    ``labels``: a record's ``"slices": {"domain": "legal"}`` (not part of the fingerprint: they
    change no score).
    """

    id: str
    title: str
    context: str
    question: str
    answers: tuple[str, ...] = ()
    answer_starts: tuple[int, ...] = ()
    is_impossible: bool = False
    article: int = 0
    labels: tuple[tuple[str, str], ...] = ()  # the record's own slice labels (qagate.data.slices)


SAMPLE = "sample"
"""The spec of the built-in sample dataset (original text, ships with the package)."""


def sample_path() -> Path:
    """Where the built-in SQuAD v1.1-format sample lives inside the installed package."""
    return Path(__file__).resolve().parent.parent / "resources" / "sample-squad.json"


@dataclass(frozen=True, eq=False)
class Dataset:
    """An immutable, validated collection of QA examples.

    ``name`` is short and file-system safe (baselines and caches use it as a folder name);
    ``source`` says where the examples came from; ``language`` is set for MLQA files (their
    answers are scored with that language's normalisation). Identity-compared on purpose: two datasets
    with the same content share a :attr:`fingerprint`, which is what caches should key on.
    """

    name: str
    source: str
    examples: tuple[QAExample, ...]
    version: str = "1.1"
    language: str | None = None  # MLQA: the answers' language, which picks MLQA's scoring
    _index: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update((ex.id, ex) for ex in self.examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[QAExample]:
        return iter(self.examples)

    def by_id(self) -> dict[str, QAExample]:
        """A fresh id -> example mapping (a copy, so callers may change it freely)."""
        return dict(self._index)

    @property
    def articles(self) -> int:
        """How many distinct articles the examples come from."""
        return len({ex.article for ex in self.examples})

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the examples' content, independent of order, name and source.

        Covers everything that can change a score (ids, titles, contexts, questions, reference
        answers and offsets, the unanswerable flag), so a cache or baseline keyed on it goes
        stale exactly when the data changes.
        """
        digest = hashlib.sha256(b"qagate-dataset-v1\n")
        context_digests: dict[str, str] = {}  # contexts repeat ~5x: hash each once
        for ex in sorted(self.examples, key=lambda e: e.id):
            context = context_digests.get(ex.context)
            if context is None:
                context = hashlib.sha256(ex.context.encode("utf-8")).hexdigest()
                context_digests[ex.context] = context
            record = [
                ex.id,
                ex.title,
                context,
                ex.question,
                list(ex.answers),
                list(ex.answer_starts),
                ex.is_impossible,
            ]
            digest.update(json.dumps(record, ensure_ascii=False).encode("utf-8"))
            digest.update(b"\n")
        return digest.hexdigest()
