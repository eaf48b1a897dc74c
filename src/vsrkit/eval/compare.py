"""Crops side by side for a real clip with no ground truth (``vsrkit report --video``): the same region of one frame
upscaled by bicubic and by each model, for the report's crops and slider.

Which model suits a real (compressed) video is seen, not scored: with no ground truth there is no PSNR, so the page
shows bicubic | a model trained on clean degradations | a real-world model, of the same frame and box. The frame is
upscaled with its neighbours (``CONTEXT`` frames before it and after it), as in a whole run, so recurrent and
bidirectional models see the context they need. The box is the square of the bicubic frame with the most detail.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vsrkit.data.degrade import bicubic_baseline
from vsrkit.errors import VsrkitError
from vsrkit.eval.run import CROP_SIZE, _b64, _crop_box
from vsrkit.infer import engine
from vsrkit.infer.runtime import make_config
from vsrkit.io.pixfmt import to_rgb8
from vsrkit.io.reader import VideoReader

__all__ = ["CONTEXT", "video_crops"]

CONTEXT = 10  # frames upscaled on each side of the shown frame


def _frames(video: Path, frame: int | None) -> tuple[list[np.ndarray], int, int]:
    """The frames around the shown one (RGB uint8), its index among them, and its index in the video."""
    kept: list[np.ndarray] = []
    seen = 0
    with VideoReader(video) as reader:
        total = reader.info.num_frames
        want = frame if frame is not None else (min(CONTEXT, total - 1) if total else CONTEXT)
        for f in reader:
            seen = f.index + 1
            if f.index < want - CONTEXT:
                continue
            if f.index > want + CONTEXT:
                break
            kept.append(to_rgb8(f.image))
        first = max(want - CONTEXT, 0)
    if not kept or want - first >= len(kept):
        raise VsrkitError(f"{video}: no frame {want} (the video has {seen} frame{'s' if seen != 1 else ''})")
    return kept, want - first, want


def video_crops(video: str | os.PathLike, models: list[str], frame: int | None = None, size: int = CROP_SIZE,
                device: str = "auto", progress: bool = False) -> dict[str, Any]:
    """Bicubic and each model's output of frame ``frame`` (default: the 11th, or the last) of ``video``, cropped to
    the same ``size`` x ``size`` box: ``{'clip', 'frame', 'box', 'scale', 'tiles': [(name, PNG base64), ...]}``.
    All models must have the same scale."""
    from vsrkit.hub.loader import load_model

    video = Path(video)
    if not models:
        raise VsrkitError("give at least one model to compare with bicubic")
    if frame is not None and frame < 0:
        raise VsrkitError(f"--frame must be 0 or more, got {frame}")
    if size < 8:
        raise VsrkitError(f"--crop-size must be at least 8 pixels, got {size}")
    frames, at, index = _frames(video, frame)
    nets = [(name, load_model(name, progress=progress)) for name in models]
    scales = {n.spec.scale for _, n in nets}
    if len(scales) != 1:
        raise VsrkitError("the models to compare have different scales: " +
                          ", ".join(f"{name} x{n.spec.scale}" for name, n in nets))
    scale = scales.pop()
    cfg = make_config(device)
    bicubic = bicubic_baseline(frames[at], scale)
    top, left, s = _crop_box(bicubic, size)
    box = (slice(top, top + s), slice(left, left + s))
    tiles = [("Bicubic", _b64(bicubic[box]))]
    for name, net in nets:
        out = None
        for i, o in enumerate(engine.upscale_frames(net, iter(frames), cfg, np.uint8)):
            if i == at:
                out = to_rgb8(o)
        if out is None or out.shape[:2] != bicubic.shape[:2]:
            raise VsrkitError(f"{name}: no output of frame {at} at the size of bicubic's")
        tiles.append((name, _b64(out[box])))
    return {"clip": video.name, "frame": index, "box": [top, left, s, s], "scale": scale, "tiles": tiles}
