"""The ``qagate finetune`` recipe: a base encoder and SQuAD-format data in, a trained QA model
directory with its card and ``qa_models/`` declaration out (distillation reuses its steps)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qagate.core.errors import QagateError
from qagate.training.features import TrainingWindows, build_windows
from qagate.training.models import count_parameters, load_qa_model, save_model_dir
from qagate.training.trainer import TrainConfig, TrainingData, TrainResult, set_seed, supervised_loss, train


@dataclass
class DataPlan:
    """Where the training and held-out questions come from."""

    train: str
    articles: tuple[int, int] | None = None
    eval_articles: tuple[int, int] | None = None
    eval_data: str | None = None
    limit: int | None = None
    augment: tuple[str, ...] = ()  # perturbation kinds of a training copy (--augment)
    augment_seed: int = 0

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise QagateError(f"--limit must be at least 1, got {self.limit}")
        a, b = self.articles, self.eval_articles
        if a and b and (self.eval_data in (None, self.train)) and not (a[1] < b[0] or b[1] < a[0]):
            raise QagateError(
                f"training articles {a[0]}-{a[1]} overlap held-out articles {b[0]}-{b[1]}",
                hint="held-out numbers must come from articles the model never saw",
            )

    def load_train(self) -> Any:
        from qagate.data import load_dataset

        dataset = load_dataset(self.train, articles=self.articles, limit=self.limit)
        if not self.augment:
            return dataset
        from qagate.data.perturb import with_perturbed_copy

        return with_perturbed_copy(dataset, self.augment, self.augment_seed)

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
        raise QagateError(
            "the training selection has no questions",
            path=getattr(dataset, "source", None),
            hint="check --train and --articles",
        )
    return build_windows(tokenizer, examples, max_seq_len=cfg.max_seq_len, stride=cfg.stride)


def finish(
    model: Any,
    tokenizer: Any,
    *,
    output: Output,
    cfg: TrainConfig,
    plan: DataPlan,
    train_set: Any,
    windows: TrainingData,
    result: TrainResult,
    card: dict[str, Any],
    progress: bool = True,
    generation: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Save the model dir, declare it, score it on the held-out split, write its card.

    ``generation`` (prompt, shots, max_new_tokens, stop) declares a causal LM as ``kind:
    generative``; without it the model is ``kind: extractive``. Returns the held-out numbers
    (or None without a held-out selection).
    """
    from qagate.training.card import evaluate_declared, write_declaration, write_model_card

    save_model_dir(model, tokenizer, output.out_dir)
    declaration = write_declaration(
        output.declaration,
        name=output.name,
        role=output.role,
        model_dir=output.out_dir,
        max_seq_len=cfg.max_seq_len,
        doc_stride=cfg.stride,
        max_answer_len=output.max_answer_len,
        description=f"{card['method']} on {train_set.name} with qagate; "
        "recipe and held-out numbers in the model dir's README.md",
        generation=generation,
    )
    held_out = None
    eval_set = plan.load_eval()
    if eval_set is not None:
        if progress:
            print(f"evaluating on {len(eval_set)} held-out questions ({eval_set.name})")
        held_out = evaluate_declared(declaration, eval_set)
    window = _loss_window(result.steps)
    write_model_card(
        output.out_dir,
        dict(
            card,
            generation=generation,
            name=output.name,
            role=output.role,
            config=cfg.as_dict(),
            train=_data_summary(plan, train_set, windows),
            eval=None
            if eval_set is None
            else {
                "source": eval_set.source,
                "name": eval_set.name,
                "questions": len(eval_set),
                "articles": plan.eval_articles,
                "fingerprint": eval_set.fingerprint,
            },
            held_out=held_out,
            steps=result.steps,
            steps_per_epoch=result.steps_per_epoch,
            loss_window=window,
            first_loss=result.mean_loss(slice(0, window)),
            last_loss=result.mean_loss(slice(-window, None)),
            seconds=result.seconds,
            resumed_from=result.resumed_from,
            parameters=count_parameters(model),
            declaration=str(declaration),
        ),
    )
    return held_out


def _loss_window(steps: int) -> int:
    """Steps averaged for the card's "loss at the start -> at the end": 50, fewer on short runs."""
    return max(1, min(50, steps // 2))


def _data_summary(plan: DataPlan, dataset: Any, windows: TrainingData) -> dict[str, Any]:
    return {
        "source": dataset.source,
        "name": dataset.name,
        "articles": plan.articles,
        "limit": plan.limit,
        "augment": list(plan.augment),
        "questions": len(dataset),
        "windows": len(windows),
        "answerable_windows": getattr(windows, "answerable", None),  # causal pairs: all
        "fingerprint": dataset.fingerprint,
    }


def finetune(
    *,
    base: str | Path,
    plan: DataPlan,
    output: Output,
    cfg: TrainConfig,
    resume: bool = False,
    save_every: int = 0,
    command: str = "",
    progress: bool = True,
) -> dict[str, Any] | None:
    """The ``qagate finetune`` recipe: base encoder -> QA model dir + card + declaration."""
    set_seed(cfg.seed)
    model, tokenizer, fresh_head = load_qa_model(base, attention_dropout=cfg.attention_dropout)
    if fresh_head and progress:
        print(f"{base}: no QA head in the checkpoint; a fresh span head is initialised (seed {cfg.seed})")
    train_set = plan.load_train()
    windows = prepare_windows(tokenizer, train_set, cfg)
    if progress:
        print(
            f"training on {len(train_set)} questions -> {len(windows)} windows "
            f"({windows.answerable} contain their answer)"
        )
    recipe = {
        "method": "fine-tune",
        "base": str(base),
        "fresh_head": fresh_head,
        "data": train_set.fingerprint,
        "objective": "cross-entropy on start and end (padding masked)",
    }
    result = train(
        model,
        windows,
        cfg,
        out_dir=output.out_dir,
        loss_fn=supervised_loss,
        pad_token_id=tokenizer.pad_token_id,
        resume=resume,
        save_every=save_every,
        progress=progress,
        recipe=recipe,
    )
    return finish(
        model,
        tokenizer,
        output=output,
        cfg=cfg,
        plan=plan,
        train_set=train_set,
        windows=windows,
        result=result,
        progress=progress,
        card=dict(recipe, command=command, base_licence=licence_of(Path(base))),
    )


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
