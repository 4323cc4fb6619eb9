"""Inference: the batched extractive engine and one adapter per model kind, behind a lazy registry."""
