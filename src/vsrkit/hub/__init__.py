"""Checkpoint reading (safe, every official container), recognition, downloads and load_model; the names and
tables are declared by each family in ``vsrkit.models``."""

from vsrkit.hub.loader import load_model

__all__ = ["load_model"]
