"""Loaders, subsets, fingerprints and validation of QA datasets."""

from __future__ import annotations

import json

import pytest

from qagate.core.errors import QagateError
from qagate.data import SAMPLE, Dataset, QAExample, load_dataset, load_predictions, sample_path
from shared_data import DEV, needs_shared

CONTEXT = "Ada Lovelace wrote notes on the Analytical Engine in 1843."


def squad(articles=2, questions=3, version="1.1"):
    """A small official-format dataset: articles x 1 paragraph x questions."""
    data = []
    for a in range(articles):
        qas = [
            {
                "id": f"a{a}q{q}",
                "question": f"Question {q}?",
                "answers": [
                    {"text": "1843", "answer_start": CONTEXT.index("1843")},
                    {"text": "Ada Lovelace", "answer_start": 0},
                ],
            }
            for q in range(questions)
        ]
        data.append({"title": f"Article {a}", "paragraphs": [{"context": CONTEXT, "qas": qas}]})
    return {"version": version, "data": data}


def write(tmp_path, obj, name="data.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def error_of(*args, **kwargs) -> str:
    with pytest.raises(QagateError) as info:
        load_dataset(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- the built-in sample and the real dev set ------------------------------------------------


def test_sample_ships_with_the_package():
    assert sample_path().is_file()
    assert sample_path().parent.name == "resources"
    ds = load_dataset(SAMPLE)
    assert (ds.name, ds.version, ds.articles) == ("sample", "1.1", 6)
    assert 50 <= len(ds) <= 70
    titles = {ex.title for ex in ds}
    assert len(titles) == 6 and "" not in titles
    text = " ".join(ex.context for ex in ds)
    assert "—" in text and "茶" in text and "ἀμφορεύς" in text and "é" in text
    assert any(s == 0 for ex in ds for s in ex.answer_starts)
    assert any(s + len(a) == len(ex.context) for ex in ds for a, s in zip(ex.answers, ex.answer_starts))
    for ex in ds:
        assert ex.answers and ex.question.endswith("?")
        for a, s in zip(ex.answers, ex.answer_starts):
            assert ex.context[s : s + len(a)] == a


@needs_shared
def test_dev_set_loads_with_the_shared_split():
    ds = load_dataset(DEV)
    assert (ds.name, len(ds), ds.articles, ds.version) == ("dev-v1.1", 10570, 48, "1.1")
    assert len({ex.context for ex in ds}) == 2067
    held_out = load_dataset(DEV, articles=(38, 47))
    train = load_dataset(DEV, articles=(0, 37))
    assert held_out.name == "dev-v1.1-articles-38-47" and len(held_out) == 1988
    assert len(train) == 8582
    assert {ex.article for ex in held_out} == set(range(38, 48))


# --- formats ---------------------------------------------------------------------------------


def test_squad_v11(tmp_path):
    ds = load_dataset(write(tmp_path, squad()))
    assert (ds.name, ds.version, len(ds)) == ("data", "1.1", 6)
    first = ds.examples[0]
    assert first == QAExample(
        id="a0q0",
        title="Article 0",
        context=CONTEXT,
        question="Question 0?",
        answers=("1843", "Ada Lovelace"),
        answer_starts=(53, 0),
        is_impossible=False,
        article=0,
    )
    assert ds.by_id()["a1q2"].article == 1
    assert list(ds) == list(ds.examples)


def test_squad_v20_unanswerable_ignores_plausible_answers(tmp_path):
    obj = squad(articles=1, version="v2.0")
    obj["data"][0]["paragraphs"][0]["qas"].append(
        {
            "id": "imp",
            "question": "Who built it?",
            "answers": [],
            "is_impossible": True,
            "plausible_answers": [{"text": "Ada", "answer_start": 999}],
        }
    )
    ds = load_dataset(write(tmp_path, obj))
    assert ds.version == "2.0"
    imp = ds.by_id()["imp"]
    assert imp.is_impossible and imp.answers == () and imp.answer_starts == ()


def test_v20_version_detected_from_flags_without_version_key(tmp_path):
    obj = squad(articles=1)
    del obj["version"]
    obj["data"][0]["paragraphs"][0]["qas"][0].update(answers=[], is_impossible=True)
    assert load_dataset(write(tmp_path, obj)).version == "2.0"


RECORDS = [
    {
        "id": "r1",
        "title": "T1",
        "context": CONTEXT,
        "question": "Who?",
        "answers": {"text": ["Ada Lovelace"], "answer_start": [0]},
    },
    {
        "id": "r2",
        "title": "T1",
        "context": CONTEXT,
        "question": "When?",
        "answers": [{"text": "1843", "answer_start": 53}],
    },  # the official style
    {
        "id": "r3",
        "title": "T2",
        "context": CONTEXT,
        "question": "What?",
        "answers": {"text": [], "answer_start": []},
    },
]


HF_RECORDS = [  # the Hugging Face "squad" schema
    {
        "id": "h1",
        "title": "T1",
        "context": CONTEXT,
        "question": "Who?",
        "answers": {"text": ["Ada Lovelace", "Lovelace"], "answer_start": [0, 4]},
    },
    {
        "id": "h2",
        "title": "T2",
        "context": CONTEXT,
        "question": "When?",
        "answers": {"text": ["1843"], "answer_start": [53]},
    },
]


def test_json_lines_in_both_answer_styles(tmp_path):
    path = tmp_path / "recs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n\n", encoding="utf-8")
    ds = load_dataset(path)
    assert ds.name == "recs" and ds.version == "2.0"
    by_id = ds.by_id()
    assert by_id["r1"].answers == ("Ada Lovelace",) and by_id["r2"].answer_starts == (53,)
    assert by_id["r3"].is_impossible
    assert [ex.article for ex in ds] == [0, 0, 1]


def test_json_list_of_records_and_json_lines_named_json(tmp_path):
    as_list = load_dataset(write(tmp_path, RECORDS[:2], "list.json"))
    lines = tmp_path / "lines.json"
    lines.write_text("\n".join(json.dumps(r) for r in RECORDS[:2]), encoding="utf-8")
    as_lines = load_dataset(lines)
    assert as_list.fingerprint == as_lines.fingerprint
    assert as_list.version == "1.1"


def test_parquet_through_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "squad.parquet"
    datasets.Dataset.from_list(HF_RECORDS).to_parquet(str(path))
    ds = load_dataset(path)
    assert ds.name == "squad" and [ex.id for ex in ds] == ["h1", "h2"]
    assert ds.by_id()["h1"].answer_starts == (0, 4) and ds.by_id()["h2"].article == 1


def test_hub_spec_calls_datasets_with_validation_split(monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load(hub_id, split):
        calls.append((hub_id, split))
        return datasets.Dataset.from_list(HF_RECORDS)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    ds = load_dataset("hf:rajpurkar/squad", limit=1)
    assert calls == [("rajpurkar/squad", "validation")]
    assert ds.name == "rajpurkar-squad-validation-first-1" and ds.source == "hf:rajpurkar/squad"
    load_dataset("hf:squad", split="train")
    assert calls[-1] == ("squad", "train")


def test_hub_failure_is_one_line(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def offline(hub_id, split):
        raise ConnectionError("Couldn't reach 'squad' on the Hub (LocalEntryNotFoundError)\nmore")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    message = error_of("hf:squad")
    assert message.startswith("hf:squad: cannot load split 'validation'") and "reach" in message


# --- subsets ---------------------------------------------------------------------------------


def test_first_n_and_seeded_sample_are_deterministic(tmp_path):
    path = write(tmp_path, squad(articles=5, questions=10))
    first = load_dataset(path, limit=7)
    assert first.name == "data-first-7" and [ex.id for ex in first][:2] == ["a0q0", "a0q1"]
    sample = load_dataset(path, limit=7, seed=0)
    again = load_dataset(path, limit=7, seed=0)
    other = load_dataset(path, limit=7, seed=1)
    assert sample.name == "data-sample-7-seed-0"
    assert [ex.id for ex in sample] == [ex.id for ex in again]
    assert [ex.id for ex in sample] != [ex.id for ex in other]
    order = [ex.id for ex in load_dataset(path)]
    ids = [ex.id for ex in sample]
    assert ids == sorted(ids, key=order.index)  # file order is kept
    assert load_dataset(path, limit=999).name == "data"  # nothing was cut
    assert load_dataset(path, seed=3).name == "data"


def test_article_ranges(tmp_path):
    path = write(tmp_path, squad(articles=5, questions=2))
    ds = load_dataset(path, articles=(1, 2), limit=3)
    assert ds.name == "data-articles-1-2-first-3"
    assert [ex.id for ex in ds] == ["a1q0", "a1q1", "a2q0"]
    assert "outside 0-4" in error_of(path, articles=(3, 9))
    assert "positive integer" in error_of(path, limit=0)


def test_sample_subset_names_are_filesystem_safe():
    ds = load_dataset(SAMPLE, articles=(0, 1), limit=5, seed=0)
    assert ds.name == "sample-articles-0-1-sample-5-seed-0"
    assert all(c.isalnum() or c in "-._" for c in ds.name)


# --- fingerprint -----------------------------------------------------------------------------


def test_fingerprint_is_stable_and_content_only(tmp_path):
    obj = squad()
    a = load_dataset(write(tmp_path, obj, "one.json"))
    b = load_dataset(write(tmp_path, obj, "two.json"))
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64
    shuffled = Dataset("x", "y", tuple(reversed(a.examples)))
    assert shuffled.fingerprint == a.fingerprint


@pytest.mark.parametrize("change", ["context", "answer", "question", "id"])
def test_fingerprint_changes_with_content(tmp_path, change):
    base = load_dataset(write(tmp_path, squad(), "base.json")).fingerprint
    obj = squad()
    qa = obj["data"][0]["paragraphs"][0]["qas"][0]
    if change == "context":
        obj["data"][0]["paragraphs"][0]["context"] = CONTEXT + " More."
    elif change == "answer":
        qa["answers"] = qa["answers"][:1]
    elif change == "question":
        qa["question"] = "Another?"
    else:
        qa["id"] = "renamed"
    assert load_dataset(write(tmp_path, obj, "changed.json")).fingerprint != base
    assert load_dataset(write(tmp_path, squad(), "base.json"), limit=2).fingerprint != base


# --- validation ------------------------------------------------------------------------------


def test_bad_offsets_name_the_file_and_ids(tmp_path):
    obj = squad(articles=3, questions=4)
    for article in obj["data"]:
        for qa in article["paragraphs"][0]["qas"]:
            qa["answers"][0]["answer_start"] += 1
    path = write(tmp_path, obj)
    message = error_of(path)
    assert str(path) in message
    assert "12 reference answer(s) in 12 question(s)" in message
    assert "a0q0, a0q1, a0q2, a0q3, a1q0 and 7 more" in message
    assert "'1843' at 54" in message and "strict=False" in message


def test_non_strict_relocates_answers_by_text(tmp_path):
    obj = squad(articles=1, questions=1)
    obj["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 50
    ds = load_dataset(write(tmp_path, obj), strict=False)
    assert ds.examples[0].answer_starts == (53, 0)
    obj["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["text"] = "1844"
    assert "1 question(s)" in error_of(write(tmp_path, obj), strict=False)


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda o: o.pop("data"), "a list of question records, found an object with keys version"),
        (lambda o: o.update(data={}), '"data" must be a list'),
        (lambda o: o["data"][0].pop("paragraphs"), 'data[0]: missing "paragraphs"'),
        (lambda o: o["data"][0]["paragraphs"][0].pop("context"), 'missing "context"'),
        (
            lambda o: o["data"][1]["paragraphs"][0]["qas"][2].pop("id"),
            'data[1].paragraphs[0].qas[2]: question without a string "id"',
        ),
        (
            lambda o: o["data"][0]["paragraphs"][0]["qas"][1].update(id="a1q1"),
            "1 duplicate question id(s): a1q1",
        ),
        (
            lambda o: o["data"][0]["paragraphs"][0]["qas"][0].update(answers="1843"),
            'question a0q0: "answers" must be a list or an object',
        ),
        (
            lambda o: o["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start="53"),
            "answer_start values must be non-negative integers",
        ),
        (
            lambda o: o["data"][0]["paragraphs"][0]["qas"][0].update(is_impossible=True),
            "marked is_impossible but has answers",
        ),
        (
            lambda o: o["data"][0]["paragraphs"][0]["qas"][0].update(question=None),
            '"question" must be a string',
        ),
        (lambda o: o.update(data=[]), "contains no questions"),
    ],
)
def test_wrong_shapes(tmp_path, mutate, expected):
    obj = squad(articles=2, questions=3)
    mutate(obj)
    path = write(tmp_path, obj)
    message = error_of(path)
    assert message.startswith(str(path)) and expected in message


@pytest.mark.parametrize(
    "content,expected",
    [
        (b"", "file is empty"),
        (b"  \n", "file is empty"),
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),
        (b'{"version": "1.1", "data": [{"title": "x", "paragr', "looks truncated"),
        (b'{"version": "1.1",\n "data": [}', "not valid JSON at line 2, column 11"),
        (b"42", "found a number"),
    ],
)
def test_unreadable_files(tmp_path, content, expected):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    message = error_of(path)
    assert message.startswith(str(path)) and expected in message


def test_bad_json_line_is_located(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n\n{oops\n", encoding="utf-8")
    assert "line 3, column 2" in error_of(path)
    path.write_text(json.dumps(RECORDS[0]) + "\n[1]\n", encoding="utf-8")
    assert "line 2: expected a JSON object" in error_of(path)


def test_missing_file_and_misplaced_split(tmp_path):
    assert "no such file" in error_of(tmp_path / "nope.json")
    assert "split only applies to hf:" in error_of(SAMPLE, split="train")


# --- predictions files -----------------------------------------------------------------------


def test_load_predictions(tmp_path):
    good = write(tmp_path, {"q1": "Ada", "q2": ""}, "p.json")
    assert load_predictions(good) == {"q1": "Ada", "q2": ""}
    with pytest.raises(QagateError, match="found a list"):
        load_predictions(write(tmp_path, ["x"], "l.json"))
    with pytest.raises(QagateError, match=r"2 prediction\(s\) are not strings"):
        load_predictions(write(tmp_path, {"q1": 1, "q2": None, "q3": "ok"}, "n.json"))
    with pytest.raises(QagateError, match="looks like a SQuAD dataset file"):
        load_predictions(write(tmp_path, squad(), "d.json"))
