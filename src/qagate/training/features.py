"""SQuAD examples -> labelled token windows for extractive-QA training, and batching.

A context longer than the model's input is cut into overlapping windows (question + a slice of
the context, ``truncation="only_second"`` with ``stride`` tokens of overlap), exactly as the
Hugging Face ``run_qa`` recipe does. Each window is labelled with the token indices of the
first reference answer; a window that does not contain the whole answer points both labels at
the CLS token (index 0), which teaches the model to say "not in this window".

Windows are kept unpadded; ``length_grouped_batches`` groups windows of similar length so that
dynamic padding (``collate``) wastes little compute.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qagate.core.errors import QagateError

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import QAExample

#: Questions longer than this many tokens are cut (BERT's ``max_query_length``), so that a
#: window always has room for context.
MAX_QUERY_LEN = 64

#: Examples tokenised per call: large enough for the fast tokenizer's batching, small enough
#: to keep memory flat on the full dev set.
_CHUNK = 512


@dataclass
class TrainingWindows:
    """Unpadded, labelled windows; parallel lists indexed by window number.

    ``offsets[w][t]`` is the (start, end) character span of token ``t`` in its example's
    context, or ``None`` for question and special tokens.
    """

    input_ids: list[list[int]] = field(default_factory=list)
    token_type_ids: list[list[int]] | None = None
    start_positions: list[int] = field(default_factory=list)
    end_positions: list[int] = field(default_factory=list)
    example_index: list[int] = field(default_factory=list)
    offsets: list[list[tuple[int, int] | None]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]

    @property
    def answerable(self) -> int:
        """How many windows contain their answer (label not on CLS)."""
        return sum(1 for s in self.start_positions if s != 0)


def check_window_settings(max_seq_len: int, stride: int) -> None:
    """Reject settings the tokenizer cannot honour, before any tokenising."""
    if max_seq_len < MAX_QUERY_LEN + 8:
        raise QagateError(
            f"max_seq_len {max_seq_len} is too small",
            hint=f"use at least {MAX_QUERY_LEN + 8}; SQuAD models use 256 or 384",
        )
    room = max_seq_len - MAX_QUERY_LEN - 3
    if not 0 <= stride < room:
        raise QagateError(
            f"stride {stride} must be between 0 and {room - 1} for max_seq_len {max_seq_len}",
            hint="the stride is the token overlap between windows, e.g. 128 for 384 or 96 for 256",
        )


def _clip_question(tokenizer: Any, question: str) -> str:
    """Strip leading space (some SQuAD questions have it) and cut after MAX_QUERY_LEN tokens."""
    question = question.lstrip()
    enc = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if len(offsets) > MAX_QUERY_LEN:
        question = question[: offsets[MAX_QUERY_LEN - 1][1]]
    return question


def _label(offsets: Sequence[tuple[int, int] | None], start_char: int, end_char: int) -> tuple[int, int]:
    """Token indices of the answer span inside one window, or (0, 0) when it is not all there."""
    context = [i for i, span in enumerate(offsets) if span is not None]
    first, last = context[0], context[-1]
    spans = [span or (0, 0) for span in offsets]  # only context tokens (never None) are read
    if not (spans[first][0] <= start_char and spans[last][1] >= end_char):
        return 0, 0
    start = first
    while start <= last and spans[start][0] <= start_char:
        start += 1
    end = last
    while end >= first and spans[end][1] >= end_char:
        end -= 1
    return start - 1, end + 1


def build_windows(
    tokenizer: Any, examples: Sequence["QAExample"], *, max_seq_len: int, stride: int
) -> TrainingWindows:
    """Tokenise ``examples`` into labelled windows (question first, context second).

    ``tokenizer`` must be a fast (Rust) tokenizer: offsets are needed to find the answer tokens.
    Examples marked impossible (SQuAD v2.0) are labelled (0, 0) in every window.
    """
    check_window_settings(max_seq_len, stride)
    if not getattr(tokenizer, "is_fast", False):
        raise QagateError(
            "training needs a fast tokenizer (tokenizer.json) to map answers to tokens",
            hint="save the model's tokenizer with a recent transformers release",
        )
    windows = TrainingWindows()
    keep_types = "token_type_ids" in tokenizer.model_input_names
    if keep_types:
        windows.token_type_ids = []
    for lo in range(0, len(examples), _CHUNK):
        chunk = examples[lo : lo + _CHUNK]
        enc = tokenizer(
            [_clip_question(tokenizer, ex.question) for ex in chunk],
            [ex.context for ex in chunk],
            truncation="only_second",
            max_length=max_seq_len,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=False,
        )
        for w, local in enumerate(enc["overflow_to_sample_mapping"]):
            example = chunk[local]
            seq_ids = enc.sequence_ids(w)
            offsets = [
                tuple(span) if seq_ids[t] == 1 else None for t, span in enumerate(enc["offset_mapping"][w])
            ]
            if example.is_impossible or not example.answers:
                start, end = 0, 0
            else:
                start_char = example.answer_starts[0]
                start, end = _label(offsets, start_char, start_char + len(example.answers[0]))
            windows.input_ids.append(list(enc["input_ids"][w]))
            if windows.token_type_ids is not None:
                windows.token_type_ids.append(list(enc["token_type_ids"][w]))
            windows.start_positions.append(start)
            windows.end_positions.append(end)
            windows.example_index.append(lo + local)
            windows.offsets.append(offsets)
    return windows


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int, group: int = 50
) -> list[list[int]]:
    """Window indices batched so that each batch holds windows of similar length.

    Shuffle, cut into mega-batches of ``group`` batches, sort each mega-batch by length, cut it
    into batches, and shuffle the batch order (the Hugging Face ``LengthGroupedSampler``
    recipe). The order depends only on ``(seed, epoch)``, so a resumed run can skip exactly the
    batches it has already seen.
    """
    if batch_size < 1:
        raise QagateError(f"batch size must be at least 1, got {batch_size}")
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = batch_size * group
    batches: list[list[int]] = []
    for lo in range(0, len(order), mega):
        block = sorted(order[lo : lo + mega], key=lambda i: -lengths[i])
        batches.extend(block[i : i + batch_size] for i in range(0, len(block), batch_size))
    rng.shuffle(batches)
    return batches


def collate(windows: TrainingWindows, indices: Sequence[int], pad_token_id: int) -> dict[str, Any]:
    """Pad the chosen windows to the longest of them; tensors for a training step.

    ``window_index`` (not a model input) says which windows these are, for cached teacher
    logits.
    """
    import torch

    width = max(len(windows.input_ids[i]) for i in indices)
    ids = torch.full((len(indices), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(indices), width), dtype=torch.long)
    types = torch.zeros((len(indices), width), dtype=torch.long)
    for row, i in enumerate(indices):
        n = len(windows.input_ids[i])
        ids[row, :n] = torch.tensor(windows.input_ids[i])
        mask[row, :n] = 1
        if windows.token_type_ids is not None:
            types[row, :n] = torch.tensor(windows.token_type_ids[i])
    batch = {
        "input_ids": ids,
        "attention_mask": mask,
        "start_positions": torch.tensor([windows.start_positions[i] for i in indices]),
        "end_positions": torch.tensor([windows.end_positions[i] for i in indices]),
        "window_index": torch.tensor(list(indices)),
    }
    if windows.token_type_ids is not None:
        batch["token_type_ids"] = types
    return batch


MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """The part of a collated batch that the model's ``forward`` takes."""
    return {k: batch[k] for k in MODEL_INPUTS if k in batch}
