"""Keep it so (issue 30): generated gate files, model declarations, datasets and prediction files
(valid shapes, mutated with tags, aliases, nesting, odd unicode, huge numbers and odd paths) let
only qagate's one-line error escape each loader, keep that line short, and change nothing stored.

The default run draws a few dozen examples per loader (seconds); CI asks for more with
``pytest tests/test_fuzz_properties.py --hypothesis-profile=fuzz`` (registered in conftest.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qagate.core.errors import QagateError
from qagate.data.loaders import load_dataset, load_predictions
from qagate.data.predictions import Predictions
from qagate.gating.gatefile import load_gate_file, resolve_cases
from qagate.inference.config import load_model_spec, missing_source

#: The longest error line a loader may give for these small files (the cap is 2,000 for all).
MAX_LINE = 1000
#: Examples per property in the default run; the ``fuzz`` profile (CI) sets its own number.
DEFAULT_EXAMPLES = 30

BUDGET = settings(
    max_examples=(
        settings.default.max_examples if settings.get_current_profile_name() == "fuzz" else DEFAULT_EXAMPLES
    ),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- what every property checks -------------------------------------------------------------------


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    """A fresh folder per example, with a stored baseline and cache entry that must survive."""
    root = Path(tempfile.mkdtemp(prefix="qagate-fuzz-"))
    try:
        (root / "baselines" / "sample").mkdir(parents=True)
        (root / "baselines" / "sample" / "good.json").write_text('{"metrics": {"f1": 90.0}}\n')
        (root / ".qagate" / "cache").mkdir(parents=True)
        (root / ".qagate" / "cache" / "entry.json").write_text("{}\n")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def loaded_or_one_line(root: Path, load: Callable[[], Any]) -> Any:
    """What ``load`` returns, or None after a QagateError of one short line; any other exception
    fails the property. Nothing under ``root`` may change either way."""
    before = snapshot(root)
    try:
        result = load()
    except QagateError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message, message[:300]
        assert len(message) <= MAX_LINE, message[:300]
        result = None
    assert snapshot(root) == before
    return result


# --- building blocks --------------------------------------------------------------------------


def alias_bomb(levels: int, width: int = 9) -> str:
    value = '&a0 "lol"'
    for level in range(1, levels + 1):
        value = f"&a{level} [" + ", ".join([value] + [f"*a{level - 1}"] * (width - 1)) + "]"
    return value


HOSTILE_YAML = [
    "!custom x",
    "!!float x",
    "!!timestamp x",
    "!!int ''",
    "!!int 0x",
    "!!binary '%%'",
    "!!set {a}",
    "!!omap [a: 1]",
    "!!python/object:os.system x",
    "! 12",
    '"\\ud800"',
    '"x\\udfffy"',
    '"\\0"',
    '"a\\nb"',
    '"rnet\\n"',
    "~nosuchuser/x",
    "~/x",
    "${QAGATE_SURELY_UNSET_VAR}",
    "${QAGATE_SURELY_UNSET_VAR:-x}",
    "9" * 5000,
    "-" + "9" * 4400,
    "1e999",
    "-1e999",
    ".inf",
    ".nan",
    "2024-13-45",
    "2024-01-01",
    "[" * 70 + "]" * 70,
    "[" * 1200 + "]" * 1200,
    "{" * 40 + "}" * 40,
    "a" * 300,
    "/" + "b" * 300 + "/x",
    "./" + "c" * 256,
    "''",
    "null",
    "true",
    "[]",
    "{}",
    "=",
    "<<",
    "*undefined",
    "&a [*a]",
    "{a: 1, a: 2}",
    "[a, [b, [c]]]",
    "? [a]\n  : 1",
]

hostile_yaml = st.one_of(
    st.sampled_from(HOSTILE_YAML),
    st.integers(1, 10).map(alias_bomb),
    st.text(max_size=40).map(json.dumps),  # any text, as a double-quoted YAML string
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


def fragment(valid: list[str]) -> st.SearchStrategy[str]:
    """Mostly a valid value for the key, often a hostile one."""
    return st.one_of(st.sampled_from(valid), hostile_yaml)


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """The text as it is, cut short, or with a hostile fragment, a byte or a nesting spliced in."""
    how = draw(st.sampled_from(["as is", "as is", "cut", "splice", "char", "wrap"]))
    at = draw(st.integers(0, len(text)))
    if how == "cut":
        return text[:at]
    if how == "splice":
        return text[:at] + draw(hostile_yaml) + text[at:]
    if how == "char":
        return text[:at] + draw(st.characters()) + text[at:]
    if how == "wrap":
        depth = draw(st.integers(1, 1500))
        return "[" * depth + text + "]" * depth
    return text


# --- gate files -------------------------------------------------------------------------------

RULES = [
    "f1 >= 80",
    "exact_match >= 0.95 * teacher",
    "f1 >= teacher - 2",
    "f1 >= baseline - 0.5",
    "speedup >= 4",
    "f1@addsent >= 0.8 * clean",
    "invariance@question_noise >= 0.9",
    "f1 >= 1e999",
    "f1 >= 1e999 * teacher",
    "em >= 90",
    "f1 => 3",
    "drop(f1@addsent) <= teacher + 5",
]


@st.composite
def gate_texts(draw: st.DrawFn) -> str:
    lines = []
    if draw(st.booleans()):
        lines.append(f"description: {draw(fragment(['release gate', 'x']))}")
    if draw(st.booleans()):
        if draw(st.booleans()):
            lines.append(f"dataset: {draw(fragment(['sample', 'data.json', 'hf:squad']))}")
        else:
            fields = {
                "source": fragment(["sample", "data.json"]),
                "limit": fragment(["10", "0", "-1"]),
                "seed": fragment(["1", "x"]),
                "articles": fragment(["0-1", "3-1", "1"]),
                "perturb": fragment(["[addsent]", "nope", "[]"]),
                "perturb_seed": fragment(["2"]),
            }
            chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=4))
            lines.append("dataset:")
            lines += [f"  {key}: {draw(fields[key])}" for key in ["source", *chosen]]
    if draw(st.booleans()):
        lines.append(f"models: {draw(fragment(['models', '../elsewhere']))}")
    if draw(st.booleans()):
        lines.append(f"requires: {draw(fragment(['[data]', 'no-such-data', '[]']))}")
    if draw(st.integers(0, 9)):
        lines.append("rules:")
        for _ in range(draw(st.integers(1, 3))):
            apply_to = draw(fragment(["students", "teacher", "all", "[good]", "[good, bad]", "nobody"]))
            rules = draw(st.lists(fragment(RULES), min_size=0, max_size=3))
            lines.append(f"  - apply_to: {apply_to}")
            if draw(st.booleans()):
                lines.append(f"    confidence: {draw(fragment(['0.95', 'true', 'false', '2']))}")
            if draw(st.booleans()):
                lines.append("    require:")
                lines += [f"      - {rule}" for rule in rules]
            else:
                lines.append(f"    require: [{', '.join(rules)}]")
    return draw(mutated("\n".join(lines) + "\n"))


ROLES = {"teacher": "teacher", "good": "student", "bad": "student"}


@BUDGET
@given(text=gate_texts())
def test_gate_files_load_or_fail_in_one_short_line(text):
    with workspace() as root:
        path = root / "gate_fuzz.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")

        def load() -> Any:
            gate = load_gate_file(path)
            resolve_cases(gate, ROLES, models_source="models")
            gate.missing_requirements()
            return gate

        loaded_or_one_line(root, load)


# --- model declarations ---------------------------------------------------------------------


@st.composite
def model_texts(draw: st.DrawFn) -> str:
    fields = {
        "name": fragment(["good", "rnet", "a.b-c_1"]),
        "kind": fragment(["extractive", "generative", "replay", "onnx"]),
        "source": fragment(["good.json", "some/hub-id", "zoo:nope", "./model", "/abs/model"]),
        "role": fragment(["teacher", "student", "model"]),
        "description": fragment(["a model"]),
        "revision": fragment(["'main'", "1234"]),
        "stop": fragment(['"\\n"', "[a, b]", "[]"]),
        "prompt": fragment(['"Q: {question} C: {context}"', '"{nope}"']),
        "max_seq_len": fragment(["384", "0", "100000"]),
        "doc_stride": fragment(["128", "500"]),
        "batch_size": fragment(["8"]),
        "device": fragment(["cpu", "gpu", "cuda:0"]),
        "dtype": fragment(["fp32", "int4"]),
        "runtime": fragment(["torch", "onnxruntime"]),
        "quantize": fragment(["none", "int8"]),
        "null_threshold": fragment(["0.0", "x"]),
        "shots": fragment(["0", "1", "2"]),
        "unknown_key": fragment(["1"]),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=6))
    keys = [key for key in ("name", "kind", "source") if draw(st.integers(0, 9))] + [
        key for key in chosen if key not in ("name", "kind", "source")
    ]
    return draw(mutated("".join(f"{key}: {draw(fields[key])}\n" for key in keys)))


@BUDGET
@given(text=model_texts())
def test_model_declarations_load_or_fail_in_one_short_line(text):
    with workspace() as root:
        (root / "good.json").write_text('{"q1": "a"}')
        path = root / "good.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")

        def load() -> Any:
            spec = load_model_spec(path)
            missing_source(spec)
            return spec

        loaded_or_one_line(root, load)


# --- datasets: SQuAD JSON and JSON Lines ------------------------------------------------------


class Raw(str):
    """JSON text spliced in as it is (numbers too long for json.dumps, deep nesting)."""


HOSTILE_JSON: list[Any] = [
    Raw("9" * 5000),
    Raw("-" + "9" * 4400),
    Raw("1e999"),
    Raw("[" * 1500 + "]" * 1500),
    Raw("{" * 3 + "}" * 3),
    "a\ud800b",
    "\udfff",
    "\ud83d\ude00",
    "\x00",
    "a" * 300,
    "",
    None,
    True,
    -1,
    2**63,
    1.5,
    [],
    {},
    ["x"],
    {"text": ["a"], "answer_start": [0]},
]

hostile_json = st.one_of(
    st.sampled_from(HOSTILE_JSON),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=20),
    st.integers(),
)


def value(valid: list[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(valid), hostile_json)


def dumps(obj: Any) -> str:
    """JSON with :class:`Raw` values spliced in as they are (lone surrogates become escapes)."""
    raws: list[str] = []

    def mark(item: Any) -> Any:
        if isinstance(item, Raw):
            raws.append(str(item))
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(item, dict):
            return {str(k): mark(v) for k, v in item.items()}
        if isinstance(item, list):
            return [mark(v) for v in item]
        return item

    text = json.dumps(mark(obj))
    for n, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{n}@@"', raw)
    return text


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    context = draw(value(["The code word is w1q and nothing else.", "abc"]))
    record: dict[str, Any] = {
        "id": draw(value(["q1", "q2", 7])),
        "title": draw(value(["t", "u"])),
        "context": context,
        "question": draw(value(["what is the code word?"])),
        "answers": draw(
            st.one_of(
                st.just([{"text": "w1q", "answer_start": 17}]),
                st.just([]),
                st.lists(
                    st.fixed_dictionaries(
                        {"text": value(["w1q", "abc"]), "answer_start": value([17, 0, 10**6])}
                    ),
                    max_size=2,
                ),
                hostile_json,
            )
        ),
    }
    for extra in draw(
        st.lists(st.sampled_from(["is_impossible", "_article", "_where", "other"]), unique=True)
    ):
        record[extra] = draw(value([False, True, 0, "x"]))
    return record


@st.composite
def dataset_files(draw: st.DrawFn) -> tuple[str, str]:
    """(file name, text) of a SQuAD JSON, JSON list or JSON Lines dataset, maybe mutated."""
    items = draw(st.lists(records(), min_size=0, max_size=4))
    form = draw(st.sampled_from(["squad", "list", "lines"]))
    if form == "lines":
        return "data.jsonl", draw(mutated("".join(dumps(item) + "\n" for item in items)))
    if form == "list":
        return "data.json", draw(mutated(dumps(items)))
    paragraphs = [
        {
            "context": item["context"],
            "qas": [{k: v for k, v in item.items() if k not in ("context", "title")}],
        }
        for item in items
    ]
    squad = {"version": draw(value(["1.1", "v2.0"])), "data": [{"title": "t", "paragraphs": paragraphs}]}
    return "data.json", draw(mutated(dumps(squad)))


@BUDGET
@given(
    file=dataset_files(),
    limit=st.none() | st.integers(1, 5),
    seed=st.none() | st.integers(0, 3),
    articles=st.none() | st.tuples(st.integers(0, 2), st.integers(0, 2)),
)
def test_datasets_load_or_fail_in_one_short_line(file, limit, seed, articles):
    name, text = file
    with workspace() as root:
        path = root / name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")

        def load() -> Any:
            dataset = load_dataset(str(path), limit=limit, seed=seed, articles=articles, strict=False)
            assert dataset.fingerprint  # hashes every text: a lone surrogate would raise here
            return dataset

        loaded_or_one_line(root, load)


# --- prediction files -------------------------------------------------------------------------


@st.composite
def prediction_files(draw: st.DrawFn) -> str:
    answers = draw(st.dictionaries(value(["q1", "q2"]).map(str), value(["w1q", ""]), max_size=4))
    top = draw(st.sampled_from(["object", "object", "list", "hostile"]))
    obj = answers if top == "object" else list(answers.values()) if top == "list" else draw(hostile_json)
    return draw(mutated(dumps(obj)))


@BUDGET
@given(text=prediction_files())
def test_prediction_files_load_or_fail_in_one_short_line(text):
    with workspace() as root:
        path = root / "predictions.json"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")

        def load() -> Any:
            answers = load_predictions(path)
            Predictions(answers).to_official_json().encode("utf-8")  # what the cache writes
            return answers

        loaded_or_one_line(root, load)


def test_the_default_budget_is_small():
    """The default run stays in seconds; the fuzz profile is what CI selects for more."""
    if settings.get_current_profile_name() != "fuzz":
        assert BUDGET.max_examples == DEFAULT_EXAMPLES
    else:  # pragma: no cover - only under --hypothesis-profile=fuzz
        pytest.skip("running under the fuzz profile")


# --- options and ini keys ---------------------------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.sampled_from(
        [
            "~nosuchuser/x",
            "a\0b",
            "a" * 300,
            "/" + "b" * 300 + "/x",
            "9" * 5000,
            "1e999",
            "nan",
            "-1",
            "${QAGATE_SURELY_UNSET_VAR}",
            "\ud800",
            "sqlite:/x.db",
            "postgres://u:secret@h/db",
            "hf:",
            "",
            " ",
        ]
    ),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=30),
)


@BUDGET
@given(data=st.data())
def test_options_and_ini_keys_parse_or_fail_in_one_short_line(data):
    from qagate.pytest_plugin.settings import OPTIONS, SettingsError, build_settings

    chosen = data.draw(st.lists(st.sampled_from(OPTIONS), unique_by=lambda o: o.name, max_size=4))
    cli: dict[str, Any] = {}
    ini: dict[str, str] = {}
    for option in chosen:
        text = data.draw(HOSTILE_TEXT)
        if data.draw(st.booleans()):
            ini[option.ini] = text
            continue
        if option.parse is None:
            cli[option.name] = True
            continue
        try:
            cli[option.name] = option.parse(text)  # what argparse does with type=
        except Exception as exc:  # argparse shows ArgumentTypeError itself, in one line
            assert type(exc).__name__ == "ArgumentTypeError", repr(exc)[:300]
            message = str(exc)
            assert "\n" not in message and len(message) <= MAX_LINE, message[:300]
    with workspace() as root:

        def build() -> Any:
            try:
                return build_settings(cli, ini, rootdir=root, invocation_dir=root, ini_dir=root)
            except SettingsError as exc:
                raise QagateError(str(exc)) from None  # checked as the one line it is

        loaded_or_one_line(root, build)
