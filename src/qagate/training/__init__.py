"""Training library behind ``qagate finetune`` and ``qagate distill``.

Sub-modules: ``features`` (SQuAD examples -> labelled token windows, length-grouped batches),
``models`` (loading BERT-like encoders as QA models, saving model directories), ``trainer`` (the
seeded, resumable training loop both recipes share: optimizer, schedule, checkpoints, span
losses), ``finetune`` (the fine-tuning recipe: data plan, outputs, card), ``distill`` (the
distillation loss, layer-subset students, teacher-logit cache), ``card`` (model card and
``qa_models/`` declaration). Each imports torch/transformers only inside its functions, so
importing this package is cheap.
"""
