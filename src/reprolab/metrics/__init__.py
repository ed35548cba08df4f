"""Evaluation metrics: one module per kind of benchmark (classification, retrieval, ...)."""
