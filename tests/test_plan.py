"""How many questions a margin needs (issue 23 item 6): the UNDECIDED reports' line, ``qagate
plan`` from the history's last run or from prediction files, and the plan checked against a
seeded simulation of the sequential loop.

End to end with the replay project of test_plugin (no torch); the numbers are checked against
the interval engine (:func:`qagate.reports.explain.what_decides`), the one way they are found.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from qagate import cli
from qagate.gating.judge import rule_values
from qagate.gating.rules import parse_rule
from qagate.gating.sequential import SequentialLoop, SequentialSpec, question_order
from qagate.reports.explain import about_questions, decide_line, like_sample, what_decides
from qagate.reports.plan import at_margin, plan_rule
from qagate.store.history import read_history
from test_plugin import Project, project  # noqa: F401  (the same tmp project fixture)

# good answers 90.5% of 400 questions right, the teacher all of them: exact_match - 0.9 x teacher
# is +10 on 362 questions and -90 on 38 (mean +0.5): undecided at 95% on 400 questions
GATE = """\
rules:
  - apply_to: [good]
    require:
      - rule: exact_match >= 0.9 * teacher
        confidence: 0.95
      - rule: f1 >= 0.5 * teacher
        confidence: 0.95
        sequential: {look_every: 50}
      - f1 >= 50
"""
RULE = parse_rule("exact_match >= 0.9 * teacher", confidence=0.95)
VALUES = np.array([10.0] * 362 + [-90.0] * 38)


def qagate(project: Project, capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project.root)
        code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_an_undecided_verdict_says_how_many_questions_would_decide_it(project):
    """The failure report and the terminal summary quote what_decides on the rule's own values."""
    project.model("good", "student", 0.905)
    project.gate(GATE)
    result = project.run()
    result.assert_outcomes(failed=1, passed=2)
    out = result.stdout.str()
    run = read_history(project.root / ".qagate" / "history.db").runs[-1]
    row = next(r for r in run["results"] if r["rule"] == "exact_match>=0.9*teacher@95%")
    decide = row["explain"]["decide"]
    assert decide["questions"] > 400 and decide["verdict"] == "pass"
    line = f"undecided on 400 questions: at this margin about {about_questions(decide['questions'])} "
    line += "would decide it at 95% (PASS)"
    assert decide_line(decide, 0.95) == line
    assert f"  {line}\n" in out  # the failure report, above its 'undecided: more questions' line
    assert f"good :: exact_match>=0.9*teacher@95%: {line}" in out  # the terminal summary
    # the number is the interval engine's on these questions (in the judge's order, repeated)
    pilot = _pilot(project)
    assert sorted(pilot) == sorted(VALUES)
    assert decide == what_decides(RULE, pilot)


def _pilot(project: Project) -> np.ndarray:
    """good's exact_match - 0.9 x teacher's per question, in the dataset's order (as the gate sees it)."""
    from qagate.data import load_dataset, load_predictions
    from qagate.gating.evidence import per_question
    from qagate.scoring.squad import score

    dataset = load_dataset(str(project.root / "data.json"))
    ids = [e.id for e in dataset.examples]
    em = {
        name: per_question(
            score(dataset, load_predictions(project.root / "models" / f"{name}.json")), "exact_match", ids
        )
        for name in ("good", "teacher")
    }
    return rule_values(RULE, em["good"], em["teacher"])


def test_a_sequential_undecided_verdict_gets_the_line_too(project):
    project.model("good", "student", 0.905)
    project.gate(
        "rules:\n  - apply_to: [good]\n    sequential: {look_every: 100}\n"
        "    require: [exact_match >= 0.9 * teacher]\n"
    )
    result = project.run()
    out = result.stdout.str()
    assert "(400 of 400 questions, sequential)" in out
    assert re.search(
        r"  undecided on 400 questions: at this margin about [\d,]+ would decide it at 95% \(PASS\)", out
    )


def test_assert_gate_quotes_the_questions_that_would_decide_it():
    from types import SimpleNamespace

    from qagate.assertions import GateAssertionError, assert_gate
    from test_judge import FakeScores

    ids = [f"q{i}" for i in range(20)]
    student = SimpleNamespace(
        metrics={"exact_match": 90.0}, scores=FakeScores({q: float(i < 18) for i, q in enumerate(ids)})
    )
    with pytest.raises(GateAssertionError) as caught:
        assert_gate("exact_match >= 85", student, confidence=0.95)
    found = what_decides(parse_rule("exact_match >= 85", confidence=0.95), [100.0] * 18 + [0.0] * 2)
    assert found["questions"] is not None  # the judge's order differs: only the words are checked
    assert re.search(
        r"undecided on 20 questions: at this margin about [\d,]+ would decide it at 95%", str(caught.value)
    )


def test_plan_reads_the_pilot_from_the_history_last_run_of_the_gate(project, capsys):
    project.model("good", "student", 0.905)
    project.gate(GATE)
    project.run()
    run = read_history(project.root / ".qagate" / "history.db").runs[-1]
    code, out, err = qagate(project, capsys, "plan", "gate_release.yaml")
    assert code == 0, err
    assert f"pilot: run {run['id']} (started {run['started']}) of the history" in out
    assert "the per-question values each verdict kept" in out
    expected = what_decides(RULE, np.sort(VALUES))  # the histogram's sample: the same values, sorted
    row = _row(out, "exact_match>=0.9*teacher@95%")
    assert row[2:5] == ["400", f"{np.std(VALUES, ddof=1):.2f}", "+0.50"]
    assert f"about {about_questions(expected['questions'])} (PASS)" in " ".join(row)
    assert " ".join(row).endswith("- (fixed-n rule)")
    sequential = _row(out, "f1>=0.5*teacher@95%")  # judged on the questions its looks needed
    assert re.fullmatch(r"\d+ of 400 \(PASS\)", " ".join(sequential[-4:])), sequential
    assert "f1>=50" not in out  # a point comparison: nothing to plan


def test_plan_at_a_named_margin_and_from_prediction_files(project, capsys):
    project.model("good", "student", 0.905)
    project.gate(GATE)
    common = ("plan", "gate_release.yaml", "--dataset", "data.json", "--pilot", "good=models/good.json")
    code, out, err = qagate(
        project,
        capsys,
        *common,
        "--pilot",
        "teacher=models/teacher.json",
        "--teacher",
        "teacher",
        "--margin",
        "2",
    )
    assert code == 0, err
    assert "pilot: the predictions files good models/good.json, teacher models/teacher.json, " in out
    assert "scored on data (400 questions)" in out and "at a margin of +2" in out
    row = _row(out, "exact_match>=0.9*teacher@95%")
    assert row[4] == "+2.00"
    pilot = _pilot(project)
    wider = what_decides(RULE, at_margin(RULE, pilot, 2.0))
    assert f"about {about_questions(wider['questions'])} (PASS)" in " ".join(row)
    assert wider["questions"] < what_decides(RULE, pilot)["questions"]  # a wider margin needs fewer
    code, out, err = qagate(project, capsys, *common, "--margin", "2")
    assert code == 2 and err.count("\n") == 1 and "compares with the teacher: name it with --teacher" in err


def test_a_cluster_rule_is_named_not_planned(project, capsys):
    project.model("good", "student", 0.905)
    project.gate(GATE.replace("        sequential: {look_every: 50}\n", "        cluster: paragraph\n"))
    args = ("plan", "gate_release.yaml", "--dataset", "data.json", "--teacher", "teacher")
    code, out, err = qagate(
        project, capsys, *args, "--pilot", "good=models/good.json", "--pilot", "teacher=models/teacher.json"
    )
    assert code == 0, err
    assert _row(out, "exact_match>=0.9*teacher@95%")[2] == "400"
    assert "good :: f1>=0.5*teacher@95%: sampled by paragraph (cluster:): the plan counts questions" in out


def test_tilting_moves_the_mean_and_keeps_the_values_in_range():
    for margin in (-5.0, 0.2, 3.0):
        sample = at_margin(RULE, VALUES, margin)
        assert sample.size == VALUES.size and set(np.unique(sample)) <= {10.0, -90.0}
        assert abs(sample.mean() - RULE.offset - margin) <= 100 / VALUES.size  # one question's worth
    with pytest.raises(ValueError, match="outside what the pilot's questions can reach"):
        at_margin(RULE, VALUES, 20.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "gate_nothere.yaml"], "gate_nothere.yaml"),
        (["plan", "gate_points.yaml"], "gate_points.yaml: the gate file has no confidence rule to plan"),
        (["plan", "gate_release.yaml", "--margin", "abc"], "--margin must be a finite number of points"),
        (
            ["plan", "gate_release.yaml", "--margin", "0"],
            "--margin must be a finite number of points other than 0",
        ),
        (["plan", "gate_release.yaml", "--margin", "nan"], "--margin must be a finite number"),
        (["plan", "gate_release.yaml", "--margin", "500"], "outside what the pilot's questions can reach"),
        (["plan", "gate_release.yaml", "--history", "other.db"], "other.db"),
        (["plan", "gate_release.yaml", "--pilot", "good"], "--pilot 'good': expected MODEL=PREDICTIONS"),
    ],
)
def test_bad_input_is_one_line(project, capsys, args, message):
    project.model("good", "student", 0.905)
    project.gate(GATE)
    project.gate("rules:\n  - apply_to: [good]\n    require: [f1 >= 50]\n", name="gate_points.yaml")
    project.run()
    code, out, err = qagate(project, capsys, *args)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("qagate plan: error: ") and message in err, err


def test_plan_of_a_gate_the_history_never_ran(project, capsys):
    project.gate(GATE)
    project.run()
    project.gate(GATE, name="gate_other.yaml")
    code, _, err = qagate(project, capsys, "plan", "gate_other.yaml", "--margin", "1")
    assert code == 2 and err.count("\n") == 1 and "holds no run of gate_other.yaml" in err


def _row(out: str, rule: str) -> list[str]:
    line = next(line for line in out.splitlines() if f" {rule} " in line)
    return line.split()


# --- the plan against a seeded simulation of the sequential loop (issue 23 item 6) ------------


def test_the_planned_stop_is_within_1_5x_of_the_simulated_median():
    """A population of 4,096 paired EM outcomes (the student a few points above 0.9 x teacher);
    the sequential loop (looks every 256, bets tuned to 4,096) on 200 seeded orders stops at a
    median n; ``plan_rule`` from a pilot of 500 of those questions, at the true margin, predicts it
    within a factor of 1.5 (the issue's bar), and a fixed-n verdict needs fewer."""
    from qagate.gating.judge import rule_sequence
    from qagate.scoring.confseq import batch_bounds

    rng = np.random.default_rng(7)
    size, orders, every = 4096, 200, 256
    teacher = (rng.random(size) < 0.8).astype(float) * 100
    student = np.where(teacher > 0, rng.random(size) < 0.92, rng.random(size) < 0.15) * 100.0
    rule = parse_rule("exact_match >= 0.9 * teacher", confidence=0.95)
    values = rule_values(rule, student, teacher)
    margin = float(values.mean())
    assert 2.0 < margin < 7.0
    sequence = rule_sequence(rule)
    order = np.stack([np.asarray(question_order(size, seed)) for seed in range(orders)])
    data = values[order]
    stopped = np.full(orders, size)
    for n in range(every, size + 1, every):
        low, high = batch_bounds(data[:, :n], sequence.lo, sequence.hi, 0.95, sequential=True, horizon=size)
        decided = ((low >= 0) | (high < 0)) & (stopped == size)
        stopped[decided] = n
    median = float(np.median(stopped))
    assert median < size  # the loop decides this margin before the questions run out
    pilot = values[np.asarray(question_order(size, 99))[:500]]
    plan = plan_rule(
        "s", rule, pilot, margin=margin, sequential=SequentialSpec(look_every=every), available=size
    )
    assert plan.stop_status == "pass"
    assert median / 1.5 <= plan.stops <= median * 1.5, (plan.stops, median)
    assert plan.fixed["questions"] < plan.stops  # a one-look verdict tuned to its n needs fewer
    # the loop itself, once, on those questions: the same stop as the plan's
    loop = SequentialLoop([rule], SequentialSpec(look_every=every), size)
    sample = like_sample(at_margin(rule, pilot, margin), size)
    for start, stop in loop.chunks():
        loop.update(stop, {rule.id: sample[start:stop]})
    assert loop.decisions()[rule.id].used == plan.stops


def test_the_plan_command_is_documented():
    page = (Path(__file__).resolve().parents[1] / "docs" / "commands.md").read_text(encoding="utf-8")
    assert (
        "qagate plan GATE_FILE" in page and "--margin POINTS" in page and "--pilot MODEL=PREDICTIONS" in page
    )


def test_the_wall_time_bench_turns_sequential_rules_into_the_same_rules_fixed_n(tmp_path):
    """bench/bench_sequential_wall.py's fixed-n copy: the same rules at the same levels, none sequential."""
    import importlib.util

    from qagate.gating.gatefile import load_gate_file

    script = Path(__file__).resolve().parents[1] / "bench" / "bench_sequential_wall.py"
    spec = importlib.util.spec_from_file_location("bench_sequential_wall", script)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    (tmp_path / "shipped").mkdir()
    (tmp_path / "fixed").mkdir()
    gate = tmp_path / "shipped" / "gate_x.yaml"
    gate.write_text(
        "sequential: {look_every: 10}\n"
        "rules:\n"
        "  - apply_to: students\n"
        "    require:\n"
        "      - exact_match >= 0.9 * teacher\n"  # a point rule made sequential: 95% by default
        "      - rule: f1 >= 50\n"
        "        confidence: 0.9\n"
        "      - rule: f1 >= 60\n"
        "        sequential: false\n"
        "      - speedup >= 2\n"  # cannot be sequential: stays as it is
    )
    copy, ids = bench.fixed_n_copy(gate, tmp_path / "fixed")
    assert ids == ["exact_match>=0.9*teacher@95%", "f1>=50@90%"]
    shipped, fixed = load_gate_file(gate), load_gate_file(copy)
    assert [r.id for b in fixed.blocks for r in b.rules] == [r.id for b in shipped.blocks for r in b.rules]
    assert [s for b in shipped.blocks for s in b.sequential][:2] != [None, None]
    assert all(s is None for b in fixed.blocks for s in b.sequential)
