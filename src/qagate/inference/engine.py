"""Batched extractive question answering: windows, buckets, one forward per batch, span search.

The decoder reproduces the transformers 4.x ``QuestionAnsweringPipeline`` (which transformers 5
removed) so that numbers measured through it stay comparable:

* each question/context pair is cut into windows of ``max_seq_len`` tokens that overlap by
  ``doc_stride`` tokens (context-only truncation);
* per window, start and end logits go through a softmax over the context tokens and the
  ``[CLS]`` token (question, special and padding tokens are masked out), then ``[CLS]`` is
  dropped; a span's score is ``p_start * p_end`` with ``end >= start`` and at most
  ``max_answer_len`` tokens;
* the window's best ``candidates_per_window`` spans (the pipeline's ``top_k * 2 + 10``) are
  widened to whole words and turned into context text; equal texts (ignoring case) found in
  several places or windows add their scores; the best text is the answer and its summed
  score is the confidence;
* with a ``null_threshold`` (SQuAD v2.0), the pipeline's ``handle_impossible_answer`` null
  score, the smallest ``p_start[CLS] * p_end[CLS]`` over the question's windows, competes with
  that best text: the answer is "" when ``null - best > null_threshold`` (0.0: exactly
  ``handle_impossible_answer=True``, where a tie keeps the span). Without one, never "".

Unlike the pipeline it tokenises many questions in one call, sorts the windows by length into
batches padded only to the batch's longest window, and searches spans for the whole batch with
tensor operations (a ``(batch, tokens, max_answer_len)`` band of span scores and one top-k), so
the only Python loop left is over the few candidates per window.

torch and numpy are imported by the functions that need them: importing this module is cheap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from qagate.core.clocklock import working
from qagate.core.errors import QagateError
from qagate.data.predictions import Predictions

# The 4.x pipeline keeps top_k * 2 + 10 candidates per window when it aligns answers to words.
PIPELINE_CANDIDATES = 12
_MASKED = -10000.0  # the logit the 4.x pipeline gives tokens that cannot be in an answer


@dataclass(frozen=True)
class EngineSettings:
    """Inference settings; the first three carry the 4.x pipeline's names and defaults."""

    max_seq_len: int = 384
    doc_stride: int = 128
    max_answer_len: int = 15
    batch_size: int = 32
    candidates_per_window: int = PIPELINE_CANDIDATES
    questions_per_chunk: int = 256  # tokenised together; bounds memory and paces progress
    # On CPU a batch also stops at this many (padded) tokens. 1,024 answers the 1,988 held-out
    # questions as fast as 4,096 (61.99 vs 62.70 s, reference MiniLM, 2 cores) with 420 MB less
    # peak memory (756 vs 1,175 MB): bench/bench_engine_split.py.
    cpu_batch_tokens: int = 1024
    # SQuAD v2.0: answer "" when the null score beats the best span by more than this
    # (None: never, the pipeline's default handle_impossible_answer=False).
    null_threshold: float | None = None


def span_probabilities(start_logits, end_logits, allowed):
    """The pipeline's start/end probabilities of every window and its null scores.

    Softmax over the ``allowed`` tokens (``[CLS]`` included); returns ``(start, end, null)``
    where ``null`` ``(B,)`` is ``p_start * p_end`` at position 0 (``[CLS]``), read before
    position 0 is zeroed in ``start``/``end`` so that no span can use it.
    """
    start = start_logits.float().masked_fill(~allowed, _MASKED).softmax(-1)
    end = end_logits.float().masked_fill(~allowed, _MASKED).softmax(-1)
    null = start[:, 0] * end[:, 0]
    start[:, 0] = 0.0  # the pipeline keeps [CLS] in the softmax, then never answers with it
    end[:, 0] = 0.0
    return start, end, null


def prefers_no_answer(null_score: float, best_score: float, threshold: float | None) -> bool:
    """Whether a question's answer is "": its null score beats its best span by more than
    ``threshold`` (None: never). Ties keep the span, as the pipeline's stable sort does."""
    return threshold is not None and null_score - best_score > threshold


def best_spans(start_logits, end_logits, allowed, max_answer_len: int, k: int):
    """Top-``k`` spans of every window in a batch, scored as the 4.x pipeline scores them.

    ``start_logits``/``end_logits``: float tensors ``(B, L)``; ``allowed``: bool ``(B, L)``,
    true for tokens an answer may contain (context tokens, ``[CLS]`` at position 0 of the
    softmax only). Returns ``(scores, starts, ends)``, each ``(B, k')`` sorted best first;
    a score <= 0 marks "no candidate".
    """
    start, end, _ = span_probabilities(start_logits, end_logits, allowed)
    return top_spans(start, end, allowed, max_answer_len, k)


def top_spans(start, end, allowed, max_answer_len: int, k: int):
    """:func:`best_spans` from probabilities already computed by :func:`span_probabilities`."""
    import torch

    batch, length = start.shape
    width = max(1, min(max_answer_len, length))
    # band[b, i, w] = end[b, i + w]: every span of 1..width tokens starting at i.
    end_band = torch.cat([end, end.new_zeros(batch, width - 1)], dim=1).unfold(1, width, 1)
    ok_band = torch.cat([allowed, allowed.new_zeros(batch, width - 1)], dim=1).unfold(1, width, 1)
    scores = start.unsqueeze(-1) * end_band
    scores = scores.masked_fill(~(allowed.unsqueeze(-1) & ok_band), -1.0)
    top = scores.flatten(1).topk(min(k, length * width), dim=1)
    starts = torch.div(top.indices, width, rounding_mode="floor")
    ends = starts + top.indices % width
    return top.values, starts, ends


class ExtractiveEngine:
    """Runs a loaded QA model and fast tokenizer over examples; see the module docstring."""

    def __init__(
        self, model: Any, tokenizer: Any, settings: EngineSettings = EngineSettings(), device: str = "cpu"
    ) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise QagateError(
                "the extractive engine needs a fast tokenizer (a tokenizer.json file)",
                hint="save the tokenizer with a recent transformers to create one",
            )
        if settings.doc_stride >= settings.max_seq_len:
            raise QagateError(
                f"doc_stride ({settings.doc_stride}) must be smaller than max_seq_len "
                f"({settings.max_seq_len})"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self.device = device
        self.question_first = tokenizer.padding_side == "right"
        self.context_index = 1 if self.question_first else 0
        names = getattr(tokenizer, "model_input_names", ["input_ids", "attention_mask"])
        self.use_token_types = "token_type_ids" in names
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.cls_id = tokenizer.cls_token_id

    @working()  # never while another process times a model (qagate.core.clocklock)
    def predict(self, examples: Sequence, progress: Callable[[int], None] | None = None) -> Predictions:
        """Answers, confidences and per-question seconds (each question's share of the time
        of the tokenisation, batches and decoding it took part in)."""
        began = time.perf_counter()
        result = Predictions(answers={}, confidence={}, seconds={})
        step = max(1, self.settings.questions_per_chunk)
        for first in range(0, len(examples), step):
            chunk = examples[first : first + step]
            self._predict_chunk(chunk, result)
            if progress is not None:
                progress(len(chunk))
        result.total_seconds = time.perf_counter() - began
        return result

    # -- one chunk of questions -------------------------------------------------------------

    def _tokenize(self, chunk: Sequence):
        questions = [ex.question for ex in chunk]
        contexts = [ex.context for ex in chunk]
        first, second = (questions, contexts) if self.question_first else (contexts, questions)
        try:
            return self.tokenizer(
                first,
                second,
                truncation="only_second" if self.question_first else "only_first",
                max_length=self.settings.max_seq_len,
                stride=self.settings.doc_stride,
                return_overflowing_tokens=True,
                return_token_type_ids=self.use_token_types,
                padding=False,
            )
        except Exception as exc:  # tokenizers raises plain exceptions for impossible windows
            raise QagateError(
                f"cannot cut questions into windows of max_seq_len="
                f"{self.settings.max_seq_len} with doc_stride={self.settings.doc_stride}: "
                f"{str(exc).splitlines()[0]}",
                hint="a question may be longer than the window; raise max_seq_len or lower doc_stride",
            ) from None

    def _predict_chunk(self, chunk: Sequence, result: Predictions) -> None:
        import numpy as np

        t0 = time.perf_counter()
        encoded = self._tokenize(chunk)
        encodings = encoded.encodings
        owner = list(encoded["overflow_to_sample_mapping"])
        windows = []  # (input ids, token type ids, allowed mask) per window
        for enc in encodings:
            ids = np.asarray(enc.ids, dtype=np.int64)
            allowed = np.fromiter(
                (s == self.context_index for s in enc.sequence_ids), dtype=bool, count=len(enc.ids)
            )
            if self.cls_id is not None:
                allowed |= ids == self.cls_id  # the pipeline keeps [CLS] in the softmax
            windows.append((ids, np.asarray(enc.type_ids, dtype=np.int64), allowed))
        per_question = [(time.perf_counter() - t0) / len(chunk)] * len(chunk)

        candidates: list[list[tuple[float, int, int]]] = [[] for _ in windows]
        nulls = [0.0] * len(windows)
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][0]))
        for batch in self._batches(order, [len(windows[w][0]) for w in order]):
            t_batch = time.perf_counter()
            found, batch_nulls = self._run_batch([windows[w] for w in batch])
            for i, w in enumerate(batch):
                candidates[w] = found[i]
                nulls[w] = batch_nulls[i]
            share = (time.perf_counter() - t_batch) / len(batch)
            for w in batch:
                per_question[owner[w]] += share

        t_merge = time.perf_counter()
        by_question: list[list[int]] = [[] for _ in chunk]
        for w, q in enumerate(owner):
            by_question[q].append(w)
        for q, ex in enumerate(chunk):
            text, score = self._merge(ex.context, [(encodings[w], candidates[w]) for w in by_question[q]])
            null = min(nulls[w] for w in by_question[q])
            if prefers_no_answer(null, score, self.settings.null_threshold):
                text, score = "", null
            result.answers[ex.id] = text
            result.confidence[ex.id] = score
        merge_share = (time.perf_counter() - t_merge) / len(chunk)
        for q, ex in enumerate(chunk):
            result.seconds[ex.id] = per_question[q] + merge_share

    def _batches(self, order: list[int], lengths: list[int]):
        """Consecutive runs of the length-sorted windows: at most ``batch_size`` windows and,
        on CPU, at most ``cpu_batch_tokens`` padded tokens (always at least one window)."""
        size = max(1, self.settings.batch_size)
        budget = self.settings.cpu_batch_tokens if str(self.device).startswith("cpu") else None
        batch: list[int] = []
        for w, length in zip(order, lengths):
            if batch and (len(batch) == size or (budget and (len(batch) + 1) * length > budget)):
                yield batch
                batch = []
            batch.append(w)
        if batch:
            yield batch

    def _run_batch(self, batch: list) -> tuple[list[list[tuple[float, int, int]]], list[float]]:
        """Forward one length-bucket of windows, padded to its longest: their spans and their
        null scores."""
        import numpy as np
        import torch

        length = max(len(ids) for ids, _, _ in batch)
        input_ids = np.full((len(batch), length), self.pad_id, dtype=np.int64)
        type_ids = np.zeros((len(batch), length), dtype=np.int64)
        attention = np.zeros((len(batch), length), dtype=np.int64)
        allowed = np.zeros((len(batch), length), dtype=bool)
        for row, (ids, types, ok) in enumerate(batch):
            n = len(ids)
            input_ids[row, :n] = ids
            type_ids[row, :n] = types
            attention[row, :n] = 1
            allowed[row, :n] = ok
        inputs = {
            "input_ids": torch.from_numpy(input_ids).to(self.device),
            "attention_mask": torch.from_numpy(attention).to(self.device),
        }
        if self.use_token_types:
            inputs["token_type_ids"] = torch.from_numpy(type_ids).to(self.device)
        with torch.inference_mode():
            out = self.model(**inputs)
            mask = torch.from_numpy(allowed).to(self.device)
            start, end, null = span_probabilities(out.start_logits, out.end_logits, mask)
            scores, starts, ends = top_spans(
                start, end, mask, self.settings.max_answer_len, self.settings.candidates_per_window
            )
        # .tolist() copies to the host, which also waits for the GPU: the batch time is honest.
        rows = zip(scores.tolist(), starts.tolist(), ends.tolist())
        return [[(s, b, e) for s, b, e in zip(*row) if s > 0.0] for row in rows], null.tolist()

    def _merge(self, context: str, windows: list) -> tuple[str, float]:
        """Word-aligned candidate texts of one question's windows, equal texts (ignoring case)
        adding up, in the pipeline's order; the best text and its score."""
        merged: dict[str, list] = {}
        for enc, found in windows:
            for score, s, e in found:
                begin, finish = self._chars(enc, s, e)
                text = context[begin:finish]
                key = text.lower()
                if key in merged:
                    merged[key][0] += score
                else:
                    merged[key] = [score, text]
        if not merged:
            return "", 0.0
        best = max(merged.values(), key=lambda item: item[0])  # first of equals, as a stable sort
        return best[1], float(best[0])

    def _chars(self, enc, s: int, e: int) -> tuple[int, int]:
        """Character span of tokens ``s..e`` widened to whole words (the pipeline's
        ``align_to_words``); plain token offsets where the tokenizer has no words."""
        try:
            begin = enc.word_to_chars(enc.token_to_word(s), sequence_index=self.context_index)[0]
            finish = enc.word_to_chars(enc.token_to_word(e), sequence_index=self.context_index)[1]
        except Exception:
            begin, finish = enc.offsets[s][0], enc.offsets[e][1]
        return begin, finish
