"""Which adapter class serves which ``kind:`` of model declaration.

Entries are ``"module:Class"`` strings imported only when a model of that kind is built, so
reading declarations (the plugin does it at start-up) never imports torch. A new kind of model
(``generative``, ``onnx``) is one more entry here, or a :func:`register_kind` call from a plugin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

from qagate.core.argtypes import did_you_mean
from qagate.core.errors import QagateError

if TYPE_CHECKING:  # pragma: no cover
    from qagate.inference.base import QAModel


class Declaration(Protocol):
    """What the registry reads of a model declaration (:class:`qagate.inference.config.ModelSpec`):
    its kind. Typed structurally, so that the declarations' module imports this one and not back."""

    @property
    def kind(self) -> str: ...


KINDS: dict[str, str] = {
    "extractive": "qagate.inference.extractive:ExtractiveModel",
    "replay": "qagate.inference.replay:ReplayModel",
    "generative": "qagate.inference.generative:GenerativeModel",
}


def register_kind(kind: str, target: str) -> None:
    """Add (or replace) a kind: ``target`` is ``"package.module:Class"``; the class needs a
    ``from_spec(spec, *, device=None)`` constructor and the ``QAModel`` protocol."""
    if ":" not in target:
        raise ValueError(f"target must look like 'package.module:Class', got {target!r}")
    KINDS[kind] = target


def adapter_class(kind: str) -> type:
    """Import and return the adapter class for ``kind``."""
    if kind not in KINDS:
        raise QagateError(
            f"unknown model kind {kind!r}{did_you_mean(kind, KINDS)}",
            hint=f"known kinds: {', '.join(sorted(KINDS))}",
        )
    module_name, _, attr = KINDS[kind].partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def build_model(spec: Declaration, *, device: str | None = None) -> "QAModel":
    """The adapter for a declaration; ``device`` overrides the declared one (e.g. from a CLI flag)."""
    adapter: Any = adapter_class(spec.kind)
    return adapter.from_spec(spec, device=device)


def quiet_model_loading() -> None:
    """No weight-loading progress bars: they would leak into every captured test output."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        return
    hf_logging.disable_progress_bar()
