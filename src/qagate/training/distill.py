"""Task-specific knowledge distillation of an extractive-QA teacher into a student.

loss = alpha * CE(hard labels) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T)),
on the start and on the end logits (each the mean of its two halves), padding masked. The T^2
factor keeps the soft term's gradients on the scale of the hard term's as T changes (Hinton et
al., 2015). ``alpha = 1`` is the hard-labels-only ablation.

Students: the teacher with a subset of its layers (``student_from_layers``, the DistilBERT
recipe: every other layer, embeddings and head copied) or any QA model with the teacher's
vocabulary.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qagate.core.errors import QagateError
from qagate.core.files import atomic_write_text
from qagate.training.features import TrainingWindows, collate, model_inputs
from qagate.training.finetune import DataPlan, Output, finish, licence_of, prepare_windows
from qagate.training.losses import blend, kd_loss, kl_to_teacher  # noqa: F401 (also imported from here)
from qagate.training.models import load_qa_model
from qagate.training.students import load_student, student_from_layers
from qagate.training.trainer import CHECKPOINTS, TrainConfig, set_seed, train

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

    from qagate.training.transfer import Transfer

TEACHER_LOGITS = "teacher-logits.npy"


# --------------------------------------------------------------------------- students


def _fingerprint(teacher_dir: Path, windows: TrainingWindows) -> str:
    digest = hashlib.sha256()
    for weights in sorted(teacher_dir.glob("*.safetensors")) + sorted(teacher_dir.glob("*.bin")):
        digest.update(weights.name.encode())
        digest.update(hashlib.sha256(weights.read_bytes()).digest())
    digest.update(json.dumps([windows.input_ids, windows.token_type_ids]).encode())
    return digest.hexdigest()


def teacher_logits(
    teacher: Any,
    windows: TrainingWindows,
    *,
    batch_size: int,
    pad_token_id: int,
    path: Path | None = None,
    fingerprint: str | None = None,
    progress: bool = True,
) -> "np.ndarray":
    """Start/end logits of ``teacher`` on every window: float32 [windows, 2, longest window].

    With ``path`` the array is a ``.npy`` memory map reused when its ``fingerprint`` (teacher
    weights + windows) matches, so a resumed run does not pay for it again. It is filled under
    a temporary name and renamed into place, and the fingerprint (``path`` with ``.json``) is
    written after it: a killed run never leaves a half-filled cache that looks finished.
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    width = max(windows.lengths)
    shape = (len(windows), 2, width)
    meta = path.with_suffix(".json") if path is not None else None
    if (
        path is not None
        and meta is not None
        and meta.is_file()
        and path.is_file()
        and json.loads(meta.read_text()).get("fingerprint") == fingerprint
    ):
        cached = np.load(path, mmap_mode="r")
        if cached.shape == shape:
            return cached
    out: Any
    if path is not None and meta is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta.unlink(missing_ok=True)  # the old fingerprint must not vouch for the new file
        part = path.with_name(f".{path.name}.part")
        out = np.lib.format.open_memmap(part, mode="w+", dtype=np.float32, shape=shape)
    else:
        out = np.zeros(shape, dtype=np.float32)
    order = sorted(range(len(windows)), key=lambda i: windows.lengths[i])
    teacher.eval()
    try:
        with torch.inference_mode():
            for lo in tqdm(
                range(0, len(order), batch_size),
                disable=not progress,
                unit="batch",
                desc="teacher logits",
                dynamic_ncols=True,
            ):
                indices = order[lo : lo + batch_size]
                batch = collate(windows, indices, pad_token_id)
                result = teacher(**model_inputs(batch))
                n = batch["input_ids"].shape[1]
                out[indices, 0, :n] = result.start_logits.float().numpy()
                out[indices, 1, :n] = result.end_logits.float().numpy()
    except BaseException:
        if path is not None:
            part.unlink(missing_ok=True)
        raise
    if path is not None and meta is not None:
        out.flush()
        del out  # close the map before the rename
        os.replace(part, path)
        atomic_write_text(meta, json.dumps({"fingerprint": fingerprint, "shape": list(shape)}) + "\n")
        return np.load(path, mmap_mode="r")
    return out


class DistillationLoss:
    """``loss_fn(model, batch)`` for the training loop: the student's KD loss against the
    teacher's logits, computed on the fly or looked up by window in the array that ``cache``
    returns (called once, at the first step, so a resumed run that has nothing left to do
    never pays for it)."""

    def __init__(
        self,
        teacher: Any,
        *,
        temperature: float,
        alpha: float,
        cache: "Callable[[], np.ndarray] | None" = None,
    ) -> None:
        self.teacher, self.temperature, self.alpha = teacher, temperature, alpha
        self._cache = cache
        self._cached: Any = None

    def _teacher_logits(self, batch: dict[str, Any]) -> tuple["torch.Tensor", "torch.Tensor"]:
        import torch

        if self._cache is not None:
            if self._cached is None:
                self._cached = self._cache()
            width = batch["input_ids"].shape[1]
            logits = torch.tensor(self._cached[batch["window_index"].numpy(), :, :width])
            return logits[:, 0], logits[:, 1]
        with torch.no_grad():
            out = self.teacher(**model_inputs(batch))
        return out.start_logits, out.end_logits

    def __call__(self, model: Any, batch: dict[str, Any]) -> "torch.Tensor":
        out = model(**model_inputs(batch))
        t_start, t_end = self._teacher_logits(batch) if self.alpha < 1.0 else (None, None)
        return kd_loss(
            out.start_logits,
            out.end_logits,
            t_start,
            t_end,
            batch["start_positions"],
            batch["end_positions"],
            batch["attention_mask"],
            temperature=self.temperature,
            alpha=self.alpha,
        )


# --------------------------------------------------------------------------- the recipe


def check_kd_settings(temperature: float, alpha: float) -> None:
    if not temperature > 0:
        raise QagateError(
            f"temperature must be positive, got {temperature}", hint="the usual range is 1-8; default 2"
        )
    if not 0 <= alpha <= 1:
        raise QagateError(
            f"alpha must be in [0, 1], got {alpha}",
            hint="the weight of the hard-label loss; 1.0 = no distillation (ablation)",
        )


def distill(
    *,
    teacher_dir: str | Path,
    plan: DataPlan,
    output: Output,
    cfg: TrainConfig,
    student_layers: Sequence[int] | None = None,
    student_dir: str | Path | None = None,
    temperature: float = 2.0,
    alpha: float = 0.5,
    cache_teacher_logits: bool = False,
    transfer: "Transfer | None" = None,
    resume: bool = False,
    save_every: int = 0,
    command: str = "",
    progress: bool = True,
) -> dict[str, Any] | None:
    """The ``qagate distill`` recipe: teacher -> student dir + card + declaration; ``transfer``
    adds intermediate-layer losses (training/transfer.py)."""
    check_kd_settings(temperature, alpha)
    if transfer is not None and transfer.enabled and cache_teacher_logits:
        raise QagateError(
            "--cache-teacher-logits cannot cache hidden states or attention: with an intermediate "
            "loss the teacher runs at every step",
            hint="leave out --cache-teacher-logits",
        )
    if (student_layers is None) == (student_dir is None):
        raise QagateError(
            "give exactly one of --student-layers and --student",
            hint="--student-layers 0,2,4 builds the student from teacher layers",
        )
    set_seed(cfg.seed)
    # The override reaches the student through the copied config (the teacher runs in eval mode).
    teacher, tokenizer, fresh_head = load_qa_model(
        teacher_dir, what="teacher", attention_dropout=cfg.attention_dropout
    )
    if fresh_head:
        raise QagateError(
            "the teacher has no trained QA head",
            path=teacher_dir,
            hint="fine-tune it first with `qagate finetune`",
        )
    teacher.eval()
    if student_layers is not None:
        student = student_from_layers(teacher, list(student_layers))
        described = (
            f"{len(student_layers)} of the teacher's {teacher.config.num_hidden_layers} encoder "
            f"layers ({', '.join(map(str, student_layers))}, in that order) with its embeddings and "
            "span head, copied (the DistilBERT initialisation)"
        )
    elif student_dir is not None:
        student = load_student(student_dir, tokenizer, attention_dropout=cfg.attention_dropout)
        described = f"`{student_dir}` ({student.config.num_hidden_layers} layers)"
    else:
        raise QagateError("distill needs student_layers or student_dir")

    train_set = plan.load_train()
    windows = prepare_windows(tokenizer, train_set, cfg)
    if progress:
        print(f"distilling on {len(train_set)} questions -> {len(windows)} windows")
    cache_path = output.out_dir / CHECKPOINTS / TEACHER_LOGITS
    cached = cache_teacher_logits and alpha < 1.0

    def cache() -> "np.ndarray":
        return teacher_logits(
            teacher,
            windows,
            batch_size=max(cfg.batch_size, 32),
            pad_token_id=tokenizer.pad_token_id,
            path=cache_path,
            fingerprint=_fingerprint(Path(teacher_dir), windows),
            progress=progress,
        )

    recipe = {
        "method": "distillation",
        "teacher": str(teacher_dir),
        "data": train_set.fingerprint,
        "student": described,
        "temperature": temperature,
        "alpha": alpha,
    }
    loss_fn: Any = DistillationLoss(
        teacher, temperature=temperature, alpha=alpha, cache=cache if cached else None
    )
    trainable, layered = student, None
    if transfer is not None and transfer.enabled:
        from qagate.training.transfer import TransferLoss

        layered = TransferLoss(
            teacher, student, transfer, temperature=temperature, alpha=alpha, copied=student_layers
        )
        loss_fn, trainable, recipe["transfer"] = layered, layered.trainable, layered.recipe()
    try:
        result = train(
            trainable,
            windows,
            cfg,
            out_dir=output.out_dir,
            loss_fn=loss_fn,
            pad_token_id=tokenizer.pad_token_id,
            resume=resume,
            save_every=save_every,
            progress=progress,
            recipe=recipe,
        )
    finally:
        if layered is not None:
            layered.close()  # the hooks
    _drop_cache(cache_path)
    return finish(
        student,
        tokenizer,
        output=output,
        cfg=cfg,
        plan=plan,
        train_set=train_set,
        windows=windows,
        result=result,
        progress=progress,
        card=dict(recipe, command=command, cached_teacher=cached, base_licence=licence_of(Path(teacher_dir))),
    )


def _drop_cache(path: Path) -> None:
    """The logits are only needed while training; the finished model dir stays small."""
    for file in (path, path.with_suffix(".json"), path.with_name(f".{path.name}.part")):
        file.unlink(missing_ok=True)
