"""Training checkpoints: one safetensors file per save, written atomically, plus a small ``latest.json``.

The file holds every tensor of the run's state under a prefix (``model.``, ``ema.``, ``optim.state.<i>.<key>``,
``rng.torch``, ``rng.cuda.<i>``, ``rng.numpy``) and, in its metadata, two JSON documents:

- ``vsrkit``: ``{"family", "arch", "kwargs", "weights_prefix": "model."}``: the network, so that
  ``vsrkit.load_model(weights=FILE)`` builds it from its saved constructor arguments (``hub.checkpoint``);
- ``vsrkit_train``: the iteration, the resolved config, the optimizer's param groups, the scheduler, the GradScaler
  and the Python/NumPy RNG states that are not tensors.

Everything is read back with ``safetensors`` (no pickle).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from vsrkit.atomic import write_atomic, write_atomic_text
from vsrkit.errors import VsrkitError
from vsrkit.hub.checkpoint import WEIGHTS_META_KEY

TRAIN_META_KEY = "vsrkit_train"
FORMAT = "vsrkit-train-1"
LATEST = "latest.json"


def checkpoint_name(iteration: int) -> str:
    return f"iter_{iteration:08d}.safetensors"


def save_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], network: dict[str, Any],
                    train: dict[str, Any]) -> None:
    """Write a training checkpoint atomically (temporary name, then rename)."""
    from safetensors.torch import save_file

    data = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    meta = {
        WEIGHTS_META_KEY: json.dumps({**network, "weights_prefix": "model."}),
        TRAIN_META_KEY: json.dumps({"format": FORMAT, **train}),
    }
    write_atomic(path, lambda tmp: save_file(data, tmp, metadata=meta))


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """(tensors, network, train state) of a training checkpoint; a one-line error for anything else."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise VsrkitError(f"training checkpoint not found: {path}")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        network = json.loads(header[WEIGHTS_META_KEY])
        train = json.loads(header[TRAIN_META_KEY])
    except KeyError:
        raise VsrkitError(f"{path}: not a vsrkit training checkpoint (no training state in its metadata)") from None
    except Exception as e:  # noqa: BLE001 - a damaged file is the user's to fix
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise VsrkitError(f"cannot read training checkpoint {path}: {first}") from None
    if train.get("format") != FORMAT:
        raise VsrkitError(f"{path}: unknown training checkpoint format {train.get('format')!r}")
    return tensors, network, train


def write_latest(folder: Path, iteration: int, name: str) -> None:
    """Point ``latest.json`` at the newest complete checkpoint (after it is written)."""
    write_atomic_text(folder / LATEST, json.dumps({"iteration": iteration, "file": name}) + "\n")


def find_latest(folder: Path) -> Path | None:
    """The checkpoint ``latest.json`` names, or None when there is none."""
    f = folder / LATEST
    if not f.is_file():
        return None
    try:
        info = json.loads(f.read_text())
        path = folder / str(info["file"])
    except (ValueError, KeyError, TypeError, OSError):
        raise VsrkitError(f"{f}: damaged (expected {{'iteration': N, 'file': NAME}})") from None
    if not path.is_file():
        raise VsrkitError(f"{f} names {path.name}, which is missing")
    return path
