"""qagate's SQuAD scoring as a Hugging Face ``evaluate`` metric, loaded offline from the package.

``load()`` (or ``evaluate.load(PATH)``) gives a metric with the inputs of the hub's ``squad``
metric whose EM/F1 and bootstrap intervals are computed by :mod:`qagate.scoring.squad` and
:mod:`qagate.scoring.stats`, so a training loop's ``compute_metrics`` reports exactly the
numbers the release gate judges. The metric script ships inside the package
(``hf_evaluate/qagate_squad/qagate_squad.py``); ``evaluate`` loads a local folder holding a
script of the same name without the hub. ``evaluate`` is imported only inside :func:`load`,
so importing this module stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import evaluate

PATH: str = str(Path(__file__).resolve().parent / "hf_evaluate" / "qagate_squad")
"""The metric's folder, for ``evaluate.load(PATH)``."""


def load(**kwargs: Any) -> "evaluate.EvaluationModule":
    """``evaluate.load(PATH, **kwargs)``: the qagate SQuAD metric, without the Hugging Face hub.

    ``kwargs`` go to ``evaluate.load`` (``keep_in_memory``, ``cache_dir``, ``experiment_id``,
    ``num_process``/``process_id`` ...). Compute with ``confidence=0.95`` to add the
    ``exact_match_ci`` / ``f1_ci`` intervals.
    """
    import evaluate

    return evaluate.load(PATH, **kwargs)
