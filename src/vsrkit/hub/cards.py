"""Model cards of the models trained by vsrkit and shipped inside the package (``vsrkit/hub/weights``).

Each bundled model ``NAME`` has ``NAME.safetensors`` (weights with their constructor arguments), ``NAME.json``
(the card as data: training data and recipe, iterations, validation numbers, speed) and ``NAME.md`` (the same,
for people). The validation numbers are made by :func:`validate`: ``vsrkit eval`` (``vsrkit.eval.run.evaluate``)
on the first :data:`VALIDATION_FRAMES` frames of each held-out clip of ``../shared/data/clips``, written as PNG
by :func:`write_heldout_frames`, Y channel (MATLAB BT.601), no border crop, LR made from the GT by BI or BD.
Bicubic is :class:`MatlabBicubic` through the same evaluation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vsrkit.errors import VsrkitError
from vsrkit.hub.download import BUNDLED_DIR
from vsrkit.models.spec import ModelSpec, Temporal

__all__ = ["HELD_OUT", "VALIDATION_FRAMES", "MatlabBicubic", "card_path", "read_card", "write_heldout_frames",
           "validate"]

HELD_OUT = ("carphone_pristine.mp4", "vtest.avi")  # never in any training config of the shipped models
VALIDATION_FRAMES = 20  # frames from the start of each held-out clip that the cards' numbers are made on


class MatlabBicubic(nn.Module):
    """MATLAB bicubic upscaling (``imresize``) as a per-frame RGB model: the "Bicubic" row of the cards."""

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.spec = ModelSpec(scale=scale, temporal=Temporal("frame"), channels=3)
        self.register_buffer("_anchor", torch.zeros(1), persistent=False)  # gives the engine a device and dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from vsrkit.data.degrade import imresize

        return imresize(x.float(), scale=self.scale).to(x.dtype)


def card_path(name: str, suffix: str = ".json") -> Path:
    """Where a bundled model's card (``.json``, ``.md``) or weights (``.safetensors``) are."""
    return BUNDLED_DIR / f"{name}{suffix}"


def read_card(name: str) -> dict[str, Any]:
    """The card of a bundled model as data."""
    path = card_path(name)
    if not path.is_file():
        raise VsrkitError(f"no model card for {name} ({path})")
    return json.loads(path.read_text())


def write_heldout_frames(clips_dir: str | os.PathLike, out: str | os.PathLike, frames: int = VALIDATION_FRAMES,
                         clips: tuple[str, ...] = HELD_OUT) -> Path:
    """The first ``frames`` frames of each held-out clip as PNG, one folder per clip (``vsrkit eval --gt``)."""
    from vsrkit.data.datasets import VideoFrames
    from vsrkit.eval.run import encode_png

    out = Path(out)
    for name in clips:
        video = Path(clips_dir) / name
        if not video.is_file():
            raise VsrkitError(f"held-out clip not found: {video}")
        folder = out / Path(name).stem
        folder.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(VideoFrames(video).read(0, frames)):
            (folder / f"{i:08d}.png").write_bytes(encode_png(frame))
    return out


def validate(model: str | nn.Module, gt: str | os.PathLike, degradation: str, metrics: tuple[str, ...] = ("psnr", "ssim"),
             precision: str = "fp32") -> dict[str, Any]:
    """``vsrkit eval`` of a model (a name or a network) on the held-out frames: overall and per-clip values."""
    from vsrkit.eval.run import evaluate

    res = evaluate(model, gt, degradation=degradation, metrics=metrics, device="cpu", precision=precision,
                   progress=False)
    keys = [k for k in res["overall"] if k not in ("ms_per_frame", "fps")]
    return {"overall": {k: res["overall"][k] for k in keys},
            "clips": {c["name"]: {k: c[k] for k in keys} for c in res["clips"]}}
