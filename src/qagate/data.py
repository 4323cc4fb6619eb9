"""QA examples: the record type, loaders, subsets, fingerprint and validation.

Standard library only at module level (``datasets`` is imported lazily by its loader).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class QAExample:
    """One question about one context, with its reference answers.

    ``answer_starts[i]`` is the character offset of ``answers[i]`` in ``context``.
    ``is_impossible`` is SQuAD v2.0's unanswerable flag (then ``answers`` is empty).
    ``article`` is the index of the article in file order (for by-article splits).
    """

    id: str
    title: str
    context: str
    question: str
    answers: tuple[str, ...] = ()
    answer_starts: tuple[int, ...] = ()
    is_impossible: bool = False
    article: int = 0
