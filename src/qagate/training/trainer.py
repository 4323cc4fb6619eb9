"""The seeded, resumable training loop that fine-tuning and distillation share, with its
optimizer, schedule, checkpoints and the span losses both recipes build on."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qagate.core.errors import QagateError
from qagate.core.files import atomic_write_text
from qagate.training.features import (
    check_window_settings,
    collate,
    length_grouped_batches,
    model_inputs,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Logit given to padding positions before a softmax: finite (no inf - inf = NaN), and
#: exp(-1e4 / T) underflows to exactly 0 in fp32 and fp16 alike.
MASK_VALUE = -1e4

CHECKPOINTS = "checkpoints"
_WEIGHTS = "model.safetensors"
_OPTIMIZER = "optimizer.pt"
_STATE = "trainer_state.pt"


class TrainingData(Protocol):
    """What the loop needs of its items (windows, causal pairs): their number and token lengths."""

    def __len__(self) -> int: ...

    @property
    def lengths(self) -> list[int]: ...


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


# --------------------------------------------------------------------------- losses


def masked_logits(logits: "torch.Tensor", attention_mask: "torch.Tensor") -> "torch.Tensor":
    """Padding positions pushed to MASK_VALUE so no probability lands on them."""
    return logits.masked_fill(attention_mask == 0, MASK_VALUE)


def hard_label_loss(
    start_logits: "torch.Tensor",
    end_logits: "torch.Tensor",
    start_positions: "torch.Tensor",
    end_positions: "torch.Tensor",
    attention_mask: "torch.Tensor",
) -> "torch.Tensor":
    """Mean of the start and end cross-entropies over the non-padding positions."""
    import torch.nn.functional as F

    start = F.cross_entropy(masked_logits(start_logits, attention_mask), start_positions)
    end = F.cross_entropy(masked_logits(end_logits, attention_mask), end_positions)
    return (start + end) / 2


def supervised_loss(model: Any, batch: dict[str, Any]) -> "torch.Tensor":
    """The fine-tuning objective: hard labels only."""
    out = model(**model_inputs(batch))
    return hard_label_loss(
        out.start_logits,
        out.end_logits,
        batch["start_positions"],
        batch["end_positions"],
        batch["attention_mask"],
    )


# --------------------------------------------------------------------------- optimisation


def _freeze_embeddings(model: Any) -> None:
    """Keep the embedding block (or at least the word embeddings) at the base's values."""
    block = getattr(model.base_model, "embeddings", None) or model.get_input_embeddings()
    for p in block.parameters():
        p.requires_grad_(False)


def _optimizer(model: Any, cfg: TrainConfig) -> Any:
    """AdamW; no weight decay on biases and LayerNorm weights (the BERT recipe)."""
    import torch

    decay: list[Any] = []
    no_decay: list[Any] = []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )


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
    found = [
        p
        for p in root.iterdir()
        if p.is_dir() and p.name.startswith("step-") and p.name[5:].isdigit() and (p / _STATE).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name[5:]))


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    found = _checkpoint_dirs(Path(out_dir))
    return found[-1] if found else None


def _save_checkpoint(
    out_dir: Path, step: int, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any]
) -> Path:
    """Write to a temporary folder (each file itself written atomically), rename the folder
    into place, then drop older checkpoints: a killed run leaves the previous checkpoint whole.

    Weights go to safetensors; optimizer, scheduler, RNG states and step to ``torch.save``,
    read back with ``weights_only=True``.
    """
    import torch
    from safetensors.torch import save_model

    root = out_dir / CHECKPOINTS
    final = root / f"step-{step:06d}"
    tmp = root / f".step-{step:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _replace_into(tmp / _WEIGHTS, lambda part: save_model(model, str(part)))
    _replace_into(
        tmp / _OPTIMIZER,
        lambda part: torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, part
        ),
    )
    _replace_into(tmp / _STATE, lambda part: torch.save(dict(state, step=step, rng=_rng_state()), part))
    atomic_write_text(
        tmp / "trainer_state.json",
        json.dumps(
            {"step": step, "config": state["config"], "last_loss": (state["losses"] or [None])[-1]},
            indent=1,
            sort_keys=True,
        )
        + "\n",
    )
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in _checkpoint_dirs(out_dir)[:-1]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _replace_into(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a file to a temporary name beside ``path``, flush it to disk, rename it into
    place: large files (weights, optimizer moments) without holding a second copy in memory."""
    part = path.with_name(f".{path.name}.part")
    try:
        write(part)
        with open(part, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any, expect: dict) -> dict:
    """The saved state; its settings are checked first (others may mean other tensors)."""
    import torch
    from safetensors.torch import load_model

    state = torch.load(path / _STATE, weights_only=True)
    diff = [k for k in expect if state.get(k) != expect[k]]
    if diff:
        raise QagateError(
            f"cannot resume: the checkpoint was made with different {', '.join(diff)}",
            path=path,
            hint="rerun with the original options, or use another --out",
        )
    load_model(model, str(path / _WEIGHTS))
    opt = torch.load(path / _OPTIMIZER, weights_only=True)
    optimizer.load_state_dict(opt["optimizer"])
    scheduler.load_state_dict(opt["scheduler"])
    return state


# --------------------------------------------------------------------------- the loop


def train(
    model: Any,
    windows: TrainingData,
    cfg: TrainConfig,
    *,
    out_dir: str | Path,
    loss_fn: Callable[[Any, dict[str, Any]], "torch.Tensor"],
    pad_token_id: int,
    resume: bool = False,
    save_every: int = 0,
    progress: bool = True,
    recipe: dict[str, Any] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    collate_fn: Callable[[Any, list[int], int], dict[str, Any]] = collate,
) -> TrainResult:
    """Train ``model`` in place on ``windows``; checkpoints under ``out_dir/checkpoints``.

    ``loss_fn(model, batch) -> loss`` is the recipe's objective; the loop owns the rest:
    length-grouped batches, AdamW with linear warm-up and linear decay, gradient clipping.
    ``save_every`` > 0 writes a checkpoint every that many optimizer steps (and one at the end).
    With ``resume`` the latest checkpoint is loaded (weights, optimizer, schedule, RNG states,
    losses) and training continues with the next batch of the same epoch order, so the result
    equals an uninterrupted run. The checkpoint records ``cfg`` and ``recipe``; resuming with
    different values is an error. ``on_step(step, loss)`` is called after every step.
    ``collate_fn(windows, indices, pad_token_id)`` makes a batch (default: extractive windows).
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
        raise QagateError(
            "output directory already holds a training checkpoint",
            path=checkpoint,
            hint="pass --resume to continue it, or choose another --out",
        )
    if resume and checkpoint is not None:
        state = _load_checkpoint(checkpoint, model, optimizer, scheduler, settings)
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
                batch = collate_fn(windows, indices, pad_token_id)
                loss = loss_fn(model, batch)
                if not torch.isfinite(loss):
                    raise QagateError(
                        f"training diverged: loss is {loss.item()} at step {step + 1}", hint="lower --lr"
                    )
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
                    _save_checkpoint(
                        out_dir, step, model, optimizer, scheduler, dict(settings, losses=losses)
                    )
                if on_step is not None:
                    on_step(step, losses[-1])
    finally:
        bar.close()
    model.eval()
    return TrainResult(
        steps=step,
        steps_per_epoch=steps_per_epoch,
        losses=losses,
        seconds=time.perf_counter() - started,
        resumed_from=resumed_from,
    )
