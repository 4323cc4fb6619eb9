"""Generative QA models (causal LMs such as Pythia, Qwen2.5 or Llama) loaded with transformers.

Like the extractive adapter, building only checks local files and :meth:`fingerprint` hashes
files without importing torch, so a prediction-cache hit never loads the model. Answers come
from :class:`~qagate.inference.generation.GenerationEngine`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from qagate import __version__
from qagate.core.errors import QagateError
from qagate.data.predictions import Predictions
from qagate.inference.extractive import (
    _DTYPES,
    WEIGHT_SUFFIXES,
    ExtractiveModel,
    file_sha256,
    model_files,
    resolve_device,
    resolve_dtype,
    safetensors_parameter_count,
)
from qagate.inference.generation import GenerationEngine, GenerationSettings
from qagate.inference.model_files import hub_snapshot


class GenerativeModel:
    """A causal LM from a local folder or a hub id that answers from a prompt (greedy decoding)."""

    def __init__(
        self,
        name: str,
        source: str,
        *,
        revision: str | None = None,
        settings: GenerationSettings = GenerationSettings(),  # noqa: B008 (frozen: a shared default is safe)
        device: str = "auto",
        dtype: str = "auto",
        trust_remote_code: bool = False,
    ) -> None:
        self.name = name
        self.source = source
        self.revision = revision
        self.settings = settings
        self.requested_device = device
        self.requested_dtype = dtype
        self.trust_remote_code = trust_remote_code
        self.local_dir = ExtractiveModel._check_local(source)
        self._engine: GenerationEngine | None = None
        self._device: str | None = None

    @classmethod
    def from_spec(cls, spec, *, device: str | None = None) -> "GenerativeModel":
        settings = GenerationSettings(
            prompt=spec.prompt,
            shots=spec.shots,
            max_new_tokens=spec.max_new_tokens,
            stop=tuple(spec.stop),
            chat_template=spec.chat_template,
            batch_size=spec.batch_size,
        )
        try:
            return cls(
                spec.name,
                spec.source,
                revision=spec.revision,
                settings=settings,
                device=device or spec.device,
                dtype=spec.dtype,
                trust_remote_code=spec.trust_remote_code,
            )
        except QagateError as exc:
            raise QagateError(f"model {spec.name!r}: {exc}", path=spec.path) from None

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = resolve_device(self.requested_device)
        return self._device

    @property
    def dtype(self) -> str:
        return resolve_dtype(self.requested_dtype, self.device)

    def _check_architecture(self) -> None:
        if self.local_dir is None:
            return
        try:
            config = json.loads((self.local_dir / "config.json").read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise QagateError(f"config.json is not valid JSON: {exc}", path=self.local_dir) from None
        archs = config.get("architectures") or []
        if archs and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
            raise QagateError(
                f"not a causal language model (architectures: {', '.join(archs)})",
                path=self.local_dir,
                hint="kind: generative needs a *ForCausalLM checkpoint; encoders with a span "
                "head are kind: extractive",
            )

    def load(self) -> GenerationEngine:
        """Load tokenizer and weights once; later calls return the same engine."""
        if self._engine is not None:
            return self._engine
        self._check_architecture()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        where = str(self.local_dir or self.source)
        kwargs: dict = {"revision": self.revision, "trust_remote_code": self.trust_remote_code}
        if self.local_dir is not None and any(self.local_dir.glob("*.safetensors")):
            kwargs["use_safetensors"] = True
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                where, revision=self.revision, trust_remote_code=self.trust_remote_code
            )
            model = AutoModelForCausalLM.from_pretrained(where, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise QagateError(
                f"cannot load a causal language model: {first}",
                path=where,
                hint="check 'source' and 'revision'; hub ids need network access",
            ) from None
        if self.settings.chat_template and not getattr(tokenizer, "chat_template", None):
            raise QagateError(
                "chat_template: true but the tokenizer has no chat template",
                path=where,
                hint="use an instruct model's tokenizer, or set chat_template: false",
            )
        loaded: Any = model  # transformers' stubs type .to() on the class poorly
        model = loaded.to(device=self.device, dtype=getattr(torch, _DTYPES[self.dtype]))
        model.eval()
        self._engine = GenerationEngine(model, tokenizer, self.settings, device=self.device)
        return self._engine

    # -- the QAModel protocol ----------------------------------------------------------------

    def predict(self, examples: Sequence, progress: Callable[[int], None] | None = None) -> Predictions:
        return self.load().predict(examples, progress=progress)

    def _files(self) -> list[Path]:
        if self.local_dir is not None:
            return model_files(self.local_dir)
        return model_files(hub_snapshot(self.source, self.revision, self.load))

    def fingerprint(self) -> str:
        """sha256 over the model's files and every setting that changes its answers."""
        digest = hashlib.sha256()
        for path in self._files():
            digest.update(f"{path.name}\0{file_sha256(path)}\n".encode())
        settings = {
            "kind": "generative",
            "prompt": self.settings.prompt,
            "shots": self.settings.shots,
            "max_new_tokens": self.settings.max_new_tokens,
            "stop": list(self.settings.stop),
            "chat_template": self.settings.chat_template,
            "dtype": self.dtype,
            "device": self.device.split(":")[0],
            "qagate": __version__,
        }
        digest.update(json.dumps(settings, sort_keys=True).encode())
        return digest.hexdigest()

    def info(self) -> Mapping[str, object]:
        files = self._files()
        weights = [p for p in files if p.name.endswith(WEIGHT_SUFFIXES)]
        safetensors = [p for p in weights if p.name.endswith(".safetensors")]
        if safetensors:
            params = safetensors_parameter_count(safetensors)
        else:
            params = sum(p.numel() for p in self.load().model.parameters())
        return {
            "kind": "generative",
            "source": self.source,
            "revision": self.revision,
            "parameter_count": params,
            "size_on_disk_mb": round(sum(os.path.getsize(p) for p in (safetensors or weights)) / 1e6, 3),
            "device": self.device,
            "dtype": self.dtype,
            "shots": self.settings.shots,
            "max_new_tokens": self.settings.max_new_tokens,
            "stop": list(self.settings.stop),
            "chat_template": self.settings.chat_template,
            "batch_size": self.settings.batch_size,
        }
