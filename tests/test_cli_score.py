"""``qagate score``: a drop-in for the official script, with clean errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from qagate.cli import main
from qagate.data import load_dataset
from shared_data import SQUAD, needs_shared


def qagate_score(capsys, *args):
    code = main(["score", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def sample_predictions(tmp_path):
    """Right on two of every three sample questions, one question left out, one unknown id."""
    examples = load_dataset("sample").examples
    answers = {ex.id: (ex.answers[0] if i % 3 else "no idea") for i, ex in enumerate(examples)}
    del answers[examples[1].id]
    answers["not-a-question"] = "x"
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(answers), encoding="utf-8")
    return path


@needs_shared
@pytest.mark.parametrize(
    "name,em,f1",
    [
        ("bert-ensemble-google.json", 86.20624408703878, 92.19557978351145),
        ("logistic-regression-stanford.json", 40.14191106906339, 50.98153647324461),
    ],
)
def test_default_output_is_the_official_scripts(capsys, name, em, f1):
    code, out, err = qagate_score(capsys, SQUAD / "dev-v1.1.json", SQUAD / "predictions" / name)
    assert code == 0
    assert out == json.dumps({"exact_match": em, "f1": f1}) + "\n"


@needs_shared
def test_json_output_counts_missing_and_unknown_ids(capsys):
    code, out, err = qagate_score(
        capsys, SQUAD / "dev-v1.1.json", SQUAD / "predictions" / "logistic-regression-stanford.json", "--json"
    )
    assert code == 0
    result = json.loads(out)
    assert result["total"] == 10570 and result["answered"] == 10557
    assert result["missing"] == 13 and result["unknown_ids"] == 28
    assert result["exact_match"] == pytest.approx(40.14191106906339, abs=1e-9)
    assert "warning: 13 of 10570 questions have no prediction" in err
    assert "warning: 28 predicted ids are not in dataset 'dev-v1.1'" in err
    assert len(err.splitlines()) == 2


def test_sample_with_json_and_ci(capsys, sample_predictions):
    code, out, err = qagate_score(
        capsys, "sample", sample_predictions, "--json", "--ci", "--resamples", "300"
    )
    assert code == 0
    result = json.loads(out)
    assert {"exact_match", "f1", "total", "answered", "missing", "unknown_ids", "intervals"} <= set(result)
    assert (result["dataset"], result["missing"], result["unknown_ids"]) == ("sample", 1, 1)
    intervals = result["intervals"]
    assert (intervals["level"], intervals["resamples"], intervals["seed"]) == (0.95, 300, 0)
    for metric in ("exact_match", "f1"):
        low, high = intervals[metric]
        assert 0 <= low < result[metric] < high <= 100
    again = json.loads(
        qagate_score(capsys, "sample", sample_predictions, "--json", "--ci", "--resamples", "300")[1]
    )
    assert again == result
    reseeded = json.loads(
        qagate_score(
            capsys, "sample", sample_predictions, "--json", "--ci", "--resamples", "300", "--seed", "1"
        )[1]
    )
    assert reseeded["intervals"]["f1"] != result["intervals"]["f1"]


def test_subset_options(capsys, sample_predictions):
    code, out, err = qagate_score(
        capsys, "sample", sample_predictions, "--json", "--articles", "0-1", "--limit", "5"
    )
    result = json.loads(out)
    assert result["dataset"] == "sample-articles-0-1-first-5" and result["total"] == 5


def test_v2_dataset_prints_the_official_v2_object(capsys, tmp_path):
    context = "The vault was sealed in 1902."
    data = {
        "version": "v2.0",
        "data": [
            {
                "title": "Vault",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": "y",
                                "question": "When?",
                                "is_impossible": False,
                                "answers": [{"text": "1902", "answer_start": context.index("1902")}],
                            },
                            {
                                "id": "n",
                                "question": "Who?",
                                "is_impossible": True,
                                "answers": [],
                                "plausible_answers": [{"text": "vault", "answer_start": 4}],
                            },
                        ],
                    }
                ],
            }
        ],
    }
    dataset = tmp_path / "v2.json"
    dataset.write_text(json.dumps(data), encoding="utf-8")
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({"y": "1902", "n": "the vault"}), encoding="utf-8")
    code, out, err = qagate_score(capsys, dataset, preds)
    assert json.loads(out) == {
        "exact": 50.0,
        "f1": 50.0,
        "total": 2,
        "HasAns_exact": 100.0,
        "HasAns_f1": 100.0,
        "HasAns_total": 1,
        "NoAns_exact": 0.0,
        "NoAns_f1": 0.0,
        "NoAns_total": 1,
    }
    result = json.loads(qagate_score(capsys, dataset, preds, "--json")[1])
    assert result["no_ans"] == {"exact_match": 0.0, "f1": 0.0, "total": 1}


BAD_FILES = {
    "missing": None,
    "empty": b"",
    "not-utf8": b'{"a": "caf\xe9"}',
    "not-json": b"exact_match,f1\n1,2\n",
    "truncated": b'{"q1": "Ada", "q2": "18',
    "list": b'["Ada", "1843"]',
    "non-string": b'{"q1": ["Ada"], "q2": 3}',
}


@pytest.mark.parametrize("position", ["dataset", "predictions"])
@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, sample_predictions, kind, position):
    bad = tmp_path / f"{kind}.json"
    if BAD_FILES[kind] is not None:
        bad.write_bytes(BAD_FILES[kind])
    args = [bad, sample_predictions] if position == "dataset" else ["sample", bad]
    code, out, err = qagate_score(capsys, *args)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("qagate score: error: ")
    assert str(bad) in err and "Traceback" not in err


def test_swapped_arguments_get_a_hint(capsys, tmp_path, sample_predictions):
    code, out, err = qagate_score(capsys, sample_predictions, load_dataset("sample").source)
    assert code == 2 and len(err.splitlines()) == 1


def test_dataset_file_as_predictions_is_spotted(capsys):
    code, out, err = qagate_score(capsys, "sample", load_dataset("sample").source)
    assert code == 2 and "give the dataset first, predictions second" in err


@pytest.mark.parametrize(
    "option, message",
    [
        (
            ["--level", "1.5"],
            "--level: expected a confidence level strictly between 0 and 1 (e.g. 0.95), got '1.5'",
        ),
        (["--resamples", "0"], "--resamples: expected a positive integer, got '0'"),
        (["--articles", "9-3"], "--articles: article range '9-3' ends before it starts"),
        (["--limit", "x"], "--limit: expected a positive integer, got 'x'"),
        (["--sample-seed", "x"], "--sample-seed: expected an integer, got 'x'"),
    ],
)
def test_bad_options_are_rejected_at_parse_time(capsys, sample_predictions, option, message):
    """Worded by qagate.core.argtypes, exactly as the pytest options and gate files word them."""
    with pytest.raises(SystemExit) as info:
        main(["score", "sample", str(sample_predictions), *option])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(message)


def test_real_command_line(tmp_path, sample_predictions):
    """End to end through the installed entry point's module: exit codes and streams."""
    run = [sys.executable, "-m", "qagate.cli", "score", "sample"]
    good = subprocess.run([*run, str(sample_predictions)], capture_output=True, text=True)
    assert good.returncode == 0 and set(json.loads(good.stdout)) == {"exact_match", "f1"}
    assert "warning" in good.stderr
    bad = tmp_path / "truncated.json"
    bad.write_bytes(BAD_FILES["truncated"])
    failed = subprocess.run([*run, str(bad)], capture_output=True, text=True)
    assert failed.returncode == 2 and failed.stdout == ""
    assert failed.stderr.count("\n") == 1 and "Traceback" not in failed.stderr
    assert f"{bad}: JSON ends early" in failed.stderr
