"""The run plan: how one run goes, decided once, before the first frame.

``plan_run`` makes every decision in one place: the device and the precision
(``--precision auto`` is settled for the model here, by ``runtime.resolve_precision``), the tile (the one
given; the side a fixed-size export takes; or the largest that fits a memory budget, by default for models
that declare their memory per pixel), the temporal chunking and, for two-pass models, the temporary disk plan
(``twopass.plan_for``) and its free-space check. ``vsrkit.pipeline`` builds one plan per job and says it; the
engine runs what the plan says and decides nothing again.

Given a bare ``EngineConfig`` (the Python API: ``upscale_frames``, ``upscale_tensor``), the engine makes the
plan itself, once, without knowing the frames: the tile is then the config's, and a two-pass model's disk plan
is made when pass 0 has counted the frames.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from vsrkit.infer import memory, runtime, twopass
from vsrkit.infer.runtime import EngineConfig, precision_name


@dataclass(frozen=True)
class RunPlan:
    """Everything decided about one run. ``config`` is what the engine runs with: device, precision (resolved:
    ``auto`` is no longer pending), tile and overlap (resolved), chunking, layout and compiling."""

    config: EngineConfig
    threads: int  # torch's CPU threads during the run
    backend: str = "torch"  # torch, or onnxruntime (an exported file)
    size: tuple[int, int] | None = None  # (height, width) of the input frames, when known before the run
    frames: int | None = None  # frames expected (the container's count, or --max-frames), when known
    memory_budget: float | None = None  # bytes the tile was planned for (None: not planned from a budget)
    disk: twopass.Plan | None = None  # two-pass models: what pass 1 keeps on disk (None: planned after pass 0)
    disk_dir: Path | None = None  # where the two-pass temporaries go, checked for free space
    disk_free: int | None = None  # free bytes there when planned
    notes: tuple[str, ...] = ()  # the decisions that needed a reason, in words

    @property
    def device(self) -> torch.device:
        return self.config.device

    @property
    def precision(self) -> str:
        """fp32, bf16 or fp16: the precision the run uses."""
        return precision_name(self.config)

    @property
    def tile(self) -> int:
        """Tile side in input pixels; 0: whole frames."""
        return self.config.tile

    def describe(self) -> list[str]:
        """The plan in a few lines, for a job's first messages: the reasons, then what runs where."""
        cfg = self.config
        tiles = f"tiles of {cfg.tile} pixels (overlap {cfg.tile_overlap})" if cfg.tile else "whole frames"
        lines = [*self.notes,
                 f"plan: {cfg.device.type}, {self.threads} thread(s), {self.precision}, {tiles}, "
                 f"chunks of {cfg.chunk} frames, backend {self.backend}"]
        if self.disk is not None:
            where = f" in {self.disk_dir.parent.resolve()}" if self.disk_dir is not None else ""
            free = f" ({self.disk_free / 2**30:.1f} GiB free)" if self.disk_free is not None else ""
            lines.append(f"two-pass streaming: {self.disk.summary}: about {self.disk.disk / 2**30:.2f} GiB of "
                         f"temporary disk{where}{free}")
        return lines


def plan_run(
    model: torch.nn.Module,
    config: EngineConfig,
    height: int | None = None,
    width: int | None = None,
    frames: int | None = None,
    *,
    channels: int = 3,
    backend: str = "torch",
    max_memory: float | None = None,
    tile_given: bool | None = None,
    tile_limit: int | None = None,
    disk_budget: float | None = None,
    disk_dir: Path | None = None,
) -> RunPlan:
    """The plan of one run of ``model`` over ``frames`` frames of ``height`` x ``width`` (each None when unknown).

    - threads: torch's, as the caller set them (``runtime.set_threads``) before making the model (an exported
      model takes the count when it is opened); the bf16 speed test of ``auto`` runs at it.
    - precision: ``config``'s, with ``auto`` settled for the model (``runtime.resolve_precision``).
    - tile: for a fixed-size export, ``config.tile`` or else ``tile_limit``, the side it takes (the overlap shrunk
      to fit); else planned from ``max_memory`` (bytes) when given, or, when no tile was given (``tile_given``,
      default: ``config.tile`` is not 0) for models that declare ``memory_per_pixel``, from
      ``memory.default_budget``; else ``config.tile``. Planning needs the frame size.
    - two-pass models: the temporary disk plan within ``disk_budget`` bytes (needs the size and frame count),
      checked against the free space in ``disk_dir`` when given.

    Nothing is said here: the reasons are in ``RunPlan.notes``, and ``RunPlan.describe()`` gives the lines to say.
    """
    notes: list[str] = []
    spec = model.spec
    cfg = runtime.resolve_precision(config, spec, notes.append)

    if tile_given is None:
        tile_given = bool(cfg.tile)
    size = (height, width) if height and width else None
    budget = None
    if tile_limit:
        side = min(cfg.tile, tile_limit) if cfg.tile else tile_limit
        cfg = dataclasses.replace(cfg, tile=side, tile_overlap=min(cfg.tile_overlap, (side - 1) // 2))
    elif size is not None:
        budget = max_memory
        if budget is None and not tile_given and spec.memory_per_pixel:
            budget = memory.default_budget(cfg.device)  # memory-hungry models (VRT) tile by default
        if budget is not None:
            cfg = dataclasses.replace(cfg, tile=memory.plan_tile(model, cfg, budget, height, width, frames))
            tiles = f"tiles of {cfg.tile} pixels" if cfg.tile else "whole frames"
            notes.append(f"memory budget {budget / 2**30:.1f} GiB: {tiles}")

    disk = free = None
    if spec.temporal.kind == "bidirectional" and size is not None and frames:
        disk = twopass.plan_for(model.to(cfg.device), cfg, height, width, frames, channels, rereads=True,
                                budget=disk_budget)
        if disk_dir is not None:
            free = twopass.free_bytes(disk_dir)
            twopass.check_space(disk, disk_dir)

    return RunPlan(config=cfg, threads=torch.get_num_threads(), backend=backend, size=size, frames=frames,
                   memory_budget=budget, disk=disk, disk_dir=disk_dir, disk_free=free, notes=tuple(notes))
