"""The one inference engine: streams frames through any vsrkit model in bounded memory.

A model declares what it is (``vsrkit.models.spec.ModelSpec``); the engine does the rest:

- **time** (here): frame models see batches of frames; window models a chunk of outputs with the
  neighbours they need (video ends padded as the protocol says); recurrent models one step at a time
  with their state carried across the whole video (one state per spatial tile); sequence models
  overlapping temporal chunks of which only the centre is kept; bidirectional models two exact passes;
- **space** (``tiling``): overlapping tiles blended with linear ramps; padding to what a model takes;
- **colour** (``colour``): uint8/uint16 images <-> tensors, RGB/Y/grey/alpha/16-bit, at the edges only;
- **device and precision** (``runtime``), and **memory planning** (``memory``), decided once per run by
  ``plan.plan_run``: the engine runs a ``RunPlan`` as it is (given a bare ``EngineConfig``, it makes the plan).

The engine reads no files and knows no model names: ``vsrkit.pipeline`` ties it to readers and writers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import numpy as np
import torch

from vsrkit.infer import twopass
from vsrkit.infer.colour import Item, image_to_item, item_to_image
from vsrkit.infer.hooks import Hooks, Phase  # noqa: F401 - Phase: part of the engine's API
from vsrkit.infer.memory import FRAME_BATCH, WINDOW_CHUNK
from vsrkit.infer.plan import RunPlan, plan_run
from vsrkit.infer.runtime import DEFAULT_CHUNK_OVERLAP, EngineConfig, make_config, prepare_model
from vsrkit.infer.tiling import Runner
from vsrkit.models.spec import ModelSpec, Protocol, pad_index

log = logging.getLogger(__name__)
T = TypeVar("T")


# ----------------------------------------------------------------------------------------------
# frame indices at the ends of a video


def window_indices(t: int, total: int, back: int, ahead: int, mode: str) -> list[int]:
    """The frames a window model sees for output ``t`` of a ``total``-frame video: ``t - back .. t + ahead``,
    with frames beyond the ends made by ``mode``."""
    half = max(back, ahead)
    return [pad_index(i, t, total, half, mode) for i in range(t - back, t + ahead + 1)]


def to_device(obj: Any, device: torch.device | str) -> Any:
    """Tensors inside a (nested) state moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


class _Buffer:
    """Frames read ahead from the stream, by index; drops what no later output needs (and frames before
    ``keep_from`` as soon as they are read)."""

    def __init__(self, items: Iterable[Item], keep_from: int = 0):
        self._it = iter(items)
        self.frames: dict[int, Item] = {}
        self.read = 0
        self.ended = False
        self.keep_from = keep_from

    def fill(self, upto: int) -> None:
        while not self.ended and self.read <= upto:
            try:
                item = next(self._it)
            except StopIteration:
                self.ended = True
                break
            if self.read >= self.keep_from:
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


def _schedule(model: torch.nn.Module, cfg: EngineConfig, items: Iterable[Item], hooks: Hooks | None = None,
              frames: Any = None, disk: Any = None) -> Iterator[tuple[Item, torch.Tensor]]:
    """:func:`_steps`, each step under ``torch.inference_mode()`` (see :func:`_stepwise_inference`)."""
    return _stepwise_inference(_steps(model, cfg, items, hooks, frames, disk))


def _stepwise_inference(gen: Iterator[T]) -> Iterator[T]:
    """``gen`` run one step at a time under ``torch.inference_mode()``: on while the engine works, off while the
    caller holds a result. A ``with`` around the ``yield`` of a generator would leave the mode on in the caller,
    and an engine the caller abandons (an error) would switch it back whenever it is collected: in the middle of
    another engine's run, whose inference tensors then meet autograd."""
    try:
        while True:
            with torch.inference_mode():
                try:
                    item = next(gen)
                except StopIteration:
                    return
            yield item
    finally:
        with torch.inference_mode():
            gen.close()


def _steps(model: torch.nn.Module, cfg: EngineConfig, items: Iterable[Item], hooks: Hooks | None = None,
           frames: Any = None, disk: Any = None) -> Iterator[tuple[Item, torch.Tensor]]:
    """Yield (item, output tensor (c, sh, sw)) for every input frame from ``hooks.start``, in order.

    Two-pass models take ``frames`` (a ``twopass`` input) instead of ``items`` when given, and ``disk``, the
    plan's ``twopass.Plan`` (None: made after pass 0)."""
    spec: ModelSpec = model.spec
    protocol = cfg.protocol or spec.protocol
    runner = Runner(model, spec, cfg)
    hooks = hooks or Hooks()
    kind = spec.temporal.kind
    if hooks.start and kind == "recurrent" and hooks.state is None:
        raise ValueError("resuming a recurrent model needs the state saved at its start frame")
    if protocol.end_padding == "none" and kind != "recurrent":
        raise ValueError(f"end padding 'none' is for recurrent models, not {kind} models")
    if kind == "bidirectional":
        inp = frames if frames is not None else twopass.MemoryInput(items)
        yield from twopass.run(model, spec, runner, inp, cfg, hooks, plan=disk)
        return
    back = spec.temporal.back + max(spec.temporal.back, spec.temporal.ahead)
    reach = (protocol.clip or cfg.chunk) + 2 * (cfg.chunk_overlap or DEFAULT_CHUNK_OVERLAP) + back
    buf = _Buffer(items, keep_from=max(0, hooks.start - reach) if kind != "frame" else hooks.start)
    if kind == "frame":
        yield from _frames(model, runner, buf, hooks.start)
    elif kind == "window":
        yield from _windows(model, spec, protocol, runner, buf, hooks.start)
    elif kind == "recurrent":
        yield from _recurrent(model, spec, protocol, runner, buf, hooks)
    else:
        yield from _sequence(model, spec, protocol, runner, buf, cfg, hooks.start)


def _frames(model, runner: Runner, buf: _Buffer, start: int = 0):
    t = start
    while buf.has(t):
        buf.fill(t + FRAME_BATCH - 1)
        idx = list(range(t, min(t + FRAME_BATCH, buf.read)))
        y = runner.run(lambda x, _k: model(x[0])[None], buf.stack(idx))
        for j, i in enumerate(idx):
            yield buf.frames[i], y[0, j]
        buf.drop_before(idx[-1] + 1)
        t = idx[-1] + 1


def _windows(model, spec: ModelSpec, protocol: Protocol, runner: Runner, buf: _Buffer, start: int = 0):
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
        if end <= start:  # resuming: this chunk's outputs are already written
            t = end
            buf.drop_before(t - back - 2 * half)
            continue
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
            if i >= start:
                yield buf.frames[i], y[0, j]
        t = end
        buf.drop_before(t - back - 2 * half)


def _recurrent(model, spec: ModelSpec, protocol: Protocol, runner: Runner, buf: _Buffer, hooks: Hooks):
    ahead, back = spec.temporal.ahead, spec.temporal.back
    dev = runner.cfg.device
    states: dict[Any, Any] = to_device(dict(hooks.state), dev) if hooks.start else {}

    def fn(x: torch.Tensor, key: Any) -> torch.Tensor:
        y, states[key] = model.step(x, states.get(key))
        return y[:, None]

    # end padding "none": the first output is frame `back`; frames without all their neighbours get none
    unpadded = protocol.end_padding == "none"
    t = max(hooks.start, back) if unpadded else hooks.start
    while buf.has(t):
        if hooks.on_state is not None and hooks.state_every and t % hooks.state_every == 0 and t > hooks.start:
            hooks.on_state(t, to_device(states, "cpu"))
        buf.fill(t + ahead)
        if unpadded and not buf.has(t + ahead):
            break
        total = buf.total if buf.total is not None else t + ahead + 1
        y = runner.run(fn, buf.stack(window_indices(t, total, back, ahead, protocol.end_padding)))
        yield buf.frames[t], y[0, 0]
        buf.drop_before(t - back - max(back, ahead) + 1)
        t += 1


def _sequence(model, spec: ModelSpec, protocol: Protocol, runner: Runner, buf: _Buffer, cfg: EngineConfig,
              start: int = 0):
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
        if e > start:  # (resuming: chunks whose outputs are all written are not computed)
            y = runner.run(call, buf.stack(list(range(a, b))))
            for i in range(max(s, start), e):
                yield buf.frames[i], y[0, i - a]
        s = e
        buf.drop_before(s - overlap - (clip or 0))


# ----------------------------------------------------------------------------------------------
# public entry points

def _plan(model: torch.nn.Module, config: EngineConfig | RunPlan | None) -> RunPlan:
    """The run's plan: the one given, else made here (once) from the config, its reasons logged."""
    if isinstance(config, RunPlan):
        return config
    plan = plan_run(model, config or make_config())
    for line in plan.notes:
        log.info("%s", line)
    return plan


def upscale_frames(
    model: torch.nn.Module,
    frames: Iterable[np.ndarray],
    config: EngineConfig | RunPlan | None = None,
    out_dtype: np.dtype | None = None,
) -> Iterator[np.ndarray]:
    """Upscale a stream of H x W x C uint8/uint16 images; yields the upscaled images in order."""
    for _payload, image in upscale_stream(model, ((None, f) for f in frames), config, out_dtype):
        yield image


def upscale_stream(
    model: torch.nn.Module,
    frames: Iterable[tuple[Any, np.ndarray]],
    config: EngineConfig | RunPlan | None = None,
    out_dtype: np.dtype | None = None,
    hooks: Hooks | None = None,
) -> Iterator[tuple[Any, np.ndarray]]:
    """Like ``upscale_frames`` for (payload, image) pairs; the payload (e.g. a timestamp) rides along.
    ``config``: a ``RunPlan`` (run as it is) or an ``EngineConfig`` (planned here). ``hooks`` (resume,
    re-reading, temporaries, progress) are for long jobs; see :class:`Hooks`."""
    plan = _plan(model, config)
    cfg = plan.config
    model = prepare_model(model, cfg)
    channels = model.spec.channels
    dtypes: list[np.dtype] = []

    def items() -> Iterator[Item]:
        for payload, image in frames:
            if not dtypes:
                dtypes.append(image.dtype)
            yield image_to_item(image, channels, payload)

    two = None
    if model.spec.temporal.kind == "bidirectional":
        def to_item(payload: Any, image: np.ndarray) -> Item:
            if not dtypes:
                dtypes.append(image.dtype)
            return image_to_item(image, channels, payload)

        two = twopass.ImageInput(frames, to_item, hooks.reopen if hooks else None)
    for item, y in _schedule(model, cfg, items(), hooks, frames=two, disk=plan.disk):
        dt = out_dtype or dtypes[0]
        with torch.inference_mode():
            image = item_to_image(item, y, channels, dt)
        yield item.payload, image


def upscale_tensor(model: torch.nn.Module, frames: torch.Tensor, config: EngineConfig | RunPlan | None = None,
                   hooks: Hooks | None = None) -> torch.Tensor:
    """(T, c, h, w) float in [0, 1] through the engine's schedule -> (T', c, sh, sw), unclamped (T' = T minus
    ``hooks.start``)."""
    plan = _plan(model, config)
    cfg = plan.config
    model = prepare_model(model, cfg)
    items = (Item(x=f.float(), side=None, grey=False, alpha=False, payload=None) for f in frames)
    return torch.stack([y for _, y in _schedule(model, cfg, items, hooks, disk=plan.disk)])
