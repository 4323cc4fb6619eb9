"""Sequential rules: look at the evidence after every chunk of questions, stop when it decides.

A gate file (or one block, or one rule) that says ::

    sequential: {look_every: 256, min_questions: 200, max_questions: all, seed: 0}

judges its ``exact_match`` / ``f1`` rules (against the teacher or a number) on questions taken
in a seeded random permutation of the dataset, ``look_every`` at a time. After each chunk every
undecided rule of the model feeds the chunk's per-question values (the paired differences
``model - coef * teacher``, or the model's own values) to its anytime-valid confidence
sequence (:func:`qagate.gating.judge.rule_sequence`, :mod:`qagate.scoring.confseq`), and the
rule is decided as soon as the interval lies on one side of 0 (from ``min_questions`` on). The
model's evaluation stops when all its sequential rules are decided or ``max_questions`` (all
questions by default) are used; what is still undecided then is UNDECIDED. Because the
sequence is valid at every n, looking after every chunk and stopping at the first decision keeps
each verdict's one-sided error at most ``(1 - confidence) / 2``, as a fixed-n verdict.

The bets are tuned to the questions the rule can use at most (``max_questions``, or the
dataset), which is known before the first look: any predictable bets keep the sequence valid at
every look, and tuning them to that horizon makes the last look as strong as a fixed-n verdict
on all those questions (an open-ended sequence's last interval is 1.5-1.7x as wide). Measured on
the leaderboard replays (``bench/bench_sequential.py``, 30 orders): a moderate margin (r-net
``exact_match >= 80``, +2.5 points) is decided on a median of 2,816 questions instead of 6,912,
a wide one on 768 instead of 512.

This module is standard library at import time (gate files are read at collection); numpy is
imported by :class:`SequentialLoop` when a run starts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qagate.gating.rules import Rule

if TYPE_CHECKING:  # pragma: no cover
    from qagate.scoring.confseq import ConfidenceSequence
    from qagate.scoring.stats import Interval

SEQUENTIAL_KEYS = ("look_every", "min_questions", "max_questions", "seed")
SEQUENTIAL_METRICS = ("exact_match", "f1")
DEFAULT_LOOK_EVERY = 256


@dataclass(frozen=True)
class SequentialSpec:
    """How a sequential rule takes its questions (``max_questions`` None: all of them).

    ``line``: where the ``sequential:`` key is, for errors found at run time (a
    ``min_questions`` above the dataset); it is not part of the equality, so rules that ask for
    the same schedule share one run.
    """

    look_every: int = DEFAULT_LOOK_EVERY
    min_questions: int = 0
    max_questions: int | None = None
    seed: int = 0
    where: str = field(default="", compare=False)
    cluster: str = "none"  # the rules' ``cluster:``: whole articles or paragraphs in the order

    def describe(self, seed: int | None = None) -> str:
        most = "all" if self.max_questions is None else str(self.max_questions)
        whole = "" if self.cluster == "none" else f", whole {self.cluster}s"
        return (
            f"look_every {self.look_every}, min_questions {self.min_questions}, "
            f"max_questions {most}, seed {self.seed if seed is None else seed}{whole}"
        )


def sequential_problem(rule: Rule) -> str | None:
    """Why ``rule`` cannot be sequential (None: it can)."""
    if rule.perturb:
        return "a robustness rule compares two copies of the data and is judged on all questions"
    if rule.reference == "baseline":
        return "a baseline rule is paired with the baseline's scores on all their questions: judged on all"
    if rule.metric not in SEQUENTIAL_METRICS:
        return (
            f"{rule.metric} has no per-question scores to look at chunk by chunk "
            f"(sequential rules: {', '.join(SEQUENTIAL_METRICS)} against the teacher or a number)"
        )
    return None


def question_order(count: int, seed: int) -> list[int]:
    """The positions of ``count`` questions in the seeded random order sequential rules use."""
    import numpy as np

    return [int(i) for i in np.random.default_rng(seed % 2**64).permutation(count)]  # any int seed


@dataclass(frozen=True)
class Decision:
    """What a sequential rule came to: its status, the questions it used and its interval of
    (left - right), the offset applied, as the judge compares it with 0."""

    status: str  # "pass" | "fail" | "undecided"
    used: int
    interval: "Interval"
    looks: tuple[tuple[int, float, float, float], ...] = ()  # (n, estimate, low, high) per look
    units: int | None = None  # the clusters (or questions) the decision used


class SequentialLoop:
    """The looks of one model's sequential rules that share a schedule.

    ``chunks()`` yields ``(start, stop)`` ranges of the question order; after evaluating one,
    call ``update(stop, values)`` with each undecided rule's per-question values for that range
    (:func:`qagate.gating.judge.rule_values`); it returns True when every rule is decided.
    ``decisions()`` then gives each rule's :class:`Decision`.

    ``clusters``: the cluster of each question of the order (``spec.cluster`` article or
    paragraph; the order then walks whole clusters, :func:`qagate.gating.clusters.cluster_order`):
    chunks end where a cluster ends (at least ``look_every`` questions, a whole cluster at
    least), ``max_questions`` is rounded down to whole clusters (one at least), and each cluster
    is one draw of the sequences, its mean weighted by its size over the dataset's largest.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        spec: SequentialSpec,
        available: int,
        clusters: Sequence[str] | None = None,
    ) -> None:
        from qagate.gating.judge import rule_sequence

        if available < 1:
            raise ValueError("a sequential rule needs at least one question")
        if clusters is not None and len(clusters) != available:
            raise ValueError(f"{len(clusters)} cluster labels for {available} questions")
        self.rules = {rule.id: rule for rule in rules}
        self.spec = spec
        self.available = available
        self.stop = min(available, spec.max_questions or available)
        self.used = 0
        self._labels = list(clusters) if clusters is not None else None
        self._ends: list[int] = []  # where each cluster of the order ends
        self._largest = 1
        horizon = self.stop
        if self._labels is not None:
            from qagate.gating.clusters import largest_cluster

            self._ends = [
                i + 1
                for i in range(available)
                if i + 1 == available or self._labels[i + 1] != self._labels[i]
            ]
            self._largest = largest_cluster(self._labels)
            self.stop = max([end for end in self._ends if end <= self.stop] or self._ends[:1])
            horizon = sum(1 for end in self._ends if end <= self.stop)
        self._sequences: dict[str, "ConfidenceSequence"] = {
            rule.id: rule_sequence(rule, horizon=horizon) for rule in self.rules.values()
        }
        self._decided: dict[str, Decision] = {}
        self._looks: dict[str, list[tuple[int, float, float, float]]] = {
            rule_id: [] for rule_id in self.rules
        }

    def chunks(self) -> Iterator[tuple[int, int]]:
        start = self.used
        while start < self.stop and not self.done:
            stop = min(start + self.spec.look_every, self.stop)
            if self._labels is not None:  # to the end of the cluster it reaches into
                stop = min(end for end in self._ends if end >= stop)
            yield start, stop
            start = self.used

    def units(self, stop: int) -> int:
        """How many draws the first ``stop`` questions of the order are (clusters or questions)."""
        if self._labels is None:
            return stop
        return sum(1 for end in self._ends if end <= stop)

    @property
    def done(self) -> bool:
        return len(self._decided) == len(self.rules)

    def undecided(self) -> list[Rule]:
        return [rule for rule_id, rule in self.rules.items() if rule_id not in self._decided]

    def update(self, stop: int, values: Mapping[str, Any]) -> bool:
        """Feed the values of questions ``used..stop`` of the order; True when all are decided."""
        from qagate.gating.judge import decide_interval

        grouped = None
        if self._labels is not None:
            from qagate.gating.clusters import group

            labels = self._labels[self.used : stop]
            grouped = {rule.id: group(values[rule.id], labels, self._largest) for rule in self.undecided()}
        for rule in self.undecided():
            if grouped is not None:
                chunk = grouped[rule.id]
                raw = self._sequences[rule.id].update(chunk.means, chunk.weights)
            else:
                raw = self._sequences[rule.id].update(values[rule.id])
            interval = _shifted(raw, rule.offset)
            status = decide_interval(rule.op, interval.low, interval.high)
            last = stop >= self.stop
            looks = self._looks[rule.id]
            looks.append((stop, float(interval.estimate), float(interval.low), float(interval.high)))
            if status != "undecided" and stop >= self.spec.min_questions or last:
                self._decided[rule.id] = Decision(status, stop, interval, tuple(looks), self.units(stop))
        self.used = stop
        return self.done

    def decisions(self) -> dict[str, Decision]:
        """Every rule's decision; a rule the loop never reached is undecided on nothing."""
        return dict(self._decided)


def _shifted(raw: "Interval", offset: float) -> "Interval":
    from qagate.scoring.stats import Interval

    return Interval(raw.estimate - offset, raw.low - offset, raw.high - offset, raw.level)
