"""The validation numbers of the bundled models' cards (``vsrkit.hub.cards``): how they are measured.

:func:`validate` is ``vsrkit eval`` (:func:`vsrkit.eval.run.evaluate`) on the first ``VALIDATION_FRAMES`` frames
of each held-out clip of ``../shared/data/clips``, written as PNG by :func:`write_heldout_frames`, Y channel
(MATLAB BT.601), no border crop, LR made from the GT by BI or BD. Bicubic is :class:`MatlabBicubic` through the
same evaluation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vsrkit.data.datasets import VideoFrames
from vsrkit.data.degrade import bicubic_upscale
from vsrkit.errors import VsrkitError
from vsrkit.eval.run import evaluate
from vsrkit.hub.cards import HELD_OUT, VALIDATION_FRAMES
from vsrkit.io.images import encode_png, write_frame
from vsrkit.models.spec import ModelSpec, Temporal

__all__ = ["MatlabBicubic", "write_heldout_frames", "validate"]


class MatlabBicubic(nn.Module):
    """The bicubic baseline (``data.degrade.bicubic_upscale``: MATLAB ``imresize``) as a per-frame RGB model: the
    "Bicubic" row of the cards."""

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.spec = ModelSpec(scale=scale, temporal=Temporal("frame"), channels=3)
        self.register_buffer("_anchor", torch.zeros(1), persistent=False)  # gives the engine a device and dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bicubic_upscale(x.float(), self.scale).to(x.dtype)


def write_heldout_frames(clips_dir: str | os.PathLike, out: str | os.PathLike, frames: int = VALIDATION_FRAMES,
                         clips: tuple[str, ...] = HELD_OUT) -> Path:
    """The first ``frames`` frames of each held-out clip as PNG, one folder per clip (``vsrkit eval --gt``)."""
    out = Path(out)
    for name in clips:
        video = Path(clips_dir) / name
        if not video.is_file():
            raise VsrkitError(f"held-out clip not found: {video}")
        folder = out / Path(name).stem
        folder.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(VideoFrames(video).read(0, frames)):
            write_frame(folder, i, encode_png(frame))
    return out


def validate(model: str | nn.Module, gt: str | os.PathLike, degradation: str, metrics: tuple[str, ...] = ("psnr", "ssim"),
             precision: str = "fp32", crf: float | None = None) -> dict[str, Any]:
    """``vsrkit eval`` of a model (a name or a network) on the held-out frames: overall and per-clip values;
    ``crf``: the LR clips then through H.264 at that crf (``vsrkit eval --crf``)."""
    res = evaluate(model, gt, degradation=degradation, metrics=metrics, device="cpu", precision=precision,
                   progress=False, crf=crf)
    keys = [k for k in res["overall"] if k not in ("ms_per_frame", "fps")]
    return {"overall": {k: res["overall"][k] for k in keys},
            "clips": {c["name"]: {k: c[k] for k in keys} for c in res["clips"]}}
