"""The one inference engine: streams frames through any vsrkit model in bounded memory.

A model declares how it consumes time (``vsrkit.spec.Temporal``); the engine does the rest:

- **time**: frame models see batches of frames; window models a chunk of outputs with the
  neighbours they need (video ends padded as the model declares); recurrent models one step at a
  time with their state carried across the whole video (one state per spatial tile); sequence models
  overlapping temporal chunks of which only the centre is kept, so memory is that of one chunk;
- **space**: frames larger than ``tile`` are split into overlapping tiles whose outputs are blended
  with linear ramps over the overlap; sizes a model cannot take are padded (reflect) and cropped back;
- **colour**: RGB models get RGB; Y-only models get the luma (BT.601 full range) and the chroma is
  upscaled bicubically; grey input is run as R=G=B and written as grey (the output's luma); an alpha
  channel is upscaled bicubically and reattached; 16-bit input is processed from its full 16-bit
  value and written at 16 bits where the output format can hold it (PNG), else at 8 bits;
- **device and precision**: cuda, then mps, then cpu; fp32, bf16 or fp16 by autocast (flow warping and
  deformable sampling stay fp32 inside the models); fp16 on CPU is replaced by bf16, said on screen.

uint8/uint16 <-> tensor conversion happens here, at the edges, and nowhere else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from vsrkit.errors import VsrkitError
from vsrkit.spec import Temporal

log = logging.getLogger(__name__)

# Defaults chosen by measurement (benchmarks/chunk_tile_agreement.py, tests/test_engine.py):
DEFAULT_CHUNK = 24  # frames per temporal chunk (sequence models) or per block (two-pass streaming)
DEFAULT_CHUNK_OVERLAP = 6  # context frames on each side of a chunk (generic sequence models)
DEFAULT_TILE_OVERLAP = 24  # input pixels shared by neighbouring tiles
FRAME_BATCH = 4  # frames per call for frame models
WINDOW_CHUNK = 8  # outputs per call for window models


@dataclass(frozen=True)
class EngineConfig:
    """How to run: device, precision, tiling and temporal chunking."""

    device: torch.device
    autocast_dtype: torch.dtype | None = None  # None: full fp32
    tile: int = 0  # tile size in input pixels; 0: whole frames
    tile_overlap: int = DEFAULT_TILE_OVERLAP
    chunk: int = DEFAULT_CHUNK
    chunk_overlap: int | None = None  # None: the model's own ``clip_overlap``, else DEFAULT_CHUNK_OVERLAP


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


# ----------------------------------------------------------------------------------------------
# colour and dtype conversion at the edges


@dataclass
class _Item:
    """One input frame as the model sees it, plus what is needed to rebuild the output image."""

    x: torch.Tensor  # (c, h, w) float32 in [0, 1]: RGB or Y
    side: torch.Tensor | None  # (k, h, w) channels upscaled bicubically: CbCr and/or alpha
    grey: bool
    alpha: bool
    payload: Any


_RGB2YCC = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=torch.float32
)
_YCC2RGB = torch.tensor([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]], dtype=torch.float32)


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """(3, h, w) RGB in [0, 1] -> YCbCr, BT.601 full range (JPEG), chroma centred on 0.5."""
    ycc = torch.einsum("ij,jhw->ihw", _RGB2YCC.to(rgb), rgb)
    ycc[1:] += 0.5
    return ycc


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """Inverse of ``rgb_to_ycbcr``."""
    ycc = ycc.clone()
    ycc[1:] -= 0.5
    return torch.einsum("ij,jhw->ihw", _YCC2RGB.to(ycc), ycc)


def image_to_item(image: np.ndarray, model_channels: int, payload: Any = None) -> _Item:
    """uint8/uint16 H x W x C (C = 1, 3 or 4) -> the model's input and the side channels."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.dtype == np.uint8:
        scale = 255.0
    elif image.dtype == np.uint16:
        scale = 65535.0
    else:
        raise VsrkitError(f"unsupported frame dtype {image.dtype} (expected uint8 or uint16)")
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(scale)
    c = t.shape[0]
    grey, alpha = c in (1, 2), c in (2, 4)
    colour = t[:1] if grey else t[:3]
    side = [t[-1:]] if alpha else []
    if model_channels == 1:
        if grey:
            x = colour
        else:
            ycc = rgb_to_ycbcr(colour)
            x = ycc[:1]
            side.insert(0, ycc[1:])
    else:
        x = colour.expand(3, -1, -1).contiguous() if grey else colour
    return _Item(x=x, side=torch.cat(side) if side else None, grey=grey, alpha=alpha, payload=payload)


def item_to_image(item: _Item, y: torch.Tensor, model_channels: int, dtype: np.dtype) -> np.ndarray:
    """Model output (c, sh, sw) + the item's side channels -> H x W x C image of ``dtype``."""
    y = y.float()
    sh, sw = y.shape[-2:]
    side = None
    if item.side is not None:
        side = F.interpolate(item.side[None], size=(sh, sw), mode="bicubic", align_corners=False)[0]
    if model_channels == 1:
        if item.grey:
            colour = y
        else:
            colour = ycbcr_to_rgb(torch.cat([y, side[:2]]))
    else:
        colour = (y * _RGB2YCC[0].view(3, 1, 1).to(y)).sum(0, keepdim=True) if item.grey else y
    parts = [colour]
    if item.alpha:
        parts.append(side[-1:])
    out = torch.cat(parts).clamp_(0, 1)
    scale = 65535.0 if dtype == np.uint16 else 255.0
    return out.mul_(scale).round_().permute(1, 2, 0).to(torch.int32).numpy().astype(dtype)


# ----------------------------------------------------------------------------------------------
# frame indices at the ends of a video


def pad_index(i: int, centre: int, total: int, half: int, mode: str) -> int:
    """The frame that stands in for index ``i`` outside [0, total) (BasicSR's generate_frame_indices)."""
    last = total - 1
    if 0 <= i <= last:
        return i
    if mode == "replicate":
        j = 0 if i < 0 else last
    elif mode == "reflection":
        j = -i if i < 0 else 2 * last - i
    elif mode == "reflection_circle":
        j = (centre + half) - i if i < 0 else (centre - half) - (i - last)
    elif mode == "circle":
        j = total + i if i < 0 else i - total
    else:
        raise ValueError(f"unknown end padding {mode!r}")
    return min(max(j, 0), last)


# ----------------------------------------------------------------------------------------------
# space: padding and tiles


def _starts(n: int, tile: int, overlap: int) -> list[int]:
    if tile <= 0 or n <= tile:
        return [0]
    stride = max(tile - overlap, 1)
    starts = list(range(0, n - tile, stride))
    starts.append(n - tile)
    return starts


def _ramp(length: int, lead: int, trail: int) -> torch.Tensor:
    """Blend weights along one axis of a tile: 0 over the outer quarter of an overlap (where the tile's
    own border effects are), then a linear rise to 1; ``lead``/``trail`` are the overlaps at each end."""
    w = torch.ones(length)
    for n, flip in ((lead, False), (trail, True)):
        if n <= 0:
            continue
        margin = n // 4
        r = torch.zeros(n)
        r[margin:] = (torch.arange(n - margin) + 0.5) / (n - margin)
        if flip:
            w[length - n:] = torch.minimum(w[length - n:], r.flip(0))
        else:
            w[:n] = torch.minimum(w[:n], r)
    return w


class _Runner:
    """Calls one model on (1, L, c, h, w) tensors with padding, tiles, device and precision."""

    def __init__(self, model: torch.nn.Module, cfg: EngineConfig):
        self.model = model
        self.cfg = cfg
        self.scale = int(model.scale)
        self.multiple = int(getattr(model, "size_multiple", 1) or 1)
        self.min_size = int(getattr(model, "min_size", 1) or 1)

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        h, w = x.shape[-2:]
        th = max(math.ceil(h / self.multiple) * self.multiple, self.min_size)
        tw = max(math.ceil(w / self.multiple) * self.multiple, self.min_size)
        if th > h or tw > w:
            shape = x.shape
            flat = x.reshape(-1, *shape[-3:])
            mode = "reflect" if (th - h < h and tw - w < w) else "replicate"
            flat = F.pad(flat, (0, tw - w, 0, th - h), mode=mode)
            x = flat.reshape(*shape[:-2], th, tw)
        return x, h, w

    def _call(self, fn: Callable[[torch.Tensor, Any], torch.Tensor], x: torch.Tensor, key: Any, crop: bool = True) -> torch.Tensor:
        """Run ``fn`` on one tile on the device, padded to what the model takes, cropped back, on CPU."""
        x, h, w = self._pad(x)
        dev = self.cfg.device
        ctx = (
            torch.autocast(device_type=dev.type, dtype=self.cfg.autocast_dtype)
            if self.cfg.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with ctx:
            y = fn(x.to(dev, non_blocking=True), key)
        if not crop:
            return y
        s = self.scale
        return y[..., : h * s, : w * s].float().cpu()

    def tiles(self, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """(y0, x0, th, tw) of every tile of an h x w frame."""
        tile, ov = self.cfg.tile, self.cfg.tile_overlap
        th, tw = (min(tile, h), min(tile, w)) if tile > 0 else (h, w)
        return [(y0, x0, th, tw) for y0 in _starts(h, tile, ov) for x0 in _starts(w, tile, ov)]

    def each_tile(self, fn: Callable[[torch.Tensor, Any], None], x: torch.Tensor) -> None:
        """Call ``fn(tile, key)`` on every padded tile, on the device, for its side effects."""
        for y0, x0, th, tw in self.tiles(*x.shape[-2:]):
            self._call(lambda t, k: fn(t, k) or t.new_zeros(1), x[..., y0:y0 + th, x0:x0 + tw], (y0, x0), crop=False)

    def run(self, fn: Callable[[torch.Tensor, Any], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """fn: (1, L, c, th, tw) -> (1, L', c', th*s, tw*s), applied tile by tile and blended."""
        h, w = x.shape[-2:]
        tile, ov = self.cfg.tile, self.cfg.tile_overlap
        ys, xs = _starts(h, tile, ov), _starts(w, tile, ov)
        if len(ys) == 1 and len(xs) == 1:
            return self._call(fn, x, (0, 0))
        s = self.scale
        th, tw = min(tile, h), min(tile, w)
        out = None
        wsum = torch.zeros(h * s, w * s)
        for y0 in ys:
            for x0 in xs:
                y = self._call(fn, x[..., y0:y0 + th, x0:x0 + tw], (y0, x0))
                if out is None:
                    out = torch.zeros(*y.shape[:-2], h * s, w * s)
                ov_s = ov * s
                wy = _ramp(th * s, ov_s if y0 > 0 else 0, ov_s if y0 + th < h else 0)
                wx = _ramp(tw * s, ov_s if x0 > 0 else 0, ov_s if x0 + tw < w else 0)
                wt = wy[:, None] * wx[None, :]
                out[..., y0 * s:(y0 + th) * s, x0 * s:(x0 + tw) * s] += y * wt
                wsum[y0 * s:(y0 + th) * s, x0 * s:(x0 + tw) * s] += wt
        return out / wsum


# ----------------------------------------------------------------------------------------------
# time: the schedules


class _Buffer:
    """Frames read ahead from the stream, by index; drops what no later output needs."""

    def __init__(self, items: Iterable[_Item]):
        self._it = iter(items)
        self.frames: dict[int, _Item] = {}
        self.read = 0
        self.ended = False

    def fill(self, upto: int) -> None:
        while not self.ended and self.read <= upto:
            try:
                item = next(self._it)
            except StopIteration:
                self.ended = True
                break
            self.frames[self.read] = item
            self.read += 1

    def has(self, i: int) -> bool:
        self.fill(i)
        return i < self.read

    @property
    def total(self) -> int | None:
        return self.read if self.ended else None

    def drop_before(self, i: int) -> None:
        for k in [k for k in self.frames if k < i]:
            del self.frames[k]

    def stack(self, indices: list[int]) -> torch.Tensor:
        return torch.stack([self.frames[i].x for i in indices])[None]


def _schedule(model: torch.nn.Module, cfg: EngineConfig, items: Iterable[_Item]) -> Iterator[tuple[_Item, torch.Tensor]]:
    """Yield (item, output tensor (c, sh, sw)) for every input frame, in order."""
    temporal: Temporal = model.temporal
    runner = _Runner(model, cfg)
    buf = _Buffer(items)
    kind = temporal.kind
    with torch.inference_mode():
        if kind == "frame":
            yield from _frames(model, runner, buf)
        elif kind == "window":
            yield from _windows(model, runner, buf, temporal)
        elif kind == "recurrent":
            yield from _recurrent(model, runner, buf, temporal)
        elif kind == "sequence" and hasattr(model, "backward_pass") and hasattr(model, "forward_pass"):
            yield from _two_pass(model, runner, buf, cfg)
        elif kind == "sequence":
            yield from _sequence(model, runner, buf, temporal, cfg)
        else:  # pragma: no cover - Temporal validates kinds
            raise ValueError(kind)


def _frames(model, runner: _Runner, buf: _Buffer):
    t = 0
    while buf.has(t):
        buf.fill(t + FRAME_BATCH - 1)
        idx = list(range(t, min(t + FRAME_BATCH, buf.read)))
        y = runner.run(lambda x, _k: model(x[0])[None], buf.stack(idx))
        for j, i in enumerate(idx):
            yield buf.frames[i], y[0, j]
        buf.drop_before(idx[-1] + 1)
        t = idx[-1] + 1


def _windows(model, runner: _Runner, buf: _Buffer, temporal: Temporal):
    n = temporal.window
    ahead = temporal.ahead if temporal.ahead else n // 2
    back = n - 1 - ahead
    half = max(back, ahead)
    sliding = getattr(model, "forward_sliding", None)

    def fn(x: torch.Tensor, _key: Any) -> torch.Tensor:
        if sliding is not None:
            return sliding(x)
        return torch.stack([model(x[:, j:j + n]) for j in range(x.shape[1] - n + 1)], 1)

    t = 0
    while buf.has(t):
        buf.fill(t + WINDOW_CHUNK - 1 + ahead)
        end = t + WINDOW_CHUNK if buf.total is None else min(t + WINDOW_CHUNK, buf.total)
        total = buf.total if buf.total is not None else end + ahead
        windows = [[pad_index(i, c, total, half, temporal.end_padding) for i in range(c - back, c + ahead + 1)]
                   for c in range(t, end)]
        # consecutive windows that shift by one frame run as one contiguous sequence (forward_sliding)
        runs: list[list[list[int]]] = []
        for win in windows:
            if runs and runs[-1][-1][1:] == win[:-1]:
                runs[-1].append(win)
            else:
                runs.append([win])
        ys = []
        for run in runs:
            idx = run[0] + [w[-1] for w in run[1:]]
            ys.append(runner.run(fn, buf.stack(idx)))
        y = torch.cat(ys, 1)
        for j, i in enumerate(range(t, end)):
            yield buf.frames[i], y[0, j]
        t = end
        buf.drop_before(t - back - 2 * half)


def _recurrent(model, runner: _Runner, buf: _Buffer, temporal: Temporal):
    n, ahead = temporal.window, temporal.ahead
    back = n - 1 - ahead
    states: dict[Any, Any] = {}

    def fn(x: torch.Tensor, key: Any) -> torch.Tensor:
        y, states[key] = model.step(x, states.get(key))
        return y[:, None]

    t = 0
    while buf.has(t):
        buf.fill(t + ahead)
        total = buf.total if buf.total is not None else t + ahead + 1
        idx = [pad_index(i, t, total, max(back, ahead), temporal.end_padding) for i in range(t - back, t + ahead + 1)]
        y = runner.run(fn, buf.stack(idx))
        yield buf.frames[t], y[0, 0]
        buf.drop_before(t - back - max(back, ahead) + 1)
        t += 1


def _sequence(model, runner: _Runner, buf: _Buffer, temporal: Temporal, cfg: EngineConfig):
    clip = temporal.clip
    overlap = cfg.chunk_overlap
    if overlap is None:
        overlap = int(getattr(model, "clip_overlap", DEFAULT_CHUNK_OVERLAP))
    min_frames = int(getattr(model, "min_frames", 1) or 1)

    def call(x: torch.Tensor, _key: Any) -> torch.Tensor:
        n = x.shape[1]
        if n < min_frames:  # too short a video for the model: repeat the last frame, drop its outputs
            x = torch.cat([x, x[:, -1:].expand(-1, min_frames - n, -1, -1, -1)], 1)
        return model(x)[:, :n]

    if clip:
        overlap = min(overlap, (clip - 1) // 2)
        span = clip
    else:
        span = max(cfg.chunk, 1) + 2 * overlap
    s = 0
    while buf.has(s):
        a = max(s - overlap, 0)
        want = a + span if clip else s + span - overlap  # chunk [s, s + chunk) plus context
        buf.fill(want - 1)
        b = min(want, buf.read)
        if clip and b - a < span:  # near the end: keep the clip length by reaching further back
            a = max(b - span, 0)
        e = b if (buf.ended and b == buf.read) else b - overlap  # keep the centre only
        y = runner.run(call, buf.stack(list(range(a, b))))
        for i in range(s, e):
            yield buf.frames[i], y[0, i - a]
        s = e
        buf.drop_before(s - overlap - (clip or 0))


def _two_pass(model, runner: _Runner, buf: _Buffer, cfg: EngineConfig):
    """Bidirectional recurrent models (BasicVSR) streamed exactly, in the memory of one block.

    The input is spooled to a temporary folder in blocks of ``chunk`` frames; the backward branch runs
    from the last block to the first, saving its state at each block boundary; then the forward branch
    runs block by block, recomputing that block's backward features from the saved state. The result
    is the whole-sequence result (no chunk seams) for the cost of running the backward branch twice.
    RAM holds one block; the temporary folder holds the input and one state per block.
    """
    k = max(cfg.chunk, 1)
    with tempfile.TemporaryDirectory(prefix="vsrkit-spool-") as tmp_name:
        tmp = Path(tmp_name)

        def save(obj: Any, name: str) -> None:
            torch.save(obj, tmp / name)

        def load(name: str) -> Any:
            return torch.load(tmp / name, weights_only=True)

        # pass 0: spool the input
        metas: list[tuple[Any, bool, bool]] = []
        nblocks = 0
        while buf.has(nblocks * k):
            buf.fill((nblocks + 1) * k - 1)
            idx = list(range(nblocks * k, min((nblocks + 1) * k, buf.read)))
            items = [buf.frames[i] for i in idx]
            save({"x": torch.stack([it.x for it in items]), "side": [it.side for it in items]}, f"in{nblocks}.pt")
            save(items[0].x.clone(), f"first{nblocks}.pt")
            save(items[-1].x.clone(), f"last{nblocks}.pt")
            metas.extend((it.payload, it.grey, it.alpha) for it in items)
            buf.drop_before(idx[-1] + 1)
            nblocks += 1

        # pass 1: backward branch, last block to first; save the state entering each block
        state: dict[Any, torch.Tensor] = {}
        for b in reversed(range(nblocks)):
            save({key: v.cpu() for key, v in state.items()}, f"bwd{b}.pt")
            x = load(f"in{b}.pt")["x"]
            has_next = b + 1 < nblocks
            if has_next:
                x = torch.cat([x, load(f"first{b + 1}.pt")[None]])

            def back(t: torch.Tensor, key: Any, has_next: bool = has_next) -> None:
                prev = state.get(key)
                feats = model.backward_pass(t, None if prev is None else prev.to(t.device), has_next)
                state[key] = feats[:, 0]

            runner.each_tile(back, x[None])
        state.clear()

        # pass 2: forward branch with the recomputed backward features, block by block
        fstate: dict[Any, torch.Tensor] = {}
        frame = 0
        for b in range(nblocks):
            block = load(f"in{b}.pt")
            bstate = load(f"bwd{b}.pt")
            has_prev, has_next = b > 0, b + 1 < nblocks
            parts = ([load(f"last{b - 1}.pt")[None]] if has_prev else []) + [block["x"]]
            parts += [load(f"first{b + 1}.pt")[None]] if has_next else []
            x = torch.cat(parts)
            n = block["x"].shape[0]

            def fwd(t: torch.Tensor, key: Any, has_prev: bool = has_prev, has_next: bool = has_next, n: int = n):
                off = int(has_prev)
                bs = bstate.get(key)
                feats = model.backward_pass(t[:, off:], None if bs is None else bs.to(t.device), has_next)
                out, fstate[key] = model.forward_pass(t[:, : off + n], feats, fstate.get(key), has_prev)
                return out

            y = runner.run(fwd, x[None])
            for j in range(n):
                payload, grey, alpha = metas[frame]
                yield _Item(x=block["x"][j], side=block["side"][j], grey=grey, alpha=alpha, payload=payload), y[0, j]
                frame += 1


# ----------------------------------------------------------------------------------------------
# public entry points


GENERIC_MEMORY_PER_PIXEL = 16 * 1024  # bytes per input pixel per frame, for models that declare none
RUNTIME_RESERVE = 512 * 2**20  # Python, torch, codecs


def frames_per_call(model: torch.nn.Module, cfg: EngineConfig) -> int:
    """How many frames one model call holds, by temporal kind."""
    t: Temporal = model.temporal
    if t.kind == "frame":
        return FRAME_BATCH
    if t.kind == "window":
        return WINDOW_CHUNK + t.window - 1
    if t.kind == "recurrent":
        return t.window
    if t.clip:
        return t.clip
    if hasattr(model, "backward_pass"):
        return cfg.chunk + 2
    overlap = DEFAULT_CHUNK_OVERLAP if cfg.chunk_overlap is None else cfg.chunk_overlap
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
    per = int(getattr(model, "memory_per_pixel", 0) or GENERIC_MEMORY_PER_PIXEL)
    n = frames_per_call(model, cfg)
    if frames:  # a short video never fills a whole chunk
        n = min(n, frames)
    s = int(model.scale)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    outputs = 2 * n * 3 * (h * s) * (w * s) * 4  # accumulator and weights of the blended frames
    avail = max_bytes - params - RUNTIME_RESERVE - outputs
    need_min = int(getattr(model, "min_size", 1) or 1)
    multiple = int(getattr(model, "size_multiple", 1) or 1)
    smallest = max(need_min, 2 * cfg.tile_overlap + multiple)
    if avail <= per * n * smallest * smallest:
        floor = (params + RUNTIME_RESERVE + outputs + per * n * smallest * smallest) / 2**30
        raise VsrkitError(f"--max-memory {max_bytes / 2**30:.2f} GiB is too small for this model at {w}x{h}: "
                          f"it needs about {floor:.2f} GiB even with {smallest}-pixel tiles")
    side = int(math.sqrt(avail / (per * n)))
    if side * side >= h * w and side >= min(h, w):  # whole frames fit
        return 0
    side = max(side // multiple * multiple, smallest)
    return side


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


def upscale_frames(
    model: torch.nn.Module,
    frames: Iterable[np.ndarray],
    config: EngineConfig | None = None,
    out_dtype: np.dtype | None = None,
) -> Iterator[np.ndarray]:
    """Upscale a stream of H x W x C uint8/uint16 images; yields the upscaled images in order."""
    for _payload, image in upscale_stream(model, ((None, f) for f in frames), config, out_dtype):
        yield image


def upscale_stream(
    model: torch.nn.Module,
    frames: Iterable[tuple[Any, np.ndarray]],
    config: EngineConfig | None = None,
    out_dtype: np.dtype | None = None,
) -> Iterator[tuple[Any, np.ndarray]]:
    """Like ``upscale_frames`` for (payload, image) pairs; the payload (e.g. a timestamp) rides along."""
    cfg = config or make_config()
    model = model.to(cfg.device)
    channels = int(getattr(model, "channels", 3))
    dtypes: list[np.dtype] = []

    def items() -> Iterator[_Item]:
        for payload, image in frames:
            dtypes.append(image.dtype)
            yield image_to_item(image, channels, payload)

    for item, y in _schedule(model, cfg, items()):
        dt = out_dtype or dtypes[0]
        yield item.payload, item_to_image(item, y, channels, dt)


def upscale_tensor(model: torch.nn.Module, frames: torch.Tensor, config: EngineConfig | None = None) -> torch.Tensor:
    """(T, c, h, w) float in [0, 1] through the engine's schedule -> (T, c, sh, sw), unclamped."""
    cfg = config or make_config()
    model = model.to(cfg.device)
    items = (_Item(x=f.float(), side=None, grey=False, alpha=False, payload=None) for f in frames)
    return torch.stack([y for _, y in _schedule(model, cfg, items)])


def check_output(inp: Path, out: Path, overwrite: bool = False) -> None:
    """Refuse an output that is the input, or that exists without ``overwrite``."""
    try:
        same = out.exists() and os.path.samefile(inp, out)
    except OSError:
        same = False
    if same or inp.resolve() == out.resolve():
        raise VsrkitError(f"output {out} is the input file; choose another output path")
    if out.exists() and not overwrite:
        raise VsrkitError(f"output {out} exists; pass --overwrite to replace it")


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
    from tqdm import tqdm

    from vsrkit import video
    from vsrkit.hub import load_model

    inp, out = Path(input), Path(output)
    cfg = make_config(device, precision, tile, tile_overlap, chunk, chunk_overlap, say=say)
    with video.VideoReader(inp) as reader:
        info = reader.info
        # check the output before the (slow) model load, so mistakes are reported at once
        check_output(inp, out, overwrite=overwrite)
        net = model if isinstance(model, torch.nn.Module) else load_model(model, weights=weights, progress=progress)
        if max_memory is not None and tile:
            raise VsrkitError("give either --tile or --max-memory, not both")
        budget = max_memory * 2**30 if max_memory is not None else None
        if budget is None and tile is None and getattr(net, "memory_per_pixel", None):
            budget = default_budget(cfg.device)  # memory-hungry models (VRT) tile by default
        if budget is not None:
            n = info.num_frames if max_frames is None else min(max_frames, info.num_frames or max_frames)
            cfg = dataclasses.replace(cfg, tile=plan_tile(net, cfg, budget, info.height, info.width, n))
            (say or log.info)(f"memory budget {budget / 2**30:.1f} GiB: "
                              + (f"tiles of {cfg.tile} pixels" if cfg.tile else "whole frames"))
        s = int(net.scale)
        to_png = video.is_image_folder_output(out)
        bit_depth = 16 if (info.bit_depth == 16 and to_png) else 8
        out_dtype = np.uint16 if bit_depth == 16 else np.uint8
        total = info.num_frames if max_frames is None else min(max_frames, info.num_frames or max_frames)

        def source() -> Iterator[tuple[Any, np.ndarray]]:
            for k, frame in enumerate(reader):
                if max_frames is not None and k >= max_frames:
                    break
                yield frame.pts, frame.image

        with video.VideoWriter(
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
            for pts, image in upscale_stream(net, source(), cfg, out_dtype):
                writer.write(image, pts)
                n += 1
                bar.update(1)
                if on_frame is not None:
                    on_frame(n)
            if n == 0:
                raise VsrkitError(f"{inp}: no frames to upscale")
    return out
