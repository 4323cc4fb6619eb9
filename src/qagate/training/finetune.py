"""Fine-tuning an encoder for extractive QA: model loading, the seeded resumable training loop,
and the ``qagate finetune`` recipe end to end.

The loop is shared with distillation (``qagate.training.distill``): it takes any
``loss_fn(model, batch) -> loss`` and owns everything else — length-grouped batches, AdamW with
linear warm-up and linear decay, gradient clipping, checkpoints (weights in safetensors;
optimizer, scheduler, RNG states and step with ``torch.save``, read back with
``weights_only=True``) and resumption that reproduces an uninterrupted run exactly.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from qagate.errors import QagateError
from qagate.training.features import (TrainingWindows, build_windows, check_window_settings, collate,
                                      length_grouped_batches, model_inputs)

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Logit given to padding positions before a softmax: finite (no inf - inf = NaN), and
#: exp(-1e4 / T) underflows to exactly 0 in fp32 and fp16 alike.
MASK_VALUE = -1e4

CHECKPOINTS = "checkpoints"
_WEIGHTS = "model.safetensors"
_OPTIMIZER = "optimizer.pt"
_STATE = "trainer_state.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Every hyper-parameter that changes the trained weights (recorded in the model card)."""

    epochs: int = 1
    lr: float = 1e-4
    batch_size: int = 16
    max_seq_len: int = 256
    stride: int = 96
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 42
    freeze_embeddings: bool = False
    attention_dropout: float | None = None  # None: the model's own (0.1 for BERT)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise QagateError(f"epochs must be at least 1, got {self.epochs}")
        if not self.lr > 0:
            raise QagateError(f"learning rate must be positive, got {self.lr}")
        if self.batch_size < 1:
            raise QagateError(f"batch size must be at least 1, got {self.batch_size}")
        if not 0 <= self.warmup_ratio < 1:
            raise QagateError(f"warm-up ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.weight_decay < 0:
            raise QagateError(f"weight decay must be >= 0, got {self.weight_decay}")
        if self.attention_dropout is not None and not 0 <= self.attention_dropout < 1:
            raise QagateError(f"attention dropout must be in [0, 1), got {self.attention_dropout}")
        check_window_settings(self.max_seq_len, self.stride)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """What the loop did: optimizer steps, per-step losses, wall time of this process."""

    steps: int
    steps_per_epoch: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int | None = None

    def mean_loss(self, window: slice) -> float | None:
        """Mean loss over ``losses[window]``: how the loss started and where it ended."""
        values = self.losses[window]
        return sum(values) / len(values) if values else None


# --------------------------------------------------------------------------- seeding


def set_seed(seed: int) -> None:
    """Seed every generator training touches: Python, NumPy and torch."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    """RNG states as plain Python/tensor values, so ``torch.load(weights_only=True)`` reads them."""
    import numpy as np
    import torch

    np_state = np.random.get_state(legacy=False)
    np_state["state"]["key"] = np_state["state"]["key"].tolist()
    return {"python": random.getstate(), "numpy": np_state, "torch": torch.get_rng_state()}


def _restore_rng(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = dict(state["numpy"])
    np_state["state"] = dict(np_state["state"], key=np.array(np_state["state"]["key"], dtype=np.uint32))
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"])


# --------------------------------------------------------------------------- models


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bar; we print what matters ourselves."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


#: Config keys for the dropout on attention probabilities (BERT-style, DistilBERT-style).
_ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")


def load_qa_model(path: str | Path, *, what: str = "base model",
                  attention_dropout: float | None = None) -> tuple[Any, Any, bool]:
    """Load a BERT-like encoder as a fp32 ``*ForQuestionAnswering`` model with its tokenizer.

    Returns ``(model, tokenizer, fresh_head)``; ``fresh_head`` is true when the directory held
    only an encoder (e.g. a plain ``BertModel``) and the span head was newly initialised
    (from torch's current RNG state: seed first). ``attention_dropout`` overrides the dropout
    on attention probabilities: on CPU it costs about half of a training step at 256 tokens.
    """
    import torch
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer
    from transformers.models.auto.modeling_auto import (MODEL_FOR_MASKED_LM_MAPPING_NAMES,
                                                        MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES)

    directory = Path(path)
    if not directory.is_dir():
        raise QagateError(f"{what} directory does not exist", path=directory,
                          hint="give a local Hugging Face model directory (config.json, weights, tokenizer)")
    if not (directory / "config.json").is_file():
        raise QagateError(f"{what} is not a Hugging Face model directory (no config.json)", path=directory)
    config = AutoConfig.from_pretrained(directory)
    # BERT-like: a masked-LM style encoder that transformers can put a span head on.
    bert_like = (config.model_type in MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES
                 and config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not config.is_encoder_decoder)
    if not bert_like:
        raise QagateError(f"{what} has model type {config.model_type!r}, not a BERT-like encoder with "
                          "an extractive-QA head", path=directory,
                          hint="use a bert, roberta, distilbert, electra, ... encoder")
    if attention_dropout is not None:
        key = next((k for k in _ATTENTION_DROPOUT_KEYS if hasattr(config, k)), None)
        if key is None:
            raise QagateError(f"{what} ({config.model_type}) has no attention-dropout setting to override",
                              path=directory, hint="leave out --attention-dropout")
        setattr(config, key, attention_dropout)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory)
    except (OSError, ValueError) as exc:
        raise QagateError(f"{what} has no usable tokenizer ({exc})", path=directory) from None
    if tokenizer.cls_token_id is None:
        raise QagateError(f"{what}'s tokenizer has no [CLS] token, which extractive QA training "
                          "labels unanswerable windows with", path=directory)
    with _quiet_transformers():
        model, info = AutoModelForQuestionAnswering.from_pretrained(
            directory, config=config, dtype=torch.float32, output_loading_info=True)
    missing = set(info.get("missing_keys", ()))
    head = {name for name, _ in model.named_parameters() if not name.startswith(model.base_model_prefix + ".")}
    if missing - head:
        raise QagateError(f"{what} is missing encoder weights: {', '.join(sorted(missing - head)[:3])}",
                          path=directory)
    return model, tokenizer, bool(missing & head)


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def save_model_dir(model: Any, tokenizer: Any, out_dir: Path) -> None:
    """A normal Hugging Face model directory: config, safetensors weights, tokenizer."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.architectures = [type(model).__name__]
    with _quiet_transformers():
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)


# --------------------------------------------------------------------------- losses


def masked_logits(logits: "torch.Tensor", attention_mask: "torch.Tensor") -> "torch.Tensor":
    """Padding positions pushed to MASK_VALUE so no probability lands on them."""
    return logits.masked_fill(attention_mask == 0, MASK_VALUE)


def hard_label_loss(start_logits: "torch.Tensor", end_logits: "torch.Tensor",
                    start_positions: "torch.Tensor", end_positions: "torch.Tensor",
                    attention_mask: "torch.Tensor") -> "torch.Tensor":
    """Mean of the start and end cross-entropies over the non-padding positions."""
    import torch.nn.functional as F

    start = F.cross_entropy(masked_logits(start_logits, attention_mask), start_positions)
    end = F.cross_entropy(masked_logits(end_logits, attention_mask), end_positions)
    return (start + end) / 2


def supervised_loss(model: Any, batch: dict[str, Any]) -> "torch.Tensor":
    """The fine-tuning objective: hard labels only."""
    out = model(**model_inputs(batch))
    return hard_label_loss(out.start_logits, out.end_logits, batch["start_positions"],
                           batch["end_positions"], batch["attention_mask"])


# --------------------------------------------------------------------------- optimisation


def _freeze_embeddings(model: Any) -> None:
    """Keep the embedding block (or at least the word embeddings) at the base's values."""
    block = getattr(model.base_model, "embeddings", None) or model.get_input_embeddings()
    for p in block.parameters():
        p.requires_grad_(False)


def _optimizer(model: Any, cfg: TrainConfig) -> Any:
    """AdamW; no weight decay on biases and LayerNorm weights (the BERT recipe)."""
    import torch

    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)


def linear_schedule(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR factor: 0 -> 1 linearly over the warm-up, then 1 -> 0 linearly at the last step."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


# --------------------------------------------------------------------------- checkpoints


def _checkpoint_dirs(out_dir: Path) -> list[Path]:
    root = out_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-")
             and p.name[5:].isdigit() and (p / _STATE).is_file()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    found = _checkpoint_dirs(Path(out_dir))
    return found[-1] if found else None


def _save_checkpoint(out_dir: Path, step: int, model: Any, optimizer: Any, scheduler: Any,
                     state: dict[str, Any]) -> Path:
    """Write to a temporary folder, rename into place, then drop older checkpoints."""
    import torch
    from safetensors.torch import save_model

    root = out_dir / CHECKPOINTS
    final = root / f"step-{step:06d}"
    tmp = root / f".step-{step:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / _WEIGHTS))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / _OPTIMIZER)
    torch.save(dict(state, step=step, rng=_rng_state()), tmp / _STATE)
    (tmp / "trainer_state.json").write_text(json.dumps(
        {"step": step, "config": state["config"], "last_loss": (state["losses"] or [None])[-1]},
        indent=1, sort_keys=True) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in _checkpoint_dirs(out_dir)[:-1]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_model

    load_model(model, str(path / _WEIGHTS))
    opt = torch.load(path / _OPTIMIZER, weights_only=True)
    optimizer.load_state_dict(opt["optimizer"])
    scheduler.load_state_dict(opt["scheduler"])
    return torch.load(path / _STATE, weights_only=True)


# --------------------------------------------------------------------------- the loop


def train(model: Any, windows: TrainingWindows, cfg: TrainConfig, *, out_dir: str | Path,
          loss_fn: Callable[[Any, dict[str, Any]], "torch.Tensor"], pad_token_id: int,
          resume: bool = False, save_every: int = 0, progress: bool = True,
          recipe: dict[str, Any] | None = None,
          on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train ``model`` in place on ``windows``; checkpoints under ``out_dir/checkpoints``.

    ``save_every`` > 0 writes a checkpoint every that many optimizer steps (and one at the end).
    With ``resume`` the latest checkpoint is loaded (weights, optimizer, schedule, RNG states,
    losses) and training continues with the next batch of the same epoch order, so the result
    equals an uninterrupted run. The checkpoint records ``cfg`` and ``recipe``; resuming with
    different values is an error. ``on_step(step, loss)`` is called after every step.
    """
    import torch
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    if len(windows) == 0:
        raise QagateError("no training windows: the training data has no questions")
    settings = {"config": cfg.as_dict(), "recipe": recipe or {}, "windows": len(windows)}
    if cfg.freeze_embeddings:
        _freeze_embeddings(model)
    optimizer = _optimizer(model, cfg)
    lengths = windows.lengths
    steps_per_epoch = len(length_grouped_batches(lengths, cfg.batch_size, seed=cfg.seed, epoch=0))
    total = steps_per_epoch * cfg.epochs
    warmup = math.ceil(cfg.warmup_ratio * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_schedule(warmup, total))

    step, losses, resumed_from = 0, [], None
    checkpoint = latest_checkpoint(out_dir)
    if checkpoint is not None and not resume:
        raise QagateError("output directory already holds a training checkpoint", path=checkpoint,
                          hint="pass --resume to continue it, or choose another --out")
    if resume and checkpoint is not None:
        state = _load_checkpoint(checkpoint, model, optimizer, scheduler)
        saved = {k: state.get(k) for k in settings}
        if saved != settings:
            diff = [k for k in settings if saved[k] != settings[k]]
            raise QagateError(f"cannot resume: the checkpoint was made with different {', '.join(diff)}",
                              path=checkpoint, hint="rerun with the original options, or use another --out")
        step, losses, resumed_from = int(state["step"]), list(state["losses"]), int(state["step"])
        _restore_rng(state["rng"])
    elif resume and progress:
        print(f"no checkpoint in {out_dir / CHECKPOINTS}; starting from the beginning")

    model.train()
    started = time.perf_counter()
    bar = tqdm(total=total, initial=step, disable=not progress, unit="step", dynamic_ncols=True)
    try:
        while step < total:
            epoch, offset = divmod(step, steps_per_epoch)
            batches = length_grouped_batches(lengths, cfg.batch_size, seed=cfg.seed, epoch=epoch)
            for indices in batches[offset:]:
                batch = collate(windows, indices, pad_token_id)
                loss = loss_fn(model, batch)
                if not torch.isfinite(loss):
                    raise QagateError(f"training diverged: loss is {loss.item()} at step {step + 1}",
                                      hint="lower --lr")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                step += 1
                losses.append(float(loss.item()))
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.3f}", refresh=False)
                if save_every > 0 and (step % save_every == 0 or step == total):
                    _save_checkpoint(out_dir, step, model, optimizer, scheduler,
                                     dict(settings, losses=losses))
                if on_step is not None:
                    on_step(step, losses[-1])
    finally:
        bar.close()
    model.eval()
    return TrainResult(steps=step, steps_per_epoch=steps_per_epoch, losses=losses,
                       seconds=time.perf_counter() - started, resumed_from=resumed_from)


# --------------------------------------------------------------------------- the recipe


def parse_articles(text: str, *, option: str = "--articles") -> tuple[int, int]:
    """``"0-37"`` -> (0, 37) inclusive; ``"5"`` -> (5, 5)."""
    lo, sep, hi = text.strip().partition("-")
    try:
        first, last = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise QagateError(f"{option} {text!r} is not an article range",
                          hint="write FIRST-LAST, e.g. 0-37 (inclusive, in file order)") from None
    if first < 0 or last < first:
        raise QagateError(f"{option} {text!r} is not an article range",
                          hint="FIRST-LAST with 0 <= FIRST <= LAST, e.g. 0-37")
    return first, last


@dataclass
class DataPlan:
    """Where the training and held-out questions come from."""

    train: str
    articles: tuple[int, int] | None = None
    eval_articles: tuple[int, int] | None = None
    eval_data: str | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise QagateError(f"--limit must be at least 1, got {self.limit}")
        a, b = self.articles, self.eval_articles
        if a and b and (self.eval_data in (None, self.train)) and not (a[1] < b[0] or b[1] < a[0]):
            raise QagateError(f"training articles {a[0]}-{a[1]} overlap held-out articles {b[0]}-{b[1]}",
                              hint="held-out numbers must come from articles the model never saw")

    def load_train(self) -> Any:
        from qagate.data import load_dataset

        return load_dataset(self.train, articles=self.articles, limit=self.limit)

    def load_eval(self) -> Any | None:
        from qagate.data import load_dataset

        if self.eval_articles is None and self.eval_data is None:
            return None
        return load_dataset(self.eval_data or self.train, articles=self.eval_articles)


@dataclass
class Output:
    """Where results go and how the model is declared."""

    out_dir: Path
    name: str
    role: str
    declare_in: Path | None = None
    max_answer_len: int = 15

    @property
    def declaration(self) -> Path:
        return (self.declare_in or self.out_dir) / f"{self.name}.yaml"


def prepare_windows(tokenizer: Any, dataset: Any, cfg: TrainConfig) -> TrainingWindows:
    examples = list(dataset)
    if not examples:
        raise QagateError("the training selection has no questions", path=getattr(dataset, "source", None),
                          hint="check --train and --articles")
    return build_windows(tokenizer, examples, max_seq_len=cfg.max_seq_len, stride=cfg.stride)


def finish(model: Any, tokenizer: Any, *, output: Output, cfg: TrainConfig, plan: DataPlan,
           train_set: Any, windows: TrainingWindows, result: TrainResult, card: dict[str, Any],
           progress: bool = True) -> dict[str, Any] | None:
    """Save the model dir, declare it, score it on the held-out split, write its card.

    Returns the held-out numbers (or None without a held-out selection).
    """
    from qagate.training.card import evaluate_declared, write_declaration, write_model_card

    save_model_dir(model, tokenizer, output.out_dir)
    declaration = write_declaration(output.declaration, name=output.name, role=output.role,
                                    model_dir=output.out_dir, max_seq_len=cfg.max_seq_len,
                                    doc_stride=cfg.stride, max_answer_len=output.max_answer_len,
                                    description=f"{card['method']} on {train_set.name} with qagate; recipe and "
                                                "held-out numbers in the model dir's README.md")
    held_out = None
    eval_set = plan.load_eval()
    if eval_set is not None:
        if progress:
            print(f"evaluating on {len(eval_set)} held-out questions ({eval_set.name})")
        held_out = evaluate_declared(declaration, eval_set)
    write_model_card(output.out_dir, dict(
        card, name=output.name, role=output.role, config=cfg.as_dict(), train=_data_summary(
            plan, train_set, windows), eval=None if eval_set is None else {
            "source": eval_set.source, "name": eval_set.name, "questions": len(eval_set),
            "articles": plan.eval_articles, "fingerprint": eval_set.fingerprint},
        held_out=held_out, steps=result.steps, steps_per_epoch=result.steps_per_epoch,
        loss_window=_loss_window(result.steps), first_loss=result.mean_loss(slice(0, _loss_window(result.steps))),
        last_loss=result.mean_loss(slice(-_loss_window(result.steps), None)),
        seconds=result.seconds, resumed_from=result.resumed_from,
        parameters=count_parameters(model), declaration=str(declaration)))
    return held_out


def _loss_window(steps: int) -> int:
    """Steps averaged for the card's "loss at the start -> at the end": 50, fewer on short runs."""
    return max(1, min(50, steps // 2))


def _data_summary(plan: DataPlan, dataset: Any, windows: TrainingWindows) -> dict[str, Any]:
    return {"source": dataset.source, "name": dataset.name, "articles": plan.articles, "limit": plan.limit,
            "questions": len(dataset), "windows": len(windows), "answerable_windows": windows.answerable,
            "fingerprint": dataset.fingerprint}


def finetune(*, base: str | Path, plan: DataPlan, output: Output, cfg: TrainConfig,
             resume: bool = False, save_every: int = 0, command: str = "",
             progress: bool = True) -> dict[str, Any] | None:
    """The ``qagate finetune`` recipe: base encoder -> QA model dir + card + declaration."""
    set_seed(cfg.seed)
    model, tokenizer, fresh_head = load_qa_model(base, attention_dropout=cfg.attention_dropout)
    if fresh_head and progress:
        print(f"{base}: no QA head in the checkpoint; a fresh span head is initialised (seed {cfg.seed})")
    train_set = plan.load_train()
    windows = prepare_windows(tokenizer, train_set, cfg)
    if progress:
        print(f"training on {len(train_set)} questions -> {len(windows)} windows "
              f"({windows.answerable} contain their answer)")
    recipe = {"method": "fine-tune", "base": str(base), "fresh_head": fresh_head, "data": train_set.fingerprint,
              "objective": "cross-entropy on start and end (padding masked)"}
    result = train(model, windows, cfg, out_dir=output.out_dir, loss_fn=supervised_loss,
                   pad_token_id=tokenizer.pad_token_id, resume=resume, save_every=save_every,
                   progress=progress, recipe=recipe)
    return finish(model, tokenizer, output=output, cfg=cfg, plan=plan, train_set=train_set,
                  windows=windows, result=result, progress=progress,
                  card=dict(recipe, command=command, base_licence=licence_of(Path(base))))


def licence_of(model_dir: Path) -> str | None:
    """The ``license:`` field of a model card's front matter, if the directory has one."""
    readme = model_dir / "README.md"
    if not readme.is_file():
        return None
    lines = readme.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, _, value = line.partition(":")
        if key.strip() == "license" and value.strip():
            return value.strip()
    return None

