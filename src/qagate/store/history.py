"""The run history: every pytest run that judged a gate appends one run to a store (default the
SQLite file ``.qagate/history.db``; ``--qagate-history`` / ``QAGATE_HISTORY_URL``: a path or any
SQLAlchemy URL), and ``qagate history`` / ``qagate dashboard`` read it back.

A database store (``store/history_db.py``) writes a run in one transaction. A path ending in
``.jsonl`` keeps the earlier format: one JSON line per run, appended under a lock (``filelock``,
on a ``<history>.lock`` file beside it) and fsynced, so a run that dies mid-write can leave at most
its own line torn, which the reader reports and skips. Light at import time (the plugin imports
this module at the end of a session): the standard library; SQLAlchemy or ``filelock`` load on use.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qagate.core.errors import QagateError
from qagate.store.questions import QuestionFormatError, QuestionScores, encode_ids
from qagate.store.target import HistoryURL, display, is_jsonl, is_url, mask_secrets, sqlite_file

SCHEMA = 1

#: Gate statuses and run outcomes, worst first: a run's outcome is the worst of its statuses.
#: "new": a baseline this run wrote (needs review); "incomplete" is a run outcome only (a gate item
#: was skipped for missing data or requirements), set by the plugin through ``incomplete=True``.
STATUS_ORDER = ("error", "fail", "undecided", "incomplete", "new", "undecided (skipped)", "skipped", "pass")

#: The kinds of baseline writes a run records under ``"baselines"``.
BASELINE_ACTIONS = ("created", "updated", "regenerated")

#: Seconds an append waits for another process's append before giving up (an OSError).
LOCK_TIMEOUT_S = 60.0


def git_info(folder: Path) -> dict[str, Any]:
    """Commit, branch and whether the tree has local changes; empty outside a git checkout.
    CI variables win when set (a detached CI checkout has no branch name)."""
    info: dict[str, Any] = {}

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = os.environ.get("GITHUB_SHA") or os.environ.get("CI_COMMIT_SHA") or git("rev-parse", "HEAD")
    if commit:
        info["commit"] = commit
        branch = (
            os.environ.get("GITHUB_HEAD_REF")
            or os.environ.get("GITHUB_REF_NAME")
            or os.environ.get("CI_COMMIT_REF_NAME")
            or git("rev-parse", "--abbrev-ref", "HEAD")
        )
        if branch and branch != "HEAD":
            info["branch"] = branch
        status = git("status", "--porcelain", "--untracked-files=no")
        if status is not None:
            info["dirty"] = bool(status)
    return info


def outcome_of(statuses: Iterable[str], *, incomplete: bool = False) -> str:
    """The worst status in :data:`STATUS_ORDER` (``pass`` for none). ``incomplete``: some gate
    item was skipped for missing data or requirements, so the run is at best ``incomplete``.
    A status this version does not know counts as ``undecided``: never green."""
    seen = set(statuses)
    if incomplete:
        seen.add("incomplete")
    if seen - set(STATUS_ORDER):
        seen.add("undecided")
    for status in STATUS_ORDER:
        if status in seen:
            return status
    return "pass"


def build_run(
    *,
    results: list[Mapping[str, Any]],
    metrics: list[Mapping[str, Any]],
    started: float,
    exit_status: int,
    rootdir: Path,
    settings: Mapping[str, Any] | None = None,
    label: str | None = None,
    partial: bool = False,
    baselines: Mapping[str, Iterable[str | os.PathLike[str]]] | None = None,
    incomplete: bool = False,
    family: Mapping[str, Any] | None = None,
    questions: Iterable[QuestionEntry] = (),
) -> dict[str, Any]:
    """One history entry. ``results``: a dict per gate item (nodeid, model, rule, metric, op,
    dataset, status, obtained, threshold; optionally interval_low, interval_high, level);
    ``metrics``: a dict per evaluated (model, dataset). ``partial``: the run selected only some
    gate items (-k, a node id); ``baselines``: the paths it ``created``/``updated``/``regenerated``;
    ``incomplete``: a gate item was skipped for missing data or requirements (see outcome_of);
    ``family``: the run's confidence-rule family as the judge counted it (``Family.as_dict()``);
    ``questions``: each evaluated model's per-question results (:func:`question_entries`)."""
    from qagate import __version__

    finished = time.time()
    statuses = [str(r["status"]) for r in results]
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    run: dict[str, Any] = {
        "schema": SCHEMA,
        "id": uuid.uuid4().hex[:12],
        "started": _iso(started),
        "finished": _iso(finished),
        "duration_s": round(finished - started, 3),
        "outcome": outcome_of(statuses, incomplete=incomplete),
        "partial": bool(partial),
        "incomplete": bool(incomplete),
        "baselines": _baseline_paths(baselines or {}),
        "exit_status": int(exit_status),
        "counts": dict(sorted(counts.items())),
        "git": git_info(rootdir),
        "host": platform.node(),
        "python": platform.python_version(),
        "qagate": __version__,
        "packages": _package_versions(),
        "settings": dict(settings or {}),
        "results": [_clean(r) for r in results],
        "metrics": [_clean(m) for m in metrics],
    }
    if family is not None:
        run["family"] = dict(family)
    kept = question_entries(questions)
    if kept["scores"]:
        run["questions"] = kept
    label = label or os.environ.get("QAGATE_RUN_LABEL")
    if label:
        run["label"] = label
    ci_url = ci_job_url()
    if ci_url:
        run["ci_url"] = ci_url
    return run


def ci_job_url() -> str | None:
    """The CI job's page: GitHub Actions (server/repository/actions/runs/id) or GitLab's CI_JOB_URL."""
    env = os.environ
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{server.rstrip('/')}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return env.get("CI_JOB_URL") or None


def append_run(target: str | os.PathLike[str], run: Mapping[str, Any]) -> str | os.PathLike[str]:
    """Write ``run`` to the store ``target`` (a path or a URL; see the module docstring), in one
    transaction or as one locked line. Any failure (an unwritable folder, a server down, a lock held
    too long) is an OSError whose message never shows a password. Secrets in the run (a password
    in its command line, say) are masked before anything is written (:func:`mask_secrets`)."""
    run = mask_secrets(run)
    if not is_jsonl(target):
        from qagate.store.history_db import HistoryStore

        with HistoryStore(target) as store:
            store.append(run)
        return target
    return _append_line(Path(target), run)


def _append_line(path: Path, run: Mapping[str, Any]) -> Path:
    """Append ``run`` as one line, holding :func:`lock_path`'s lock. Never rewrites what is
    there: if the file's last line was torn by a crash, the new line starts on a line of its own."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path(path), timeout=LOCK_TIMEOUT_S):
        _write_lines(path, [run])
    return path


def _write_lines(path: Path, runs: Iterable[Mapping[str, Any]]) -> None:
    """Append ``runs`` (masked) to ``path``, one line each, fsynced; the caller holds the lock."""
    text = "".join(
        json.dumps(mask_secrets(run), sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
        for run in runs
    )
    with open(path, "a+b") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell():
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                text = "\n" + text
        handle.write(text.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def store_runs(target: str | os.PathLike[str], runs: list[Mapping[str, Any]]) -> int:
    """Write the runs whose id the store lacks, in the order given, in one transaction (a database)
    or under the lock (JSON Lines): writing the same runs again adds nothing. How many were added;
    an OSError (masked) when the store cannot take them."""
    if not is_jsonl(target):
        from qagate.store.history_db import HistoryStore

        with HistoryStore(target) as store:
            return store.import_runs(runs)
    from filelock import FileLock

    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path(path), timeout=LOCK_TIMEOUT_S):
        have = {str(run.get("id")) for run in _read_lines(path).runs} if path.is_file() else set()
        new = []
        for run in runs:
            if str(run.get("id")) not in have:
                have.add(str(run.get("id")))
                new.append(run)
        if new:
            _write_lines(path, new)
    return len(new)


def redact(target: str | os.PathLike[str]) -> int:
    """Mask the secrets of every run already in the store, in place and in one transaction (a
    database; an SQLite file is then vacuumed so the old bytes are gone) or by rewriting the file
    atomically under its lock (JSON Lines). How many runs changed; a QagateError when the store is
    not there, an OSError (masked) when it cannot be written."""
    _require_store(target)
    if not is_jsonl(target):
        from qagate.store.history_db import HistoryStore

        with HistoryStore(target, create=False) as store:
            return store.redact()
    from filelock import FileLock

    from qagate.core.files import atomic_write_text

    path = Path(target)
    with FileLock(lock_path(path), timeout=LOCK_TIMEOUT_S):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        changed = 0
        out = []
        for text in lines:
            try:
                run = json.loads(text)
            except (json.JSONDecodeError, RecursionError):
                masked = mask_secrets(text)  # an unreadable line is masked as text
                changed += masked != text
                out.append(masked)
                continue
            masked_run = mask_secrets(run)
            if masked_run != run:
                changed += 1
                out.append(json.dumps(masked_run, sort_keys=True, ensure_ascii=False) + "\n")
            else:
                out.append(text)
        if changed:
            atomic_write_text(path, "".join(out))
    return changed


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file beside the history (the history itself is never opened for locking, so a
    lock implementation that truncates its file cannot touch a run)."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def is_partial(run: Mapping[str, Any]) -> bool:
    """Whether the run selected only some gate items (absent in old rows: not partial)."""
    return run.get("partial") is True


def baseline_changes(run: Mapping[str, Any]) -> dict[str, list[str]]:
    """The baseline paths the run wrote, by action (created/updated/regenerated); empty kinds and
    old rows without the field give nothing."""
    recorded = run.get("baselines")
    if not isinstance(recorded, Mapping):
        return {}
    out = {}
    for action in BASELINE_ACTIONS:
        paths = recorded.get(action)
        if isinstance(paths, list) and paths:
            out[action] = [str(p) for p in paths]
    return out


@dataclass(frozen=True)
class QuestionEntry:
    """One evaluated model's per-question results for the history: its name, the dataset's name
    and content fingerprint, and the scores (:class:`~qagate.store.questions.QuestionScores`)."""

    model: str
    dataset: str
    fingerprint: str | None
    scores: QuestionScores


def question_entries(entries: Iterable[QuestionEntry]) -> dict[str, Any]:
    """What a run keeps under ``"questions"``: ``{"ids": {sha256: encoded ids}, "scores": [...]}``,
    each list of ids once and each model's scores encoded without them (a few KB per model per
    10,000 questions; see :mod:`qagate.store.questions`)."""
    ids: dict[str, str] = {}
    scores = []
    for entry in entries:
        encoded = entry.scores.encode(with_ids=False)
        ids.setdefault(encoded["ids_sha256"], encode_ids(entry.scores.ids))
        scores.append(
            {"model": entry.model, "dataset": entry.dataset, "fingerprint": entry.fingerprint, **encoded}
        )
    return {"ids": ids, "scores": scores}


def question_score_index(target: str | os.PathLike[str], run_id: str) -> list[dict[str, Any]]:
    """Which per-question results the run ``run_id`` stored: one dict per (model, dataset) with
    ``model``, ``dataset``, ``fingerprint`` (the dataset's content fingerprint) and ``count``
    (questions), in the order the run evaluated them. Empty for a run that stored none (recorded
    before qagate kept them). ``run_id``: the full id or a unique prefix. A QagateError names the
    store when there is no such run or the store cannot be read."""
    _, questions = _run_questions(target, run_id)
    return [
        {key: entry.get(key) for key in ("model", "dataset", "fingerprint", "count")}
        for entry in questions.get("scores") or ()
        if isinstance(entry, Mapping)
    ]


def read_question_scores(
    target: str | os.PathLike[str], run_id: str, model: str, dataset: str | None = None
) -> QuestionScores:
    """The per-question results (EM and F1 of every question, and which had no answer) of
    ``model`` in the run ``run_id`` of the history ``target`` (a path or URL, as ``--qagate-history``):
    what ``qagate diff RUN_A RUN_B`` pairs question by question without re-running either run.

    ``run_id``: the full id or a unique prefix (``qagate history`` lists them). ``dataset``: the
    dataset's name, needed only when the run evaluated ``model`` on several datasets. The result
    reads like a :class:`~qagate.scoring.scores.Scores` (``per_question_em``, ``per_question_f1``,
    ``missing``, ``ids``); pair it with a dataset by id. Raises a one-line QagateError naming the
    run when it has no such run, model or dataset, when the run stored no per-question results
    (recorded before qagate kept them: run the gate again to record them), or when they are damaged.
    """
    found_id, questions = _run_questions(target, run_id)
    entries = [e for e in questions.get("scores") or () if isinstance(e, Mapping)]
    if not entries:
        raise QagateError(
            f"run {found_id} stored no per-question results",
            path=display(target),
            hint="it was recorded before qagate kept them; run the gate again to record a run that has them",
        )
    chosen = [
        e for e in entries if e.get("model") == model and (dataset is None or e.get("dataset") == dataset)
    ]
    if len(chosen) != 1:
        have = ", ".join(f"{e.get('model')} on {e.get('dataset')}" for e in entries)
        why = "several datasets: name one" if chosen else f"no per-question results of {model!r}"
        what = f" on {dataset!r}" if dataset is not None and not chosen else ""
        raise QagateError(f"run {found_id} has {why}{what}; it stored: {have}", path=display(target))
    entry = chosen[0]
    id_lists = questions.get("ids")
    blob = id_lists.get(str(entry.get("ids_sha256"))) if isinstance(id_lists, Mapping) else None
    try:
        return QuestionScores.decode({**entry, "ids": blob} if blob is not None else entry)
    except QuestionFormatError as exc:
        raise QagateError(f"run {found_id}, model {model!r}: {exc}", path=display(target)) from None


def _run_questions(target: str | os.PathLike[str], run_id: str) -> tuple[str, dict[str, Any]]:
    """(the run's full id, its ``"questions"`` object, empty when it stored none)."""
    _require_store(target)
    if not is_jsonl(target):
        from qagate.store.history_db import HistoryStore

        try:
            with HistoryStore(target, create=False) as store:
                found = _unique_id(store.run_ids(), run_id, target)
                questions = store.questions(found)
        except OSError as exc:
            raise QagateError(f"cannot read the run history: {exc}") from None
        return found, questions or {}
    runs = _read_lines(Path(target)).runs
    found = _unique_id([str(run.get("id")) for run in runs], run_id, target)
    run = next(run for run in runs if str(run.get("id")) == found)
    questions = run.get("questions")
    return found, dict(questions) if isinstance(questions, Mapping) else {}


def _unique_id(ids: list[str], run_id: str, target: str | os.PathLike[str]) -> str:
    """The one id equal to ``run_id``, or the one it is a prefix of; a QagateError otherwise."""
    if run_id in ids:
        return run_id
    matches = [i for i in ids if run_id and i.startswith(run_id)]
    if len(matches) != 1:
        what = "several runs start with" if matches else "no run has"
        raise QagateError(f"{what} the id {run_id!r} ('qagate history' lists the ids)", path=display(target))
    return matches[0]


@dataclass
class History:
    """The runs of one store, oldest first, and the line numbers it had to skip (JSON Lines).
    ``path``: the file, or the URL with its password masked. Runs are masked (secrets) and
    well-formed (:func:`run_problem`): a malformed run is left out and named in ``problems``."""

    path: Path | str
    runs: list[dict[str, Any]]
    skipped: list[int] = field(default_factory=list)
    #: One line per run left out, naming it (``line 3: ...``, ``run 'ab12': ...``) and why.
    problems: list[str] = field(default_factory=list)


def read_history(target: str | os.PathLike[str]) -> History:
    """Every run of the store ``target`` (a path or a URL), oldest first; a QagateError when there is
    no history there or the store cannot be read."""
    url = _require_store(target)
    if not is_jsonl(target):
        from qagate.store.history_db import HistoryStore

        try:
            with HistoryStore(target, create=False) as store:
                rows = store.read()
        except OSError as exc:
            raise QagateError(f"cannot read the run history: {exc}") from None
        runs, problems = [], []
        for run in rows:
            problem = run_problem(run)
            if problem:
                problems.append(f"run {_safe_id(run)}: {problem}")
            else:
                runs.append(mask_secrets(run))
        return History(Path(target) if not url else display(target), runs, problems=problems)
    return _read_lines(Path(target))


def _require_store(target: str | os.PathLike[str]) -> bool:
    """Whether ``target`` is a URL; a QagateError when it names a file that is not there (a reader
    never creates a store: a mistyped path or ``sqlite:///`` URL is an error, not an empty history)."""
    url = isinstance(target, HistoryURL) or is_url(os.fspath(target))
    file = sqlite_file(target) if url else Path(target)
    if file is not None and not file.is_file():
        old = file.with_suffix(".jsonl") if file.name else file  # '/' has no name to change
        near = _similar_files(file)
        hint = (
            f"runs before the database store are in {old}: import them with "
            f"'qagate history import {old}', or pass --history {old}"
            if old != file and old.is_file() and not url
            else f"did you mean {' or '.join(near)} (in {file.parent})?"
            if near
            else "run 'pytest quality_tests/' first (each run appends to .qagate/history.db), "
            "or pass --history with the store your runs write (--qagate-history)"
        )
        where = display(target) if url else Path(target)
        raise QagateError(
            "no run history here" + (f" (no file {file})" if url else ""), path=where, hint=hint
        )
    return url


def _similar_files(file: Path) -> list[str]:
    """The names of history files beside ``file`` whose name is close to its name (a typo)."""
    import difflib

    try:
        names = [
            p.name for p in file.parent.iterdir() if p.suffix in (".db", ".sqlite", ".sqlite3", ".jsonl")
        ]
    except OSError:
        return []
    return difflib.get_close_matches(file.name, names, 2, 0.6)


def run_problem(run: Any) -> str | None:
    """Why ``run`` is not a run this version can read, or None: the shape the readers rely on
    (``results`` a list of objects, ``counts`` a mapping of numbers, ``git``/``settings`` mappings,
    text fields text, ``exit_status`` a 32-bit integer) and text that is valid Unicode."""
    if not isinstance(run, Mapping):
        return f"not a JSON object but {_kind(run)}"
    if not isinstance(run.get("results"), list):
        return f"'results' is {_kind(run.get('results'))}, not a list"
    if not all(isinstance(r, Mapping) for r in run["results"]):
        return "'results' holds an entry that is not an object"
    if not isinstance(run.get("metrics", []), list) or not all(
        isinstance(m, Mapping) for m in run.get("metrics", [])
    ):
        return "'metrics' is not a list of objects"
    checks: tuple[tuple[str, type | tuple[type, ...]], ...] = (
        ("id", (str, int)),
        ("started", str),
        ("finished", str),
        ("outcome", str),
        ("label", str),
        ("ci_url", str),
        ("host", str),
        ("python", str),
        ("qagate", str),
        ("counts", Mapping),
        ("git", Mapping),
        ("settings", Mapping),
        ("packages", Mapping),
        ("baselines", Mapping),
        ("questions", Mapping),
        ("partial", bool),
        ("incomplete", bool),
        ("exit_status", int),
        ("schema", int),
        ("duration_s", (int, float)),
    )
    for key, kind in checks:
        value = run.get(key)
        if value is None:
            continue
        if not isinstance(value, kind) or (
            isinstance(value, bool) and kind in (int, (int, float), (str, int))
        ):
            return f"'{key}' is {_kind(value)}"
    for key in ("exit_status", "schema"):
        if isinstance(run.get(key), int) and not -(2**31) <= run[key] < 2**31:
            return f"'{key}' is out of range ({str(run[key])[:20]})"
    counts = run.get("counts") or {}
    if not all(isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**31 for v in counts.values()):
        return "'counts' holds a value that is not a count"
    git = run.get("git") or {}
    for key in ("commit", "branch"):
        if git.get(key) is not None and not isinstance(git[key], str):
            return f"'git.{key}' is {_kind(git[key])}"
    if not _valid_text(run):
        return "it holds text that is not valid Unicode (a lone surrogate)"
    return None


def _kind(value: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "text",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _valid_text(value: Any, depth: int = 0) -> bool:
    """No lone surrogate in any string (they cannot be printed, stored in PostgreSQL or encoded)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if depth > 100:
        return False
    if isinstance(value, Mapping):
        return all(_valid_text(k, depth + 1) and _valid_text(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_valid_text(v, depth + 1) for v in value)
    return True


def _safe_id(run: Any) -> str:
    """The run's id as a message can show it (bounded, printable)."""
    value = run.get("id") if isinstance(run, Mapping) else None
    text = str(value)[:40].encode("utf-8", "replace").decode("utf-8")
    return repr(text) if value is not None else "(no id)"


def import_history(
    source: str | os.PathLike[str], target: str | os.PathLike[str]
) -> tuple[int, int, list[int]]:
    """Copy the runs of a JSON Lines history into the database store ``target``, skipping the runs it
    already has (by id; a row without an id gets one from its text, so importing twice adds
    nothing); (added, already there, unreadable line numbers). A file with no readable run is an
    error: importing nothing from it is never a success."""
    import hashlib

    from qagate.store.history_db import HistoryStore

    old = _read_lines(Path(source))
    if not old.runs:
        lines = ", ".join(str(n) for n in old.skipped[:5]) + (", ..." if len(old.skipped) > 5 else "")
        raise QagateError(
            "no run to import: " + (f"line(s) {lines} are not qagate runs" if lines else "the file is empty"),
            path=source,
            hint="pass the JSON Lines history a qagate run wrote (one JSON object with 'results' a line)",
        )
    runs = []
    for run in old.runs:
        if not run.get("id"):
            text = json.dumps(run, sort_keys=True).encode("utf-8")
            run = {**run, "id": "import-" + hashlib.sha256(text).hexdigest()[:12]}
        runs.append(run)
    try:
        with HistoryStore(target) as store:
            added = store.import_runs(runs)
    except OSError as exc:
        raise QagateError(f"cannot import into the run history: {exc}") from None
    return added, len(runs) - added, list(old.skipped)


def _read_lines(path: Path) -> History:
    """A JSON Lines history: one run per line; unreadable lines are skipped and numbered."""
    if not path.is_file():
        raise QagateError("no run history here", path=path, hint="pass the JSON Lines file your runs wrote")
    runs, skipped, problems = [], [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                run = json.loads(text)
            except (json.JSONDecodeError, RecursionError, ValueError):
                skipped.append(number)
                problems.append(f"line {number}: not JSON (a torn or edited line)")
                continue
            problem = run_problem(run)
            if problem:
                skipped.append(number)
                name = f" (run {_safe_id(run)})" if isinstance(run, Mapping) and "id" in run else ""
                problems.append(f"line {number}{name}: {problem}")
                continue
            runs.append(mask_secrets(run))
    return History(path, runs, skipped, problems)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def _baseline_paths(baselines: Mapping[str, Iterable[str | os.PathLike[str]]]) -> dict[str, list[str]]:
    """``{"created": [...], "updated": [...], "regenerated": [...]}`` as sorted strings, empty
    kinds left out."""
    out = {}
    for action in BASELINE_ACTIONS:
        paths = sorted(str(path) for path in baselines.get(action) or ())
        if paths:
            out[action] = paths
    return out


def _clean(row: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe values: NaN and infinities (a failed timing, say) become null."""
    out = {}
    for key, value in row.items():
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            value = None
        out[key] = value
    return out


def _package_versions() -> dict[str, str]:
    """Versions of the libraries a verdict depends on, from their metadata (nothing is imported)."""
    from importlib import metadata

    versions = {}
    for name in ("torch", "transformers", "tokenizers", "datasets", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
