"""Where the shared read-only data lives: ``$QAGATE_SHARED``, default ``../shared`` beside the
checkout (the repository's conftest.py sets that default). Tests that need it are skipped,
with this path in the reason, when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("QAGATE_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
SQUAD = SHARED / "data" / "squad"
DEV = SQUAD / "dev-v1.1.json"

needs_shared = pytest.mark.skipif(
    not DEV.is_file(),
    reason=f"shared SQuAD data not found at {SQUAD} (set QAGATE_SHARED to the shared/ folder)",
)
