"""Recognising a checkpoint's family, architecture and constructor arguments from its keys and shapes.

Each family declares its rules (``Family.rules`` in its module: the keys that must be present and a reader of the
kwargs). The families are asked in registration order (``vsrkit.models``), each imported only when its turn
comes; within a family its rules are asked in their order. The first reader that claims the file decides (it may
still refuse the file with a clear error).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from vsrkit.errors import VsrkitError
from vsrkit.models.registry import get_family, registered


def detect(state_dict: Mapping[str, torch.Tensor], filename: str | None = None) -> tuple[str, str, dict[str, Any]]:
    """(family, class name, kwargs) of the architecture a checkpoint belongs to; VsrkitError if none."""
    for name in registered():
        for rule in get_family(name).rules:
            if not rule.applies(state_dict):
                continue
            try:
                found = rule.read(state_dict, filename)
            except ValueError as e:  # a model id in the file name that does not parse
                raise VsrkitError(f"{filename or 'checkpoint'}: {e}") from None
            if found is not None:
                return name, found[0], found[1]
    keys = ", ".join(list(state_dict)[:3])
    raise VsrkitError(f"{filename or 'checkpoint'}: architecture not recognised from its keys ({keys}, ...)")


def convert(family: str, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A checkpoint's keys in vsrkit's names (a family's ``convert``: EDVR's older naming, the released RLSP's
    TensorFlow names); unchanged for a family without one."""
    return get_family(family).convert_keys(state_dict)
