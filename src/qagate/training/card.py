"""What a trained model leaves behind besides its weights: a ``qa_models/`` declaration, the
held-out numbers computed through that declaration (the same path the release gate uses), and
a model card that states data, licences, split, recipe, the exact command and those numbers.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qagate.core.files import atomic_write_text
from qagate.scoring import registry

SQUAD_LICENCE = "CC BY-SA 4.0"

#: The held-out numbers a card reports, labelled and formatted as the metric registry says.
_HELD_OUT = ("exact_match", "f1", "seconds_per_question")


def write_declaration(
    path: str | Path,
    *,
    name: str,
    role: str,
    model_dir: str | Path,
    max_seq_len: int,
    doc_stride: int,
    max_answer_len: int = 15,
    description: str | None = None,
    generation: Mapping[str, Any] | None = None,
) -> Path:
    """A ``qa_models/``-style YAML file; ``source`` is relative to the file's folder.

    With ``generation`` (prompt, shots, max_new_tokens, stop) the model is ``kind: generative``
    and those keys replace the extractive window settings.
    """
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    source = Path(os.path.relpath(Path(model_dir).resolve(), path.parent.resolve())).as_posix()
    if not source.startswith("."):
        source = f"./{source}"
    declaration: dict[str, Any] = {
        "name": name,
        "role": role,
        "kind": "generative" if generation else "extractive",
        "source": source,
    }
    if generation:
        declaration.update(generation)
    else:
        declaration.update(max_seq_len=max_seq_len, doc_stride=doc_stride, max_answer_len=max_answer_len)
    if description:
        declaration["description"] = description
    atomic_write_text(path, yaml.safe_dump(declaration, sort_keys=False, allow_unicode=True))
    return path


def evaluate_declared(declaration: str | Path, dataset: Any) -> dict[str, Any]:
    """EM/F1 (and speed) of the declared model on ``dataset``, through the same path the
    release gate uses: declaration -> registry adapter -> engine -> official SQuAD scoring."""
    from qagate.inference.config import load_model_spec
    from qagate.inference.registry import build_model
    from qagate.scoring.squad import score

    model = build_model(load_model_spec(declaration))
    predictions = model.predict(list(dataset))
    scores = score(dataset, predictions.answers)
    return {
        "dataset": dataset.name,
        "questions": len(dataset),
        "exact_match": scores.exact_match,
        "f1": scores.f1,
        "seconds_per_question": predictions.seconds_per_question,
    }


#: How an installed package's folder is shown in a card's command block, with the line that sets it.
SITE_PACKAGES = "$SITE_PACKAGES"
_SITE_PACKAGES_LINE = (
    "SITE_PACKAGES=$(python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')"
)


def portable_path(path: str | os.PathLike[str]) -> str:
    """A path as a card shows it, so that the card reads the same on every machine: a folder
    inside an installed package becomes ``$SITE_PACKAGES/<package>/...``, a path under the
    working directory becomes relative to it, anything else stays as it is."""
    text = os.fspath(path)
    parts = Path(text).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            at = len(parts) - 1 - parts[::-1].index(marker)
            return "/".join([SITE_PACKAGES, *parts[at + 1 :]])
    if os.path.isabs(text):
        try:
            return Path(text).relative_to(Path.cwd()).as_posix()
        except ValueError:
            pass
    return text


def portable_command(command: str) -> str:
    """``command`` with every absolute path made portable (see ``portable_path``); when one
    lies in an installed package, a first line sets ``SITE_PACKAGES`` so the block still runs."""
    words = shlex.split(command)
    shown = []
    for word in words:
        path = portable_path(word) if os.path.isabs(word) else word
        shown.append(
            f'"{SITE_PACKAGES}"{shlex.quote(path[len(SITE_PACKAGES) :])}'
            if path.startswith(SITE_PACKAGES)
            else shlex.quote(path)
        )
    text = " ".join(shown)
    return f"{_SITE_PACKAGES_LINE}\n{text}" if SITE_PACKAGES in text else text


def _data_licence(source: str) -> str:
    if "squad" in source.lower():
        return f"SQuAD (Rajpurkar et al., 2016), licensed {SQUAD_LICENCE} (text from Wikipedia)"
    return f"`{source}`: the licence of that data applies"


def _articles(value: Any) -> str:
    return "all articles" if not value else f"articles {value[0]}-{value[1]} (inclusive, file order)"


def render_model_card(info: Mapping[str, Any]) -> str:
    """The README.md text for a trained model (see ``write_model_card`` for the keys)."""
    train, held = info["train"], info.get("eval")
    base_licence = info.get("base_licence")
    generation = info.get("generation")  # set for a causal LM (kind: generative)
    front = [
        "---",
        *([f"license: {base_licence}"] if base_licence else []),
        "library_name: transformers",
        f"pipeline_tag: {'text-generation' if generation else 'question-answering'}",
        "tags:",
        f"- {'generative' if generation else 'extractive'}-qa",
        "- qagate",
    ]
    if info.get("method") == "distillation":
        front.append("- knowledge-distillation")
    if "squad" in train["source"].lower():
        front += ["datasets:", "- squad"]
    front.append("---")

    what = (
        "distilled from the teacher below"
        if info.get("method") == "distillation"
        else "fine-tuned for extractive question answering"
    )
    lines = [
        *front,
        "",
        f"# {info['name']}",
        "",
        f"A {info['role']} model {what} with `qagate` ({info['parameters']:,} parameters).",
        "",
    ]

    lines += [
        "## Data and licences",
        "",
        f"- Training data: {_data_licence(train['source'])}.",
        f"- {'Teacher' if info.get('method') == 'distillation' else 'Base model'}: "
        f"`{portable_path(str(info.get('base') or info.get('teacher') or '?'))}`, "
        f"licensed {base_licence or 'as its own model card states'}.",
        "- These weights are a derivative of both; honour both licences when you share them.",
        "",
    ]

    lines += [
        "## Split",
        "",
        f"- Training: `{train['source']}`, {_articles(train['articles'])}"
        + (f", first {train['limit']} questions" if train.get("limit") else "")
        + (f", each also as a perturbed copy ({', '.join(train['augment'])})" if train.get("augment") else "")
        + f": {train['questions']:,} questions -> "
        + (
            f"{train['windows']:,} prompt/answer pairs; "
            if generation
            else f"{train['windows']:,} windows ({train['answerable_windows']:,} contain their answer); "
        )
        + f"dataset fingerprint `{train['fingerprint'][:16]}`.",
    ]
    if held:
        lines.append(
            f"- Held out: `{held['source']}`, {_articles(held['articles'])}: "
            f"{held['questions']:,} questions the model never saw; fingerprint "
            f"`{held['fingerprint'][:16]}`."
        )
    lines.append("")

    cfg = info["config"]
    lines += ["## Recipe", ""]
    if info.get("method") == "distillation":
        lines += [
            f"- Teacher: `{portable_path(info['teacher'])}`.",
            f"- Student: {info['student']}.",
            f"- Loss: alpha * CE({'gold answer tokens' if generation else 'hard labels'}) + (1 - alpha) "
            "* T^2 * KL(softmax(teacher / T) || softmax(student / T)) "
            + (
                "over the vocabulary at every answer token (answer and stop string; prompt and "
                "padding masked); "
                if generation
                else "on the start and on the end logits, padding masked; "
            )
            + f"T = {info['temperature']}, alpha = {info['alpha']}"
            + (" (hard labels only: the ablation)" if info["alpha"] == 1.0 else "")
            + ".",
            "- Teacher logits: "
            f"{'computed once and cached' if info.get('cached_teacher') else 'recomputed every step'}.",
            *([_transfer_line(info["transfer"])] if info.get("transfer") else []),
        ]
    else:
        lines += [
            f"- Base: `{portable_path(info['base'])}`"
            + (" (encoder only; a fresh span head was initialised)" if info.get("fresh_head") else "")
            + ".",
            "- Loss: cross-entropy on the start and on the end token (padding masked).",
        ]
    dropout = cfg.get("attention_dropout")
    dropout = "as the model configures it" if dropout is None else dropout
    lines += [
        f"- Pairs: the generative engine's {generation['shots']}-shot prompt, then ' <gold "
        f"answer>' and the stop string, at most {cfg['max_seq_len']} tokens "
        f"({info.get('skipped', 0):,} longer or unanswerable questions left out); "
        "length-grouped batches, left padding."
        if generation
        else f"- Windows: {cfg['max_seq_len']} tokens, stride (overlap) {cfg['stride']}; "
        "length-grouped batches with dynamic padding.",
        f"- Optimiser: AdamW, lr {cfg['lr']:g}, weight decay {cfg['weight_decay']:g} (not on biases "
        f"and LayerNorm), batch {cfg['batch_size']}, "
        f"{cfg['epochs']} epoch{'s' if cfg['epochs'] > 1 else ''} = {info['steps']:,} steps, "
        f"linear warm-up over {cfg['warmup_ratio']:.0%} of the steps then linear decay to 0, "
        f"gradient norm clipped at {cfg['max_grad_norm']:g}.",
        f"- Embeddings {'frozen' if cfg['freeze_embeddings'] else 'trained'}; attention dropout "
        f"{dropout}; seed {cfg['seed']} (Python, NumPy, torch).",
        f"- Training loss: {_loss(info.get('first_loss'))} (mean of the first {info['loss_window']} "
        f"steps) -> {_loss(info.get('last_loss'))} (last {info['loss_window']}); "
        f"{info['seconds'] / 60:.1f} min of training"
        + (f" after resuming at step {info['resumed_from']}" if info.get("resumed_from") else "")
        + ".",
        "",
    ]

    command = portable_command(info["command"]) if info.get("command") else "(library call)"
    lines += ["## Command", "", "```sh", command, "```", ""]

    lines += ["## Held-out results", ""]
    numbers = info.get("held_out")
    if numbers:
        lines += [
            f"On {numbers['questions']:,} held-out questions (`{numbers['dataset']}`), official "
            "SQuAD v1.1 scoring through this model's `qa_models/` declaration:",
            "",
            "| " + " | ".join(registry.METRICS[name].label for name in _HELD_OUT) + " |",
            "| " + " | ".join("---" for _ in _HELD_OUT) + " |",
            "| " + " | ".join(registry.fmt(numbers.get(name), name) for name in _HELD_OUT) + " |",
            "",
        ]
    else:
        lines += ["Not evaluated: no held-out split was given (`--eval-articles` / `--eval-data`).", ""]
    lines += [
        f"Declaration: `{Path(info['declaration']).name}` (kind generative, shots "
        f"{generation['shots']}, max_new_tokens {generation['max_new_tokens']})."
        if generation
        else f"Declaration: `{Path(info['declaration']).name}` (kind extractive, max_seq_len "
        f"{cfg['max_seq_len']}, doc_stride {cfg['stride']})."
    ]
    return "\n".join(lines) + "\n"


def _transfer_line(transfer: Mapping[str, Any]) -> str:
    """The intermediate-layer terms added to the loss (training/transfer.py), as the card states them."""
    terms = []
    if transfer["hidden_loss"]:
        how = " through a learned linear projection (not saved)" if transfer["projection"] else ""
        terms.append(f"{transfer['hidden_loss']:g} * MSE(hidden states{how})")
    if transfer["attention_loss"]:
        terms.append(f"{transfer['attention_loss']:g} * KL(self-attention distributions, per head)")
    if transfer["value_relation_loss"]:
        terms.append(f"{transfer['value_relation_loss']:g} * KL(value relations, deepest mapped layer)")
    return (
        f"- Intermediate layers (student:teacher {transfer['layer_map']}; hidden states also "
        f"embeddings to embeddings): + {' + '.join(terms)}, means over the mapped layers; the "
        "teacher runs at every step."
    )


def _loss(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def write_model_card(model_dir: str | Path, info: Mapping[str, Any]) -> Path:
    """Write ``README.md`` into the model directory.

    ``info`` keys: name, role, method ("fine-tune" | "distillation"), base or teacher (+ student,
    temperature, alpha, cached_teacher, transfer), base_licence, config (TrainConfig.as_dict()), train and
    eval (data summaries), held_out (numbers or None), steps, first_loss, last_loss, seconds,
    resumed_from, loss_window, parameters, command, declaration.
    """
    path = Path(model_dir) / "README.md"
    atomic_write_text(path, render_model_card(info))
    return path
