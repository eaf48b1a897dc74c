"""Memory planning: the tile size that fits a memory budget, from the model's declared cost."""

from __future__ import annotations

import math
import os

import torch

from vsrkit.errors import VsrkitError
from vsrkit.infer.runtime import DEFAULT_CHUNK_OVERLAP, EngineConfig
from vsrkit.models.spec import ModelSpec

FRAME_BATCH = 4  # frames per call for frame models
WINDOW_CHUNK = 8  # outputs per call for window models

GENERIC_MEMORY_PER_PIXEL = 16 * 1024  # bytes per input pixel per frame, for models that declare none
RUNTIME_RESERVE = 512 * 2**20  # Python, torch, codecs


def frames_per_call(spec: ModelSpec, cfg: EngineConfig) -> int:
    """How many frames one model call holds, by temporal kind."""
    t = spec.temporal
    protocol = cfg.protocol or spec.protocol
    if t.kind == "frame":
        return FRAME_BATCH
    if t.kind == "window":
        return WINDOW_CHUNK + t.window - 1
    if t.kind == "recurrent":
        return t.window
    if t.kind == "bidirectional":
        return cfg.chunk + 2
    if protocol.clip:
        return protocol.clip
    overlap = cfg.chunk_overlap
    if overlap is None:
        overlap = DEFAULT_CHUNK_OVERLAP if protocol.clip_overlap is None else protocol.clip_overlap
    return cfg.chunk + 2 * overlap


def default_budget(device: torch.device) -> float:
    """The memory budget (bytes) used when a model declares ``memory_per_pixel`` and no tile or budget
    is given: 80 % of a GPU's memory; on CPU half the RAM, at most 8 GiB."""
    if device.type == "cuda":
        return 0.8 * torch.cuda.get_device_properties(device).total_memory
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 16 * 2**30
    return min(8 * 2**30, 0.5 * total)


def plan_tile(model: torch.nn.Module, cfg: EngineConfig, max_bytes: float, h: int, w: int,
              frames: int | None = None) -> int:
    """The largest tile (input pixels; 0 = whole frames) whose estimated peak fits ``max_bytes``.

    Estimate: parameters + a runtime reserve + the output accumulators of one call + the model's
    ``memory_per_pixel`` (bytes per input pixel per frame; measured by the benchmarks) times the
    tile's pixels and the frames one call holds (at most ``frames``, the video's length, when known).
    The same on CPU (RAM) and GPU (device memory).
    """
    if not (math.isfinite(max_bytes) and max_bytes > 0):
        raise VsrkitError(f"--max-memory must be a positive number of GiB, got {max_bytes / 2**30}")
    spec: ModelSpec = model.spec
    per = spec.memory_per_pixel or GENERIC_MEMORY_PER_PIXEL
    n = frames_per_call(spec, cfg)
    if frames:  # a short video never fills a whole chunk
        n = min(n, frames)
    s = spec.scale
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    outputs = 2 * n * 3 * (h * s) * (w * s) * 4  # accumulator and weights of the blended frames
    avail = max_bytes - params - RUNTIME_RESERVE - outputs
    multiple = spec.size_multiple
    smallest = max(spec.min_size, 2 * cfg.tile_overlap + multiple)
    if avail <= per * n * smallest * smallest:
        floor = (params + RUNTIME_RESERVE + outputs + per * n * smallest * smallest) / 2**30
        raise VsrkitError(f"--max-memory {max_bytes / 2**30:.2f} GiB is too small for this model at {w}x{h}: "
                          f"it needs about {floor:.2f} GiB even with {smallest}-pixel tiles")
    side = int(math.sqrt(avail / (per * n)))
    if side * side >= h * w and side >= min(h, w):  # whole frames fit
        return 0
    side = max(side // multiple * multiple, smallest)
    return side
