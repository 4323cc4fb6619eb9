"""Datasets: the QA example record, loaders, subsets, fingerprint, validation, perturbations."""

from qagate.data.loaders import load_dataset, load_predictions, read_json
from qagate.data.predictions import Predictions
from qagate.data.records import SAMPLE, Dataset, QAExample, sample_path

__all__ = [
    "SAMPLE",
    "Dataset",
    "Predictions",
    "QAExample",
    "load_dataset",
    "load_predictions",
    "read_json",
    "sample_path",
]
