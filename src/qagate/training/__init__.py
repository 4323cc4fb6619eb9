"""Training library behind ``qagate finetune`` and ``qagate distill``.

Sub-modules: ``features`` (SQuAD examples -> labelled token windows, length-grouped batches),
``finetune`` (the seeded, resumable training loop and the fine-tuning recipe), ``distill``
(the distillation loss, layer-subset students, teacher-logit cache), ``card`` (model card and
``qa_models/`` declaration). Each imports torch/transformers only inside its functions, so
importing this package is cheap.
"""
