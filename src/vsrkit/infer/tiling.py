"""Space: padding to what a model takes, and overlapping tiles blended with linear ramps."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from vsrkit.infer.runtime import EngineConfig
from vsrkit.models.layers.common import channels_last_frames, pad_to_multiple
from vsrkit.models.spec import ModelSpec


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


class Runner:
    """Calls one model on (1, L, c, h, w) tensors with padding, tiles, device and precision."""

    def __init__(self, model: torch.nn.Module, spec: ModelSpec, cfg: EngineConfig):
        self.model = model
        self.cfg = cfg
        self.scale = spec.scale
        self.multiple = spec.size_multiple
        self.min_size = spec.min_size

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        h, w = x.shape[-2:]
        return pad_to_multiple(x, self.multiple, self.min_size), h, w

    def _call(self, fn: Callable[[torch.Tensor, Any], torch.Tensor], x: torch.Tensor, key: Any, crop: bool = True) -> torch.Tensor:
        """Run ``fn`` on one tile on the device, padded to what the model takes, cropped back, on CPU."""
        x, h, w = self._pad(x)
        dev = self.cfg.device
        ctx = (
            torch.autocast(device_type=dev.type, dtype=self.cfg.autocast_dtype)
            if self.cfg.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        x = x.to(dev, non_blocking=True)
        if self.cfg.channels_last:
            x = channels_last_frames(x)
        with ctx:
            y = fn(x, key)
        if not crop:
            return y
        s = self.scale
        return y[..., : h * s, : w * s].float().cpu()

    def tiles(self, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """(y0, x0, th, tw) of every tile of an h x w frame."""
        tile, ov = self.cfg.tile, self.cfg.tile_overlap
        th, tw = (min(tile, h), min(tile, w)) if tile > 0 else (h, w)
        return [(y0, x0, th, tw) for y0 in _starts(h, tile, ov) for x0 in _starts(w, tile, ov)]

    def owned(self, h: int, w: int, key: tuple[int, int]) -> tuple[int, int, int, int]:
        """The tile at ``key`` = (y0, x0)'s own part of an h x w frame, as (top, bottom, left, right) in the tile's
        coordinates: overlaps are split at their middle and padding is left out, so the own parts of all tiles
        cover every pixel of the frame once (for sums over a frame, as ``Survey.measure`` takes)."""
        tile, ov = self.cfg.tile, self.cfg.tile_overlap

        def axis(n: int, s0: int) -> tuple[int, int]:
            starts = _starts(n, tile, ov)
            size = min(tile, n) if tile > 0 else n
            i = starts.index(s0)
            lo = s0 if i == 0 else (s0 + starts[i - 1] + size) // 2
            hi = n if i == len(starts) - 1 else (starts[i + 1] + s0 + size) // 2
            return lo - s0, hi - s0

        return (*axis(h, key[0]), *axis(w, key[1]))

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
