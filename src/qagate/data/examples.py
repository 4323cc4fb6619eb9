"""Records -> validated QA examples (answer offsets checked), and deterministic subsets."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from qagate.core.errors import QagateError, quote
from qagate.data.records import QAExample

_PREVIEW = 5  # how many offending ids an error message names before "and N more"


def check_text(value: str, path: object, where: str, what: str) -> None:
    """Text that is not Unicode (a lone surrogate escape such as ``"\\ud800"`` in JSON, which
    Python decodes but no file, cache or database can store) is a one-line QagateError."""
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QagateError(
            f"{what} holds a lone surrogate escape (\\u{ord(value[exc.start]):04x} at offset "
            f"{exc.start}), which is not a character",
            path=path,
            item=where,
            hint="fix the \\uXXXX escapes: a character beyond U+FFFF is written as a pair",
        ) from None


def _answers(raw: Any, path: object, where: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Accept both the official list of {"text", "answer_start"} and the Hugging Face columns
    {"text": [...], "answer_start": [...]}."""
    if raw is None:
        raise QagateError('missing "answers"', path=path, item=where)
    if isinstance(raw, dict):
        texts, starts = raw.get("text"), raw.get("answer_start")
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise QagateError(
                '"answers" must hold equally long lists "text" and "answer_start"', path=path, item=where
            )
    elif isinstance(raw, list):
        texts, starts = [], []
        for answer in raw:
            if not isinstance(answer, dict) or "text" not in answer or "answer_start" not in answer:
                raise QagateError(
                    'each answer must be an object with "text" and "answer_start"', path=path, item=where
                )
            texts.append(answer["text"])
            starts.append(answer["answer_start"])
    else:
        raise QagateError(
            f'"answers" must be a list or an object, found {kind_of(raw)}', path=path, item=where
        )
    if not all(isinstance(t, str) for t in texts):
        raise QagateError("answer texts must be strings", path=path, item=where)
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in starts):
        raise QagateError("answer_start values must be non-negative integers", path=path, item=where)
    return tuple(texts), tuple(starts)


def build_examples(records: list[dict], source: str, *, strict: bool) -> tuple[QAExample, ...]:
    """Turn raw records into validated examples: shapes, unique ids, answer offsets."""
    if not records:
        raise QagateError("contains no questions", path=source)
    examples = []
    seen: dict[str, int] = {}
    duplicates: list[str] = []
    mismatched: list[tuple[str, str, int, str]] = []
    article_of_title: dict[str, int] = {}
    last_context = None  # SQuAD's questions share their paragraph's context: checked once
    for n, rec in enumerate(records):
        where = rec.get("_where") or f"record {n}"
        qid = rec.get("id")
        if isinstance(qid, int) and not isinstance(qid, bool):
            qid = str(qid)
        if not isinstance(qid, str) or not qid:
            raise QagateError('question without a string "id"', path=source, item=where)
        where = f"question {quote(qid, 60) if not qid.isprintable() or len(qid) > 60 else qid}"
        for key in ("context", "question"):
            if not isinstance(rec.get(key), str):
                raise QagateError(
                    f'"{key}" must be a string, found {kind_of(rec.get(key))}', path=source, item=where
                )
        title = rec.get("title") or ""
        if not isinstance(title, str):
            raise QagateError(f'"title" must be a string, found {kind_of(title)}', path=source, item=where)
        check_text(qid, source, where, '"id"')
        check_text(title, source, where, '"title"')
        check_text(rec["question"], source, where, '"question"')
        if rec["context"] is not last_context:
            check_text(rec["context"], source, where, '"context"')
            last_context = rec["context"]
        impossible = rec.get("is_impossible", False)
        if not isinstance(impossible, bool):
            raise QagateError('"is_impossible" must be true or false', path=source, item=where)
        texts, starts = _answers(rec.get("answers"), source, where)
        for text in texts:
            check_text(text, source, where, "an answer")
        if impossible and texts:
            raise QagateError(
                "marked is_impossible but has answers",
                path=source,
                item=where,
                hint='empty its "answers" or drop the flag',
            )
        context = rec["context"]
        fixed_starts = []
        for text, start in zip(texts, starts):
            if context[start : start + len(text)] != text:
                found = _nearest(context, text, start) if not strict else None
                if found is None:
                    mismatched.append((qid, text, start, context[start : start + len(text)]))
                    continue
                start = found
            fixed_starts.append(start)
        article = rec.get("_article")
        if article is None:  # records: articles numbered by first appearance of their title
            article = article_of_title.setdefault(title, len(article_of_title))
        labels: tuple[tuple[str, str], ...] = ()
        if rec.get("slices") is not None:
            from qagate.data.slices import check_labels

            labels = check_labels(rec["slices"], source, where)
        if qid in seen:
            duplicates.append(qid)
        seen[qid] = n
        examples.append(
            QAExample(
                id=qid,
                title=title,
                context=context,
                question=rec["question"],
                answers=texts,
                answer_starts=tuple(fixed_starts),
                is_impossible=impossible or not texts,
                article=article,
                labels=labels,
            )
        )
    if duplicates:
        raise QagateError(
            f"{len(duplicates)} duplicate question id(s): {preview(duplicates)}",
            path=source,
            hint="every question needs its own id",
        )
    if mismatched:
        qid, text, start, got = mismatched[0]
        ids = list(dict.fromkeys(m[0] for m in mismatched))
        raise QagateError(
            f"{len(mismatched)} reference answer(s) in {len(ids)} question(s) do not match "
            f"context[answer_start:answer_start+len(text)]: {preview(ids)}; first: {qid} "
            f"answer {quote(text)} at {start} reads {quote(got)}",
            path=source,
            hint="fix answer_start"
            + (
                ""
                if not strict
                else "; in Python, load_dataset(..., strict=False) re-locates answers by their text"
            ),
        )
    return tuple(examples)


def _nearest(context: str, text: str, start: int) -> int | None:
    """Offset of the occurrence of ``text`` in ``context`` closest to ``start``, if any."""
    best = None
    pos = context.find(text)
    while pos != -1:
        if best is None or abs(pos - start) < abs(best - start):
            best = pos
        pos = context.find(text, pos + 1)
    return best


# --- subsets -------------------------------------------------------------------------------


def subset(
    examples: tuple[QAExample, ...],
    source: str,
    *,
    limit: int | None,
    seed: int | None,
    articles: tuple[int, int] | None,
) -> tuple[tuple[QAExample, ...], str]:
    """The deterministic subset and the suffix that names it."""
    suffix = ""
    if articles is not None:
        lo, hi = articles
        count = max(ex.article for ex in examples) + 1
        if not (0 <= lo <= hi < count):
            raise QagateError(
                f"article range {lo}-{hi} is outside 0-{count - 1}",
                path=source,
                hint=f"this dataset has {count} articles",
            )
        examples = tuple(ex for ex in examples if lo <= ex.article <= hi)
        suffix += f"-articles-{lo}-{hi}"
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise QagateError(f"limit must be a positive integer, got {quote(limit)}", path=source)
        if limit < len(examples):
            if seed is None:
                examples = examples[:limit]
                suffix += f"-first-{limit}"
            else:
                keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
                examples = tuple(examples[i] for i in keep)
                suffix += f"-sample-{limit}-seed-{seed}"
    return examples, suffix


def kind_of(value: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def preview(items: Sequence[str]) -> str:
    shown = ", ".join(_short(str(i)) for i in items[:_PREVIEW])
    more = len(items) - _PREVIEW
    return f"{shown} and {more} more" if more > 0 else shown


def _short(text: str) -> str:
    return text if len(text) <= 60 and text.isprintable() else quote(text, 60)
