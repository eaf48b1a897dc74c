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
from vsrkit.infer import engine
from vsrkit.io import VideoReader, VideoWriter, is_image_folder_output
from vsrkit.io.background import Prefetch, Writer
from vsrkit.io.writer import check_output
from vsrkit.infer.memory import default_budget, plan_tile
from vsrkit.infer.runtime import make_config, resolve_precision, set_threads

log = logging.getLogger(__name__)


def upscale_file(
    input: str | os.PathLike,
    output: str | os.PathLike,
    *,
    model: str | torch.nn.Module | None = None,
    weights: str | os.PathLike | None = None,
    backend: str = "torch",
    device: str = "auto",
    precision: str = "fp32",
    threads: int | None = None,
    compile: bool = False,
    channels_last: bool = True,
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
    ``precision="auto"`` picks bf16 or fp32 for the model and says which (``resolve_precision``).
    Decoding and encoding run in their own threads, overlapped with the model.
    """
    inp, out = Path(input), Path(output)
    set_threads(threads)
    cfg = make_config(device, precision, tile, tile_overlap, chunk, chunk_overlap, say=say,
                      channels_last=channels_last, compile=compile)
    with VideoReader(inp) as reader:
        info = reader.info
        # check the output before the (slow) model load, so mistakes are reported at once
        check_output(out, inp, overwrite=overwrite)
        if backend == "onnxruntime":
            net, cfg = _onnx_model(model, weights, cfg, tile, max_memory)
        elif backend != "torch":
            raise VsrkitError(f"unknown backend {backend!r} (use torch or onnxruntime)")
        else:
            net = model if isinstance(model, torch.nn.Module) else load_model(model, weights=weights, progress=progress)
        cfg = resolve_precision(cfg, net.spec, say)
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

            def written(k: int) -> None:
                bar.update(1)
                if on_frame is not None:
                    on_frame(k)

            frames = Prefetch(source())  # decoding thread
            sink = Writer(writer.write, written)  # encoding thread
            try:
                n = 0
                for pts, image in engine.upscale_stream(net, frames, cfg, out_dtype):
                    sink.put(image, pts)
                    n += 1
                sink.finish()
            finally:
                sink.close()
                frames.close()
            if n == 0:
                raise VsrkitError(f"{inp}: no frames to upscale")
    return out


def _onnx_model(model: Any, weights: Any, cfg: Any, tile: int | None, max_memory: float | None) -> tuple[Any, Any]:
    """``--backend onnxruntime``: the exported file in ``weights`` as a network; fixed-size exports set the tiles."""
    from vsrkit.export.onnx import OnnxModel

    if weights is None or model is not None:
        raise VsrkitError("--backend onnxruntime runs an exported file: give it as --weights model.onnx, without --model")
    net = OnnxModel(weights)
    if net.size:
        if max_memory is not None:
            raise VsrkitError(f"{weights} takes tiles of {net.size} pixels: --max-memory does not apply")
        if tile and tile > net.size:
            raise VsrkitError(f"--tile {tile}: {weights} takes tiles of at most {net.size} pixels")
        side = tile or net.size
        cfg = dataclasses.replace(cfg, tile=side, tile_overlap=min(cfg.tile_overlap, (side - 1) // 2))
    return net, cfg
