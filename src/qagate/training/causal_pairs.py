"""SQuAD examples -> (prompt, answer) token pairs for training a causal LM, and their batches.

A pair is the prompt exactly as the generative engine builds it for the question, tokenised as
the engine tokenises it, followed by the tokens of ``" <first gold answer>" + stop string``:
what the model should generate after the prompt, up to and including the stop string. Only
those answer tokens carry a loss.

Batches are left-padded, as the engine pads for generation, so every row's answer ends in the
last column: the last ``K + 1`` positions (K = the longest answer in the batch) hold every
logit the loss needs, and the model computes only those (``logits_to_keep``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CausalPairs:
    """Unpadded prompt + answer token rows; parallel lists indexed by pair number."""

    input_ids: list[list[int]] = field(default_factory=list)
    answer_lengths: list[int] = field(default_factory=list)
    example_index: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


def answer_text(example: Any, stop: Sequence[str]) -> str | None:
    """What the model should generate for ``example``: its first gold answer after one space
    (as a one-shot prompt shows answers) and the first stop string; None when unanswerable."""
    if example.is_impossible or not example.answers:
        return None
    return f" {example.answers[0].strip()}{stop[0] if stop else ''}"


def build_pairs(
    tokenizer: Any,
    examples: Sequence[Any],
    prompts: Sequence[str],
    *,
    stop: Sequence[str],
    max_seq_len: int,
    special_tokens: bool = True,
) -> tuple[CausalPairs, int]:
    """Tokenise ``prompts[i]`` + the answer of ``examples[i]``; returns the pairs and how many
    examples were left out (no answer, or longer than ``max_seq_len`` tokens: cutting the
    context could cut the answer out of it). ``special_tokens`` as the engine adds them."""
    pairs, skipped = CausalPairs(), 0
    for index, (example, prompt) in enumerate(zip(examples, prompts, strict=True)):
        target = answer_text(example, stop)
        if target is None:
            skipped += 1
            continue
        prompt_ids = tokenizer(prompt, add_special_tokens=special_tokens)["input_ids"]
        answer_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
        if len(prompt_ids) + len(answer_ids) > max_seq_len or not prompt_ids or not answer_ids:
            skipped += 1
            continue
        pairs.input_ids.append(list(prompt_ids) + list(answer_ids))
        pairs.answer_lengths.append(len(answer_ids))
        pairs.example_index.append(index)
    return pairs, skipped


def collate_pairs(pairs: CausalPairs, indices: Sequence[int], pad_token_id: int) -> dict[str, Any]:
    """Left-pad the chosen pairs to the longest of them.

    ``labels`` [batch, K] are the last K tokens of each row and ``label_mask`` marks the ones
    that belong to that row's answer (K = the longest answer here); the logits that predict
    them are those of the K positions before the last. ``position_ids`` count real tokens
    only, so a left-padded row is numbered as it would be alone. ``window_index`` says which
    pairs these are.
    """
    import torch

    width = max(len(pairs.input_ids[i]) for i in indices)
    ids = torch.full((len(indices), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(indices), width), dtype=torch.long)
    for row, i in enumerate(indices):
        n = len(pairs.input_ids[i])
        ids[row, width - n :] = torch.tensor(pairs.input_ids[i])
        mask[row, width - n :] = 1
    answer = torch.tensor([pairs.answer_lengths[i] for i in indices])
    k = int(answer.max())
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "position_ids": (mask.cumsum(dim=1) - 1).clamp(min=0),
        "labels": ids[:, width - k :],
        "label_mask": torch.arange(k)[None, :] >= (k - answer)[:, None],
        "window_index": torch.tensor(list(indices)),
    }
