"""The one inference engine: streams frames through any vsrkit model in bounded memory.

A model declares what it is (``vsrkit.models.spec.ModelSpec``); the engine does the rest:

- **time** (here): frame models see batches of frames; window models a chunk of outputs with the
  neighbours they need (video ends padded as the protocol says); recurrent models one step at a time
  with their state carried across the whole video (one state per spatial tile); sequence models
  overlapping temporal chunks of which only the centre is kept; bidirectional models two exact passes;
- **space** (``tiling``): overlapping tiles blended with linear ramps; padding to what a model takes;
- **colour** (``colour``): uint8/uint16 images <-> tensors, RGB/Y/grey/alpha/16-bit, at the edges only;
- **device and precision** (``runtime``), and **memory planning** (``memory``).

The engine reads no files and knows no model names: ``vsrkit.pipeline`` ties it to readers and writers.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vsrkit.infer.colour import Item, image_to_item, item_to_image
from vsrkit.infer.memory import FRAME_BATCH, WINDOW_CHUNK
from vsrkit.infer.runtime import DEFAULT_CHUNK_OVERLAP, EngineConfig, make_config, prepare_model, resolve_precision
from vsrkit.infer.tiling import Runner
from vsrkit.models.spec import ModelSpec, Protocol, pad_index

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# frame indices at the ends of a video


def window_indices(t: int, total: int, back: int, ahead: int, mode: str) -> list[int]:
    """The frames a window model sees for output ``t`` of a ``total``-frame video: ``t - back .. t + ahead``,
    with frames beyond the ends made by ``mode``."""
    half = max(back, ahead)
    return [pad_index(i, t, total, half, mode) for i in range(t - back, t + ahead + 1)]


class _Buffer:
    """Frames read ahead from the stream, by index; drops what no later output needs."""

    def __init__(self, items: Iterable[Item]):
        self._it = iter(items)
        self.frames: dict[int, Item] = {}
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


def _schedule(model: torch.nn.Module, cfg: EngineConfig, items: Iterable[Item]) -> Iterator[tuple[Item, torch.Tensor]]:
    """Yield (item, output tensor (c, sh, sw)) for every input frame, in order."""
    spec: ModelSpec = model.spec
    protocol = cfg.protocol or spec.protocol
    runner = Runner(model, spec, cfg)
    buf = _Buffer(items)
    kind = spec.temporal.kind
    if protocol.end_padding == "none" and kind != "recurrent":
        raise ValueError(f"end padding 'none' is for recurrent models, not {kind} models")
    with torch.inference_mode():
        if kind == "frame":
            yield from _frames(model, runner, buf)
        elif kind == "window":
            yield from _windows(model, spec, protocol, runner, buf)
        elif kind == "recurrent":
            yield from _recurrent(model, spec, protocol, runner, buf)
        elif kind == "bidirectional":
            yield from _two_pass(model, spec, runner, buf, cfg)
        else:
            yield from _sequence(model, spec, protocol, runner, buf, cfg)


def _frames(model, runner: Runner, buf: _Buffer):
    t = 0
    while buf.has(t):
        buf.fill(t + FRAME_BATCH - 1)
        idx = list(range(t, min(t + FRAME_BATCH, buf.read)))
        y = runner.run(lambda x, _k: model(x[0])[None], buf.stack(idx))
        for j, i in enumerate(idx):
            yield buf.frames[i], y[0, j]
        buf.drop_before(idx[-1] + 1)
        t = idx[-1] + 1


def _windows(model, spec: ModelSpec, protocol: Protocol, runner: Runner, buf: _Buffer):
    n, ahead, back = spec.temporal.window, spec.temporal.ahead, spec.temporal.back
    half = max(back, ahead)

    def fn(x: torch.Tensor, _key: Any) -> torch.Tensor:
        if spec.sliding is not None:
            return spec.sliding(model, x)
        return torch.stack([model(x[:, j:j + n]) for j in range(x.shape[1] - n + 1)], 1)

    t = 0
    while buf.has(t):
        buf.fill(t + WINDOW_CHUNK - 1 + ahead)
        end = t + WINDOW_CHUNK if buf.total is None else min(t + WINDOW_CHUNK, buf.total)
        total = buf.total if buf.total is not None else end + ahead
        windows = [window_indices(c, total, back, ahead, protocol.end_padding) for c in range(t, end)]
        # consecutive windows that shift by one frame run as one contiguous sequence (sliding fast path)
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


def _recurrent(model, spec: ModelSpec, protocol: Protocol, runner: Runner, buf: _Buffer):
    ahead, back = spec.temporal.ahead, spec.temporal.back
    states: dict[Any, Any] = {}

    def fn(x: torch.Tensor, key: Any) -> torch.Tensor:
        y, states[key] = model.step(x, states.get(key))
        return y[:, None]

    # end padding "none": the first output is frame `back`; frames without all their neighbours get none
    unpadded = protocol.end_padding == "none"
    t = back if unpadded else 0
    while buf.has(t):
        buf.fill(t + ahead)
        if unpadded and not buf.has(t + ahead):
            break
        total = buf.total if buf.total is not None else t + ahead + 1
        y = runner.run(fn, buf.stack(window_indices(t, total, back, ahead, protocol.end_padding)))
        yield buf.frames[t], y[0, 0]
        buf.drop_before(t - back - max(back, ahead) + 1)
        t += 1


def _sequence(model, spec: ModelSpec, protocol: Protocol, runner: Runner, buf: _Buffer, cfg: EngineConfig):
    clip = protocol.clip
    overlap = cfg.chunk_overlap
    if overlap is None:
        overlap = DEFAULT_CHUNK_OVERLAP if protocol.clip_overlap is None else protocol.clip_overlap
    min_frames = spec.min_frames

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


def _two_pass(model, spec: ModelSpec, runner: Runner, buf: _Buffer, cfg: EngineConfig):
    """Bidirectional recurrent models (BasicVSR) streamed exactly, in the memory of one block.

    The input is spooled to a temporary folder in blocks of ``chunk`` frames; the backward branch runs
    from the last block to the first, saving its state at each block boundary; then the forward branch
    runs block by block, recomputing that block's backward features from the saved state. The result
    is the whole-sequence result (no chunk seams) for the cost of running the backward branch twice,
    except on the first block, whose pass-1 features are kept (``cfg.keep_backward``): a video of one
    block runs the backward branch once. RAM holds one block; the temporary folder holds the input and
    one state per block.
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
        kept: dict[Any, torch.Tensor] = {}  # cfg.keep_backward: the first block's features, not recomputed
        for b in reversed(range(nblocks)):
            save({key: v.cpu() for key, v in state.items()}, f"bwd{b}.pt")
            x = load(f"in{b}.pt")["x"]
            has_next = b + 1 < nblocks
            if has_next:
                x = torch.cat([x, load(f"first{b + 1}.pt")[None]])

            def back(t: torch.Tensor, key: Any, has_next: bool = has_next) -> None:
                prev = state.get(key)
                feats = spec.passes.backward(model, t, None if prev is None else prev.to(t.device), has_next)
                state[key] = feats[:, 0]
                if cfg.keep_backward and b == 0:
                    kept[key] = feats

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
                feats = kept.pop(key, None)
                if feats is None:
                    feats = spec.passes.backward(model, t[:, off:], None if bs is None else bs.to(t.device), has_next)
                out, fstate[key] = spec.passes.forward(model, t[:, : off + n], feats, fstate.get(key), has_prev)
                return out

            y = runner.run(fwd, x[None])
            for j in range(n):
                payload, grey, alpha = metas[frame]
                yield Item(x=block["x"][j], side=block["side"][j], grey=grey, alpha=alpha, payload=payload), y[0, j]
                frame += 1


# ----------------------------------------------------------------------------------------------
# public entry points

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
    cfg = resolve_precision(config or make_config(), model.spec)
    model = prepare_model(model, cfg)
    channels = model.spec.channels
    dtypes: list[np.dtype] = []

    def items() -> Iterator[Item]:
        for payload, image in frames:
            dtypes.append(image.dtype)
            yield image_to_item(image, channels, payload)

    for item, y in _schedule(model, cfg, items()):
        dt = out_dtype or dtypes[0]
        yield item.payload, item_to_image(item, y, channels, dt)


def upscale_tensor(model: torch.nn.Module, frames: torch.Tensor, config: EngineConfig | None = None) -> torch.Tensor:
    """(T, c, h, w) float in [0, 1] through the engine's schedule -> (T, c, sh, sw), unclamped."""
    cfg = resolve_precision(config or make_config(), model.spec)
    model = prepare_model(model, cfg)
    items = (Item(x=f.float(), side=None, grey=False, alpha=False, payload=None) for f in frames)
    return torch.stack([y for _, y in _schedule(model, cfg, items)])


