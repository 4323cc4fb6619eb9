"""A fake-clock simulation of paired timing, for measuring how often speed intervals cover.

Two fake models spend time on a fake clock (nothing sleeps), so :func:`measure_paired` runs
unchanged and thousands of measurements take seconds. Each call of a model costs
``base x questions x exp(drift + noise)``:

- ``noise``: independent, normal with sd ``noise`` on the log scale (5%: the spread of a round
  on a shared CPU);
- ``drift`` with ``phi > 0``: an AR(1) process of stationary sd ``drift``, advanced at every
  call; ``shared=False`` gives each model its own (its speed wanders on its own: the hardest
  case, nothing cancels in the ratio), ``shared=True`` one process for the machine that both
  models feel (other jobs' load);
- ``trend``: a steady slowdown of the machine, log seconds growing by ``trend`` per call (a
  fixed order R M R M ... would always charge the second model more).

The true speed-up is ``reference_base / model_base``. Used by tests/test_speed_validity.py and
bench/bench_speed_validity.py.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Scenario:
    """How the fake machine behaves."""

    name: str
    noise: float = 0.05
    phi: float = 0.0
    drift: float = 0.05
    shared: bool = False
    trend: float = 0.0


SCENARIOS = (
    Scenario("independent 5% noise"),
    Scenario("own drift AR(1) 0.5", phi=0.5),
    Scenario("own drift AR(1) 0.8", phi=0.8),
    Scenario("shared drift AR(1) 0.8", phi=0.8, shared=True),
    Scenario("steady slowdown 0.5%/call", trend=0.005),
)


class FakeClock:
    """A clock that only moves when a fake model works."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Process:
    """An AR(1) process of stationary sd ``sd``, one step per :meth:`step`."""

    def __init__(self, phi: float, sd: float, rng: random.Random) -> None:
        self.phi, self.sd, self.rng = phi, sd, rng
        self.value = rng.gauss(0.0, sd) if phi > 0 else 0.0

    def step(self) -> float:
        if self.phi > 0:
            innovation = self.rng.gauss(0.0, self.sd * math.sqrt(1.0 - self.phi**2))
            self.value = self.phi * self.value + innovation
        return self.value


class Machine:
    """The fake machine of one measurement: a clock, the shared load and the call count."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario, self.rng = scenario, random.Random(seed)
        self.clock = FakeClock()
        self.load = _Process(scenario.phi if scenario.shared else 0.0, scenario.drift, self.rng)
        self.calls = 0

    def model(self, name: str, base: float) -> "FakeModel":
        own = 0.0 if self.scenario.shared else self.scenario.phi
        return FakeModel(name, base, self, _Process(own, self.scenario.drift, self.rng))


class FakeModel:
    """Spends ``base`` seconds per question of the fake clock, drifting as the scenario says."""

    def __init__(self, name: str, base: float, machine: Machine, drift: _Process) -> None:
        self.name, self.base, self.machine, self.drift = name, base, machine, drift

    def predict(self, examples: Any) -> Any:
        from qagate.data.predictions import Predictions

        m, s = self.machine, self.machine.scenario
        log_factor = self.drift.step() + m.rng.gauss(0.0, s.noise) + s.trend * m.calls
        if s.shared:
            log_factor += m.load.step()
        m.calls += 1
        m.clock.now += len(examples) * self.base * math.exp(log_factor)
        return Predictions({ex.id: "" for ex in examples}, total_seconds=0.0)

    def info(self) -> dict[str, Any]:
        return {"device": "cpu", "dtype": "fp32", "batch_size": 8}


def examples(n: int = 8) -> list[Any]:
    """``n`` placeholder questions (the fake models only count them)."""
    from qagate.data import QAExample

    return [QAExample(id=str(i), title="t", context="c", question="q") for i in range(n)]
