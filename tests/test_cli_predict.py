"""``qagate predict`` and ``qagate evaluate`` end to end, and their one-line errors."""

from __future__ import annotations

import json

import pytest

from qagate.cli import main


@pytest.fixture
def tiny_yaml(tiny_qa_model_dir, write_model_yaml):
    return write_model_yaml("tiny", source=tiny_qa_model_dir(), device="cpu", max_seq_len=128, doc_stride=32)


def test_predict_writes_official_json_and_log(tiny_yaml, tmp_path, capsys):
    pytest.importorskip("torch")
    out, log = tmp_path / "out" / "predictions.json", tmp_path / "log.jsonl"
    code = main(
        [
            "predict",
            str(tiny_yaml),
            "sample",
            "--out",
            str(out),
            "--log",
            str(log),
            "--limit",
            "7",
            "--seed",
            "1",
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 0
    answers = json.loads(out.read_text())
    assert len(answers) == 7 and all(isinstance(v, str) for v in answers.values())
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {line["id"] for line in lines} == set(answers)
    assert all(line["seconds"] > 0 and 0 <= line["confidence"] <= 1 for line in lines)
    assert "tiny: 7 answers on sample" in capsys.readouterr().err
    main(
        [
            "predict",
            str(tiny_yaml),
            "sample",
            "--out",
            str(out),
            "--limit",
            "7",
            "--seed",
            "1",
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    assert "(from cache)" in capsys.readouterr().err
    assert json.loads(out.read_text()) == answers


def test_evaluate_json_and_table(tiny_yaml, capsys):
    pytest.importorskip("torch")
    assert main(["evaluate", str(tiny_yaml), "sample", "--limit", "5", "--json", "--no-bertscore"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["questions"] == 5 and result["model"] == "tiny" and not result["from_cache"]
    assert {
        "exact_match",
        "f1",
        "seconds_per_question",
        "questions_per_second",
        "parameter_count",
        "size_on_disk_mb",
    } <= set(result)
    assert "bertscore_f1" not in result
    assert main(["evaluate", str(tiny_yaml), "sample", "--limit", "4"]) == 0
    table = capsys.readouterr().out
    for label in ("exact_match", "f1", "bertscore_f1", "seconds_per_question", "questions_per_second"):
        assert label in table


def test_evaluate_a_replay_on_held_out_articles(shared_dir, write_model_yaml, capsys):
    path = write_model_yaml(
        "bert", kind="replay", source=shared_dir / "data/squad/predictions/bert-ensemble-google.json"
    )
    data = shared_dir / "data/squad/dev-v1.1.json"
    assert main(["evaluate", str(path), str(data), "--articles", "38-47", "--json", "--no-bertscore"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["questions"] == 1988 and 80 < result["exact_match"] < 95
    assert "seconds_per_question" not in result


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "{missing}", "sample", "--out", "{out}"], "model declaration not found"),
        (["evaluate", "{bad}", "sample"], "unknown key 'sorce'"),
        (["evaluate", "{good}", "no-such-dataset.json"], "no-such-dataset.json"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "bad.yaml").write_text("name: m\nkind: replay\nsorce: x.json\n")
    (tmp_path / "x.json").write_text("{}")
    (tmp_path / "good.yaml").write_text("name: m\nkind: replay\nsource: x.json\n")
    paths = {
        "missing": tmp_path / "none.yaml",
        "out": tmp_path / "o.json",
        "bad": tmp_path / "bad.yaml",
        "good": tmp_path / "good.yaml",
    }
    assert main([a.format(**paths) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_bad_article_range_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(tmp_path / "m.yaml"), "sample", "--articles", "47-38"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    "option, message",
    [
        (
            ["--device", "gpu"],
            "argument --device: expected one of auto, cpu, cuda, cuda:N, mps; got 'gpu' "
            "(did you mean 'cuda'?)",
        ),
        (["--articles", "47-38"], "argument --articles: article range '47-38' ends before it starts"),
        (["--limit", "0"], "argument --limit: expected a positive integer, got '0'"),
        (["--seed", "x"], "argument --seed: expected an integer, got 'x'"),
    ],
)
def test_bad_options_are_usage_errors_worded_as_everywhere(tmp_path, capsys, option, message):
    for command in (
        ["predict", str(tmp_path / "m.yaml"), "sample", "--out", str(tmp_path / "o.json")],
        ["evaluate", str(tmp_path / "m.yaml"), "sample"],
    ):
        with pytest.raises(SystemExit) as info:
            main([*command, *option])
        assert info.value.code == 2
        assert message in capsys.readouterr().err


def test_mps_is_a_device_the_command_accepts(tmp_path, capsys):
    from qagate.cli import build_parser

    argv = ["predict", str(tmp_path / "m.yaml"), "sample", "--out", "o.json", "--device", "mps"]
    assert build_parser(argv).parse_args(argv).device == "mps"
