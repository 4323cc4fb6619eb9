"""Broken and hostile inputs (issue 30): never green, never a traceback, never a 351 MB error.

One regression test per failure the fuzzer found: unreadable gate files, the two-argument
``--qagate-history`` that moved the rootdir, YAML alias bombs, tags, ``~nosuchuser``, NUL bytes,
over-long names, symbolic link loops, lone surrogates, deep nesting, huge integers, reserved
record fields, infinite thresholds and a model name with a trailing newline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from qagate.core.errors import MAX_MESSAGE, QagateError, quote
from qagate.data.loaders import load_dataset, load_predictions
from qagate.gating.gatefile import load_gate_file
from qagate.inference.config import load_model_spec
from qagate.pytest_plugin.settings import SettingsError, build_settings
from qagate.store.baselines import baseline_path, write_baseline
from test_plugin import Project, project  # noqa: F401  (the same tmp project fixture)

RULES = "rules:\n  - apply_to: all\n    require: [f1 >= 1]\n"
MODEL = "name: m\nkind: extractive\nsource: some/hub-id\n"
RECORD = {
    "id": "q1",
    "title": "t",
    "context": "abc def",
    "question": "q?",
    "answers": [{"text": "abc", "answer_start": 0}],
}


def one_line_error(call, *args, limit: int = 400, **kwargs) -> str:
    """The QagateError ``call`` raises: one short line (a test fails on any other exception)."""
    with pytest.raises(QagateError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and len(message) <= limit, message[:500]
    return message


def gate_at(tmp_path: Path, text: str, name: str = "gate_x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def model_at(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def loop_at(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    os.symlink(path, path)
    return path


def alias_bomb(levels: int, width: int = 9) -> str:
    """``&a0 "lol"`` then ``levels`` lists of ``width`` aliases of the one before, in one value."""
    value = '&a0 "lol"'
    for level in range(1, levels + 1):
        value = f"&a{level} [" + ", ".join([value] + [f"*a{level - 1}"] * (width - 1)) + "]"
    return value


# --- 1. a gate file that cannot be read is never green ------------------------------------------


def test_unreadable_gate_files_fail_the_run_naming_each_file(project):
    """A dangling symbolic link, a symbolic link loop and a folder named gate_*.yaml used to be
    passed over ("1 passed", exit 0), --qagate-strict too."""
    project.gate("rules:\n  - apply_to: [good]\n    require: [f1 >= 1]\n")
    os.symlink(project.root / "gone.yaml", project.root / "gate_dangling.yaml")
    loop_at(project.root, "gate_loop.yaml")
    (project.root / "gate_folder.yaml").mkdir()
    for args in ((), ("--qagate-strict",), ("--continue-on-collection-errors",)):
        result = project.run("-rA", *args)
        assert result.ret not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED), args
        out = result.stdout.str()
        assert "gate_dangling.yaml: cannot read gate file: is a symbolic link to" in out
        assert "gate_loop.yaml: cannot read gate file: is a symbolic link loop" in out
        assert "gate_folder.yaml: cannot read gate file: is a directory" in out
        assert "Traceback" not in out and "INTERNALERROR" not in out
    result.assert_outcomes(passed=1, errors=3)  # the readable gate still runs and is shown


@pytest.mark.parametrize("kind", ["dangling", "loop", "folder"])
def test_load_gate_file_names_an_unreadable_file(tmp_path, kind):
    path = tmp_path / "gate_x.yaml"
    if kind == "dangling":
        os.symlink(tmp_path / "gone.yaml", path)
    elif kind == "loop":
        os.symlink(path, path)
    else:
        path.mkdir()
    assert one_line_error(load_gate_file, path).startswith(f"{path}: cannot read gate file: ")


# --- 2. --qagate-history PATH (two arguments) must not move the rootdir ------------------------


def test_history_as_two_arguments_outside_the_project_is_refused_with_the_fix(project, tmp_path_factory):
    """pytest took the path for a test path once the file existed: the rootdir moved and every
    run after the first failed far from the cause. Refused at start-up, first run included."""
    project.gate("rules:\n  - apply_to: [good]\n    require: [f1 >= 1]\n")
    history = tmp_path_factory.mktemp("ci") / "history.db"
    for _ in range(2):  # not yet there, then there
        result = project.run("--qagate-history", str(history))
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        err = result.stderr.str()
        assert f"write --qagate-history={history} (one argument, with '=')" in err
        assert "the rootdir would move" in err
        history.touch()
    for _ in range(2):  # the '=' form works, every time
        result = project.run(f"--qagate-history={history}")
        result.assert_outcomes(passed=1)
    assert history.stat().st_size > 0


def test_history_as_two_arguments_is_left_alone_when_it_moves_nothing(project, tmp_path_factory):
    """With a test path given, pytest finds the ini file from it: the history path moves nothing."""
    project.gate("rules:\n  - apply_to: [good]\n    require: [f1 >= 1]\n")
    history = tmp_path_factory.mktemp("ci") / "history.db"
    for _ in range(2):
        project.run("gate_release.yaml", "--qagate-history", str(history)).assert_outcomes(passed=1)
    assert history.is_file()


def test_path_option_as_two_arguments_inside_the_project_still_works(project):
    project.gate("rules:\n  - apply_to: [good]\n    require: [f1 >= 1]\n")
    (project.root / "ci").mkdir()
    for _ in range(2):
        project.run("--qagate-history", "ci/history.db", "--qagate-models", "models").assert_outcomes(
            passed=1
        )
    assert (project.root / "ci" / "history.db").is_file()


# --- 3. alias bombs: refused, and no error quotes more than a line ------------------------------


def test_the_462_byte_gate_file_is_refused_in_one_short_line(tmp_path):
    levels = ['l0: &l0 "lol"'] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    text = "\n".join(levels) + "\n"
    assert len(text.encode()) < 600
    message = one_line_error(load_gate_file, gate_at(tmp_path, text))
    assert "expands to more than 100,000 values" in message


@pytest.mark.parametrize("where", ["description", "dataset", "apply_to", "rule"])
@pytest.mark.parametrize("levels", [4, 9, 10])
def test_an_alias_bomb_in_any_gate_value_gives_a_short_line(tmp_path, where, levels):
    bomb = alias_bomb(levels)
    text = {
        "description": f"description: {bomb}\n{RULES}",
        "dataset": f"dataset: {bomb}\n{RULES}",
        "apply_to": f"rules:\n  - apply_to: {bomb}\n    require: [f1 >= 1]\n",
        "rule": f"rules:\n  - apply_to: all\n    require: [{{rule: {bomb}}}]\n",
    }[where]
    one_line_error(load_gate_file, gate_at(tmp_path, text))


@pytest.mark.parametrize("key", ["description", "name", "stop", "source"])
@pytest.mark.parametrize("levels", [4, 9])
def test_an_alias_bomb_in_a_model_file_gives_a_short_line(tmp_path, key, levels):
    fields = {"name": "m", "kind": "generative", "source": "some/hub-id", key: "BOMB"}
    text = "".join(f"{k}: {alias_bomb(levels) if v == 'BOMB' else v}\n" for k, v in fields.items())
    one_line_error(load_model_spec, model_at(tmp_path, text))


def test_quote_bounds_any_value():
    nested: object = "lol"
    for _ in range(9):
        nested = [nested] * 9  # shared: 387 million leaves if printed in full
    assert len(quote(nested)) <= 80
    assert len(quote("x" * 10**6)) <= 80
    assert len(quote(10**5000)) <= 80  # str() of it raises ValueError
    assert quote("abc") == "'abc'"


def test_every_qagate_error_is_bounded():
    message = str(QagateError("x" * 10**6, path="p", hint="the fix"))
    assert len(message) <= MAX_MESSAGE and message.endswith("(the fix)")


# --- 4. never a traceback ---------------------------------------------------------------------


@pytest.mark.parametrize("option", ["baselines", "models", "dataset", "cache", "history"])
@pytest.mark.parametrize("value", ["~nosuchuser/x", "a\0b", "a" * 300 + "/x"])
def test_bad_paths_in_path_options_are_one_line(tmp_path, option, value):
    with pytest.raises(SettingsError) as caught:
        build_settings({option: value}, {}, rootdir=tmp_path, invocation_dir=tmp_path, ini_dir=tmp_path)
    message = str(caught.value)
    assert message.startswith(f"--qagate-{option}: ") and "\n" not in message and len(message) < 400


def test_nosuchuser_on_the_command_line_is_a_usage_error_not_internal(project):
    result = project.run("--qagate-baselines=~nosuchuser/baselines")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "cannot expand '~nosuchuser'" in result.stderr.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("value", ["~nosuchuser/x.json", '"a\\0b.json"', "a" * 300 + ".json"])
def test_bad_paths_in_a_gate_file_are_one_line(tmp_path, value):
    message = one_line_error(load_gate_file, gate_at(tmp_path, f"dataset: {value}\n{RULES}"))
    assert message.startswith(f"{tmp_path / 'gate_x.yaml'}:1: ")


@pytest.mark.parametrize("value", ["~nosuchuser/model", '"./a\\0b"', "./" + "a" * 300])
@pytest.mark.parametrize("kind", ["extractive", "replay"])
def test_bad_paths_as_a_model_source_are_one_line(tmp_path, value, kind):
    path = model_at(tmp_path, f"name: m\nkind: {kind}\nsource: {value}\n")
    assert one_line_error(load_model_spec, path).startswith(f"{path}: source: ")


@pytest.mark.parametrize(
    "tag", ["!custom x", "!!float x", "!!timestamp x", "!!int ''", "!!binary '%%'", "!!set {a}", "!!omap []"]
)
def test_yaml_tags_are_one_line(tmp_path, tag):
    gate = one_line_error(load_gate_file, gate_at(tmp_path, f"description: {tag}\n{RULES}"))
    assert gate.startswith(f"{tmp_path / 'gate_x.yaml'}:1: ")
    model = one_line_error(load_model_spec, model_at(tmp_path, f"{MODEL}description: {tag}\n"))
    assert "line 4" in model


def test_plain_yaml_still_reads_as_before(tmp_path):
    """Explicit plain tags are plain data; an unquoted date is still refused as a revision with
    the hint to quote it (not as an unsupported tag)."""
    spec = load_model_spec(model_at(tmp_path, f"{MODEL}description: !!str 12\nbatch_size: !!int '8'\n"))
    assert (spec.description, spec.batch_size) == ("12", 8)
    revision = model_at(tmp_path, f"{MODEL}revision: 2024-01-01\n")
    assert "quote it" in one_line_error(load_model_spec, revision)
    assert load_gate_file(gate_at(tmp_path, f"description: !!str 12\n{RULES}")).description == "12"


@pytest.mark.parametrize("depth", [100, 1200])
def test_deep_nesting_is_one_line(tmp_path, depth):
    nested = "[" * depth + "]" * depth
    one_line_error(load_gate_file, gate_at(tmp_path, f"description: {nested}\n{RULES}"))
    one_line_error(load_model_spec, model_at(tmp_path, f"{MODEL}description: {nested}\n"))
    data = tmp_path / "deep.json"
    data.write_text('{"data": ' + nested + "}")
    one_line_error(load_dataset, str(data))
    predictions = tmp_path / "p.json"
    predictions.write_text('{"q1": ' + nested + "}")
    one_line_error(load_predictions, predictions)


def test_symlink_loops_are_one_line(tmp_path):
    for name in ("loop.json", "loop.jsonl", "loop.parquet"):
        message = one_line_error(load_dataset, str(loop_at(tmp_path, name)))
        assert message.endswith(
            "cannot read dataset: is a symbolic link loop (a link that leads back to itself)"
        )
    model = loop_at(tmp_path, "model.yaml")
    assert "symbolic link loop" in one_line_error(load_model_spec, model)
    replay = model_at(tmp_path, f"name: m\nkind: replay\nsource: {loop_at(tmp_path, 'preds.json')}\n")
    assert "symbolic link loop" in one_line_error(load_model_spec, replay)


@pytest.mark.parametrize("spec", ["a\0b.json", "a" * 300 + ".json", "a" * 300 + "/b.jsonl"])
def test_bad_dataset_paths_are_one_line(spec):
    one_line_error(load_dataset, spec)


@pytest.mark.parametrize("field", ["context", "question", "id", "title", "answer"])
def test_lone_surrogates_in_a_dataset_are_one_line(tmp_path, field):
    record = dict(RECORD)
    if field == "answer":
        record["context"] = "a\ud800bc"
        record["answers"] = [{"text": "a\ud800", "answer_start": 0}]
    else:
        record[field] = "a\ud800b" if field != "context" else "abc def \ud800"
    data = tmp_path / "d.json"
    data.write_text(json.dumps([record]))  # ensure_ascii: written as the escape "\ud800"
    assert "lone surrogate escape (\\ud800" in one_line_error(load_dataset, str(data))


def test_surrogate_pairs_are_characters(tmp_path):
    data = tmp_path / "d.json"
    data.write_text(json.dumps([{**RECORD, "context": "abc def \U0001f600"}]))
    assert load_dataset(str(data)).examples[0].context.endswith("\U0001f600")


def test_lone_surrogates_in_predictions_are_one_line(tmp_path):
    for content in ('{"q1": "a\\ud800"}', '{"q\\udfff": "a"}'):
        path = tmp_path / "p.json"
        path.write_text(content)
        assert "lone surrogate" in one_line_error(load_predictions, path)


def test_huge_integers_are_one_line(tmp_path):
    record = json.dumps([RECORD]).replace('"answer_start": 0', '"answer_start": ' + "9" * 5000)
    data = tmp_path / "d.json"
    data.write_text(record)
    assert "5000 digits" in one_line_error(load_dataset, str(data))
    lines = tmp_path / "d.jsonl"
    lines.write_text(json.dumps(RECORD) + "\n" + record[1:-1] + "\n")
    assert "5000 digits" in one_line_error(load_dataset, str(lines))
    predictions = tmp_path / "p.json"
    predictions.write_text('{"q1": ' + "9" * 5000 + "}")
    assert "5000 digits" in one_line_error(load_predictions, predictions)
    gate = gate_at(tmp_path, f"dataset: {{source: sample, seed: {'9' * 5000}}}\n{RULES}")
    one_line_error(load_gate_file, gate)


def test_a_record_cannot_set_the_loaders_internal_fields(tmp_path):
    data = tmp_path / "d.jsonl"
    lines = [{**RECORD, "_article": "x", "_where": [1]}, {**RECORD, "id": "q2", "_article": 10**6}]
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    dataset = load_dataset(str(data), articles=(0, 0))  # used to crash on the string article
    assert [ex.article for ex in dataset.examples] == [0, 0]


def test_a_long_model_name_is_refused_and_long_names_make_short_file_names(tmp_path):
    message = one_line_error(
        load_model_spec, model_at(tmp_path, f"name: {'m' * 300}\nkind: replay\nsource: p.json\n")
    )
    assert "300 characters long" in message
    path = baseline_path(tmp_path, "d" * 300, "m" * 300)
    assert all(len(part.encode()) <= 200 for part in path.relative_to(tmp_path).parts[:1])
    write_baseline(path, {"f1": 1.0}, {})  # used to fail: file name too long
    assert path.is_file() and baseline_path(tmp_path, "d" * 300, "m" * 299) != path


# --- 6. accepted silently before ----------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        "f1 >= 1e999",
        "f1 >= -1e999",
        "f1 >= 1e999 * teacher",
        "f1 >= teacher - 1e999",
        "{rule: f1 >= 1e999, confidence: 0.95}",
        "f1@addsent >= 1e999 * clean",
    ],
)
def test_an_infinite_threshold_is_refused(tmp_path, rule):
    gate = gate_at(tmp_path, f"rules:\n  - apply_to: all\n    require: [{rule}]\n")
    assert "too large to be a threshold" in one_line_error(load_gate_file, gate)


@pytest.mark.parametrize("name", ['"rnet\\n"', '"rnet\\r"', '"rnet "', '"r\\tnet"'])
def test_a_model_name_with_a_trailing_newline_is_refused(tmp_path, name):
    message = one_line_error(
        load_model_spec, model_at(tmp_path, f"name: {name}\nkind: replay\nsource: p.json\n")
    )
    assert "is not a valid name" in message


def test_a_control_character_in_yaml_is_one_line_with_its_line(tmp_path):
    """Found by the property tests: PyYAML's reader refused it before any parse, as a traceback."""
    message = one_line_error(load_gate_file, gate_at(tmp_path, f"description: x\n\x1f\n{RULES}"))
    assert message.startswith(f"{tmp_path / 'gate_x.yaml'}:2: invalid YAML: ")
    assert "not valid YAML: line 1" in one_line_error(load_model_spec, model_at(tmp_path, "\x1f"))


def test_a_huge_article_number_in_the_ini_file_is_one_line(tmp_path):
    """Found by the property tests: int() of 5,000 digits raised ValueError past the ini parser."""
    with pytest.raises(SettingsError, match=r"^ini key qagate_articles: expected an article range"):
        build_settings(
            {}, {"qagate_articles": "9" * 5000}, rootdir=tmp_path, invocation_dir=tmp_path, ini_dir=tmp_path
        )
