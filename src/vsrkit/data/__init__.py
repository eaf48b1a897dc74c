"""Datasets and degradations."""
