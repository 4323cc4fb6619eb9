"""Students for distillation: the teacher with a subset of its layers (the DistilBERT recipe:
embeddings and span head copied), or a given QA model checked against the teacher's vocabulary."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qagate.core.errors import QagateError
from qagate.training.models import load_qa_model

# "<prefix>.<index>.<rest>" for the stacked encoder blocks of BERT-like models
# (bert/roberta/electra: "*.encoder.layer.N."; distilbert: "*.transformer.layer.N.").
_LAYER_KEY = re.compile(
    r"^(?P<prefix>(?:.*\.)?(?:encoder|transformer)\.layer)\.(?P<index>\d+)\.(?P<rest>.+)$"
)


def parse_layers(text: str) -> list[int]:
    """``"0,2,4"`` -> [0, 2, 4]."""
    try:
        layers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise QagateError(
            f"--student-layers {text!r} is not a list of layer numbers",
            hint="write them comma-separated, e.g. 0,2,4",
        ) from None
    if not layers:
        raise QagateError("--student-layers is empty", hint="e.g. 0,2,4")
    return layers


def student_from_layers(
    teacher: Any,
    layers: Sequence[int],
    *,
    layer_key: re.Pattern[str] = _LAYER_KEY,
    stack: str = "encoder",
    configure: Callable[[Any, int], None] | None = None,
) -> Any:
    """A copy of ``teacher`` keeping only the ``layers`` of its stack (student layer i = teacher
    layer ``layers[i]``); embeddings, head and everything else copied unchanged. ``layer_key``
    finds the stacked layers' weights; ``configure(config, count)`` adjusts the student's config
    (per-layer settings) before it is built."""
    import copy

    state = teacher.state_dict()
    matches = {key: layer_key.match(key) for key in state}
    count = len({int(m["index"]) for m in matches.values() if m})
    if not count:
        raise QagateError(
            f"cannot find the stacked {stack} layers of a {type(teacher).__name__}",
            hint="use --student DIR with a student you built",
        )
    bad = [i for i in layers if not 0 <= i < count]
    if bad or len(set(layers)) != len(layers):
        raise QagateError(
            f"--student-layers {','.join(map(str, layers))} must be distinct layer numbers in 0-{count - 1}",
            hint=f"the teacher has {count} layers, e.g. {','.join(map(str, range(0, count, 2)))}",
        )
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    if configure is not None:
        configure(config, count)
    student = type(teacher)(config)
    new_state = {}
    for key, value in state.items():
        m = matches[key]
        if m is None:
            new_state[key] = value.clone()
        elif int(m["index"]) in layers:
            new_state[f"{m['prefix']}.{layers.index(int(m['index']))}.{m['rest']}"] = value.clone()
    student.load_state_dict(new_state, strict=True)
    return student


def load_student(path: str | Path, teacher_tokenizer: Any, *, attention_dropout: float | None = None) -> Any:
    """A user-supplied student; it must read the same tokens as the teacher."""
    student, tokenizer, fresh_head = load_qa_model(path, what="student", attention_dropout=attention_dropout)
    if tokenizer.get_vocab() != teacher_tokenizer.get_vocab():
        raise QagateError(
            "the student's vocabulary differs from the teacher's, so their logits do not "
            "line up token by token",
            path=path,
            hint="build the student on the teacher's tokenizer",
        )
    if fresh_head:
        print(f"{path}: no QA head in the checkpoint; a fresh span head is initialised")
    return student


# --------------------------------------------------------------------------- teacher logits
