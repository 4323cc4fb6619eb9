"""Per-question scores in one compact, exact format: what baselines and the run history keep of
a model's evaluation so that a later run can pair its questions with them.

A :class:`QuestionScores` holds, for one model on one dataset, the question ids (sorted, so two
evaluations of the same questions store the same ids), each per-question metric's values on
them (0..1, as :class:`qagate.scoring.scores.Scores` holds them) and the questions the model did
not answer. It reads like a ``Scores`` (``per_question_em``, ``per_question_f1``, ``missing``,
``total``), so the evidence code pairs a stored baseline exactly as it pairs a live teacher.

Encoded (:meth:`QuestionScores.encode`) it is a small JSON object::

    {"format": 1, "count": 10570, "ids_sha256": "<sha256 of the sorted ids>",
     "ids": "<zlib+base64 of the sorted ids, one a line>",       (optional: see below)
     "missing": "<zlib+base64 bitset>",
     "metrics": {"exact_match": {"bits": "<zlib+base64 bitset>"},
                 "f1": {"f8": "<zlib+base64 of little-endian float64s>"}}}

A metric whose values are all 0 or 1 is a bitset, any other a float64 array: both are exact,
so a verdict computed from stored scores equals one computed from the live ones. Base64 is the
URL-safe alphabet without padding (no ``=`` or ``:``, so secret masking never touches it). The
ids may be left out (``with_ids=False``) and given back on decoding: a baseline is only used on
a dataset with its fingerprint, whose sorted ids are the same, and the history keeps each id
list once per database (``ids_sha256`` checks that the ids given are the ones encoded).
Measured on the SQuAD v1.1 dev set (leaderboard predictions), per 10,000 questions: 6.2-12 KB
per model without ids, 41 KB for the ids (``bench/bench_question_scores.py`` writes
``bench/question_scores.json``).
Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import zlib
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

#: The version of the encoded object; a reader refuses a newer one.
FORMAT = 1
#: The per-question metrics kept, as :class:`~qagate.scoring.scores.Scores` names their tables.
TABLES = {"exact_match": "per_question_em", "f1": "per_question_f1"}


class QuestionFormatError(ValueError):
    """Encoded per-question scores that cannot be read (damaged, or from a newer qagate)."""


@dataclass(frozen=True)
class QuestionScores:
    """One model's per-question scores on one set of questions, sorted by id.

    ``values[metric][i]`` is the score (0..1) of question ``ids[i]``; ``missing``: the ids the
    model gave no answer for (they score 0, as in the official script).
    """

    ids: tuple[str, ...]
    values: Mapping[str, tuple[float, ...]]
    missing: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if list(self.ids) != sorted(set(self.ids)):
            raise ValueError("question ids must be sorted and distinct")
        if list(self.missing) != sorted(set(self.missing) & set(self.ids)):
            raise ValueError("missing ids must be sorted, distinct and among the ids")
        for metric, values in self.values.items():
            if len(values) != len(self.ids):
                raise ValueError(f"{metric} has {len(values)} values for {len(self.ids)} questions")

    @classmethod
    def from_scores(cls, scores: Any, ids: Iterable[str] | None = None) -> QuestionScores:
        """From a ``Scores`` (or anything with its per-question tables), on ``ids`` (default:
        every question it scored). A question absent from a table scores 0."""
        chosen = sorted(set(scores.per_question_f1 if ids is None else ids))
        values = {}
        for metric, table_name in TABLES.items():
            table = getattr(scores, table_name, None)
            if table is not None:
                values[metric] = tuple(float(table.get(qid, 0.0)) for qid in chosen)
        missing = sorted(set(getattr(scores, "missing", None) or ()) & set(chosen))
        return cls(tuple(chosen), values, tuple(missing))

    # --- what the evidence code reads (the names of Scores) -----------------------------------

    @property
    def total(self) -> int:
        return len(self.ids)

    @cached_property
    def per_question_em(self) -> dict[str, float]:
        return self.table("exact_match")

    @cached_property
    def per_question_f1(self) -> dict[str, float]:
        return self.table("f1")

    def table(self, metric: str) -> dict[str, float]:
        """question id -> score of ``metric`` (0..1)."""
        if metric not in self.values:
            raise KeyError(f"no per-question {metric} stored (stored: {', '.join(self.values) or 'none'})")
        return dict(zip(self.ids, self.values[metric]))

    def mean(self, metric: str, ids: Sequence[str] | None = None) -> float:
        """The metric in percent on ``ids`` (default all), as the official script averages it."""
        table = self.table(metric)
        chosen = self.ids if ids is None else ids
        return 100.0 * sum(table.get(qid, 0.0) for qid in chosen) / len(chosen) if chosen else 0.0

    @property
    def ids_sha256(self) -> str:
        return ids_digest(self.ids)

    # --- encoding ---------------------------------------------------------------------------

    def encode(self, *, with_ids: bool = True) -> dict[str, Any]:
        """The JSON-ready object of the module docstring; ``with_ids=False`` keeps only the ids'
        count and digest (the decoder is then given them)."""
        out: dict[str, Any] = {"format": FORMAT, "count": len(self.ids), "ids_sha256": self.ids_sha256}
        if with_ids:
            out["ids"] = encode_ids(self.ids)
        absent = set(self.missing)
        out["missing"] = _pack(_bits([qid in absent for qid in self.ids]))
        metrics = {}
        for metric, values in sorted(self.values.items()):
            if all(v in (0.0, 1.0) for v in values):
                metrics[metric] = {"bits": _pack(_bits([v == 1.0 for v in values]))}
            else:
                metrics[metric] = {"f8": _pack(_float64s(values))}
        out["metrics"] = metrics
        return out

    @classmethod
    def decode(cls, data: Any, ids: Iterable[str] | None = None) -> QuestionScores:
        """Read :meth:`encode`'s object. ``ids``: the questions' ids (any order) when the object
        was encoded without them; they must be the ones encoded (same count and digest).
        A QuestionFormatError says what is wrong."""
        if not isinstance(data, Mapping):
            raise QuestionFormatError("per-question scores are not an object")
        version = data.get("format")
        if version != FORMAT:
            raise QuestionFormatError(f"per-question scores have format {version!r}; qagate reads {FORMAT}")
        count = data.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise QuestionFormatError(f"per-question scores have no valid count ({count!r})")
        digest = data.get("ids_sha256")
        if "ids" in data:
            stored = decode_ids(data["ids"])
        elif ids is not None:
            stored = sorted(set(ids))
        else:
            raise QuestionFormatError("per-question scores were stored without their ids; give the questions")
        if len(stored) != count or (digest is not None and ids_digest(stored) != digest):
            raise QuestionFormatError(
                f"per-question scores were stored for {count} other questions "
                f"(ids sha256 {str(digest)[:12]}), not these {len(stored)} ({ids_digest(stored)[:12]})"
            )
        metrics = data.get("metrics")
        if not isinstance(metrics, Mapping):
            raise QuestionFormatError("per-question scores have no 'metrics' object")
        values: dict[str, tuple[float, ...]] = {}
        for metric, encoded in metrics.items():
            if not isinstance(encoded, Mapping) or len(encoded) != 1:
                raise QuestionFormatError(f"per-question {metric!r} is not one encoded array")
            ((kind, blob),) = encoded.items()
            if kind == "bits":
                values[str(metric)] = tuple(1.0 if b else 0.0 for b in _unbits(_unpack(blob), count))
            elif kind == "f8":
                values[str(metric)] = _unfloat64s(_unpack(blob), count)
            else:
                raise QuestionFormatError(f"per-question {metric!r} has an unknown encoding {kind!r}")
        flags = _unbits(_unpack(data.get("missing", "")), count) if data.get("missing") else [False] * count
        missing = tuple(qid for qid, flag in zip(stored, flags) if flag)
        try:
            return cls(tuple(stored), values, missing)
        except ValueError as exc:  # ids out of order or repeated: not what encode writes
            raise QuestionFormatError(f"per-question scores are damaged: {exc}") from None


def ids_digest(ids: Iterable[str]) -> str:
    """sha256 of the sorted ids, one a line: what names a set of questions."""
    return hashlib.sha256(_ids_text(ids)).hexdigest()


def encode_ids(ids: Iterable[str]) -> str:
    """The sorted ids, one a line, zlib-compressed and base64-encoded."""
    return _pack(_ids_text(ids))


def decode_ids(blob: Any) -> list[str]:
    """The ids :func:`encode_ids` encoded (sorted)."""
    raw = _unpack(blob)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise QuestionFormatError("stored question ids are not UTF-8 text") from None
    return text.split("\n") if text else []


def _ids_text(ids: Iterable[str]) -> bytes:
    ordered = sorted(set(ids))
    if any("\n" in qid for qid in ordered):
        raise ValueError("a question id holds a line break")
    return "\n".join(ordered).encode("utf-8", "surrogatepass")


def _pack(raw: bytes) -> str:
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode("ascii").rstrip("=")


def _unpack(blob: Any) -> bytes:
    if not isinstance(blob, str):
        raise QuestionFormatError("an encoded array is not text")
    try:
        return zlib.decompress(base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)))
    except (ValueError, zlib.error):
        raise QuestionFormatError("an encoded array is damaged (not zlib-compressed base64)") from None


def _bits(flags: Sequence[bool]) -> bytes:
    """Flags packed 8 to a byte, first flag in the lowest bit."""
    out = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def _unbits(raw: bytes, count: int) -> list[bool]:
    if len(raw) != (count + 7) // 8:
        raise QuestionFormatError(f"a bitset has {len(raw)} bytes for {count} questions")
    return [bool(raw[i >> 3] >> (i & 7) & 1) for i in range(count)]


def _float64s(values: Sequence[float]) -> bytes:
    packed = array("d", values)
    if sys.byteorder != "little":  # pragma: no cover (big-endian machines)
        packed.byteswap()
    return packed.tobytes()


def _unfloat64s(raw: bytes, count: int) -> tuple[float, ...]:
    if len(raw) != 8 * count:
        raise QuestionFormatError(f"a float array has {len(raw)} bytes for {count} questions")
    packed = array("d")
    packed.frombytes(raw)
    if sys.byteorder != "little":  # pragma: no cover
        packed.byteswap()
    return tuple(packed)
