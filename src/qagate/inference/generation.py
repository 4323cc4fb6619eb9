"""Batched greedy answer generation for causal LMs: prompts, left padding, KV cache, stop strings.

* a prompt is the declaration's template filled with the context and question (zero-shot), or
  preceded by one solved example from another article (one-shot), optionally wrapped in the
  tokenizer's chat template;
* prompts are tokenised once, sorted by length and cut into batches, so a batch pads little;
  each batch is left-padded and decoded greedily by ``model.generate`` (``do_sample=False``,
  KV cache), and a sequence stops on its own when it emits a stop string or end-of-sequence;
* the answer is post-processed the same way every time (:func:`clean_answer`).

Greedy decoding with the attention mask and left padding does not depend on what else is in the
batch, so the same questions give the same answers at any batch size. torch is imported inside
the functions. The engine imports nothing from the adapters.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from qagate.core.clocklock import working
from qagate.data.predictions import Predictions

DEFAULT_PROMPT = "Context: {context}\nQuestion: {question}\nAnswer:"
_ANSWER_PREFIX = "answer:"


@dataclass(frozen=True)
class GenerationSettings:
    """Prompting and decoding settings of one generative model (what changes its answers)."""

    prompt: str = DEFAULT_PROMPT
    shots: int = 0
    max_new_tokens: int = 32
    stop: tuple[str, ...] = ("\n",)
    chat_template: bool = False
    batch_size: int = 8


def find_stop(text: str, stops: Sequence[str]) -> int:
    """Where the first stop string starts after the leading white space (-1 when none does)."""
    lead = len(text) - len(text.lstrip())
    found = [i for i in (text.find(s, lead) for s in stops) if i >= 0]
    return min(found) if found else -1


def clean_answer(text: str, stops: Sequence[str]) -> str:
    """Strip, cut at the first stop string, drop a leading "Answer:" (always in this order)."""
    cut = find_stop(text, stops)
    if cut >= 0:
        text = text[:cut]
    text = text.strip()
    if text.lower().startswith(_ANSWER_PREFIX):
        text = text[len(_ANSWER_PREFIX) :].strip()
    return text


def pick_shot(example: Any, pool: Sequence[Any]) -> Any | None:
    """The one-shot example for ``example``: from another article (title), chosen by a hash of the
    two ids, so the choice never depends on batch size or on the order of ``pool``."""
    candidates = [c for c in pool if c.title != example.title and c.context != example.context and c.answers]
    if not candidates:
        return None
    return min(candidates, key=lambda c: hashlib.sha256(f"{example.id}\0{c.id}".encode()).hexdigest())


def build_prompt(example: Any, settings: GenerationSettings, tokenizer: Any, shot: Any | None = None) -> str:
    """The text fed to the model for one question (chat-formatted when ``chat_template`` is set)."""
    question = settings.prompt.format(context=example.context, question=example.question)
    if settings.chat_template:
        messages = []
        if shot is not None:
            shot_text = settings.prompt.format(context=shot.context, question=shot.question)
            messages += [
                {"role": "user", "content": shot_text},
                {"role": "assistant", "content": shot.answers[0]},
            ]
        messages.append({"role": "user", "content": question})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if shot is None:
        return question
    shot_text = settings.prompt.format(context=shot.context, question=shot.question)
    return f"{shot_text} {shot.answers[0]}\n\n{question}"


class _StopOnStrings:
    """A per-sequence stopping criterion: done once the generated text holds a stop string."""

    def __init__(self, tokenizer: Any, prompt_len: int, stops: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.stops = tuple(stops)
        self.stopped_at: dict[int, int] = {}  # row -> tokens generated when its stop string appeared

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if not self.stops:
            return done
        rows = input_ids[:, self.prompt_len :].tolist()
        for row, ids in enumerate(rows):
            if row in self.stopped_at:
                done[row] = True
                continue
            if find_stop(self.tokenizer.decode(ids, skip_special_tokens=True), self.stops) >= 0:
                self.stopped_at[row] = len(ids)
                done[row] = True
        return done


class GenerationEngine:
    """Answers questions with a loaded causal LM and its tokenizer (see the module docstring)."""

    def __init__(self, model: Any, tokenizer: Any, settings: GenerationSettings, device: str = "cpu") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self.device = device
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}

    def prompts(self, examples: Sequence[Any], pool: Sequence[Any] | None = None) -> list[str]:
        """One prompt per example; one-shot examples come from ``pool`` (default: ``examples``)."""
        if self.settings.shots == 0:
            return [build_prompt(ex, self.settings, self.tokenizer) for ex in examples]
        pool = examples if pool is None else pool
        out = []
        for ex in examples:
            shot = pick_shot(ex, pool)
            if shot is None:
                from qagate.data.loaders import load_dataset

                shot = pick_shot(ex, load_dataset("sample").examples)
            out.append(build_prompt(ex, self.settings, self.tokenizer, shot))
        return out

    @working()  # never while another process times a model (qagate.core.clocklock)
    def predict(
        self,
        examples: Sequence[Any],
        progress: Callable[[int], None] | None = None,
        pool: Sequence[Any] | None = None,
    ) -> Predictions:
        """Greedy answers, per-question seconds (share of the batch) and generated token counts."""
        import torch

        result = Predictions(answers={}, confidence={}, seconds={}, tokens={})
        if not examples:
            result.total_seconds = 0.0
            return result
        started = time.perf_counter()
        texts = self.prompts(examples, pool)
        special = not self.settings.chat_template  # a chat template already holds the special tokens
        encoded = self.tokenizer(texts, add_special_tokens=special)["input_ids"]
        order = sorted(range(len(examples)), key=lambda i: (-len(encoded[i]), i))
        answers: dict[str, str] = {}
        size = self.settings.batch_size
        with torch.inference_mode():
            for lo in range(0, len(order), size):
                batch = order[lo : lo + size]
                t0 = time.perf_counter()
                generated = self._generate([encoded[i] for i in batch])
                share = (time.perf_counter() - t0) / len(batch)
                for i, (text, count) in zip(batch, generated):
                    qid = examples[i].id
                    answers[qid] = clean_answer(text, self.settings.stop)
                    result.seconds[qid] = share
                    result.tokens[qid] = count
                if progress is not None:
                    progress(len(batch))
        result.answers = {ex.id: answers[ex.id] for ex in examples}  # dataset order
        result.total_seconds = time.perf_counter() - started
        return result

    def _generate(self, rows: list[list[int]]) -> list[tuple[str, int]]:
        """Greedy continuations of one left-padded batch: (generated text, tokens generated)."""
        import torch
        from transformers import StoppingCriteriaList

        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=self.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        stop = _StopOnStrings(self.tokenizer, width, self.settings.stop)
        stopping = StoppingCriteriaList([stop])
        out = self.model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=False,
            num_beams=1,
            max_new_tokens=self.settings.max_new_tokens,
            pad_token_id=pad,
            eos_token_id=sorted(self.eos_ids) or None,
            stopping_criteria=stopping,
            use_cache=True,
            temperature=None,
            top_p=None,
            top_k=None,
        )
        results = []
        for n, row in enumerate(out[:, width:].tolist()):
            # generated = up to the stop string, or up to and including end-of-sequence; what
            # follows is filler from generate (the same count at any batch size)
            count = stop.stopped_at.get(n, len(row))
            for i, token in enumerate(row[:count]):
                if token in self.eos_ids:
                    count = i + 1
                    break
            kept = row[:count]
            text = self.tokenizer.decode([t for t in kept if t not in self.eos_ids], skip_special_tokens=True)
            results.append((text, count))
        return results
