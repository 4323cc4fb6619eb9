"""The release as a family: how many confidence rules a run judged, and the bound on any wrong one.

Each ``confidence:`` verdict at level L points the wrong way (PASS when the truth fails, FAIL
when it passes) with probability at most (1 - L) / 2. A release judges many such rules, so the
chance that at least one of them is wrong is larger; whatever the dependence between the rules,
it is at most the sum of their one-sided errors (the union bound):

    P(some verdict of the run is wrong) <= sum_i (1 - L_i) / 2.

With ``--qagate-family-alpha A`` every confidence rule of the run is judged at the level
``max(L_i, 1 - 2 A / m)``, ``m`` the confidence rules collected (Bonferroni: the sum is then at
most ``A``). Holm's step-down would decide a few more, but it needs every rule's p-value before
the first verdict, and a pytest run decides item after item; Bonferroni is Holm's first step and
holds at every item, in any order, under -k and xdist. A sequential rule keeps its own level
(its confidence sequence already spends it over the looks); it is counted in the bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Family:
    """The confidence rules of one run: how many were judged and decided, and the bound."""

    judged: int
    decided: int
    bound: float  # upper bound on P(at least one verdict points the wrong way)
    alpha: float | None = None  # --qagate-family-alpha, when the run held the family to it

    def as_dict(self) -> dict[str, Any]:
        return {
            "judged": self.judged,
            "decided": self.decided,
            "bound": round(self.bound, 6),
            "alpha": self.alpha,
        }

    def line(self) -> str:
        """One sentence for the terminal summary and the Markdown report."""
        if not self.judged:
            return ""
        rules = "rule" if self.judged == 1 else "rules"
        text = (
            f"family: {self.judged} confidence {rules} judged ({self.decided} decided); the chance that "
            f"any verdict among them points the wrong way is at most {self.bound:.1%} "
            f"(the sum of each rule's one-sided error)"
        )
        if self.alpha is not None and self.bound <= self.alpha + 1e-12:
            return text + f", held to {self.alpha:g} by --qagate-family-alpha (Bonferroni)"
        if self.alpha is not None:
            return (
                text + f"; above --qagate-family-alpha {self.alpha:g}: sequential rules keep their own level"
            )
        return text + "; --qagate-family-alpha 0.05 holds it to 5%" if self.judged > 1 else text


def family_of(rows: Iterable[Mapping[str, Any]], alpha: float | None = None) -> Family:
    """The family of a run's result rows (as the history stores them: ``level`` and
    ``interval_low`` mark a confidence rule that was judged)."""
    judged = decided = 0
    bound = 0.0
    for row in rows:
        level = row.get("level")
        if not isinstance(level, (int, float)) or isinstance(level, bool) or row.get("interval_low") is None:
            continue
        judged += 1
        decided += str(row.get("status")) in ("pass", "fail")
        bound += (1.0 - float(level)) / 2.0
    return Family(judged, decided, min(bound, 1.0), alpha)


def family_level(level: float, alpha: float | None, size: int) -> float:
    """The level a confidence rule is judged at when the run holds its family to ``alpha``
    over ``size`` confidence rules (Bonferroni); ``level`` itself without one."""
    if alpha is None or size <= 0:
        return level
    return max(level, 1.0 - 2.0 * alpha / size)
