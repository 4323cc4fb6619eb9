"""Question slices: labels computed from the data, slice rules in gate files, per-slice baselines.

The pytester tests use replay models on a synthetic dataset whose questions are of three kinds
(what: 280, how many: 80, when: 40), and a student that is right everywhere but on the "how
many" questions: its overall rule passes and its slice rule fails.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy  # noqa: F401  (confidence rules; imported once, as test_plugin.py explains)
import pytest
import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401

import qagate.scoring.stats  # noqa: F401
import qagate.store.history_db  # noqa: F401
from qagate.core.errors import QagateError
from qagate.data import QAExample
from qagate.data.loaders import read_label_file
from qagate.data.slices import (
    QUESTION_TYPES,
    answer_type,
    built_in_labels,
    context_bucket,
    position_bucket,
    question_type,
)
from qagate.gating.rules import parse_rule
from qagate.store.baselines import load_baseline, write_baseline

# --- labels ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, kind",
    [
        ("What is the capital of France?", "what"),
        ("In what year did the war end?", "what"),
        ("Which team won Super Bowl 50?", "which"),
        ("Who wrote Hamlet?", "who"),
        ("Whose army crossed the Alps?", "who"),
        ("When did the Normans arrive?", "when"),
        ("Where is the Eiffel Tower?", "where"),
        ("Why did the empire fall?", "why"),
        ("How did the steam engine work?", "how"),
        ("How many moons does Mars have?", "how_many"),
        ("How much did the stadium cost?", "how_many"),
        ("The Broncos beat which team?", "which"),
        ("Name the largest planet.", "other"),
        ("Is water wet?", "other"),
    ],
)
def test_question_type_from_its_first_wh_word(question, kind):
    assert question_type(question) == kind


@pytest.mark.parametrize(
    "answers, kind",
    [
        (["1066"], "date"),
        (["July 31, 1995"], "date"),
        (["the 1920s"], "date"),
        (["the 19th century"], "date"),
        (["42"], "number"),
        (["over $40 million"], "number"),
        (["seven"], "number"),
        (["80%"], "number"),
        (["Denver Broncos"], "name"),
        (["William E. Simon"], "name"),
        (["Battle of Cedar Creek"], "name"),
        (["a soap sponge"], "other"),
        (["climate change in addition to deforestation"], "other"),
        (["Denver Broncos", "42", "a team"], "name"),  # one each: the first answer's type wins
        (["seven", "7", "Denver"], "number"),  # the most common type
        ([], "none"),
    ],
)
def test_answer_type_from_the_gold_answers(answers, kind):
    assert answer_type(answers) == kind


def test_context_and_position_buckets():
    assert context_bucket("x" * 611) == "short"
    assert context_bucket("x" * 612) == "medium"
    assert context_bucket("x" * 829) == "medium"
    assert context_bucket("x" * 830) == "long"
    context = "a" * 90
    assert position_bucket(context, (0,)) == "start"
    assert position_bucket(context, (29,)) == "start"
    assert position_bucket(context, (30,)) == "middle"
    assert position_bucket(context, (60,)) == "end"
    assert position_bucket(context, ()) == "none"


def test_built_in_labels_and_unanswerable_questions():
    context = "Paris is the capital of France and has been since 1987."
    ex = QAExample("q1", "t", context, "When did Paris become the capital?", ("1987",), (51,))
    expected = {"question": "when", "answer": "date", "context": "short", "position": "end"}
    assert built_in_labels(ex) == expected
    impossible = QAExample("q2", "t", context, "Who is the king?", is_impossible=True)
    assert built_in_labels(impossible)["answer"] == "none"
    assert built_in_labels(impossible)["position"] == "none"


def test_records_carry_their_own_labels_and_bad_ones_are_one_line(tmp_path):
    from qagate.data import load_dataset

    record = {
        "id": "a",
        "context": "It costs 5 dollars.",
        "question": "How much?",
        "answers": [{"text": "5 dollars", "answer_start": 9}],
        "slices": {"domain": "retail", "answer": "number"},
    }
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(record) + "\n")
    assert load_dataset(path).examples[0].labels == (("domain", "retail"), ("answer", "number"))
    record["slices"] = {"domain": "has space"}
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(QagateError, match=r"d.jsonl.*question a.*slice label domain='has space'"):
        load_dataset(path)


def test_label_file_errors_name_the_file(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text("{not json")
    with pytest.raises(QagateError, match="labels.json.*not valid JSON"):
        read_label_file(path)
    path.write_text("[1, 2]")
    with pytest.raises(QagateError, match="labels.json.*question id -> labels"):
        read_label_file(path)
    path.write_text('{"q1": {"domain": "legal"}, "q2": {"domain": 3}}')
    assert read_label_file(path) == {"q1": {"domain": "legal"}, "q2": {"domain": "3"}}


# --- rules ----------------------------------------------------------------------------------------


def test_slice_rules_parse_and_keep_the_slice_in_their_id():
    rule = parse_rule("f1[question=how_many] >= 0.9 * teacher")
    assert rule.id == "f1[question=how_many]>=0.9*teacher"
    assert (rule.slice, rule.reference, rule.coef) == (("question", "how_many"), "teacher", 0.9)
    rule = parse_rule("exact_match[answer=date] >= baseline - 2")
    assert (rule.stored_key, rule.offset, rule.reference) == ("exact_match[answer=date]", -2.0, "baseline")
    rule = parse_rule("f1[context=long]>=0.9*teacher", confidence=0.95)
    assert rule.id == "f1[context=long]>=0.9*teacher@95%"
    assert parse_rule("f1[ domain = legal ] >= 80").slice == ("domain", "legal")


@pytest.mark.parametrize(
    "text, message",
    [
        ("f1[question=howmany] >= 80", "unknown question slice 'howmany' (did you mean 'how_many'?)"),
        ("f1[answer=dates] >= 80", "(did you mean 'date'?); answer slices: number, date, name"),
        ("f1[question] >= 80", "a slice reads key=value"),
        ("f1 >= [question=what] 80", "a slice is written in brackets right after the metric"),
        ("speedup[question=what] >= 4", "slices apply to exact_match, f1"),
        ("f1[question=what]@addsent >= 80", "cannot also be a robustness rule"),
    ],
)
def test_bad_slice_rules_are_one_line(text, message):
    with pytest.raises(QagateError) as caught:
        parse_rule(text, where="gate.yaml:7")
    assert str(caught.value).startswith("gate.yaml:7: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


# --- baselines ------------------------------------------------------------------------------------


def test_baseline_keeps_slice_values_and_reads_old_files(tmp_path):
    path = tmp_path / "b.json"
    write_baseline(path, {"f1": 80.0, "f1[question=what]": 82.5, "exact_match[question=what]": 70.0}, {})
    document = json.loads(path.read_text())
    assert document["metrics"] == {"f1": 80.0}
    assert document["slices"] == {"question=what": {"exact_match": 70.0, "f1": 82.5}}
    assert load_baseline(path).metrics == {
        "f1": 80.0,
        "f1[question=what]": 82.5,
        "exact_match[question=what]": 70.0,
    }
    old = tmp_path / "old.json"  # written before slices: no "slices" key
    old.write_text(json.dumps({"schema_version": 1, "metrics": {"f1": 80.0}, "provenance": {}}))
    assert load_baseline(old).metrics == {"f1": 80.0}
    old.write_text(json.dumps({"schema_version": 1, "metrics": {}, "slices": {"a=b": {"f1": "x"}}}))
    with pytest.raises(QagateError, match="slice 'a=b' metric 'f1' is not a number"):
        load_baseline(old)


# --- gate files through pytester ------------------------------------------------------------------

QUESTIONS = 400


def kind_of(i: int) -> str:
    return "how_many" if i % 10 in (7, 8) else "when" if i % 10 == 9 and (i // 10) % 2 else "what"


def sliced_squad() -> dict:
    paragraphs = []
    for i in range(QUESTIONS):
        answer = f"w{i}q"
        context = f"The code word of item {i} is {answer} and nothing else."
        kind = kind_of(i)
        question = {
            "what": f"What is the code word of item {i}?",
            "how_many": f"How many code words does item {i} have?",
            "when": f"When was the code word of item {i} chosen?",
        }[kind]
        paragraphs.append(
            {
                "context": context,
                "qas": [
                    {
                        "id": f"q{i:04d}",
                        "question": question,
                        "answers": [{"text": answer, "answer_start": context.index(answer)}],
                    }
                ],
            }
        )
    return {"version": "1.1", "data": [{"title": "Codes", "paragraphs": paragraphs}]}


class SlicedProject:
    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.root = Path(pytester.path)
        (self.root / "models").mkdir()
        (self.root / "data.json").write_text(json.dumps(sliced_squad()))
        pytester.makeini("[pytest]\nqagate_models = models\nqagate_dataset = data.json\n")

    def model(self, name: str, role: str, wrong: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        answers = {f"q{i:04d}": ("nothing" if kind_of(i) in wrong else f"w{i}q") for i in range(QUESTIONS)}
        (self.root / "models" / f"{name}.json").write_text(json.dumps(answers))
        (self.root / "models" / f"{name}.yaml").write_text(
            f"name: {name}\nrole: {role}\nkind: replay\nsource: {name}.json\n"
        )

    def gate(self, text: str) -> None:
        (self.root / "gate_release.yaml").write_text(textwrap.dedent(text))

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", "-rA", *args)


@pytest.fixture
def sliced(pytester: pytest.Pytester) -> SlicedProject:
    project = SlicedProject(pytester)
    project.model("teacher", "teacher")
    project.model("student", "student", {"how_many"})  # 80 of 400 wrong: all the "how many"
    return project


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    found = {}
    for line in result.outlines:
        for word in ("PASSED", "FAILED", "SKIPPED", "ERROR"):
            if line.startswith(word + " "):
                found[line[len(word) + 1 :].split(" - ")[0].strip()] = word
    return found


def test_the_data_has_the_slices_the_tests_expect():
    kinds = [kind_of(i) for i in range(QUESTIONS)]
    assert (kinds.count("what"), kinds.count("how_many"), kinds.count("when")) == (300, 80, 20)


def test_worse_on_one_slice_overall_passes_slice_fails_small_slice_undecided(sliced):
    sliced.gate("""\
        rules:
          - apply_to: students
            require:
              - exact_match >= 0.75 * teacher
              - exact_match[question=how_many] >= 0.9 * teacher
              - f1[question=what] >= 0.9 * teacher
              - f1[question=when] >= 0.9 * teacher
              - rule: f1[question=how_many] >= 0.9 * teacher
                confidence: 0.95
        """)
    result = sliced.run()
    prefix = "gate_release.yaml::student::"
    assert outcomes(result) == {
        prefix + "exact_match>=0.75*teacher": "PASSED",
        prefix + "exact_match[question=how_many]>=0.9*teacher": "FAILED",
        prefix + "f1[question=what]>=0.9*teacher": "PASSED",
        prefix + "f1[question=when]>=0.9*teacher": "FAILED",  # 20 questions: undecided, never pass
        prefix + "f1[question=how_many]>=0.9*teacher@95%": "FAILED",
    }
    out = result.stdout.str()
    head = "qagate gate FAIL: student :: exact_match[question=how_many]>=0.9*teacher on data (80 questions)"
    assert head in out
    assert "slice question=how_many: 80 of 400 questions" in out
    assert "qagate gate UNDECIDED: student :: f1[question=when]>=0.9*teacher" in out
    assert "slice question=when has 20 questions, fewer than min_slice 30" in out
    assert "entirely on the failing side" in out  # the confidence rule: decided on the slice's interval
    # the flips of the failed overall-vs-slice rules name the slice and its questions
    assert "qagate flips" in out
    assert "flipped questions, student against teacher, of 80: 80 right -> wrong and 0 wrong -> right" in out
    assert out.count("Captured qagate flips call") == 2  # the failed how_many rules; none where none flipped
    assert (
        "first 3 of 80 right -> wrong:" in out and "q0007  Q: 'How many code words does item 7 have?'" in out
    )
    assert "gold: 'w7q'" in out and "student: 'nothing'   teacher: 'w7q'" in out
    assert "Traceback" not in out


def test_min_slice_from_the_gate_file_and_the_rule(sliced):
    sliced.gate("""\
        min_slice: 10
        rules:
          - apply_to: students
            require:
              - f1[question=when] >= 0.9 * teacher
              - rule: f1[question=what] >= 0.9 * teacher
                min_slice: 500
        """)
    result = sliced.run()
    assert outcomes(result) == {
        "gate_release.yaml::student::f1[question=when]>=0.9*teacher": "PASSED",
        "gate_release.yaml::student::f1[question=what]>=0.9*teacher": "FAILED",
    }
    assert "slice question=what has 300 questions, fewer than min_slice 500" in result.stdout.str()


def test_star_expands_to_one_item_per_slice_present(sliced):
    sliced.gate("""\
        min_slice: 20
        rules:
          - apply_to: students
            require: ["f1[question=*] >= 0.85 * teacher"]
        """)
    result = sliced.run()
    assert outcomes(result) == {
        "gate_release.yaml::student::f1[question=what]>=0.85*teacher": "PASSED",
        "gate_release.yaml::student::f1[question=how_many]>=0.85*teacher": "FAILED",
        "gate_release.yaml::student::f1[question=when]>=0.85*teacher": "PASSED",
    }


def test_user_labels_from_a_side_file(sliced):
    labels = {f"q{i:04d}": {"domain": "legal" if i < 200 else "news"} for i in range(QUESTIONS)}
    (sliced.root / "labels.json").write_text(json.dumps(labels))
    sliced.model("student", "student", set())
    sliced.gate("""\
        labels: labels.json
        rules:
          - apply_to: students
            require: ["f1[domain=legal] >= 0.9 * teacher", "exact_match[domain=*] >= 99"]
        """)
    result = sliced.run()
    assert outcomes(result) == {
        "gate_release.yaml::student::f1[domain=legal]>=0.9*teacher": "PASSED",
        "gate_release.yaml::student::exact_match[domain=legal]>=99": "PASSED",
        "gate_release.yaml::student::exact_match[domain=news]>=99": "PASSED",
    }


LABELLED = "labels: labels.json\nrules:\n  - apply_to: students\n    require:\n"


@pytest.mark.parametrize(
    "body, line, message",
    [
        (
            "rules:\n  - apply_to: students\n    require: ['f1[question=howmany] >= 80']\n",
            3,
            "rule 'f1[question=howmany] >= 80': unknown question slice 'howmany' (did you mean 'how_many'?)",
        ),
        (
            LABELLED + "      - f1[domian=legal] >= 80\n",
            5,
            "rule f1[domian=legal]>=80: unknown slice key 'domian' (did you mean 'domain'?); slice keys: "
            "question, answer, context, position, domain",
        ),
        (
            LABELLED + "      - f1[domain=legl] >= 80\n",
            5,
            "rule f1[domain=legl]>=80: unknown domain slice 'legl' (did you mean 'legal'?); "
            "domain slices: legal",
        ),
        (
            "rules:\n  - apply_to: students\n    require:\n      - rule: f1 >= 80\n        min_slice: 5\n",
            5,
            "min_slice applies to slice rules",
        ),
    ],
)
def test_unknown_slices_are_one_line_collection_errors(sliced, body, line, message):
    (sliced.root / "labels.json").write_text(json.dumps({"q0001": {"domain": "legal"}}))
    sliced.gate(body)
    result = sliced.run("--qagate-limit", "50")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert f"gate_release.yaml:{line}: {message}" in out, out
    assert "Traceback" not in out


def test_label_file_with_unknown_ids_is_one_line(sliced):
    (sliced.root / "labels.json").write_text(json.dumps({"nope": {"domain": "legal"}}))
    sliced.gate("labels: labels.json\nrules:\n  - apply_to: students\n    require: ['f1[domain=*] >= 80']\n")
    result = sliced.run()
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "labels.json: 1 of 1 question ids in the label file are not in dataset data" in out
    assert "Traceback" not in out


def test_slice_baseline_round_trip(sliced):
    sliced.model("student", "student", set())
    sliced.gate("""\
        rules:
          - apply_to: students
            require:
              - f1 >= baseline - 1
              - exact_match[question=how_many] >= baseline - 2
        """)
    result = sliced.run()
    assert set(outcomes(result).values()) == {"PASSED"}  # NEW: written, to review
    stored = json.loads((sliced.root / "baselines" / "data" / "student.json").read_text())
    assert stored["metrics"]["f1"] == 100.0
    assert stored["slices"]["question=how_many"] == {"exact_match": 100.0, "f1": 100.0}
    assert set(stored["slices"]) >= {"question=what", "question=when", "answer=other", "context=short"}
    sliced.model("student", "student", {"how_many"})  # worse only on the slice
    result = sliced.run()
    assert outcomes(result) == {
        "gate_release.yaml::student::f1>=baseline-1": "FAILED",
        "gate_release.yaml::student::exact_match[question=how_many]>=baseline-2": "FAILED",
    }
    out = result.stdout.str()
    assert "slice question=how_many: 80 of 400 questions" in out
    nodeid = "gate_release.yaml::student::exact_match[question=how_many]>=baseline-2"
    assert f"pytest '{nodeid}' --qagate-update-baselines" in out  # the node id selects the slice rule
    result = sliced.run(nodeid, "--qagate-update-baselines")
    assert outcomes(result) == {nodeid: "FAILED"}  # updated: fails once, run again to verify
    stored = json.loads((sliced.root / "baselines" / "data" / "student.json").read_text())
    assert stored["slices"]["question=how_many"] == {"exact_match": 0.0, "f1": 0.0}
    assert outcomes(sliced.run(nodeid)) == {nodeid: "PASSED"}


def test_flips_per_slice_with_an_interval_on_the_net_change():
    from qagate.data import Dataset
    from qagate.reports.flips import flip_table, render
    from qagate.scoring.evaluation import EvalResult
    from qagate.scoring.squad import score

    squad = sliced_squad()
    examples = []
    for paragraph in squad["data"][0]["paragraphs"]:
        qa = paragraph["qas"][0]
        answer = qa["answers"][0]
        examples.append(
            QAExample(
                qa["id"],
                "Codes",
                paragraph["context"],
                qa["question"],
                (answer["text"],),
                (answer["answer_start"],),
            )
        )
    dataset = Dataset("d", "d", tuple(examples))

    def result(name: str, wrong: set[str]) -> EvalResult:
        answers = {ex.id: "nothing" if kind_of(int(ex.id[1:])) in wrong else ex.answers[0] for ex in examples}
        scores = score(dataset, answers)
        from qagate.inference.base import Predictions

        return EvalResult(name, "d", Predictions(answers=answers), scores, {}, True)

    teacher, student = result("teacher", {"when"}), result("student", {"how_many"})
    rows = {row.name: row for row in flip_table(dataset, student, teacher)}
    whole = rows["all"]
    assert (whole.questions, whole.lost, whole.gained, whole.f1_drops) == (400, 80, 20, 80)
    assert whole.net == -15.0 and whole.low < -15.0 < whole.high < 0  # decided: a real loss
    how_many = rows["question=how_many"]
    assert (how_many.lost, how_many.gained, how_many.net) == (80, 0, -100.0)
    assert rows["question=when"].net == 100.0 and rows["question=what"].lost == 0
    assert list(rows)[:2] == ["all", "question=how_many"]  # the largest net loss first
    text = render(dataset, student, teacher)
    assert "first 2 of 20 wrong -> right:" in text and "q0019" in text


def test_flips_show_what_models_wrote_as_escaped_truncated_text():
    from qagate.data import Dataset
    from qagate.inference.base import Predictions
    from qagate.reports.flips import render
    from qagate.scoring.evaluation import EvalResult
    from qagate.scoring.squad import score

    context = "Intro line.\nThe \x1b[31mred\x1b[0m answer is here. " + "filler " * 100
    ex = QAExample("q\x1b1", "t", context, "What\nis <b>it</b>?\x07", ("answer",), (context.index("answer"),))
    dataset = Dataset("d", "d", (ex,))

    def result(name: str, answer: str) -> EvalResult:
        return EvalResult(
            name, "d", Predictions(answers={ex.id: answer}), score(dataset, {ex.id: answer}), {}, True
        )

    text = render(dataset, result("student", "\x1b[2J" + "x" * 500), result("teacher", "answer"))
    assert "\x1b" not in text and "\x07" not in text  # escaped, never sent to the terminal
    assert "'What is <b>it</b>?\\x07'" in text
    assert "student: '\\x1b[2Jxxx" in text and "x" * 100 not in text  # truncated
    assert all(len(line) < 300 for line in text.splitlines())


def test_a_baseline_written_before_slices_fails_a_slice_rule_with_the_fix(sliced):
    sliced.gate("rules:\n  - apply_to: students\n    require: ['f1[question=what] >= baseline - 1']\n")
    assert set(outcomes(sliced.run()).values()) == {"PASSED"}  # NEW
    path = sliced.root / "baselines" / "data" / "student.json"
    document = json.loads(path.read_text())
    del document["slices"]  # as qagate wrote it before slices
    path.write_text(json.dumps(document))
    result = sliced.run()
    assert set(outcomes(result).values()) == {"FAILED"}
    out = result.stdout.str()
    assert "has no f1[question=what]; write it with: pytest" in out and "--qagate-update-baselines" in out


def test_side_file_labels_win_over_the_records_which_win_over_the_computed_ones():
    from qagate.data import Dataset
    from qagate.data.slices import dataset_labels

    context = "It happened in 1999 in Paris."
    ex = QAExample(
        "a", "t", context, "When?", ("1999",), (15,), labels=(("answer", "number"), ("domain", "news"))
    )
    other = QAExample("b", "t", context, "Where?", ("Paris",), (23,))
    dataset = Dataset("d", "d", (ex, other))
    table = dataset_labels(dataset, {"a": {"domain": "legal"}})
    assert table["a"] == {
        "question": "when",
        "answer": "number",  # the record corrects the heuristic (date)
        "context": "short",
        "position": "middle",
        "domain": "legal",  # the side file wins over the record
    }
    assert table["b"]["answer"] == "name" and "domain" not in table["b"]


def test_slice_rules_stay_fixed_n_under_a_sequential_file_and_refuse_an_explicit_one(tmp_path):
    from qagate.gating.gatefile import load_gate_file, resolve_cases

    roles = {"teacher": "teacher", "student": "student"}
    path = tmp_path / "gate_s.yaml"
    path.write_text(
        "sequential: true\nrules:\n  - apply_to: students\n    require:\n"
        "      - f1 >= 0.9 * teacher\n      - f1[question=*] >= 0.9 * teacher\n"
    )
    cases = resolve_cases(load_gate_file(path), roles, models_source="m")
    assert cases[0].sequential is not None
    assert [c.rule.id for c in cases[1:]] == [f"f1[question={v}]>=0.9*teacher" for v in QUESTION_TYPES]
    assert all(c.sequential is None for c in cases[1:])  # no data given: every built-in value
    path.write_text(
        "rules:\n  - apply_to: students\n    require:\n"
        "      - rule: f1[question=what] >= 0.9 * teacher\n        sequential: true\n"
    )
    with pytest.raises(QagateError, match=r"gate_s.yaml:5: rule f1\[question=what\].* cannot be sequential"):
        load_gate_file(path)
    path.write_text(
        "min_slice: 0\nrules:\n  - apply_to: students\n    require: ['f1[question=what] >= 80']\n"
    )
    with pytest.raises(
        QagateError, match=r"gate_s.yaml:1: min_slice must be a whole number of questions >= 1"
    ):
        load_gate_file(path)
