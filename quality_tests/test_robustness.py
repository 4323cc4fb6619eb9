"""Robustness as a property, with Hypothesis: on questions a model answers exactly, a typo, wider
spacing or an upper-cased word away from the answer must not take its F1 below 0.5.

``qagate.strategies.perturbed`` draws the edits and keeps every reference answer a valid span;
a failure shows the smallest perturbation that broke the answer. ``derandomize`` makes the
drawn cases the same in every run, so a release gate never flips on luck.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qagate.metrics import f1
from qagate.strategies import perturbed


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_small_edits_away_from_the_answer_keep_it(qa_model, qagate_dataset, qagate_eval, data):
    result = qagate_eval(qa_model)
    right = [ex for ex in qagate_dataset.examples if result.scores.per_question_em.get(ex.id) == 1.0]
    if not right:
        pytest.skip(f"{qa_model.name} answers no question of {qagate_dataset.name} exactly")
    example = data.draw(st.sampled_from(right), label="question")
    variant = data.draw(perturbed(example, kinds=["typo", "whitespace", "case"]), label="perturbed")
    answer = qa_model.predict([variant]).answers[variant.id]
    assert f1(answer, variant.answers) >= 0.5, (
        f"{qa_model.name} answered {answer!r} on the perturbed context (references {list(variant.answers)})")
