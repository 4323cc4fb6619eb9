"""The plugin end to end through ``pytester``, with replay models on a small synthetic dataset.

Replay models answer from prediction files, so these runs need no torch: a teacher that is
always right and students that are right on a chosen share of the questions make every
verdict predictable.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

# Confidence rules use numpy (via qagate.scoring.stats). Import it here, once, so that pytester's
# in-process runs, which restore sys.modules after each run, never import numpy twice.
# The same for SQLAlchemy, which the run history (.qagate/history.db) loads at the end of a run.
import numpy  # noqa: F401,E402
import pytest
import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401,E402

import qagate.scoring.stats  # noqa: F401,E402
import qagate.store.history_db  # noqa: F401,E402
from qagate.store.history import read_history

QUESTIONS = 400


def squad(n: int = QUESTIONS, articles: int = 10) -> dict:
    data = []
    per_article = n // articles
    for a in range(articles):
        paragraphs = []
        for i in range(a * per_article, (a + 1) * per_article):
            answer = f"w{i}q"
            context = f"The code word of item {i} is {answer} and nothing else."
            paragraphs.append(
                {
                    "context": context,
                    "qas": [
                        {
                            "id": f"q{i:04d}",
                            "question": f"What is the code word of item {i}?",
                            "answers": [{"text": answer, "answer_start": context.index(answer)}],
                        }
                    ],
                }
            )
        data.append({"title": f"Article {a}", "paragraphs": paragraphs})
    return {"version": "1.1", "data": data}


def predictions(share_right: float, n: int = QUESTIONS) -> dict:
    """Right on round(share * n) questions, spread over the set (wrong: an unrelated word)."""
    right = round(share_right * n)
    wrong_ids = {(k * 7919) % n for k in range(n - right)}
    return {f"q{i:04d}": ("nothing" if i in wrong_ids else f"w{i}q") for i in range(n)}


class Project:
    """A tmp project: data.json, models/*.yaml with their predictions, ini keys, a gate file."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.root = Path(pytester.path)
        (self.root / "models").mkdir()
        (self.root / "data.json").write_text(json.dumps(squad()))
        pytester.makeini(
            textwrap.dedent("""\
            [pytest]
            qagate_models = models
            qagate_dataset = data.json
            """)
        )

    def model(self, name: str, role: str, share_right: float) -> None:
        (self.root / "models" / f"{name}.json").write_text(json.dumps(predictions(share_right)))
        (self.root / "models" / f"{name}.yaml").write_text(
            f"name: {name}\nrole: {role}\nkind: replay\nsource: {name}.json\n"
        )

    def gate(self, text: str, name: str = "gate_release.yaml") -> Path:
        path = self.root / name
        path.write_text(textwrap.dedent(text))
        return path

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", *args)


@pytest.fixture
def project(pytester: pytest.Pytester) -> Project:
    p = Project(pytester)
    p.model("teacher", "teacher", 1.0)
    p.model("good", "student", 0.99)
    p.model("bad", "student", 0.70)
    return p


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """nodeid -> PASSED/FAILED/SKIPPED/ERROR from ``-rA`` short summary lines."""
    found = {}
    for line in result.outlines:
        for word in ("PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL"):
            if line.startswith(word + " "):
                nodeid = line[len(word) + 1 :].split(" - ")[0].strip()
                found[nodeid] = word
    return found


def test_teacher_relative_gate_one_item_per_rule_and_model(project):
    project.gate("""\
        rules:
          - apply_to: students
            require:
              - exact_match >= 0.95 * teacher
              - f1 >= teacher - 10
        """)
    result = project.run("-rA")
    assert outcomes(result) == {
        "gate_release.yaml::bad::exact_match>=0.95*teacher": "FAILED",
        "gate_release.yaml::bad::f1>=teacher-10": "FAILED",
        "gate_release.yaml::good::exact_match>=0.95*teacher": "PASSED",
        "gate_release.yaml::good::f1>=teacher-10": "PASSED",
    }
    out = result.stdout.str()
    # the failure report: headline, table, worst questions; no traceback into qagate
    assert "qagate gate FAIL: bad :: exact_match>=0.95*teacher on data (400 questions)" in out
    assert "metric        teacher  obtained     delta  allowed" in out
    assert "exact_match  100.0000   70.0000  -30.0000  >= 95.0000 (0.95 * teacher)" in out
    assert "qagate worst questions" in out
    assert "worst questions for bad (largest F1 loss against the teacher first; 10 of 400)" in out
    assert "predicted: 'nothing'   references: 'w" in out
    assert "Traceback" not in out and "session.py" not in out


def test_baseline_lifecycle_create_pass_regress_update_pass(project):
    project.gate("""\
        rules:
          - apply_to: all
            require: [f1 >= baseline - 0.5, exact_match >= 0.98 * baseline]
        """)
    first = project.run("-rA")
    first.assert_outcomes(passed=6)  # NEW: written, needs review; not a regression
    baseline = project.root / "baselines" / "data" / "good.json"
    assert "NEW baseline baselines/data/good.json" in first.stdout.str() and baseline.is_file()
    stored = json.loads(baseline.read_text())
    assert stored["metrics"]["exact_match"] == 99.0
    assert stored["provenance"]["dataset"]["name"] == "data"

    project.run().assert_outcomes(passed=6)

    project.model("good", "student", 0.97)  # the student regresses by 2 points
    regressed = project.run("-rA")
    regressed.assert_outcomes(passed=4, failed=2)
    out = regressed.stdout.str()
    assert "metric  baseline  obtained    delta  allowed" in out
    assert "f1       99.0000   97.0000  -2.0000  >= 98.5000 (baseline - 0.5)" in out
    assert (
        "accept the obtained numbers as the new baseline: pytest "
        "'gate_release.yaml::good::f1>=baseline-0.5' --qagate-update-baselines"
    ) in out
    assert "baseline recorded with model fingerprint" in out  # weights changed: said so

    updated = project.run("--qagate-update-baselines")
    updated.assert_outcomes(passed=4, failed=2)
    assert "updated baseline" in updated.stdout.str()
    assert json.loads(baseline.read_text())["metrics"]["exact_match"] == 97.0

    project.run().assert_outcomes(passed=6)


def test_regen_all_rewrites_every_baseline(project):
    project.gate("rules:\n  - apply_to: all\n    require: [f1 >= baseline]\n")
    project.run().assert_outcomes(passed=3)
    project.model("teacher", "teacher", 0.5)
    project.model("good", "student", 0.5)
    result = project.run("--qagate-regen-all")
    result.assert_outcomes(passed=3)
    assert "regenerated baseline baselines/data/teacher.json" in result.stdout.str()
    project.run().assert_outcomes(passed=3)


def test_missing_baseline_is_new_written_once_and_fails_only_when_strict(project):
    project.gate("rules:\n  - apply_to: [good]\n    require: [f1 >= baseline, exact_match >= baseline]\n")
    strict = project.run("-rA", "--qagate-strict")
    strict.assert_outcomes(failed=2)
    assert "--qagate-strict: a new baseline must be reviewed and committed" in strict.stdout.str()
    (project.root / "baselines" / "data" / "good.json").unlink()
    result = project.run("-rA")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "gates: 2 new" in out and "FAIL" not in out
    assert out.count("NEW baseline baselines/data/good.json") == 1  # the summary, once
    rows = read_history(project.root / ".qagate" / "history.db").runs
    assert rows[-1]["outcome"] == "new" and {r["status"] for r in rows[-1]["results"]} == {"new"}


def test_provenance_mismatch_says_dataset_changed(project):
    project.gate("rules:\n  - apply_to: [good]\n    require: [f1 >= baseline - 1]\n")
    project.run()
    (project.root / "data.json").write_text(json.dumps(squad(n=QUESTIONS - 10)))
    result = project.run()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "was recorded on a different dataset" in out and "not comparable" in out


def test_damaged_baseline_is_one_clear_line(project):
    project.gate("rules:\n  - apply_to: [good]\n    require: [f1 >= baseline - 1]\n")
    path = project.root / "baselines" / "data" / "good.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"schema_version": 1, "metrics": {"f1": 9')
    result = project.run()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert f"{path}: baseline is not valid JSON" in out and "--qagate-update-baselines" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("share, status", [(0.99, "PASSED"), (0.70, "FAILED"), (0.905, "FAILED")])
def test_confidence_rule_decisive_or_undecided(project, share, status):
    project.model("good", "student", share)
    project.gate("""\
        rules:
          - apply_to: [good]
            require:
              - rule: exact_match >= 0.9 * teacher
                confidence: 0.95
        """)
    result = project.run("-rA")
    assert outcomes(result) == {"gate_release.yaml::good::exact_match>=0.9*teacher@95%": status}
    out = result.stdout.str()
    if share == 0.905:  # 90.5 vs 90.0 on 400 questions: the interval straddles 0
        assert "qagate gate UNDECIDED" in out and "the sample cannot decide" in out
    elif share == 0.70:
        assert "qagate gate FAIL" in out and "entirely on the failing side" in out


def test_undecided_says_where_more_questions_come_from(project):
    """--qagate-limit only where it applies: a gate file that names its own dataset gets its
    questions there (the hint used to suggest --qagate-limit for every file)."""
    project.model("good", "student", 0.905)
    body = "rules:\n  - apply_to: [good]\n    confidence: true\n    require: [exact_match >= 0.9 * teacher]\n"
    project.gate(body)
    assert "more questions (a larger dataset: --qagate-dataset)" in project.run().stdout.str()
    assert "more questions (a larger --qagate-limit)" in project.run("--qagate-limit", "300").stdout.str()
    project.gate("dataset: {source: data.json, limit: 300}\n" + body)
    out = project.run("--qagate-limit", "200").stdout.str()
    assert "more questions (a larger dataset in gate_release.yaml)" in out


def test_undecided_can_be_reported_as_skip(project):
    project.model("good", "student", 0.905)
    project.gate(
        "rules:\n  - apply_to: [good]\n    confidence: true\n    require: [exact_match >= 0.9 * teacher]\n"
    )
    result = project.run("-rA", "--qagate-undecided=skip")
    result.assert_outcomes(skipped=1)
    assert "UNDECIDED" in result.stdout.str()
    skipped = next(line for line in result.outlines if line.startswith("SKIPPED"))
    assert "gate_release.yaml" in skipped and "collect.py" not in skipped  # the gate, not our code


def test_undecided_fails_under_strict_whatever_undecided_says(project):
    project.model("good", "student", 0.905)
    project.gate(
        "rules:\n  - apply_to: [good]\n    confidence: true\n    require: [exact_match >= 0.9 * teacher]\n"
    )
    result = project.run("-rA", "--qagate-undecided=skip", "--qagate-strict")
    result.assert_outcomes(failed=1)
    assert (
        "--qagate-strict: an undecided verdict fails, whatever --qagate-undecided says" in result.stdout.str()
    )


@pytest.mark.parametrize(
    "body, line, message",
    [
        (
            "rules:\n  - apply_to: students\n    require: [f3 >= 1]\n",
            3,
            "unknown metric 'f3' in rule 'f3 >= 1' (did you mean 'f1'?); valid metrics: exact_match, "
            "f1, bertscore_f1,",
        ),
        (
            "rules:\n  - apply_to: [goood]\n    require: [f1 >= 1]\n",
            2,
            "unknown model 'goood' (did you mean 'good'?) in apply_to; models declared in models: bad, "
            "good, teacher",
        ),
        (
            "rules:\n  - apply_to: students\n    require:\n      - f1 >= teacher -\n",
            4,
            "malformed right-hand side",
        ),
        ("rules:\n  - apply_to: students\n   require: [f1 >= 1]\n", 3, "invalid YAML"),
    ],
)
def test_bad_gate_files_are_one_line_collection_errors(project, body, line, message):
    project.gate(body)
    result = project.run()
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "ERROR collecting gate_release.yaml" in out
    assert f"gate_release.yaml:{line}: {message}" in out, out
    assert "Traceback" not in out and "gates.py" not in out


def test_requires_missing_skips_the_file_with_a_reason(project):
    project.gate("requires: [no-such-data]\nrules:\n  - apply_to: students\n    require: [f1 >= 1]\n")
    result = project.run("-rs")
    result.assert_outcomes(skipped=2)
    out = result.stdout.str()
    assert "gate_release.yaml:1: requires no-such-data, which is missing: this gate was NOT checked" in out
    assert "hooks.py" not in out and "collect.py" not in out  # skips point at the gate file


def test_gate_file_marks_select_with_dash_m(project):
    project.gate(
        "marks: [full]\nrules:\n  - apply_to: students\n    require: [f1 >= 1]\n", name="gate_full.yaml"
    )
    project.gate("rules:\n  - apply_to: teacher\n    require: [f1 >= 1]\n")
    project.pytester.makeini(
        "[pytest]\nqagate_models = models\nqagate_dataset = data.json\nmarkers = full: heavy\n"
    )
    quick = project.run("-rA", "--strict-markers", "-m", "not full")
    quick.assert_outcomes(passed=1, deselected=2)
    assert set(outcomes(quick)) == {"gate_release.yaml::teacher::f1>=1"}
    full = project.run("-rA", "--strict-markers", "-m", "full")
    assert set(outcomes(full)) == {"gate_full.yaml::bad::f1>=1", "gate_full.yaml::good::f1>=1"}


def test_gate_file_may_name_its_own_dataset_and_models(project):
    other = project.root / "elsewhere"
    (other / "zoo").mkdir(parents=True)
    (other / "small.json").write_text(json.dumps(squad(n=100, articles=5)))
    (other / "zoo" / "a.json").write_text(json.dumps(predictions(0.5, n=100)))
    (other / "zoo" / "a.yaml").write_text("name: a\nrole: teacher\nkind: replay\nsource: a.json\n")
    project.gate(
        "dataset: {source: small.json, limit: 40}\nmodels: zoo\nrules:\n"
        "  - apply_to: teacher\n    require: [exact_match >= 40, exact_match <= 60]\n",
        name="elsewhere/gate_other.yaml",
    )
    result = project.run("-rA", "elsewhere")
    result.assert_outcomes(passed=2)
    assert "PASS    a      exact_match>=40  small-first-40   47.5000  >= 40.0000" in result.stdout.str()


def test_junit_xml_carries_the_metrics(project):
    project.gate("rules:\n  - apply_to: [good]\n    require: [exact_match >= 0.95 * teacher]\n")
    project.run("--junitxml=report.xml").assert_outcomes(passed=1)
    tree = ET.parse(project.root / "report.xml")
    props = {p.get("name"): p.get("value") for p in tree.iter("property")}
    assert props["qagate.model"] == "good"
    assert props["qagate.rule"] == "exact_match>=0.95*teacher"
    assert props["qagate.status"] == "pass"
    assert float(props["qagate.obtained"]) == 99.0
    assert float(props["qagate.teacher"]) == 100.0
    assert float(props["qagate.threshold"]) == pytest.approx(95.0)
    assert float(props["qagate.metric.f1"]) == 99.0


def test_terminal_summary_has_models_and_gates(project):
    project.gate("rules:\n  - apply_to: students\n    require: [exact_match >= 0.95 * teacher]\n")
    out = project.run().stdout.str()
    summary = out[out.index("qagate ===") :]
    assert "model    dataset        EM        F1" in summary
    assert "gates: 1 fail, 1 pass" in summary
    assert "FAIL    bad    exact_match>=0.95*teacher  data      70.0000  >= 95.0000" in summary
    for model in ("teacher", "good", "bad"):
        assert model in summary


def test_fixtures_and_assert_gate_in_plain_python_tests(project):
    project.pytester.makepyfile(
        test_models="""
        from qagate.assertions import assert_gate

        def test_each_model_answers(qa_model, qagate_eval, qagate_dataset):
            assert qagate_eval(qa_model).scores.total == len(qagate_dataset) == 400

        def test_roles(teacher, students, qagate_models):
            assert teacher.name == "teacher"
            assert [s.name for s in students] == ["bad", "good"]
            assert [m.name for m in qagate_models] == ["bad", "good", "teacher"]

        def test_students_keep_95_percent(students, teacher, qagate_eval):
            for student in students:
                assert_gate("exact_match >= 0.95 * teacher", qagate_eval(student),
                            teacher=qagate_eval(teacher))
        """
    )
    result = project.run("-rA", "test_models.py")
    assert outcomes(result) == {
        "test_models.py::test_each_model_answers[bad]": "PASSED",
        "test_models.py::test_each_model_answers[good]": "PASSED",
        "test_models.py::test_each_model_answers[teacher]": "PASSED",
        "test_models.py::test_roles": "PASSED",
        "test_models.py::test_students_keep_95_percent": "FAILED",
    }
    out = result.stdout.str()
    assert "qagate gate FAIL: bad :: exact_match>=0.95*teacher" in out
    assert "exact_match  100.0000   70.0000  -30.0000  >= 95.0000 (0.95 * teacher)" in out
    assert "assert_gate(" in out  # the traceback stops at the user's line
    assert "assertions.py" not in out


def test_fixtures_are_documented(project):
    out = project.run("--fixtures").stdout.str()
    for name in (
        "qagate_settings",
        "qagate_dataset",
        "qagate_models",
        "qa_model",
        "teacher",
        "students",
        "qagate_eval",
        "qagate_latency",
    ):
        assert f"{name} [session scope]" in out or f"{name} [session scope] --" in out, name


@pytest.mark.parametrize(
    "args, message",
    [
        (["--qagate-limit", "0"], "--qagate-limit: expected a positive integer, got '0'"),
        (["--qagate-device", "gpu"], "--qagate-device: expected one of auto, cpu, cuda, cuda:N, mps"),
        (["--qagate-articles", "47-38"], "article range '47-38' ends before it starts"),
        (["--qagate-undecided", "pass"], "expected one of fail, skip"),
        (["--qagate-confidence", "95"], "strictly between 0 and 1"),
        (["--qagate-dataset", "dtaa.json"], "dtaa.json: no such dataset file or folder (pass a SQuAD JSON"),
    ],
)
def test_bad_options_fail_at_start_up(project, args, message):
    result = project.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_bad_ini_value_names_the_key(pytester):
    pytester.makeini("[pytest]\nqagate_device = gpu\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ini key qagate_device: expected one of auto, cpu, cuda, cuda:N, mps" in result.stderr.str()


def test_missing_models_folder_is_one_line(project):
    project.gate("rules:\n  - apply_to: students\n    require: [f1 >= 1]\n")
    result = project.run("--qagate-models", "nowhere")
    result.assert_outcomes(errors=1)
    assert (
        "nowhere: models folder does not exist" in result.stdout.str()
        or "model folder not found" in result.stdout.str()
    )


def test_prepare_model_hook_runs_once_per_model_before_it_is_built(project):
    project.pytester.makeconftest("""
        import pathlib
        def pytest_qagate_prepare_model(config, spec):
            log = pathlib.Path(config.rootpath) / "prepared.log"
            with log.open("a") as handle:
                handle.write(spec.name + "\\n")
        """)
    project.gate("""\
        rules:
          - apply_to: students
            require: [exact_match >= 0.95 * teacher, f1 >= 0.9 * teacher]
        """)
    project.run("-rA").assert_outcomes(passed=2, failed=2)
    prepared = (project.root / "prepared.log").read_text().split()
    assert sorted(prepared) == ["bad", "good", "teacher"]
