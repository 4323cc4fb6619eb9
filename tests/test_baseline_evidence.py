"""Baselines with evidence (issue 29 item 4): a baseline keeps its per-question scores, a baseline
rule with ``confidence:`` is judged paired per question by the one interval engine, older files
without them stay point comparisons (and say so), and a baseline on other or unknown data is
refused with one line naming both fingerprints and the file."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from qagate.assertions import assert_gate
from qagate.data import load_dataset
from qagate.gating.evidence import baseline_evidence
from qagate.gating.judge import judge
from qagate.gating.rules import parse_rule
from qagate.scoring.scores import Scores
from qagate.store.baselines import load_baseline, make_provenance, write_baseline
from qagate.store.history import read_history, read_question_scores
from qagate.store.questions import QuestionScores
from test_plugin import Project, outcomes, predictions, project  # noqa: F401 (a fixture)

FP = "f" * 64
RULE = parse_rule("f1 >= baseline - 0.5", confidence=0.95)


def scores(f1: np.ndarray, missing: tuple[str, ...] = ()) -> Scores:
    ids = [f"q{i:04d}" for i in range(f1.size)]
    table = {qid: float(v) for qid, v in zip(ids, f1)}
    em = {qid: float(v == 1.0) for qid, v in table.items()}
    n = f1.size
    return Scores(100 * f1.mean(), 100 * f1.mean(), n, n - len(missing), list(missing), [], em, table)


def stored_baseline(tmp_path: Path, base: Scores, fingerprint: str = FP):
    provenance = make_provenance(
        dataset_name="d",
        dataset_fingerprint=fingerprint,
        dataset_size=base.total,
        model_name="m",
        model_fingerprint="",
    )
    path = tmp_path / "d" / "m.json"
    write_baseline(
        path, {"f1": base.f1, "exact_match": base.exact_match}, provenance, QuestionScores.from_scores(base)
    )
    return load_baseline(path)


def verdict(stored, current: Scores, rule=RULE, fingerprint: str | None = FP):
    evidence = baseline_evidence(
        rule,
        current.f1,
        stored,
        path=stored.path,
        written=False,
        write_command="CMD",
        dataset_fingerprint=fingerprint,
        scores=current,
        model="m",
    )
    return judge(rule, "m", evidence)


def base_and_changed(n: int, flipped_down: float, flipped_up: float, seed: int = 0) -> tuple[Scores, Scores]:
    """A baseline right on ~80% of ``n`` questions, and a model that differs from it on a share
    of them: ``flipped_down`` right -> wrong, ``flipped_up`` wrong -> right."""
    rng = np.random.default_rng(seed)
    base = (rng.random(n) < 0.8).astype(float)
    current = base.copy()
    right, wrong = np.flatnonzero(base == 1.0), np.flatnonzero(base == 0.0)
    current[rng.choice(right, round(flipped_down * n), replace=False)] = 0.0
    current[rng.choice(wrong, round(flipped_up * n), replace=False)] = 1.0
    return scores(base), scores(current)


def test_a_paired_baseline_rule_passes_fails_and_stays_undecided_as_the_evidence_says(tmp_path):
    base, better = base_and_changed(1000, 0.0, 0.05)  # +5 points, every change upward
    stored = stored_baseline(tmp_path, base)
    assert stored.questions is not None and stored.questions["count"] == 1000
    passed = verdict(stored, better)
    assert passed.status == "pass" and passed.interval is not None and passed.interval.low > 0
    _, worse = base_and_changed(1000, 0.05, 0.0)
    failed = verdict(stored, worse)
    assert failed.status == "fail" and failed.interval is not None and failed.interval.high < 0
    _, churn = base_and_changed(1000, 0.05, 0.045)  # -0.5 points net: what the rule allows, no more
    assert verdict(stored, churn).status == "undecided"


def test_pairing_is_what_decides_an_equally_good_retrain(tmp_path):
    """The same model again: paired, every difference is 0 and 2,000 questions decide it passes;
    unpaired (as an absolute rule on each side) no sample of this size could."""
    base, same = base_and_changed(2000, 0.0, 0.0)
    assert verdict(stored_baseline(tmp_path, base), same).status == "pass"


def test_an_old_baseline_without_per_question_scores_is_a_point_comparison_that_says_why(tmp_path):
    base, better = base_and_changed(400, 0.0, 0.01)
    stored = stored_baseline(tmp_path, base)
    data = json.loads(stored.path.read_text())
    del data["questions"]
    stored.path.write_text(json.dumps(data))
    old = load_baseline(stored.path)
    assert old is not None and old.questions is None and old.metrics["f1"] == pytest.approx(base.f1)
    judged = verdict(old, better)
    assert judged.status == "pass" and judged.interval is None
    assert any("keeps no per-question scores" in n and "point comparison" in n for n in judged.notes)


def test_other_questions_or_missing_baseline_answers_cannot_pass(tmp_path):
    base, better = base_and_changed(400, 0.0, 0.05)
    stored = stored_baseline(tmp_path, base)
    fewer = scores(np.ones(399))  # a question the baseline had is gone
    judged = verdict(stored, fewer)
    assert judged.status == "fail" and any("other questions" in n for n in judged.notes)
    lacking = scores(np.where(np.arange(400) < 10, 0.0, 1.0), missing=tuple(f"q{i:04d}" for i in range(10)))
    stored = stored_baseline(tmp_path, lacking)
    judged = verdict(stored, scores(np.ones(400)))
    assert judged.status == "fail" and any("the baseline has no answer for 10" in n for n in judged.notes)


def test_a_baseline_on_other_or_unknown_data_is_refused_naming_both_fingerprints(tmp_path):
    base, same = base_and_changed(100, 0.0, 0.0)
    stored = stored_baseline(tmp_path, base)
    other = verdict(stored, same, fingerprint="e" * 64)
    assert other.status == "fail"
    line = next(n for n in other.notes if "not comparable" in n)
    assert f"fingerprint {'f' * 12}, this run {'e' * 12}" in line and str(stored.path) in line
    unknown = stored_baseline(tmp_path, base, fingerprint="")
    line = next(n for n in verdict(unknown, same).notes if "not comparable" in n)
    assert f"no known dataset (fingerprint none, this run {'f' * 12})" in line and "\n" not in line


def test_assert_gate_needs_the_dataset_for_a_baseline_file_and_pairs_with_it(tmp_path):
    dataset = load_dataset("sample")
    ids = [example.id for example in dataset.examples]
    f1 = {qid: 1.0 for qid in ids}
    result = Scores(100.0, 100.0, len(ids), len(ids), [], [], dict(f1), dict(f1))

    class Result:  # what qagate_eval gives, as far as assert_gate reads it
        model, metrics, scores = "m", {"f1": 100.0, "exact_match": 100.0}, result
        predictions = SimpleNamespace(answers={})

    path = tmp_path / "m.json"
    with pytest.raises(ValueError, match="pass dataset=... "):
        assert_gate("f1 >= baseline - 0.5", Result(), baseline=path)
    assert not path.exists()
    with pytest.warns(UserWarning, match="no baseline yet"):
        assert assert_gate("f1 >= baseline - 0.5", Result(), baseline=path, dataset=dataset).status == "new"
    written = load_baseline(path)
    assert written is not None and written.dataset_fingerprint == dataset.fingerprint
    assert written.question_scores(ids).per_question_f1 == f1
    judged = assert_gate("f1 >= baseline - 10", Result(), baseline=path, dataset=dataset, confidence=0.95)
    assert judged.status == "pass" and judged.interval is not None  # paired: the same answers, 65 questions
    data = json.loads(path.read_text())
    data["provenance"]["dataset"]["fingerprint"] = ""  # written by an older assert_gate without dataset=
    path.write_text(json.dumps(data))
    with pytest.raises(AssertionError, match="recorded on no known dataset"):
        assert_gate("f1 >= baseline - 0.5", Result(), baseline=path, dataset=dataset)
    assert assert_gate("f1 >= baseline - 0.5", Result(), baseline={"f1": 99.0}).status == "pass"


def test_shipped_and_old_baseline_files_still_load():
    root = Path(__file__).resolve().parents[1] / "baselines"
    files = sorted(root.rglob("*.json"))
    assert files
    for path in files:
        stored = load_baseline(path)
        assert stored is not None and stored.metrics and stored.dataset_fingerprint
        if stored.questions is not None:
            assert stored.questions["count"] == stored.provenance["dataset"]["questions"]


# --- end to end --------------------------------------------------------------------------------


def test_pytester_baselines_are_written_with_their_questions_then_judge_a_worse_model(project):  # noqa: F811
    project.gate("""\
        rules:
          - apply_to: [bad]
            confidence: 0.95
            require: [f1 >= baseline - 0.5, "f1[question=what] >= baseline - 0.5"]
        """)
    project.run("-rA").assert_outcomes(passed=2)  # NEW: written from this run
    path = project.root / "baselines" / "data" / "bad.json"
    stored = load_baseline(path)
    assert stored is not None and stored.questions is not None and "ids" not in stored.questions
    ids = sorted(predictions(0.7))
    assert stored.question_scores(ids).mean("f1") == pytest.approx(stored.metrics["f1"])
    written = path.read_text()
    history = project.root / ".qagate" / "history.db"

    def run_with(share: float) -> tuple[str, dict]:
        (project.root / "models" / "bad.json").write_text(json.dumps(predictions(share)))
        result = project.run("-rA")
        whole, part = read_history(history).runs[-1]["results"]
        assert part["status"] == whole["status"]  # the slice (every question here) is paired alike
        bounds = ("interval_low", "interval_high")
        assert [part[k] for k in bounds] == [whole[k] for k in bounds]
        return next(iter(outcomes(result).values())), whole

    status, row = run_with(0.60)  # 10 points worse on 400 questions: decided
    assert status == "FAILED" and row["status"] == "fail" and row["interval_high"] < 0
    status, row = run_with(0.70)  # the same answers: 400 questions cannot tell a 0.5-point margin
    assert row["status"] == "undecided" and row["interval_low"] < 0 < row["interval_high"]
    status, row = run_with(0.95)  # 25 points better
    assert status == "PASSED" and row["status"] == "pass" and row["interval_low"] > 0
    assert path.read_text() == written  # judged against, never rewritten without being asked
    run_id = read_history(history).runs[-1]["id"]
    back = read_question_scores(history, run_id, "bad")
    assert back.total == 400 and back.mean("exact_match") == pytest.approx(95.0)
