"""Argument types: one parser and one message per kind of value, whether it comes from the
``qagate`` command, a pytest option or ini key, or a YAML file."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from qagate.cli import main
from qagate.core.argtypes import (
    did_you_mean,
    expand_path,
    parse_articles,
    parse_device,
    parse_int,
    parse_positive_int,
)
from qagate.core.errors import QagateError
from qagate.gating.gatefile import load_gate_file
from qagate.pytest_plugin.settings import SettingsError, build_settings

BAD_RANGE = "article range '47-38' ends before it starts"


def settings_from_ini(tmp_path: Path, **ini: str):
    return build_settings({}, ini, rootdir=tmp_path, invocation_dir=tmp_path, ini_dir=tmp_path)


@pytest.mark.parametrize(
    "text, value", [("38-47", (38, 47)), (" 12 ", (12, 12)), ("3 - 5", (3, 5)), (7, (7, 7))]
)
def test_article_ranges(text, value):
    assert parse_articles(text) == value


@pytest.mark.parametrize(
    "parse, text, message",
    [
        (parse_articles, "47-38", BAD_RANGE),
        (parse_articles, "a-b", "expected an article range such as 38-47 (inclusive), got 'a-b'"),
        (parse_positive_int, "0", "expected a positive integer, got '0'"),
        (parse_positive_int, "1.5", "expected a positive integer, got '1.5'"),
        (parse_int, "x", "expected an integer, got 'x'"),
    ],
)
def test_bad_values_have_one_message(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "text, value",
    [("auto", "auto"), ("CPU", "cpu"), ("cuda", "cuda"), ("cuda:3", "cuda:3"), (" mps ", "mps")],
)
def test_devices(text, value):
    assert parse_device(text) == value


@pytest.mark.parametrize(
    "text, suggestion",
    [
        ("gpu", "cuda"),
        ("GPU", "cuda"),
        ("cuda0", "cuda:0"),
        ("metal", "mps"),
        ("cpuu", "cpu"),
        ("cdua", "cuda"),
    ],
)
def test_device_typos_get_the_device_they_meant(text, suggestion):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse_device(text)
    assert str(info.value) == (
        f"expected one of auto, cpu, cuda, cuda:N, mps; got {text!r} (did you mean {suggestion!r}?)"
    )


def test_did_you_mean_prefers_case_then_aliases_then_spelling():
    assert did_you_mean("F1", ["f1", "exact_match"]) == " (did you mean 'f1'?)"
    assert (
        did_you_mean("em", ["f1", "exact_match"], {"em": "exact_match"}) == " (did you mean 'exact_match'?)"
    )
    assert (
        did_you_mean("EM", ["f1", "exact_match"], {"em": "exact_match"}) == " (did you mean 'exact_match'?)"
    )
    assert did_you_mean("exact_mach", ["f1", "exact_match"]) == " (did you mean 'exact_match'?)"
    assert did_you_mean("zzz", ["f1", "exact_match"]) == ""


def test_expand_path(tmp_path, monkeypatch):
    monkeypatch.setenv("QAGATE_TEST_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QAGATE_TEST_UNSET", raising=False)
    assert expand_path("${QAGATE_TEST_ROOT}/x.json", Path("/elsewhere")) == tmp_path / "data/x.json"
    assert expand_path("~/m", tmp_path) == tmp_path / "home/m"
    assert expand_path("${QAGATE_TEST_UNSET:-../shared}/m", tmp_path / "a") == tmp_path / "shared/m"
    assert expand_path("sub/../m", tmp_path) == tmp_path / "m"
    with pytest.raises(QagateError, match="environment variable QAGATE_TEST_UNSET is not set"):
        expand_path("${QAGATE_TEST_UNSET}/m", tmp_path)


def test_a_bad_article_range_reads_the_same_from_cli_ini_and_yaml(tmp_path, capsys):
    messages = []
    for argv in (
        ["score", "sample", "p.json", "--articles", "47-38"],
        ["evaluate", "m.yaml", "sample", "--articles", "47-38"],
    ):
        with pytest.raises(SystemExit):
            main(argv)
        messages.append(capsys.readouterr().err.splitlines()[-1])
    with pytest.raises(SettingsError) as ini:
        settings_from_ini(tmp_path, qagate_articles="47-38")
    messages.append(str(ini.value))
    gate = tmp_path / "gate_x.yaml"
    gate.write_text(
        "dataset: {source: sample, articles: 47-38}\nrules:\n  - apply_to: all\n    require: [f1 >= 1]\n",
        encoding="utf-8",
    )
    with pytest.raises(QagateError) as yaml_error:
        load_gate_file(gate)
    messages.append(str(yaml_error.value))
    assert [m.endswith(BAD_RANGE) for m in messages] == [True] * 4, messages
    assert messages[0] == f"qagate score: error: argument --articles: {BAD_RANGE}"
    assert messages[2] == f"ini key qagate_articles: {BAD_RANGE}"
    assert messages[3] == f"{gate}:1: dataset articles: {BAD_RANGE}"


def test_ini_device_gets_the_same_suggestion(tmp_path):
    with pytest.raises(SettingsError) as info:
        settings_from_ini(tmp_path, qagate_device="gpu")
    assert str(info.value) == (
        "ini key qagate_device: expected one of auto, cpu, cuda, cuda:N, mps; "
        "got 'gpu' (did you mean 'cuda'?)"
    )


def test_ini_paths_expand_variables_like_yaml_files(tmp_path, monkeypatch):
    monkeypatch.setenv("QAGATE_TEST_ROOT", str(tmp_path / "shared"))
    monkeypatch.delenv("QAGATE_TEST_UNSET", raising=False)
    settings = settings_from_ini(
        tmp_path, qagate_models="${QAGATE_TEST_ROOT}/models", qagate_dataset="${QAGATE_TEST_ROOT}/dev.json"
    )
    assert settings.models == tmp_path / "shared/models"
    assert settings.dataset == str(tmp_path / "shared/dev.json")
    with pytest.raises(
        SettingsError, match="^ini key qagate_baselines: environment variable QAGATE_TEST_UNSET is not set"
    ):
        settings_from_ini(tmp_path, qagate_baselines="${QAGATE_TEST_UNSET}/b")


def test_mps_without_metal_is_a_clear_error(monkeypatch):
    torch = pytest.importorskip("torch")
    from qagate.inference.extractive import resolve_device

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(
        QagateError, match="device 'mps' requested but Apple's Metal backend is not available"
    ):
        resolve_device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("mps") == "mps"
