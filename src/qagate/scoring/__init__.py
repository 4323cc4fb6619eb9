"""Scoring: official SQuAD EM/F1, BERTScore, bootstrap statistics, and the one metric registry."""
