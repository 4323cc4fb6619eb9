"""The :class:`Scores` record: what scoring one set of predictions on one dataset gives, whichever
official script's rules scored it (SQuAD v1.1/v2.0 in :mod:`qagate.scoring.squad`, MLQA in
:mod:`qagate.scoring.mlqa`). Its own module so that both scorers build it without importing
each other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Scores:
    """The result of scoring one set of predictions on one dataset.

    ``exact_match`` and ``f1`` are percentages (0..100) like the official scripts print;
    ``per_question_em`` / ``per_question_f1`` hold 0..1 for every dataset question in dataset
    order (0 for a missing prediction), which is what bootstrap intervals and paired
    comparisons resample. ``has_ans`` / ``no_ans`` are the v2.0 breakdowns (``None`` for v1.1
    or when a group is empty).
    """

    exact_match: float
    f1: float
    total: int
    answered: int
    missing: list[str]
    unknown_ids: list[str]
    per_question_em: dict[str, float]
    per_question_f1: dict[str, float]
    has_ans: dict | None = None
    no_ans: dict | None = None

    def official(self) -> dict:
        """What the official script prints: v1.1 ``{exact_match, f1}``; v2.0 ``{exact, f1,
        total, HasAns_*, NoAns_*}``."""
        if self.has_ans is None and self.no_ans is None:
            return {"exact_match": self.exact_match, "f1": self.f1}
        out = {"exact": self.exact_match, "f1": self.f1, "total": self.total}
        for prefix, group in (("HasAns", self.has_ans), ("NoAns", self.no_ans)):
            if group is not None:
                out.update(
                    {
                        f"{prefix}_exact": group["exact_match"],
                        f"{prefix}_f1": group["f1"],
                        f"{prefix}_total": group["total"],
                    }
                )
        return out

    def summary(self) -> dict:
        """A JSON-ready summary: totals and counts, without the per-question tables."""
        out: dict[str, object] = {
            "exact_match": self.exact_match,
            "f1": self.f1,
            "total": self.total,
            "answered": self.answered,
            "missing": len(self.missing),
            "unknown_ids": len(self.unknown_ids),
        }
        if self.has_ans is not None:
            out["has_ans"] = dict(self.has_ans)
        if self.no_ans is not None:
            out["no_ans"] = dict(self.no_ans)
        return out
