"""Device, precision and the engine's run options: where and how a model runs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vsrkit.errors import VsrkitError
from vsrkit.models.spec import Protocol

log = logging.getLogger(__name__)

# Defaults chosen by measurement (benchmarks/chunk_tile_agreement.py, tests/infer/test_engine.py):
DEFAULT_CHUNK = 24  # frames per temporal chunk (sequence models) or per block (two-pass streaming)
DEFAULT_CHUNK_OVERLAP = 6  # context frames on each side of a chunk (generic sequence models)
DEFAULT_TILE_OVERLAP = 24  # input pixels shared by neighbouring tiles


@dataclass(frozen=True)
class EngineConfig:
    """How to run: device, precision, tiling and temporal chunking."""

    device: torch.device
    autocast_dtype: torch.dtype | None = None  # None: full fp32
    tile: int = 0  # tile size in input pixels; 0: whole frames
    tile_overlap: int = DEFAULT_TILE_OVERLAP
    chunk: int = DEFAULT_CHUNK
    chunk_overlap: int | None = None  # None: the protocol's ``clip_overlap``, else DEFAULT_CHUNK_OVERLAP
    protocol: Protocol | None = None  # None: the model's own (``model.spec.protocol``)


def select_device(name: str = "auto") -> torch.device:
    """cuda, then mps, then cpu for 'auto'; a clear error when the asked one is not there."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VsrkitError("--device cuda: no CUDA device is available here (try --device auto)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise VsrkitError("--device mps: no Apple MPS device is available here (try --device auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise VsrkitError(f"unknown device {name!r} (use cpu, cuda, mps or auto)") from None


def select_precision(precision: str, device: torch.device, say: Callable[[str], None] | None = None) -> torch.dtype | None:
    """The autocast dtype for a precision name; fp16 on CPU becomes bf16, said through ``say``."""
    precision = (precision or "fp32").lower()
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type == "cpu":
            (say or log.warning)("fp16 is not supported on CPU: using bf16 instead")
            return torch.bfloat16
        return torch.float16
    raise VsrkitError(f"unknown precision {precision!r} (use fp32, bf16 or fp16)")



def make_config(
    device: str = "auto",
    precision: str = "fp32",
    tile: int | None = None,
    tile_overlap: int | None = None,
    chunk: int | None = None,
    chunk_overlap: int | None = None,
    say: Callable[[str], None] | None = None,
) -> EngineConfig:
    """An EngineConfig from user options, with validation and the measured defaults."""
    dev = select_device(device)
    dtype = select_precision(precision, dev, say)
    for opt, v in (("--tile", tile), ("--tile-overlap", tile_overlap), ("--chunk", chunk), ("--chunk-overlap", chunk_overlap)):
        if v is not None and v < 0:
            raise VsrkitError(f"{opt} must be >= 0, got {v}")
    ov = DEFAULT_TILE_OVERLAP if tile_overlap is None else tile_overlap
    if tile and tile <= 2 * ov:
        raise VsrkitError(f"--tile {tile} must be larger than twice the tile overlap ({ov})")
    if chunk is not None and chunk < 1:
        raise VsrkitError("--chunk must be at least 1")
    return EngineConfig(
        device=dev,
        autocast_dtype=dtype,
        tile=tile or 0,
        tile_overlap=ov,
        chunk=chunk or DEFAULT_CHUNK,
        chunk_overlap=chunk_overlap,
    )
