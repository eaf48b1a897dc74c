"""The plan of a two-pass run (``twopass``): what pass 1 keeps on disk, and how often the backward branch runs.

A bidirectional model streamed in blocks needs, in pass 2, the backward state entering every block, in the
opposite order from the one pass 1 makes them in. :func:`make_plan` chooses what pass 1 keeps within a disk budget
(``Hooks.disk_budget``, default :data:`DEFAULT_BUDGET`): the backward features of the first blocks, a state per
block, or a state per group of blocks (recomputing a group's states from its kept one); :func:`plan_for` is the plan
of a video before it is read (its sizes measured on the model). (``twopass.check_space`` checks the free disk.)

Why three, under a small budget: pass 2 needs the backward states in the opposite order from the one they are
made in, the reversal of checkpointing (Griewank's ``revolve``). With ``s`` states kept for ``n`` blocks and
``s < n <= s**2 / 2`` it needs about ``2n - s`` block runs of the backward branch before pass 2's own one, whatever the
schedule, and two levels (groups of blocks) already reach that: an hour of 480x270 at 4 GiB keeps ~120 of
3,750 block states (``benchmarks/bench_long_video.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from vsrkit.infer.runtime import EngineConfig
from vsrkit.infer.tiling import Runner
from vsrkit.models.layers.common import channels_last_frames
from vsrkit.models.spec import Block, ModelSpec

__all__ = ["DEFAULT_BUDGET", "Plan", "make_plan", "sizes", "state_bytes", "plan_for"]

DEFAULT_BUDGET = 4 * 2**30  # temporary disk a plan may use unless told otherwise (bytes)


@dataclass(frozen=True)
class Plan:
    """How a two-pass run keeps what pass 1 computes: the backward features of the first ``keep`` blocks (pass 2
    then reuses them: the backward branch runs once over those frames), and for the other blocks of ``block``
    frames one backward state per group of ``every`` blocks (``keep > 0`` only with ``every == 1``)."""

    frames: int
    block: int
    every: int
    state_bytes: int  # one block-boundary state, all tiles
    spool_bytes: int = 0  # the spooled input (0 when it is re-read from its source)
    keep: int = 0  # leading blocks whose backward features pass 1 keeps
    feature_bytes: int = 0  # the backward features of one block of ``block`` frames, all tiles

    def __post_init__(self) -> None:
        if self.keep and self.every != 1:
            raise ValueError("a plan keeps backward features only with a state per block (every == 1)")

    @property
    def blocks(self) -> int:
        return max(1, math.ceil(self.frames / self.block))

    @property
    def groups(self) -> int:
        return math.ceil(self.blocks / self.every)

    @property
    def disk(self) -> int:
        """Temporary disk at the peak: the kept states, a group's block states, the kept features, the spool."""
        group = self.every if self.every > 1 else 0
        return (self.groups - self.keep + group) * self.state_bytes + self.keep * self.feature_bytes + self.spool_bytes

    def _size(self, b: int) -> int:
        return min((b + 1) * self.block, self.frames) - b * self.block

    @property
    def backward_runs(self) -> float:
        """Times the backward branch runs per frame: pass 1 (not over the first group unless features are kept),
        the group recompute (not over a group's first block) and pass 2 (not over the kept blocks)."""
        b, k = self.blocks, self.every
        first = 0 if self.keep else min(k, b)
        runs = sum(self._size(i) for i in range(first, b))  # pass 1
        if k > 1:
            runs += sum(self._size(i) for i in range(b) if i % k)  # each group's states, from its kept one
        runs += sum(self._size(i) for i in range(self.keep, b))  # pass 2
        return runs / max(self.frames, 1)

    @property
    def summary(self) -> str:
        """What the plan keeps, in words (for the job's first message)."""
        if self.keep == self.blocks:
            return f"{self.blocks} blocks of {self.block} frames, the backward features kept"
        kept = f", the backward features of the first {self.keep}" if self.keep else ""
        return f"{self.blocks} blocks of {self.block} frames, a backward state every {self.every} block(s){kept}"


def make_plan(frames: int, block: int, state_bytes: int, spool_bytes: int = 0, budget: float | None = None,
              feature_bytes: int = 0) -> Plan:
    """The plan with the least recomputation whose temporary disk fits ``budget`` (else the smallest one): the
    backward features of as many leading blocks as fit beside a state per block (all of them for a short video:
    the backward branch then runs once per frame), else a state every few blocks. The plan carries the sizes it was
    made from (``state_bytes``, ``feature_bytes``), so it can be made again for another frame count."""
    budget = DEFAULT_BUDGET if budget is None else budget
    plan = Plan(frames, block, 1, state_bytes, spool_bytes, feature_bytes=feature_bytes)
    if plan.blocks == 1:
        return plan  # pass 1 has nothing to do: the one block is computed once, in pass 2
    if plan.disk <= budget:
        if feature_bytes > state_bytes:
            keep = min(plan.blocks, int((budget - plan.disk) // (feature_bytes - state_bytes)))
        else:
            keep = plan.blocks if feature_bytes else 0
        return Plan(frames, block, 1, state_bytes, spool_bytes, keep if keep >= 2 else 0, feature_bytes)
    if plan.blocks <= 2:
        return plan
    best = None
    for every in range(2, plan.blocks + 1):
        p = Plan(frames, block, every, state_bytes, spool_bytes, feature_bytes=feature_bytes)
        if p.disk <= budget:
            return p
        if best is None or p.disk < best.disk:
            best = p
        if p.groups + p.every > 2 * math.sqrt(plan.blocks) + 2 and p.every > math.sqrt(plan.blocks):
            break
    return best


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    return [t for o in obj for t in _tensors(o)] if isinstance(obj, (list, tuple)) else []


def sizes(model: torch.nn.Module, spec: ModelSpec, runner: Runner, h: int, w: int) -> tuple[int, int]:
    """Bytes of one block-boundary backward state and of one frame's backward features at h x w (all tiles),
    measured on a small probe frame."""
    m = max(64, spec.min_size)
    m = -(-m // spec.size_multiple) * spec.size_multiple
    x = torch.zeros(1, 1, spec.channels, m, m, device=runner.cfg.device)
    if runner.cfg.channels_last:  # the model's weights are channels-last: so is the probe
        x = channels_last_frames(x)
    with torch.inference_mode():
        feats, st = spec.passes.backward(model, x, None, Block(0, 1, 1))
    per_pixel = []
    for ts in ([st], _tensors(feats)):
        n = sum(t.numel() for t in ts)
        b = sum(t.numel() * t.element_size() for t in ts)
        if runner.cfg.autocast_dtype is not None:
            b = max(b, n * 4)  # they may come out in float32 under autocast
        per_pixel.append(b / (m * m))
    pixels = 0
    for _y0, _x0, th, tw in runner.tiles(h, w):
        th = max(-(-th // spec.size_multiple) * spec.size_multiple, spec.min_size)
        tw = max(-(-tw // spec.size_multiple) * spec.size_multiple, spec.min_size)
        pixels += th * tw
    return int(per_pixel[0] * pixels) + 4096, int(per_pixel[1] * pixels)  # (+ a file's own bytes)


def state_bytes(model: torch.nn.Module, spec: ModelSpec, runner: Runner, h: int, w: int) -> int:
    """Bytes of one block-boundary backward state at h x w (all tiles), measured on a small probe frame."""
    return sizes(model, spec, runner, h, w)[0]


def plan_for(model: torch.nn.Module, cfg: EngineConfig, h: int, w: int, frames: int, channels: int,
             rereads: bool, budget: float | None = None, bytes_per_sample: int = 1) -> Plan:
    """The plan a run of ``frames`` frames of h x w will use (before reading them: ``frames`` may be the
    container's count). ``rereads``: the input can be read again from its source (else it is spooled; its
    size is then bounded by the raw frames)."""
    spec: ModelSpec = model.spec
    runner = Runner(model, spec, cfg)
    sb, fb = sizes(model, spec, runner, h, w)
    spool = 0 if rereads else frames * h * w * channels * bytes_per_sample
    k = max(cfg.chunk, 1)
    return make_plan(frames, k, sb, spool, budget, feature_bytes=fb * k + 4096)
