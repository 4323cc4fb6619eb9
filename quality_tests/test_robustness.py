"""Robustness as a property, with Hypothesis: on questions a model answers exactly, wider spacing
or an upper-cased word away from the answer (and from the words the question uses) must not
take its F1 below 0.5. The models are uncased WordPiece encoders, so this checks that the
engine maps answers back through shifted offsets; any model that reads case or spacing is
held to the same standard.

Typos are not in this property on purpose: the distilled student does fail it ("leavened" ->
"laevened" in the context of "What leavens sourdough bread?" changes its answer to "lactic and
acetic acids"). How much typos cost is measured over the whole sample instead, with a threshold,
in gate_robustness.yaml.

``qagate.strategies.perturbed`` draws the edits and keeps every reference answer a valid span;
a failure shows the smallest perturbation that broke the answer. ``derandomize`` makes the
drawn cases the same in every run, so a release gate never flips on luck. A failure's shrunk
example is kept in ``baselines/counterexamples/<model>/small_edits_keep_answer.json``
(:mod:`qagate.counterexamples`) and replayed first by every later run, so a fixed bug stays fixed.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qagate.counterexamples import Counterexamples
from qagate.scoring.squad import f1
from qagate.strategies import perturbed


def test_small_edits_away_from_the_answer_keep_it(qa_model, qagate_dataset, qagate_eval, qagate_settings):
    result = qagate_eval(qa_model)
    right = [ex for ex in qagate_dataset.examples if result.scores.per_question_em.get(ex.id) == 1.0]
    if not right:
        pytest.skip(f"{qa_model.name} answers no question of {qagate_dataset.name} exactly")
    keeper = Counterexamples(qagate_settings.baselines, qa_model.name, "small_edits_keep_answer")

    def holds(variant):
        answer = qa_model.predict([variant]).answers[variant.id]
        return f1(answer, variant.answers) >= 0.5, answer

    @settings(
        max_examples=30,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(data=st.data())
    def search(data):
        example = data.draw(st.sampled_from(right), label="question")
        variant = data.draw(perturbed(example, kinds=["whitespace", "case"]), label="perturbed")
        keeper.check(example, variant, holds)

    keeper.run(search, holds)
