"""Real teacher/student comparisons: SQuAD v1.1 leaderboard systems replayed on the dev set.

The BERT ensemble is the teacher; the other submissions are students. Some clear a 95% gate and
some do not, and the bootstrap tells a real gap from sampling noise. Needs ``../shared``
(skipped with the reason when it is absent); replay models need no torch.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy  # noqa: F401  (see test_plugin.py: imported once for pytester's in-process runs)
import pytest

import qagate.scoring.stats  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QAGATE_SHARED", ROOT.parent / "shared"))
DEV = SHARED / "data" / "squad" / "dev-v1.1.json"
LEADERBOARD = ROOT / "qa_models" / "leaderboard"

pytestmark = pytest.mark.skipif(not DEV.is_file(), reason=f"shared SQuAD dev set not at {DEV}")


def test_some_students_clear_the_95_percent_gate_and_some_do_not(pytester, monkeypatch):
    monkeypatch.setenv("QAGATE_SHARED", str(SHARED))
    pytester.makefile(
        ".yaml",
        gate_board=textwrap.dedent(f"""\
        models: {LEADERBOARD}
        dataset: {DEV}
        rules:
          - apply_to: students
            require:
              - exact_match >= 0.95 * teacher
          - apply_to: [slqa-alibaba, match-lstm-smu]
            require:
              - rule: exact_match >= 0.95 * teacher
                confidence: 0.95
          - apply_to: [r-net-msra]
            require:
              - rule: f1 >= 0.95 * teacher
                confidence: 0.95
        """),
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-rA", "--qagate-baselines", str(pytester.path / "baselines")
    )
    found = {}
    for line in result.outlines:
        for word in ("PASSED", "FAILED"):
            if line.startswith(word + " "):
                found[line[len(word) + 1 :].split(" - ")[0]] = word
    assert found == {
        "gate_board.yaml::slqa-alibaba::exact_match>=0.95*teacher": "PASSED",  # 81.95 >= 81.90
        "gate_board.yaml::r-net-msra::exact_match>=0.95*teacher": "PASSED",  # 82.47
        "gate_board.yaml::match-lstm-smu::exact_match>=0.95*teacher": "FAILED",  # 67.63
        "gate_board.yaml::logistic-regression-stanford::exact_match>=0.95*teacher": "FAILED",
        "gate_board.yaml::slqa-alibaba::exact_match>=0.95*teacher@95%": "FAILED",  # undecided
        "gate_board.yaml::match-lstm-smu::exact_match>=0.95*teacher@95%": "FAILED",
        "gate_board.yaml::r-net-msra::f1>=0.95*teacher@95%": "PASSED",
    }
    out = result.stdout.str()
    assert (
        "qagate gate UNDECIDED: slqa-alibaba :: exact_match>=0.95*teacher@95% on dev-v1.1 "
        "(10570 questions)" in out
    )
    assert "qagate gate FAIL: match-lstm-smu :: exact_match>=0.95*teacher@95%" in out
    assert "entirely on the failing side" in out
    assert "exact_match  86.2062   67.6348  -18.5714  >= 81.8959 (0.95 * teacher)" in out


def test_the_example_gate_page_quotes_the_scores_the_official_definitions_give():
    """docs/example-gate.md's leaderboard table is the replayed files' EM/F1 on the dev set."""
    import re

    from qagate.data import load_dataset
    from qagate.data.loaders import load_predictions
    from qagate.scoring.squad import score

    page = (ROOT / "docs" / "example-gate.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| ([a-z-]+)(?: \(teacher\))? \| (\d+\.\d\d) \| (\d+\.\d\d) \|$", page, re.M)
    assert len(rows) == 5, rows
    dataset = load_dataset(str(DEV))
    for name, em, f1 in rows:
        scores = score(dataset, load_predictions(SHARED / "data" / "squad" / "predictions" / f"{name}.json"))
        assert (f"{scores.exact_match:.2f}", f"{scores.f1:.2f}") == (em, f1), name
