"""Intermediate-layer transfer for extractive students (TinyBERT / MiniLM): on top of the logit
distillation loss, the MSE between mapped hidden states (through a learned projection when the
widths differ), the KL between mapped self-attention distributions, and MiniLM's value-relation
KL on the deepest mapped layer. The teacher runs once per batch; hidden states cannot be cached.

Attention distributions and value relations are computed from the outputs of the attention
modules' query/key/value projections, captured by forward hooks: softmax(Q K^T / sqrt(d)) is
what BERT-style self-attention computes before its dropout, so this works with any attention
implementation (sdpa included, which returns no attention weights) and is not disturbed by
attention dropout, which the weights a model returns have already been through.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qagate.core.errors import QagateError
from qagate.training.features import model_inputs
from qagate.training.losses import kd_loss
from qagate.training.trainer import MASK_VALUE

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: (student layer, teacher layer) pairs, encoder layers numbered from 0.
LayerMap = tuple[tuple[int, int], ...]

_OPTIONS = {
    "hidden": "--hidden-loss",
    "attention": "--attention-loss",
    "value_relation": "--value-relation-loss",
}
#: Leaf names of the query/key/value projections (BERT, RoBERTa, ELECTRA, ... / DistilBERT).
_PROJECTIONS = {"query": ("query", "q_lin"), "key": ("key", "k_lin"), "value": ("value", "v_lin")}
_LAYER_LIST = re.compile(r"(?:^|\.)(?:encoder|transformer)\.layer$")


@dataclass(frozen=True)
class Transfer:
    """The weights of the intermediate losses (0 = off) and the user's layer map (None: default)."""

    hidden: float = 0.0
    attention: float = 0.0
    value_relation: float = 0.0
    layer_map: LayerMap | None = None

    def __post_init__(self) -> None:
        for key, option in _OPTIONS.items():
            value = getattr(self, key)
            if not 0 <= value < math.inf:
                raise QagateError(f"{option} must be a number >= 0, got {value}", hint="0 turns it off")
        if self.layer_map is not None and not self.enabled:
            raise QagateError(
                "--layer-map has no effect without an intermediate loss",
                hint="add --hidden-loss, --attention-loss or --value-relation-loss, or leave out --layer-map",
            )

    @property
    def enabled(self) -> bool:
        return self.hidden > 0 or self.attention > 0 or self.value_relation > 0


def parse_layer_map(text: str) -> LayerMap:
    """``"0:1,1:3,2:5"`` -> ((0, 1), (1, 3), (2, 5)): student layer : teacher layer."""
    pairs = []
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(\d+)\s*:\s*(\d+)", part)
        if not match:
            raise QagateError(
                f"--layer-map {text!r} is not a list of STUDENT:TEACHER layer pairs",
                hint="write them comma-separated, layers numbered from 0, e.g. 0:1,1:3,2:5",
            )
        pairs.append((int(match[1]), int(match[2])))
    return tuple(pairs)


def format_layer_map(pairs: LayerMap) -> str:
    return ",".join(f"{s}:{t}" for s, t in pairs)


def default_layer_map(n_student: int, n_teacher: int, copied: Sequence[int] | None = None) -> LayerMap:
    """Each student layer to the teacher layer it was copied from (``--student-layers``), else
    the uniform map of TinyBERT: student layer s to teacher layer ceil((s + 1) * N / M) - 1, so
    the last layers meet."""
    if copied is not None:
        return tuple(enumerate(copied))
    return tuple((s, math.ceil((s + 1) * n_teacher / n_student) - 1) for s in range(n_student))


def check_layer_map(pairs: LayerMap, n_student: int, n_teacher: int) -> None:
    """Every student layer at most once, every layer number within its model."""
    shown = format_layer_map(pairs)
    students = [s for s, _ in pairs]
    if not pairs or len(set(students)) != len(students):
        raise QagateError(
            f"--layer-map {shown} must map each student layer at most once",
            hint="e.g. 0:1,1:3,2:5 (student:teacher)",
        )
    for s, t in pairs:
        if s >= n_student or t >= n_teacher:
            raise QagateError(
                f"--layer-map {shown}: {s}:{t} is outside the models "
                f"(student layers 0-{n_student - 1}, teacher layers 0-{n_teacher - 1})",
                hint="layers are numbered from 0",
            )


# --------------------------------------------------------------------------- the losses


def hidden_mse(
    student: Sequence["torch.Tensor"],
    teacher: Sequence["torch.Tensor"],
    mask: "torch.Tensor",
    projections: Any = None,
) -> "torch.Tensor":
    """Mean over the pairs of the MSE between student state i (projected by ``projections[i]``
    when given) and teacher state i, over the non-padding tokens."""
    weights = mask.unsqueeze(-1).to(student[0].dtype)
    total = student[0].new_zeros(())
    for i, (s, t) in enumerate(zip(student, teacher)):
        if projections is not None:
            s = projections[i](s)
        total = total + ((s - t) ** 2 * weights).sum() / (weights.sum() * t.shape[-1])
    return total / len(student)


def relation_log_probs(
    left: "torch.Tensor", right: "torch.Tensor", heads: int, mask: "torch.Tensor"
) -> "torch.Tensor":
    """log softmax(L R^T / sqrt(d)) per head over the non-padding keys: [batch, heads, seq, seq].
    (query, key) gives the self-attention distribution, (value, value) MiniLM's value relation."""
    import torch.nn.functional as F

    batch, seq, width = left.shape
    dim = width // heads
    lhs = left.reshape(batch, seq, heads, dim).transpose(1, 2)
    rhs = right.reshape(batch, seq, heads, dim).transpose(1, 2)
    scores = lhs @ rhs.transpose(-1, -2) / math.sqrt(dim)
    return F.log_softmax(scores.masked_fill(mask[:, None, None, :] == 0, MASK_VALUE), dim=-1)


def relation_kl(student: "torch.Tensor", teacher: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
    """KL(teacher || student) of each row (log-probabilities), averaged over heads and the
    non-padding query positions."""
    terms = teacher.exp() * (teacher - student)
    per_row = terms.masked_fill(mask[:, None, None, :] == 0, 0.0).sum(dim=-1)
    rows = mask[:, None, :].to(per_row.dtype).expand_as(per_row)
    return (per_row * rows).sum() / rows.sum()


# --------------------------------------------------------------------------- model internals


def encoder_layers(model: Any) -> list[Any]:
    """The stacked encoder blocks (``*.encoder.layer`` / ``*.transformer.layer``)."""
    import torch

    for name, module in model.named_modules():
        if _LAYER_LIST.search(name) and isinstance(module, torch.nn.ModuleList):
            return list(module)
    raise QagateError(
        f"cannot find the stacked encoder layers of a {type(model).__name__}",
        hint="attention and value-relation transfer need a BERT-like encoder; use --hidden-loss only",
    )


def qkv_projections(model: Any, layer: int) -> dict[str, Any]:
    """The query, key and value ``Linear`` modules of encoder ``layer``'s self-attention."""
    import torch

    found = {}
    for name, module in encoder_layers(model)[layer].named_modules():
        leaf = name.rsplit(".", 1)[-1]
        for role, leaves in _PROJECTIONS.items():
            if leaf in leaves and isinstance(module, torch.nn.Linear):
                found[role] = module
    if len(found) != len(_PROJECTIONS):
        raise QagateError(
            f"cannot find the query/key/value projections in layer {layer} of a {type(model).__name__}",
            hint="attention and value-relation transfer need BERT-style self-attention; use --hidden-loss",
        )
    return found


class _Recorder:
    """Forward hooks that keep the latest output of chosen projections, keyed (layer, role)."""

    def __init__(self, model: Any, wanted: set[tuple[int, str]]) -> None:
        self.outputs: dict[tuple[int, str], Any] = {}
        self._handles = []
        for layer, role in sorted(wanted):
            module = qkv_projections(model, layer)[role]
            self._handles.append(module.register_forward_hook(self._keep((layer, role))))

    def _keep(self, key: tuple[int, str]) -> Any:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            self.outputs[key] = output

        return hook

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.outputs.clear()


@functools.cache
def _trainable_class() -> type:
    import torch

    class StudentWithProjections(torch.nn.Module):
        """What the trainer optimises and checkpoints when there are projections: the student
        and the projections (which are not part of the saved student)."""

        def __init__(self, student: Any, projections: Any) -> None:
            super().__init__()
            self.student, self.projections = student, projections

        @property
        def base_model(self) -> Any:  # --freeze-embeddings reaches the student's embeddings
            return self.student.base_model

        def get_input_embeddings(self) -> Any:
            return self.student.get_input_embeddings()

        def forward(self, **inputs: Any) -> Any:
            return self.student(**inputs)

    return StudentWithProjections


# --------------------------------------------------------------------------- the objective


class TransferLoss:
    """``loss_fn(model, batch)``: the logit distillation loss (``kd_loss``) plus the weighted
    intermediate losses, from one student and one teacher forward. Train ``trainable`` (the
    student, or the student with its projections); ``close()`` removes the hooks."""

    def __init__(
        self,
        teacher: Any,
        student: Any,
        settings: Transfer,
        *,
        temperature: float,
        alpha: float,
        copied: Sequence[int] | None = None,
    ) -> None:
        import torch

        n_s, n_t = student.config.num_hidden_layers, teacher.config.num_hidden_layers
        self.pairs = settings.layer_map or default_layer_map(n_s, n_t, copied)
        check_layer_map(self.pairs, n_s, n_t)
        self.teacher, self.settings = teacher, settings
        self.temperature, self.alpha = temperature, alpha
        self.heads = _check_heads(student.config.num_attention_heads, teacher, settings)
        width_s, width_t = student.config.hidden_size, teacher.config.hidden_size
        self.projections = None
        if settings.hidden > 0 and width_s != width_t:
            self.projections = torch.nn.ModuleList(
                torch.nn.Linear(width_s, width_t) for _ in range(len(self.pairs) + 1)
            )
        wrapped = self.projections is not None
        self.trainable = _trainable_class()(student, self.projections) if wrapped else student
        self.deepest = max(self.pairs)
        self._student = _Recorder(student, self._wanted(0))
        self._teacher = _Recorder(teacher, self._wanted(1))

    def _wanted(self, side: int) -> set[tuple[int, str]]:
        wanted = set()
        if self.settings.attention > 0:
            wanted |= {(pair[side], role) for pair in self.pairs for role in ("query", "key")}
        if self.settings.value_relation > 0:
            wanted.add((self.deepest[side], "value"))
        return wanted

    def recipe(self) -> dict[str, Any]:
        """The settings as the checkpoint and the model card record them."""
        return {
            "hidden_loss": self.settings.hidden,
            "attention_loss": self.settings.attention,
            "value_relation_loss": self.settings.value_relation,
            "layer_map": format_layer_map(self.pairs),
            "projection": self.projections is not None,
        }

    def __call__(self, model: Any, batch: dict[str, Any]) -> "torch.Tensor":
        terms = self.terms(model, batch)
        loss = terms.pop("logits")
        for name, value in terms.items():
            loss = loss + getattr(self.settings, name) * value
        return loss

    def terms(self, model: Any, batch: dict[str, Any]) -> dict[str, "torch.Tensor"]:
        """The unweighted terms of one batch: ``logits`` (``kd_loss``), and ``hidden``,
        ``attention`` and ``value_relation`` where their weight is above 0."""
        import torch

        inputs, mask = model_inputs(batch), batch["attention_mask"]
        hidden = self.settings.hidden > 0
        out = model(**inputs, output_hidden_states=hidden)
        with torch.no_grad():
            ref = self.teacher(**inputs, output_hidden_states=hidden)
        terms = {
            "logits": kd_loss(
                out.start_logits,
                out.end_logits,
                ref.start_logits,
                ref.end_logits,
                batch["start_positions"],
                batch["end_positions"],
                mask,
                temperature=self.temperature,
                alpha=self.alpha,
            )
        }
        if hidden:
            pairs = [(0, 0), *((s + 1, t + 1) for s, t in self.pairs)]  # 0: the embeddings' output
            terms["hidden"] = hidden_mse(
                [out.hidden_states[s] for s, _ in pairs],
                [ref.hidden_states[t] for _, t in pairs],
                mask,
                self.projections,
            )
        if self.settings.attention > 0:
            terms["attention"] = self._attention_kl(mask)
        if self.settings.value_relation > 0:
            terms["value_relation"] = self._value_relation_kl(mask)
        return terms

    def _attention_kl(self, mask: "torch.Tensor") -> "torch.Tensor":
        s_out, t_out = self._student.outputs, self._teacher.outputs
        total = mask.new_zeros((), dtype=s_out[(self.pairs[0][0], "query")].dtype)
        for s, t in self.pairs:
            student = relation_log_probs(s_out[(s, "query")], s_out[(s, "key")], self.heads, mask)
            teacher = relation_log_probs(t_out[(t, "query")], t_out[(t, "key")], self.heads, mask)
            total = total + relation_kl(student, teacher, mask)
        return total / len(self.pairs)

    def _value_relation_kl(self, mask: "torch.Tensor") -> "torch.Tensor":
        s, t = self.deepest
        v_s, v_t = self._student.outputs[(s, "value")], self._teacher.outputs[(t, "value")]
        student = relation_log_probs(v_s, v_s, self.heads, mask)
        teacher = relation_log_probs(v_t, v_t, self.heads, mask)
        return relation_kl(student, teacher, mask)

    def close(self) -> None:
        self._student.close()
        self._teacher.close()


def _check_heads(student_heads: int, teacher: Any, settings: Transfer) -> int:
    """The heads both sides are split into: the student's. Attention transfer compares head by
    head, so the counts must match; value relations need only a teacher width they divide."""
    teacher_heads, width = teacher.config.num_attention_heads, teacher.config.hidden_size
    if settings.attention > 0 and student_heads != teacher_heads:
        raise QagateError(
            f"--attention-loss compares attention head by head, but the student has {student_heads} "
            f"heads and the teacher {teacher_heads}",
            hint="use a student with the teacher's head count, or --hidden-loss / --value-relation-loss",
        )
    if settings.value_relation > 0 and width % student_heads:
        raise QagateError(
            f"--value-relation-loss splits values into the student's {student_heads} heads, which "
            f"do not divide the teacher's width {width}",
            hint="use a student whose head count divides the teacher's hidden size",
        )
    return student_heads
