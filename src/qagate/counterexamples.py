"""Counterexamples that are kept: a failing Hypothesis property's minimal example, committed.

Hypothesis keeps failing examples in a local database that CI throws away; this keeps them
beside the baselines, as small readable JSON (``<baselines>/counterexamples/<model>/<property>.json``),
and replays them before any new search, so a fixed bug stays fixed::

    keeper = Counterexamples(qagate_settings.baselines, qa_model.name, "small_edits")

    def holds(variant):                  # (does the property hold?, the model's answer)
        answer = qa_model.predict([variant]).answers[variant.id]
        return f1(answer, variant.answers) >= 0.5, answer

    @given(data=st.data())
    def search(data):
        keeper.check(example, data.draw(perturbed(example)), holds)

    keeper.run(search, holds)            # replay the kept examples first, then search

The failure message (and the report) shows the minimal example as a word diff against the
original context. Standard library only.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from qagate.core.files import atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import QAExample

Property = Callable[["QAExample"], tuple[bool, str]]
"""A property of one example: (whether it holds, the model's answer)."""


@dataclass(frozen=True)
class Counterexample:
    """A minimal failing example and what the model answered, with the original it came from."""

    id: str
    question: str
    context: str
    answers: list[str]
    answer_starts: list[int]
    answer: str
    original_context: str
    original_question: str
    title: str = ""

    def example(self, template: "QAExample | None" = None) -> "QAExample":
        """The example to replay (a QAExample)."""
        from qagate.data import QAExample

        base = template or QAExample(self.id, self.title, self.context, self.question)
        return replace(
            base,
            id=self.id,
            context=self.context,
            question=self.question,
            answers=tuple(self.answers),
            answer_starts=tuple(self.answer_starts),
        )

    def diff(self) -> str:
        """The context (and question) as a word diff against the original: ``[-old-]{+new+}``."""
        parts = [word_diff(self.original_context, self.context)]
        if self.question != self.original_question:
            parts.insert(0, "question: " + word_diff(self.original_question, self.question))
        return "\n".join(parts)


def word_diff(before: str, after: str) -> str:
    """``after`` with removed words as ``[-...-]`` and inserted ones as ``{+...+}`` (difflib)."""
    a, b = before.split(" "), after.split(" ")
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out += a[i1:i2] if i2 - i1 <= 6 else [*a[i1 : i1 + 3], "...", *a[i2 - 3 : i2]]
            continue
        if i2 > i1:
            out.append("[-" + " ".join(a[i1:i2]) + "-]")
        if j2 > j1:
            out.append("{+" + " ".join(b[j1:j2]) + "+}")
    return " ".join(out)


class Counterexamples:
    """The kept counterexamples of one property for one model (a JSON file under ``folder``)."""

    def __init__(self, folder: str | Path, model: str, prop: str) -> None:
        self.path = Path(folder) / "counterexamples" / model / f"{prop}.json"
        self.model, self.prop = model, prop
        self.last: Counterexample | None = None
        self.replayed: list[Counterexample] = []

    def saved(self) -> list[Counterexample]:
        """The counterexamples kept so far (none when the file does not exist)."""
        if not self.path.exists():
            return []
        names = {f.name for f in fields(Counterexample)}
        raw = json.loads(self.path.read_text(encoding="utf-8"))
        return [Counterexample(**{k: v for k, v in item.items() if k in names}) for item in raw["examples"]]

    def save(self, found: Counterexample) -> None:
        """Add ``found`` to the file (once: the same context and question are kept only once)."""
        kept = self.saved()
        if any((k.context, k.question) == (found.context, found.question) for k in kept):
            return
        body = {
            "model": self.model,
            "property": self.prop,
            "note": "minimal failing examples found by Hypothesis; replayed first by every run",
            "examples": [asdict(k) for k in kept + [found]],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n")

    def report(self, found: Counterexample, *, replay: bool = False) -> str:
        """The failure message: what the model answered, the references, the diff."""
        how = f"kept counterexample ({self.path}) fails again" if replay else "property fails"
        return (
            f"{self.model}: {self.prop}: {how}: answered {found.answer!r} "
            f"(references {found.answers}) to {found.question!r}\n{found.diff()}"
        )

    def check(self, original: "QAExample", variant: "QAExample", holds: Property) -> None:
        """Assert the property on ``variant``; remember a failure (the last one is the shrunk one)."""
        ok, answer = holds(variant)
        if ok:
            return
        self.last = Counterexample(
            variant.id,
            variant.question,
            variant.context,
            list(variant.answers),
            list(variant.answer_starts),
            answer,
            original.context,
            original.question,
            variant.title,
        )
        raise AssertionError(self.report(self.last))

    def replay(self, holds: Property) -> int:
        """Check every kept counterexample first; AssertionError on the first that fails again."""
        kept = self.saved()
        for found in kept:
            self.replayed.append(found)
            ok, answer = holds(found.example())
            if not ok:
                raise AssertionError(self.report(replace(found, answer=answer), replay=True))
        return len(kept)

    def run(self, search: Callable[[], None], holds: Property) -> None:
        """Replay the kept examples, then run the Hypothesis ``search``; keep its minimal failure."""
        self.replay(holds)
        self.last = None
        try:
            search()
        except Exception:
            if self.last is not None:  # Hypothesis replays the shrunk example last
                self.save(self.last)
            raise
