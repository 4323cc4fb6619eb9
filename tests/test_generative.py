"""Generative (causal LM) models: declarations, the batched greedy engine, predict, a mixed gate."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from qagate.core.errors import QagateError
from qagate.data import load_dataset
from qagate.inference.config import load_model_spec
from qagate.inference.generation import GenerationSettings, clean_answer, find_stop, pick_shot
from tiny_models import CAUSAL_RECIPES, RECIPES, build_tiny_causal, build_tiny_model


@pytest.fixture(scope="session")
def causal_dir(tmp_path_factory):
    """Factory: ``make("gpt_neox" | "qwen2") -> Path`` of a tiny saved causal LM (built once)."""
    root = tmp_path_factory.mktemp("causal")

    def make(arch: str) -> Path:
        return build_tiny_causal(root / arch, CAUSAL_RECIPES[arch])

    return make


@pytest.fixture(scope="module")
def sample():
    return load_dataset("sample", limit=12)


def _model(path: Path, **settings):
    from qagate.inference.generative import GenerativeModel

    return GenerativeModel("m", str(path), settings=GenerationSettings(**settings), device="cpu")


# --- declarations ------------------------------------------------------------------------------


def test_generative_declaration_keys(write_model_yaml, causal_dir):
    path = write_model_yaml(
        kind="generative",
        source=causal_dir("qwen2"),
        shots=1,
        prompt="Q: {question}\nC: {context}\nA:",
        max_new_tokens=12,
        stop=["\n", "."],
        chat_template=True,
        batch_size=4,
    )
    spec = load_model_spec(path)
    assert (spec.shots, spec.max_new_tokens, spec.stop, spec.chat_template) == (1, 12, ("\n", "."), True)
    default = load_model_spec(write_model_yaml(name="d", kind="generative", source=causal_dir("qwen2")))
    assert default.stop == ("\n",) and default.shots == 0 and "{context}" in default.prompt
    assert load_model_spec(write_model_yaml(name="s", kind="generative", source=".", stop="###")).stop == (
        "###",
    )


@pytest.mark.parametrize(
    "kind,keys,message",
    [
        ("generative", {"shots": 2}, "must be 0 or 1"),
        ("generative", {"prompt": "{context} only"}, "has no {question} placeholder"),
        ("generative", {"prompt": "{context} {question} {answer}"}, "unknown placeholder {answer}"),
        ("generative", {"prompt": "{context} {question"}, "is not a valid template"),
        ("generative", {"stop": [""]}, "list of non-empty strings"),
        ("generative", {"max_new_tokens": 0}, "positive integer"),
        ("generative", {"chat_template": "yes"}, "true or false"),
        ("generative", {"doc_stride": 64}, "'doc_stride' only applies to kind: extractive"),
        ("extractive", {"shots": 1}, "'shots' only applies to kind: generative"),
        ("replay", {"stop": "\n"}, "'stop' only applies to kind: generative"),
    ],
)
def test_bad_generative_keys_are_one_line_errors(write_model_yaml, kind, keys, message):
    with pytest.raises(QagateError, match=message) as info:
        load_model_spec(write_model_yaml(kind=kind, source="models/x", **keys))
    assert "\n" not in str(info.value).strip()


def test_extractive_checkpoint_is_refused(tiny_qa_model_dir, sample):
    with pytest.raises(QagateError, match="not a causal language model"):
        _model(tiny_qa_model_dir()).predict(sample.examples[:1])


# --- post-processing and prompts -----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,expected",
    [
        (" Paris\nQuestion: x", "Paris"),
        ("\n\n Paris\n", "Paris"),  # a stop string in the leading white space does not count
        (" Answer: 1874.\n", "1874."),
        ("  answer:Rome", "Rome"),
        ("", ""),
    ],
)
def test_clean_answer(raw, expected):
    assert clean_answer(raw, ("\n",)) == expected
    assert find_stop("\n\nab\ncd", ("\n",)) == 4


def test_one_shot_example_is_from_another_article_and_stable(sample):
    examples = list(load_dataset("sample"))
    for ex in examples[:10]:
        shot = pick_shot(ex, examples)
        assert shot.title != ex.title
        assert pick_shot(ex, list(reversed(examples))) is shot  # order of the pool is irrelevant
        others = [e for e in examples if e is not shot and e.id != ex.id][:20]
        assert pick_shot(ex, [*others, shot]) is shot  # nor what else is in it


def test_prompts_zero_one_shot_and_chat(causal_dir, sample):
    ex = sample.examples[0]
    zero = _model(causal_dir("qwen2")).load().prompts([ex])[0]
    assert zero == f"Context: {ex.context}\nQuestion: {ex.question}\nAnswer:"
    one = _model(causal_dir("qwen2"), shots=1).load().prompts([ex], pool=list(load_dataset("sample")))[0]
    assert one.endswith(zero) and one.count("Answer:") == 2
    chat = _model(causal_dir("qwen2"), chat_template=True).load().prompts([ex])[0]
    assert chat.startswith("<|im_start|>user\nContext: ") and chat.endswith("<|im_start|>assistant\n")


# --- the engine ------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["gpt_neox", "qwen2"])
def test_same_answers_at_any_batch_size(causal_dir, sample, arch):
    runs = [
        _model(causal_dir(arch), batch_size=size, max_new_tokens=8, stop=("e",)).predict(sample.examples)
        for size in (1, 3, 12)
    ]
    first = runs[0]
    assert len(set(first.answers.values())) > 3  # the model's answers depend on the question
    for other in runs[1:]:
        assert other.answers == first.answers
        assert other.tokens == first.tokens
    assert list(first.answers) == [ex.id for ex in sample.examples]
    assert set(first.seconds) == set(first.answers) and first.total_seconds > 0


def test_stop_strings_stop_each_sequence(causal_dir, sample):
    free = _model(causal_dir("gpt_neox"), batch_size=4, max_new_tokens=10, stop=()).predict(sample.examples)
    assert set(free.tokens.values()) == {10}  # no stop string, no end-of-sequence: all 10 tokens
    stopped = _model(causal_dir("gpt_neox"), batch_size=4, max_new_tokens=10, stop=("e",)).predict(
        sample.examples
    )
    assert min(stopped.tokens.values()) < 10 < max(stopped.tokens.values()) + 1
    for qid, answer in stopped.answers.items():
        assert "e" not in answer.lstrip()  # cut at the stop string
        full = free.answers[qid]
        if stopped.tokens[qid] < 10:
            assert full.startswith(answer) or answer == ""
    assert stopped.tokens_per_second > 0


def test_chat_template_needs_one(tmp_path, causal_dir, sample):
    import shutil

    copy = tmp_path / "nochat"
    shutil.copytree(causal_dir("qwen2"), copy)
    config = json.loads((copy / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (copy / "tokenizer_config.json").write_text(json.dumps(config))
    for extra in copy.glob("chat_template.*"):
        extra.unlink()
    with pytest.raises(QagateError, match="no chat template"):
        _model(copy, chat_template=True).predict(sample.examples[:1])


# --- front ends ------------------------------------------------------------------------------------


def test_predict_and_evaluate_on_a_generative_declaration(tmp_path, causal_dir, write_model_yaml, capsys):
    from qagate.cli import main

    yaml_path = write_model_yaml(
        name="gen", kind="generative", source=causal_dir("gpt_neox"), max_new_tokens=6, batch_size=4
    )
    out, log = tmp_path / "p.json", tmp_path / "log.jsonl"
    args = [
        "predict",
        str(yaml_path),
        "sample",
        "--limit",
        "6",
        "--out",
        str(out),
        "--log",
        str(log),
        "--quiet",
    ]
    assert main(args) == 0
    assert len(json.loads(out.read_text())) == 6
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(1 <= line["tokens"] <= 6 and line["seconds"] > 0 for line in lines)
    capsys.readouterr()
    assert main(["evaluate", str(yaml_path), "sample", "--limit", "6", "--json", "--quiet"]) == 0
    metrics = json.loads(capsys.readouterr()[0])
    flat = metrics.get("metrics", metrics)
    assert flat["tokens_per_second"] > 0 and flat["parameter_count"] > 0


def test_tokens_per_second_never_from_the_cache(tmp_path, causal_dir, sample):
    from qagate.scoring.evaluation import evaluate

    model = _model(causal_dir("qwen2"), max_new_tokens=4)
    first = evaluate(model, sample, cache_dir=tmp_path)
    again = evaluate(model, sample, cache_dir=tmp_path)
    assert "tokens_per_second" in first.metrics and not first.from_cache
    assert again.from_cache and "tokens_per_second" not in again.metrics
    assert again.predictions.answers == first.predictions.answers


def test_gate_mixing_extractive_and_generative_models_end_to_end(pytester, causal_dir, tmp_path_factory):
    """A gate file with an extractive student, a generative teacher and a generative student
    (in a subprocess: an in-process run would re-import C extensions)."""
    extractive = build_tiny_model(tmp_path_factory.mktemp("ext") / "tiny-student", RECIPES["tiny-student"])
    models = pytester.path / "models"
    models.mkdir()
    (models / "teacher.yaml").write_text(
        f"name: gen-teacher\nrole: teacher\nkind: generative\nsource: {causal_dir('qwen2')}\n"
        "max_new_tokens: 6\nbatch_size: 8\nshots: 1\n"
    )
    (models / "student.yaml").write_text(
        f"name: gen-student\nrole: student\nkind: generative\nsource: {causal_dir('gpt_neox')}\n"
        "max_new_tokens: 6\nbatch_size: 8\nchat_template: false\n"
    )
    (models / "extractive.yaml").write_text(
        f"name: ext-student\nrole: student\nkind: extractive\nsource: {extractive}\nbatch_size: 8\n"
    )
    pytester.makefile(
        ".yaml",
        gate_generative=textwrap.dedent("""\
            dataset: {source: sample, limit: 8}
            models: models
            rules:
              - apply_to: students
                require:
                  - f1 >= 0
                  - exact_match >= 0 * teacher
                  - parameter_count <= 1000 * teacher
              - apply_to: teacher
                require:
                  - f1 >= baseline - 100
              - apply_to: gen-student
                require:
                  - tokens_per_second >= 1
                  - tokens_per_second >= 0.01 * teacher
              - apply_to: ext-student
                require:
                  - tokens_per_second >= 1
            """),
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-rA",
        "--qagate-models",
        "models",
        "--qagate-latency-questions",
        "4",
        "--qagate-speed-budget",
        "2",
        "--junitxml=junit.xml",
    )
    result.assert_outcomes(passed=9, failed=1)
    result.stdout.fnmatch_lines(["*gen-teacher*", "*gen-student*", "*ext-student*"])
    result.stdout.fnmatch_lines(["*ext-student generates no tokens*"])
    import xml.etree.ElementTree as ET

    judged = {}
    for case in ET.parse(pytester.path / "junit.xml").iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        judged[(props.get("qagate.model"), props.get("qagate.rule"))] = props
    rate = float(judged[("gen-student", "tokens_per_second>=1")]["qagate.obtained"])
    assert 1 < rate < 1e6  # generated tokens per second of the timed rounds, not seconds
    assert list((pytester.path / "baselines").rglob("gen-teacher.json"))
