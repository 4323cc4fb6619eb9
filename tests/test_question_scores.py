"""The compact per-question format (store/questions.py): exact round trips, ids by reference,
damaged input refused with a QuestionFormatError."""

from __future__ import annotations

import json

import pytest

from qagate.scoring.scores import Scores
from qagate.store.questions import QuestionFormatError, QuestionScores, decode_ids, encode_ids, ids_digest


def _scores(em: dict[str, float], f1: dict[str, float], missing: list[str] = ()) -> Scores:  # type: ignore[assignment]
    return Scores(
        exact_match=100 * sum(em.values()) / len(em),
        f1=100 * sum(f1.values()) / len(f1),
        total=len(em),
        answered=len(em) - len(missing),
        missing=list(missing),
        unknown_ids=[],
        per_question_em=em,
        per_question_f1=f1,
    )


def test_round_trip_is_exact_and_sorted() -> None:
    f1 = {"q3": 2 / 3, "q1": 1.0, "q2": 0.0, "q10": 0.1 + 0.2}
    em = {"q3": 0.0, "q1": 1.0, "q2": 0.0, "q10": 0.0}
    stored = QuestionScores.from_scores(_scores(em, f1, ["q2"]))
    assert stored.ids == ("q1", "q10", "q2", "q3")
    data = json.loads(json.dumps(stored.encode()))
    back = QuestionScores.decode(data)
    assert back == stored
    assert back.per_question_f1 == f1  # bit for bit: 0.1 + 0.2 stays 0.30000000000000004
    assert back.per_question_em == em and back.missing == ("q2",) and back.total == 4
    assert data["metrics"]["exact_match"].keys() == {"bits"} and data["metrics"]["f1"].keys() == {"f8"}
    assert back.mean("f1") == pytest.approx(100 * sum(f1.values()) / 4)
    assert all("=" not in v and ":" not in v for v in (data["ids"], data["missing"]))


def test_ids_by_reference_are_checked() -> None:
    stored = QuestionScores.from_scores(_scores({"a": 1.0, "b": 0.0}, {"a": 1.0, "b": 0.5}))
    data = stored.encode(with_ids=False)
    assert "ids" not in data and data["ids_sha256"] == ids_digest(["b", "a"])
    assert QuestionScores.decode(data, ids=["b", "a"]) == stored
    with pytest.raises(QuestionFormatError, match="stored for 2 other questions"):
        QuestionScores.decode(data, ids=["a", "c"])
    with pytest.raises(QuestionFormatError, match="without their ids"):
        QuestionScores.decode(data)


def test_subset_of_ids_and_missing_table_scores_zero() -> None:
    stored = QuestionScores.from_scores(_scores({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 1.0}), ids=["b", "z"])
    assert stored.ids == ("b", "z") and stored.table("f1") == {"b": 1.0, "z": 0.0}


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(format=99),
        lambda d: d.update(count=-1),
        lambda d: d.update(ids="!!!"),
        lambda d: d["metrics"].update(f1={"f8": encode_ids(["x"])}),
        lambda d: d["metrics"].update(f1={"zz": "abc"}),
        lambda d: d.update(ids=encode_ids(["b", "a", "c"])),
        lambda d: d.pop("metrics"),
    ],
)
def test_damaged_objects_are_one_error(damage) -> None:
    data = QuestionScores.from_scores(_scores({"a": 1.0, "b": 0.0}, {"a": 1.0, "b": 0.5})).encode()
    damage(data)
    with pytest.raises(QuestionFormatError):
        QuestionScores.decode(data)


def test_ids_codec() -> None:
    ids = [f"5733be28{i:016x}" for i in range(300)]
    assert decode_ids(encode_ids(reversed(ids))) == ids
    assert decode_ids(encode_ids([])) == []
