"""Exact match and F1 exactly as the official SQuAD evaluation scripts define them.

v1.1 (``evaluate-v1.1.py``): normalise (lower-case, drop ASCII punctuation, drop the articles
a/an/the, collapse white space); EM and token-bag F1, each the maximum over the reference
answers; a question without a prediction scores 0; predicted ids that are not in the dataset
are ignored. Totals are ``100 * sum / questions``, summed in dataset order, so the numbers are
bit-for-bit those of the official script.

v2.0 (``evaluate-v2.0.py``), used when the dataset is v2.0: references that normalise to
nothing are dropped and an unanswerable question's only reference is ``""``; "" predicts "no
answer"; F1 is 1 when both sides have no tokens. The official v2.0 script crashes on a
missing prediction; here it scores 0 as in v1.1, so complete predictions give its numbers.

One quirk is kept on purpose because it is official: under v1.1, a prediction and a reference
that both normalise to nothing (say "the" and "a") have EM 1 but F1 0.

Standard library only.
"""

from __future__ import annotations

import contextlib
import re
import string
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qagate.scoring.scores import Scores  # noqa: F401 (Scores is also imported from here)

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset, QAExample

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """Lower-case, drop punctuation, drop articles, collapse white space (official order)."""
    return " ".join(_ARTICLES.sub(" ", s.lower().translate(_PUNCTUATION)).split())


def exact_match(prediction: str, ground_truths: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised reference, else 0.0 (v1.1)."""
    pred = normalize_answer(prediction)
    return 1.0 if any(pred == normalize_answer(g) for g in ground_truths) else 0.0


def f1(prediction: str, ground_truths: Sequence[str]) -> float:
    """Token-bag F1 against the best-matching reference, in [0, 1] (v1.1)."""
    pred_tokens = normalize_answer(prediction).split()
    pred_counts = Counter(pred_tokens)
    return max((_f1_v1(pred_counts, len(pred_tokens), _bag(g)) for g in ground_truths), default=0.0)


def score(
    dataset: "Dataset | Sequence[QAExample]", answers: Mapping[str, str], *, language: str | None = None
) -> Scores:
    """Score ``answers`` (question id -> text) on ``dataset`` with the official definitions.

    The one scoring entry: a dataset with a ``language`` (MLQA), or an explicit ``language``,
    is scored as MLQA's official script scores it (:mod:`qagate.scoring.mlqa`). Otherwise SQuAD:
    v2.0 rules apply when ``dataset.version`` is "2.0" (or, for a plain sequence, when any
    example is unanswerable). The references' normalisation is cached per ``Dataset`` object,
    so scoring several models on one dataset normalises the references once.
    """
    language = language or getattr(dataset, "language", None)
    if language:
        from qagate.scoring import mlqa

        return mlqa.score(dataset, answers, language)
    golds = _golds(dataset)
    per_em: dict[str, float] = {}
    per_f1: dict[str, float] = {}
    missing: list[str] = []
    v2 = golds.v2
    for qid, gold_norms, gold_bags in golds.items:
        prediction = answers.get(qid)
        if prediction is None:
            missing.append(qid)
            per_em[qid] = 0.0
            per_f1[qid] = 0.0
            continue
        if not isinstance(prediction, str):
            raise TypeError(f"prediction for {qid!r} is {type(prediction).__name__}, not str")
        pred = normalize_answer(prediction)
        per_em[qid] = 1.0 if pred in gold_norms else 0.0
        pred_tokens = pred.split()
        pred_counts = Counter(pred_tokens)
        best = 0.0
        for bag in gold_bags:
            value = (_f1_v2 if v2 else _f1_v1)(pred_counts, len(pred_tokens), bag)
            if value > best:
                best = value
        per_f1[qid] = best
    total = len(golds.items)
    known = golds.ids
    unknown = [qid for qid in answers if qid not in known]
    result = Scores(
        exact_match=_percent(per_em.values(), total),
        f1=_percent(per_f1.values(), total),
        total=total,
        answered=total - len(missing),
        missing=missing,
        unknown_ids=unknown,
        per_question_em=per_em,
        per_question_f1=per_f1,
    )
    if v2:
        result.has_ans = _group(per_em, per_f1, golds.has_ans)
        result.no_ans = _group(per_em, per_f1, golds.no_ans)
    return result


# --- internals ------------------------------------------------------------------------------

# A reference's token bag: (token counts, number of tokens).
_Bag = tuple[Counter, int]


def _bag(text: str) -> _Bag:
    return _bag_of_normalized(normalize_answer(text))


def _bag_of_normalized(normalized: str) -> _Bag:
    tokens = normalized.split()
    return Counter(tokens), len(tokens)


def _overlap(pred_counts: Counter, gold_counts: Counter) -> int:
    """``sum((pred & gold).values())`` without building the intersection Counter."""
    if len(gold_counts) > len(pred_counts):
        pred_counts, gold_counts = gold_counts, pred_counts
    return sum(min(n, pred_counts[t]) for t, n in gold_counts.items() if t in pred_counts)


def _f1_v1(pred_counts: Counter, pred_len: int, gold: _Bag) -> float:
    gold_counts, gold_len = gold
    num_same = _overlap(pred_counts, gold_counts)
    if num_same == 0:
        return 0.0
    precision = 1.0 * num_same / pred_len
    recall = 1.0 * num_same / gold_len
    return (2 * precision * recall) / (precision + recall)


def _f1_v2(pred_counts: Counter, pred_len: int, gold: _Bag) -> float:
    gold_counts, gold_len = gold
    if gold_len == 0 or pred_len == 0:
        return float(gold_len == pred_len)
    return _f1_v1(pred_counts, pred_len, gold)


def _percent(values: Iterable[float], total: int) -> float:
    """``100 * sum / total`` summed in order, exactly as the official scripts do."""
    return 100.0 * sum(values) / total if total else 0.0


def _group(per_em: dict[str, float], per_f1: dict[str, float], ids: list[str]) -> dict | None:
    if not ids:
        return None
    return {
        "exact_match": _percent((per_em[i] for i in ids), len(ids)),
        "f1": _percent((per_f1[i] for i in ids), len(ids)),
        "total": len(ids),
    }


@dataclass
class _Golds:
    """Normalised references of a dataset, computed once: per question (id, set of normalised
    references, unique token bags)."""

    items: list[tuple[str, frozenset, list[_Bag]]]
    ids: set[str]
    v2: bool
    has_ans: list[str]
    no_ans: list[str]


_GOLD_CACHE: "weakref.WeakKeyDictionary[object, _Golds]" = weakref.WeakKeyDictionary()


def _golds(dataset: "Dataset | Sequence[QAExample]") -> _Golds:
    try:
        return _GOLD_CACHE[dataset]
    except (KeyError, TypeError):  # TypeError: lists and tuples cannot be weakly referenced
        pass
    examples = list(dataset)
    version = getattr(dataset, "version", None)
    v2 = version == "2.0" if version is not None else any(ex.is_impossible for ex in examples)
    items = []
    has_ans: list[str] = []
    no_ans: list[str] = []
    for ex in examples:
        refs = list(ex.answers)
        if v2:
            (has_ans if refs else no_ans).append(ex.id)
            refs = [r for r in refs if normalize_answer(r)] or [""]
        norms = dict.fromkeys(normalize_answer(r) for r in refs)  # unique, in order
        items.append((ex.id, frozenset(norms), [_bag_of_normalized(n) for n in norms]))
    golds = _Golds(items=items, ids={ex.id for ex in examples}, v2=v2, has_ans=has_ans, no_ans=no_ans)
    with contextlib.suppress(TypeError):  # a plain sequence cannot be weakly referenced
        _GOLD_CACHE[dataset] = golds
    return golds
