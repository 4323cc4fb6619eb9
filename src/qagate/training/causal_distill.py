"""Distillation of a causal-LM teacher into a causal student on (prompt, answer) pairs.

loss = alpha * CE(gold answer tokens) + (1 - alpha) * T^2 * KL(softmax(teacher / T) ||
softmax(student / T)), both averaged over the answer tokens of the batch (the answer and its
stop string); prompt and padding carry no loss. The KL is over the shared vocabulary at each
answer position: the same weighting and KL as the extractive recipe (``distill.blend``,
``distill.kl_to_teacher``), on next-token distributions instead of span positions.

Prompts come from the generative engine's own prompt code, so the student is trained on
exactly what it is asked at inference; the result is a causal LM directory declared as
``kind: generative``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qagate.core.errors import QagateError
from qagate.training.causal_models import causal_student_from_layers, load_causal_lm, load_causal_student
from qagate.training.causal_pairs import CausalPairs, build_pairs, collate_pairs
from qagate.training.distill import check_kd_settings
from qagate.training.finetune import DataPlan, Output, finish, licence_of
from qagate.training.losses import blend, kl_to_teacher
from qagate.training.trainer import TrainConfig, set_seed, train

if TYPE_CHECKING:  # pragma: no cover
    import torch


class CausalDistillationLoss:
    """``loss_fn(model, batch)`` for the training loop on ``collate_pairs`` batches; the
    teacher runs on the same batch at every step (no grad)."""

    def __init__(self, teacher: Any, *, vocab_size: int, temperature: float, alpha: float) -> None:
        self.teacher, self.vocab_size = teacher, vocab_size
        self.temperature, self.alpha = temperature, alpha

    def answer_logits(self, model: Any, batch: dict[str, Any]) -> "torch.Tensor":
        """[answer tokens in the batch, vocab_size]: the logits that predict each answer token."""
        k = batch["labels"].shape[1]
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=batch["position_ids"],
            use_cache=False,
            logits_to_keep=k + 1,
        )
        logits = out.logits[:, -(k + 1) : -1, : self.vocab_size]
        return logits[batch["label_mask"]]

    def terms(self, model: Any, batch: dict[str, Any]) -> tuple["torch.Tensor", "torch.Tensor | None"]:
        """(CE on the gold answer tokens, KL to the teacher or None when ``alpha == 1``)."""
        import torch
        import torch.nn.functional as F

        student = self.answer_logits(model, batch)
        hard = F.cross_entropy(student, batch["labels"][batch["label_mask"]])
        if self.alpha == 1.0:
            return hard, None
        with torch.no_grad():
            teacher = self.answer_logits(self.teacher, batch)
        return hard, kl_to_teacher(student, teacher, self.temperature)

    def __call__(self, model: Any, batch: dict[str, Any]) -> "torch.Tensor":
        hard, soft = self.terms(model, batch)
        if soft is None:
            return hard
        return blend(hard, soft, temperature=self.temperature, alpha=self.alpha)


def generation_keys(settings: Any) -> dict[str, Any]:
    """The ``kind: generative`` declaration keys that reproduce the training prompts."""
    return {
        "prompt": settings.prompt,
        "shots": settings.shots,
        "max_new_tokens": settings.max_new_tokens,
        "stop": list(settings.stop),
    }


def training_pairs(
    teacher: Any, tokenizer: Any, examples: Sequence[Any], settings: Any, max_seq_len: int
) -> tuple[CausalPairs, int]:
    """Pairs built from the generative engine's prompts for ``examples`` (one-shot examples
    drawn from the same training examples); raises when none fits."""
    from qagate.inference.generation import GenerationEngine

    prompts = GenerationEngine(teacher, tokenizer, settings).prompts(examples)
    pairs, skipped = build_pairs(
        tokenizer,
        examples,
        prompts,
        stop=settings.stop,
        max_seq_len=max_seq_len,
        special_tokens=not settings.chat_template,
    )
    if len(pairs) == 0:
        longest = max(len(tokenizer(p)["input_ids"]) for p in prompts) if prompts else 0
        raise QagateError(
            f"no training pair fits in --max-seq-len {max_seq_len} (the longest prompt has "
            f"{longest} tokens) or none of the questions has an answer",
            hint=f"raise --max-seq-len to at least {longest + 32}",
        )
    return pairs, skipped


def causal_distill(
    *,
    teacher_dir: str | Path,
    plan: DataPlan,
    output: Output,
    cfg: TrainConfig,
    student_layers: Sequence[int] | None = None,
    student_dir: str | Path | None = None,
    shots: int = 0,
    temperature: float = 2.0,
    alpha: float = 0.5,
    resume: bool = False,
    save_every: int = 0,
    command: str = "",
    progress: bool = True,
) -> dict[str, Any] | None:
    """The causal ``qagate distill`` recipe: causal teacher -> causal student dir + card +
    ``kind: generative`` declaration. Returns the held-out numbers (None without a split)."""
    from qagate.inference.generation import GenerationSettings

    check_kd_settings(temperature, alpha)
    if (student_layers is None) == (student_dir is None):
        raise QagateError(
            "give exactly one of --student-layers and --student",
            hint="--student-layers 0,2 builds the student from teacher layers",
        )
    if shots not in (0, 1):
        raise QagateError(f"--shots must be 0 or 1, got {shots}")
    set_seed(cfg.seed)
    teacher, tokenizer = load_causal_lm(teacher_dir, what="teacher", attention_dropout=cfg.attention_dropout)
    teacher.eval()
    layer_count = teacher.config.num_hidden_layers
    if student_layers is not None:
        student = causal_student_from_layers(teacher, list(student_layers))
        described = (
            f"{len(student_layers)} of the teacher's {layer_count} decoder layers "
            f"({', '.join(map(str, student_layers))}, in that order) with its embeddings, final norm "
            "and LM head, copied"
        )
    else:
        assert student_dir is not None
        student = load_causal_student(student_dir, tokenizer, attention_dropout=cfg.attention_dropout)
        described = f"`{student_dir}` ({student.config.num_hidden_layers} layers)"

    settings = GenerationSettings(shots=shots)
    train_set = plan.load_train()
    pairs, skipped = training_pairs(teacher, tokenizer, list(train_set), settings, cfg.max_seq_len)
    if progress:
        left_out = f" ({skipped} unanswerable or over {cfg.max_seq_len} tokens left out)" if skipped else ""
        print(f"distilling on {len(train_set)} questions -> {len(pairs)} prompt/answer pairs{left_out}")
    recipe = {
        "method": "distillation",
        "teacher": str(teacher_dir),
        "data": train_set.fingerprint,
        "student": described,
        "temperature": temperature,
        "alpha": alpha,
        "objective": "causal: CE + KL over the vocabulary on the answer tokens",
        "shots": shots,
        "prompt": settings.prompt,
    }
    # the tokenizer's real vocabulary: checkpoints often pad their LM heads past it
    widths = (len(tokenizer), *(m.get_output_embeddings().weight.shape[0] for m in (teacher, student)))
    loss_fn = CausalDistillationLoss(teacher, vocab_size=min(widths), temperature=temperature, alpha=alpha)
    result = train(
        student,
        pairs,
        cfg,
        out_dir=output.out_dir,
        loss_fn=loss_fn,
        pad_token_id=tokenizer.pad_token_id,
        resume=resume,
        save_every=save_every,
        progress=progress,
        recipe=recipe,
        collate_fn=collate_pairs,
    )
    return finish(
        student,
        tokenizer,
        output=output,
        cfg=cfg,
        plan=plan,
        train_set=train_set,
        windows=pairs,
        result=result,
        progress=progress,
        generation=generation_keys(settings),
        card=dict(
            recipe,
            command=command,
            cached_teacher=False,
            skipped=skipped,
            base_licence=licence_of(Path(teacher_dir)),
        ),
    )
