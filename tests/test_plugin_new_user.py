"""What a new user hit: a gate that cannot run is never green, NEW baselines, sharper reports."""

from __future__ import annotations

import json
import textwrap

import pytest

from qagate.store.history import read_history
from test_plugin import Project, outcomes, project  # noqa: F401  (the same tmp project fixture)


def history(project: Project) -> list[dict]:
    return read_history(project.root / ".qagate" / "history.db").runs


MISSING = "requires: [no-such-data]\nrules:\n  - apply_to: students\n    require: [f1 >= 1]\n"


def test_missing_data_is_incomplete_never_pass(project):
    project.gate(MISSING)
    result = project.run("-rs")
    result.assert_outcomes(skipped=2)
    assert result.ret == 0
    out = result.stdout.str()
    assert "RELEASE NOT GATED: 2 gate item(s) could not run" in out
    assert "use --qagate-strict in CI" in out
    assert "SKIPPED [2] gate_release.yaml:" in out  # the gate file, not plugin code
    run = history(project)[-1]
    assert run["outcome"] == "incomplete"
    assert {r["status"] for r in run["results"]} == {"skipped"}
    assert all("no-such-data" in r["reason"] for r in run["results"])


def test_strict_turns_missing_data_into_failures(project):
    project.gate(MISSING)
    result = project.run("--qagate-strict")
    result.assert_outcomes(failed=2)
    assert result.ret != 0
    assert "--qagate-strict: a gate that cannot run fails" in result.stdout.str()
    assert history(project)[-1]["outcome"] not in ("pass", "incomplete")


def test_strict_from_the_ini_file(project):
    project.pytester.makeini(
        "[pytest]\nqagate_models = models\nqagate_dataset = data.json\nqagate_strict = true\n"
    )
    project.gate(MISSING)
    project.run().assert_outcomes(failed=2)


def test_missing_data_when_the_models_cannot_even_be_resolved(project):
    """A gate whose models folder lives with the missing data: one item, still not green."""
    project.gate(
        "requires: [no-such-data]\nmodels: no-such-data/models\nrules:\n"
        "  - apply_to: students\n    require: [f1 >= 1]\n"
    )
    result = project.run()
    result.assert_outcomes(skipped=1)
    assert history(project)[-1]["outcome"] == "incomplete"
    project.run("--qagate-strict").assert_outcomes(failed=1)


def test_command_line_dataset_overridden_by_a_gate_file_warns(project):
    (project.root / "other.json").write_text((project.root / "data.json").read_text())
    project.gate("dataset: other.json\nrules:\n  - apply_to: [good]\n    require: [f1 >= 1]\n")
    result = project.run("--qagate-dataset", "data.json", "-W", "default")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "names its own dataset (other.json); --qagate-dataset does not apply to it" in out
    assert "qagate gates: gate_release.yaml on other.json" in out
    run = history(project)[-1]
    assert run["settings"]["dataset"] == "other.json"
    assert run["results"][0]["dataset"] == "other"


def test_baseline_plus_k_gets_no_update_suggestion(project):
    project.gate("rules:\n  - apply_to: [good]\n    require: [f1 >= baseline + 1, f1 >= baseline - 1]\n")
    project.run().assert_outcomes(passed=2)  # both NEW
    project.model("good", "student", 0.97)
    result = project.run("-rA")
    found = outcomes(result)
    assert found["gate_release.yaml::good::f1>=baseline+1"] == "FAILED"
    assert found["gate_release.yaml::good::f1>=baseline-1"] == "FAILED"
    out = result.stdout.str().split("short test summary info")[0]  # CI=true repeats reports there
    assert out.count("--qagate-update-baselines") == 1  # only where updating can help
    assert "'gate_release.yaml::good::f1>=baseline-1' --qagate-update-baselines" in out
    assert "cannot make it pass: the model itself has to improve" in out


def test_worst_questions_once_per_model_and_dataset(project):
    project.gate(
        "rules:\n  - apply_to: [bad]\n    require: [f1 >= 0.95 * teacher, "
        "exact_match >= 0.95 * teacher, f1 >= teacher - 1]\n"
    )
    result = project.run()
    result.assert_outcomes(failed=3)
    out = result.stdout.str().split("short test summary info")[0]  # CI=true repeats reports there
    assert out.count("worst questions for bad") == 1
    assert out.count("are shown once, under its first failed rule") == 2


def test_quiet_runs_show_only_what_did_not_pass(project):
    project.gate("rules:\n  - apply_to: students\n    require: [exact_match >= 0.95 * teacher]\n")
    normal = project.run().stdout.str()
    assert "PASS    good" in normal and "FAIL    bad" in normal
    quiet = project.run("-q").stdout.str()
    assert "gates: 1 fail, 1 pass" in quiet
    assert "FAIL    bad" in quiet and "PASS    good" not in quiet
    very_quiet = project.run("-qq").stdout.str()
    assert "gates: 1 fail, 1 pass" in very_quiet and "FAIL    bad" not in very_quiet


def test_missing_model_source_is_one_collection_error(project):
    (project.root / "models" / "ghost.yaml").write_text(
        "name: ghost\nrole: student\nkind: extractive\nsource: ./not-built-yet\n"
    )
    project.gate("rules:\n  - apply_to: students\n    require: [f1 >= 1, exact_match >= 1]\n")
    result = project.run()
    out = result.stdout.str()
    assert result.ret != 0
    assert out.count("source './not-built-yet' does not exist") == 1
    assert "ghost.yaml" in out and "Traceback" not in out


def test_partial_runs_are_marked_in_the_history(project):
    project.gate("rules:\n  - apply_to: students\n    require: [f1 >= 1]\n")
    project.run().assert_outcomes(passed=2)
    project.run("-k", "good").assert_outcomes(passed=1)
    runs = history(project)
    assert runs[0]["partial"] is False and runs[1]["partial"] is True


def test_assert_gate_and_gate_file_agree_including_a_missing_baseline(project):
    """The same rules through a gate file and through assert_gate give the same verdicts."""
    rules = ["exact_match >= 0.95 * teacher", "f1 >= baseline - 0.5", "f1 >= 80"]
    project.gate(
        "rules:\n  - apply_to: students\n    require:\n" + "".join(f"      - {rule}\n" for rule in rules)
    )
    project.pytester.makepyfile(
        test_same=textwrap.dedent(f"""
        import json, pathlib, warnings
        from qagate.assertions import GateAssertionError, assert_gate

        def test_same(students, teacher, qagate_eval, qagate_dataset, tmp_path):
            verdicts = {{}}
            for student in students:
                for rule in {rules!r}:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        try:
                            v = assert_gate(rule, qagate_eval(student),
                                            teacher=qagate_eval(teacher),
                                            baseline=tmp_path / (student.name + ".json"),
                                            dataset=qagate_dataset)
                            verdicts[student.name + "::" + rule.replace(" ", "")] = v.status
                        except GateAssertionError as exc:
                            verdicts[student.name + "::" + rule.replace(" ", "")] = exc.verdict.status
            pathlib.Path("assert_gate.json").write_text(json.dumps(verdicts))
        """)
    )
    result = project.run("-rA")
    by_item = {
        nodeid.split("::", 1)[1]: status
        for nodeid, status in outcomes(result).items()
        if nodeid.startswith("gate_")
    }
    gate = {
        row["nodeid"].split("::", 1)[1]: row["status"]
        for row in history(project)[-1]["results"]
        if row["nodeid"].startswith("gate_")
    }
    same = json.loads((project.root / "assert_gate.json").read_text())
    assert gate == same
    assert gate["bad::f1>=baseline-0.5"] == "new" and by_item["bad::f1>=baseline-0.5"] == "PASSED"
    assert gate["bad::exact_match>=0.95*teacher"] == "fail"
    assert gate["good::f1>=80"] == "pass"


def test_weight_loading_progress_bars_stay_out_of_the_report(pytester, tiny_qa_model_dir):
    pytest.importorskip("torch")
    pytester.makefile(
        ".yaml",
        **{
            "qa_models/tiny": f"name: tiny\nrole: teacher\nkind: extractive\nsource: {tiny_qa_model_dir()}\n"
            "device: cpu\nmax_seq_len: 128\ndoc_stride: 32\n"
        },
    )
    pytester.makefile(
        ".yaml",
        gate_q="dataset: {source: sample, limit: 4}\n"
        "rules:\n  - apply_to: teacher\n    require: [f1 >= 101]\n",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(failed=1)
    out = result.stdout.str() + result.stderr.str()
    assert "qagate gate FAIL: tiny :: f1>=101" in out
    assert "Loading weights" not in out and "it/s]" not in out
