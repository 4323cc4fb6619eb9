"""The distillation objectives: hard labels blended with the KL to the teacher's temperature-
scaled distributions, masked so that padding adds no mass. Shared by the encoder recipe
(:mod:`qagate.training.distill`), intermediate-layer transfer (:mod:`qagate.training.transfer`)
and causal distillation; its own module so that none of them imports another for a loss."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qagate.training.trainer import hard_label_loss, masked_logits

if TYPE_CHECKING:  # pragma: no cover
    import torch


def kd_loss(
    student_start: "torch.Tensor",
    student_end: "torch.Tensor",
    teacher_start: "torch.Tensor | None",
    teacher_end: "torch.Tensor | None",
    start_positions: "torch.Tensor",
    end_positions: "torch.Tensor",
    attention_mask: "torch.Tensor",
    *,
    temperature: float = 2.0,
    alpha: float = 0.5,
) -> "torch.Tensor":
    """The distillation objective for one batch (shapes: logits [batch, seq], labels [batch]).

    Padding gets the finite MASK_VALUE before every softmax and its KL terms are zeroed, so
    no probability mass and no NaN (0 * -inf) comes from padding. KL is summed over positions
    and averaged over the batch. Teacher logits may be None only when ``alpha == 1``.
    """
    hard = hard_label_loss(student_start, student_end, start_positions, end_positions, attention_mask)
    if alpha == 1.0:
        return hard
    if teacher_start is None or teacher_end is None:
        raise ValueError("teacher logits are needed when alpha < 1")
    soft = (
        kl_to_teacher(student_start, teacher_start, temperature, attention_mask)
        + kl_to_teacher(student_end, teacher_end, temperature, attention_mask)
    ) / 2
    return blend(hard, soft, temperature=temperature, alpha=alpha)


def blend(hard: "torch.Tensor", soft: "torch.Tensor", *, temperature: float, alpha: float) -> "torch.Tensor":
    """alpha * hard + (1 - alpha) * T^2 * soft: the one weighting of every distillation recipe."""
    return alpha * hard + (1 - alpha) * temperature**2 * soft


def kl_to_teacher(
    student: "torch.Tensor",
    teacher: "torch.Tensor",
    temperature: float,
    mask: "torch.Tensor | None" = None,
) -> "torch.Tensor":
    """KL(teacher_T || student_T) per row over the last dimension (only where ``mask`` is 1,
    when given), averaged over rows: span positions here, a vocabulary in causal distillation."""
    import torch.nn.functional as F

    if mask is not None:
        student, teacher = masked_logits(student, mask), masked_logits(teacher, mask)
    log_s = F.log_softmax(student / temperature, dim=-1)
    log_t = F.log_softmax(teacher.to(student.dtype) / temperature, dim=-1)
    terms = log_t.exp() * (log_t - log_s)
    if mask is not None:
        terms = terms.masked_fill(mask == 0, 0.0)
    return terms.sum(dim=-1).mean()
