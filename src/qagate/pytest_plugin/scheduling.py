"""xdist scheduling for gate items: all of a model's items on one worker, the rest as ``load``.

A model's rules share its predictions (and its build): sent to one worker, they are computed
once, where ``--dist load`` would compute them in every worker that draws one of its rules.
Grouping reads the node id alone (``gate_x.yaml::<model>::<rule>``), so ids stay exactly those of
a serial run; ``--dist loadgroup`` would append ``@group`` to them. Imported only under xdist.
"""

from __future__ import annotations

from pathlib import Path

from xdist.scheduler import LoadScopeScheduling

from qagate.pytest_plugin.collect import is_gate_file


def model_scope(nodeid: str) -> str:
    """The work unit of a test: ``qagate model <name>`` for a gate item, else the test itself."""
    parts = nodeid.split("::")
    if len(parts) >= 3 and is_gate_file(Path(parts[0])):
        return f"qagate model {parts[1]}"
    return nodeid


class ModelGroupScheduling(LoadScopeScheduling):
    """``--dist load`` with gate items grouped by model (see :func:`model_scope`)."""

    def _split_scope(self, nodeid: str) -> str:
        return model_scope(nodeid)
