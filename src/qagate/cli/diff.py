"""``qagate diff A B DATASET``: what changed from A to B, per slice and question by question.

A and B are each a model declaration (``qa_models/<name>.yaml``: its answers through the usual
engine and prediction cache), a predictions file (official JSON: id -> answer) or a run of the
history (any unique prefix of its id, or ``last``; ``RUN:MODEL`` picks one model of the run),
whose stored per-question results are used without running anything. Prints the per-slice
table (each side's EM and F1, questions lost and gained, the net EM change with its interval)
and the flipped questions; ``--json`` prints one object, ``--html OUT`` writes a page.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qagate.cli.history import add_history_argument, history_target, project_root
from qagate.cli.predict import add_model_run_arguments
from qagate.cli.score import add_dataset_argument, add_subset_arguments
from qagate.core.argtypes import parse_level, parse_positive_int
from qagate.core.errors import QagateError, quote

if TYPE_CHECKING:  # pragma: no cover
    from qagate.data import Dataset
    from qagate.reports.flips import Side

MODEL_SUFFIXES = (".yaml", ".yml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name, what in (("a", "the reference (teacher, older run)"), ("b", "the model under review")):
        parser.add_argument(
            name,
            metavar=name.upper(),
            help=f"{what}: a model declaration (.yaml), a predictions file (.json), or a run id "
            "of the history (a unique prefix, or 'last'; RUN:MODEL for one model of the run)",
        )
    add_dataset_argument(parser)
    parser.add_argument(
        "--slice",
        metavar="KEY[=VALUE]",
        dest="slice_",
        help="table only the slices of KEY (question, answer, context, position or your own), or "
        "compare only the questions of one slice (answer=date) and list its flips",
    )
    parser.add_argument(
        "--labels", type=Path, metavar="FILE", help='a label side file: {"<question id>": {"key": "value"}}'
    )
    parser.add_argument(
        "--flips",
        type=parse_positive_int,
        default=10,
        metavar="N",
        help="flipped questions listed per direction (default: %(default)s)",
    )
    parser.add_argument(
        "--level", type=parse_level, default=0.95, help="level of the net-change intervals (default 0.95)"
    )
    parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON object")
    parser.add_argument("--html", type=Path, metavar="OUT", help="also write the comparison as an HTML page")
    add_subset_arguments(parser)
    models = parser.add_argument_group("model declarations")
    add_model_run_arguments(
        models, cache_help="the prediction cache (default: the plugin's, .qagate/cache in the rootdir)"
    )
    models.add_argument("--no-cache", action="store_true", help="run the models without the prediction cache")
    add_history_argument(parser)


def run(args: argparse.Namespace) -> int:
    from qagate.data import load_dataset
    from qagate.data.slices import dataset_labels
    from qagate.reports.diff import compare, render_html, render_text

    dataset = load_dataset(args.dataset, limit=args.limit, seed=args.sample_seed, articles=args.articles)
    if len(dataset) == 0:
        raise QagateError("the dataset selection has no questions", path=args.dataset)
    extra = None
    if args.labels is not None:
        from qagate.data.loaders import read_label_file
        from qagate.data.slices import check_label_ids

        extra = read_label_file(args.labels)
        subset = args.limit is not None or args.articles is not None
        check_label_ids(extra, dataset, args.labels, subset=subset)
    labels = dataset_labels(dataset, extra)
    keys, only = slice_option(args.slice_, labels, dataset)
    sides = Sides(args, dataset)
    a, b = sides.load(args.a, "A"), sides.load(args.b, "B")
    if a.model == b.model:
        a, b = _renamed(a, f"{a.model} (A)"), _renamed(b, f"{b.model} (B)")
    ids = [ex.id for ex in dataset.examples]
    for who in sides.partial:  # a run scored some questions only: compare the ones both have
        ids = [qid for qid in ids if qid in who.em]
    if not ids:
        raise QagateError(
            f"A and B share no question of dataset {dataset.name}",
            hint="diff runs judged on the same dataset (see 'qagate history show RUN')",
        )
    diff = compare(dataset, a, b, labels, ids=ids, keys=keys, only=only, shown=args.flips, level=args.level)
    diff.notes += sides.notes
    if len(ids) < len(dataset):
        diff.notes.append(
            f"{len(dataset) - len(ids):,} questions of the dataset are left out: a run scored only some."
        )
    if only is not None and diff.questions == 0:
        raise QagateError(f"no question of dataset {dataset.name} is in slice {only}", item="--slice")
    if args.html is not None:
        from qagate.core.files import atomic_write_text

        try:
            atomic_write_text(args.html, render_html(diff))
        except OSError as exc:
            raise QagateError(f"cannot write the page: {exc.strerror or exc}", path=args.html) from None
        print(f"qagate diff: wrote {args.html}", file=sys.stderr)
    if args.as_json:
        print(json.dumps(diff.as_json(), indent=1, ensure_ascii=False))
    else:
        print(render_text(diff))
    return 0


def slice_option(
    text: str | None, labels: dict[str, dict[str, str]], dataset: "Dataset"
) -> tuple[list[str] | None, str | None]:
    """``--slice``: (the keys to table, None) for ``KEY``, (None, "key=value") for one slice;
    an unknown key or value is one line with a did-you-mean and the known ones."""
    from qagate.data.slices import present, unknown_slice

    if text is None:
        return None, None
    key, sep, value = text.strip().partition("=")
    problem = unknown_slice(key.strip(), value.strip() if sep else None, present(labels))
    if problem:
        raise QagateError(problem, item="--slice", hint=f"slices are those of dataset {dataset.name}")
    if not sep or value.strip() == "*":
        return [key.strip()], None
    return None, f"{key.strip()}={value.strip()}"


class Sides:
    """Turns A and B into per-question results on ``dataset``; keeps notes for the report."""

    def __init__(self, args: argparse.Namespace, dataset: "Dataset") -> None:
        self.args, self.dataset = args, dataset
        self.notes: list[str] = []
        self.partial: list["Side"] = []  # run sides: scored on the questions they stored only
        self._history: Any = None

    def load(self, text: str, which: str) -> "Side":
        path = Path(text)
        if path.suffix.lower() in MODEL_SUFFIXES:
            if not path.is_file():
                raise QagateError(
                    f"{which}: no such model declaration", path=path, hint="give a qa_models/*.yaml file"
                )
            return self.model(path)
        if path.suffix.lower() == ".json" or path.is_file():
            if not path.is_file():
                raise QagateError(f"{which}: no such predictions file", path=path)
            return self.predictions(path)
        if "/" in text or "\\" in text:
            raise QagateError(f"{which}: no such file", path=path)
        return self.stored_run(text, which)

    def predictions(self, path: Path) -> "Side":
        from qagate.data import load_predictions

        return self._scored(path.stem if path.stem else str(path), load_predictions(path), path)

    def model(self, path: Path) -> "Side":
        from qagate.inference.config import load_model_spec
        from qagate.inference.registry import build_model
        from qagate.scoring.evaluation import predict_cached

        model = build_model(load_model_spec(path), device=self.args.device)
        cache = (
            None if self.args.no_cache else (self.args.cache_dir or project_root(self.args) / ".qagate/cache")
        )
        predictions, _ = predict_cached(model, self.dataset, cache)
        return self._scored(model.name, dict(predictions.answers), path)

    def _scored(self, name: str, answers: dict[str, str], path: Path) -> "Side":
        from qagate.reports.flips import Side
        from qagate.scoring.squad import score

        scores = score(self.dataset, answers)
        if scores.missing and len(scores.missing) == scores.total:
            raise QagateError(
                f"no question of dataset {self.dataset.name} has an answer here",
                path=path,
                hint="give the predictions of this dataset (or the dataset these predictions answer)",
            )
        if scores.missing:
            self.notes.append(f"{name}: {len(scores.missing):,} questions have no answer and score 0.")
        return Side(name, scores.per_question_em, scores.per_question_f1, answers)

    def stored_run(self, text: str, which: str) -> "Side":
        from qagate.cli.explain import find_run
        from qagate.reports.diff import stored_side
        from qagate.store.history import read_history

        if self._history is None:
            self._history = read_history(history_target(self.args))
        run_id, _, model = text.partition(":")
        try:
            entry = find_run(self._history.runs, run_id)
        except QagateError as exc:
            raise QagateError(
                f"{which}: {quote(text)} is not a file, and {exc}", path=self._history.path
            ) from None
        found = stored_side(history_target(self.args), entry, model or None, self.dataset, self.notes)
        self.partial.append(found)
        return found


def _renamed(who: "Side", name: str) -> "Side":
    from dataclasses import replace

    return replace(who, model=name)
