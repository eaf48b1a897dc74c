"""Model cards of the models trained by vsrkit and shipped inside the package (``vsrkit/hub/weights``).

Each bundled model ``NAME`` has ``NAME.safetensors`` (weights with their constructor arguments), ``NAME.json``
(the card as data: training data and recipe, iterations, validation numbers, speed) and ``NAME.md`` (the same,
for people). The validation numbers are measured on the first :data:`VALIDATION_FRAMES` frames of each
:data:`HELD_OUT` clip of ``../shared/data/clips`` by ``vsrkit.eval.cards`` (``vsrkit eval`` of the model, and of
MATLAB bicubic as the "Bicubic" row).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vsrkit.errors import VsrkitError
from vsrkit.hub.download import BUNDLED_DIR

__all__ = ["HELD_OUT", "VALIDATION_FRAMES", "card_path", "read_card"]

HELD_OUT = ("carphone_pristine.mp4", "vtest.avi")  # never in any training config of the shipped models
VALIDATION_FRAMES = 20  # frames from the start of each held-out clip that the cards' numbers are made on


def card_path(name: str, suffix: str = ".json") -> Path:
    """Where a bundled model's card (``.json``, ``.md``) or weights (``.safetensors``) are."""
    return BUNDLED_DIR / f"{name}{suffix}"


def read_card(name: str) -> dict[str, Any]:
    """The card of a bundled model as data."""
    path = card_path(name)
    if not path.is_file():
        raise VsrkitError(f"no model card for {name} ({path})")
    return json.loads(path.read_text())
