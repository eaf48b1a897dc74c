"""File-to-file jobs: reader -> engine -> writer, with the output written atomically."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tqdm import tqdm

from vsrkit.errors import VsrkitError
from vsrkit.hub.loader import load_model
from vsrkit.hub.registry import FAST_MODEL, default_model
from vsrkit.infer import engine
from vsrkit.io import VideoReader, VideoWriter, is_image_folder_output
from vsrkit.io.writer import check_output
from vsrkit.infer.memory import default_budget, plan_tile
from vsrkit.infer.runtime import make_config

log = logging.getLogger(__name__)


def upscale_file(
    input: str | os.PathLike,
    output: str | os.PathLike,
    *,
    model: str | torch.nn.Module | None = None,
    weights: str | os.PathLike | None = None,
    device: str = "auto",
    precision: str = "fp32",
    tile: int | None = None,
    tile_overlap: int | None = None,
    chunk: int | None = None,
    chunk_overlap: int | None = None,
    max_memory: float | None = None,
    crf: int = 18,
    overwrite: bool = False,
    max_frames: int | None = None,
    progress: bool = True,
    say: Callable[[str], None] | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> Path:
    """Upscale a video file or image folder into a video file or PNG folder; returns the output path.

    Audio and subtitle streams are copied, frame rate and timestamps kept. The output is written to a
    temporary name and renamed when complete. ``max_memory`` (GiB) picks the tile size from the model's
    memory estimate (``plan_tile``). ``on_frame(n)`` is called after the n-th frame is written.
    """
    inp, out = Path(input), Path(output)
    cfg = make_config(device, precision, tile, tile_overlap, chunk, chunk_overlap, say=say)
    with VideoReader(inp) as reader:
        info = reader.info
        # check the output before the (slow) model load, so mistakes are reported at once
        check_output(out, inp, overwrite=overwrite)
        if model is None and weights is None:
            model = default_model(str(cfg.device))
            if cfg.device.type == "cpu":
                (say or log.info)(f"no GPU: {model} takes seconds a frame on a CPU; --fast ({FAST_MODEL}) is about "
                                  f"40x faster, at lower quality")
        net = model if isinstance(model, torch.nn.Module) else load_model(model, weights=weights, progress=progress)
        if max_memory is not None and tile:
            raise VsrkitError("give either --tile or --max-memory, not both")
        budget = max_memory * 2**30 if max_memory is not None else None
        if budget is None and tile is None and net.spec.memory_per_pixel:
            budget = default_budget(cfg.device)  # memory-hungry models (VRT) tile by default
        if budget is not None:
            n = info.num_frames if max_frames is None else min(max_frames, info.num_frames or max_frames)
            cfg = dataclasses.replace(cfg, tile=plan_tile(net, cfg, budget, info.height, info.width, n))
            (say or log.info)(f"memory budget {budget / 2**30:.1f} GiB: "
                              + (f"tiles of {cfg.tile} pixels" if cfg.tile else "whole frames"))
        s = net.spec.scale
        to_png = is_image_folder_output(out)
        bit_depth = 16 if (info.bit_depth == 16 and to_png) else 8
        out_dtype = np.uint16 if bit_depth == 16 else np.uint8
        total = info.num_frames if max_frames is None else min(max_frames, info.num_frames or max_frames)

        def source() -> Iterator[tuple[Any, np.ndarray]]:
            for k, frame in enumerate(reader):
                if max_frames is not None and k >= max_frames:
                    break
                yield frame.pts, frame.image

        with VideoWriter(
            out,
            width=info.width * s,
            height=info.height * s,
            source=info,
            crf=crf,
            channels=info.channels,
            bit_depth=bit_depth,
            overwrite=overwrite,
        ) as writer, tqdm(total=total, unit="frame", desc=inp.name, disable=not progress, dynamic_ncols=True) as bar:
            n = 0
            for pts, image in engine.upscale_stream(net, source(), cfg, out_dtype):
                writer.write(image, pts)
                n += 1
                bar.update(1)
                if on_frame is not None:
                    on_frame(n)
            if n == 0:
                raise VsrkitError(f"{inp}: no frames to upscale")
    return out
