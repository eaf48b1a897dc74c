"""Exact two-pass streaming of bidirectional recurrent models (BasicVSR, IconVSR) over videos of any length.

A bidirectional model's output at frame t depends on every frame after t (the backward branch) and every
frame before it (the forward branch). The engine runs it in blocks of ``chunk`` frames, exactly:

- **pass 0** reads the input once: the frame count (keyframes of IconVSR depend on it), the payloads and a
  digest of every frame;
- the **survey** (models that declare ``TwoPass.survey``: RealBasicVSR) reads it again and measures what a
  whole-video decision needs (the mean cleaning residue), tile by tile over each tile's own part; the decision
  reaches both passes as ``Block.survey``;
- **pass 1** runs the backward branch from the last block to the first and keeps its state at the end of
  every group of ``every`` blocks, and the backward features of the first ``keep`` blocks;
- **pass 2** goes through the groups from the first: from a group's kept state it recomputes the states
  entering each of its blocks (when ``every > 1``), then per block the backward features from that block's
  state (or takes those pass 1 kept) and the forward branch, and yields the outputs.

The input is read again from its source (``Hooks.reopen``: the reader seeks to the keyframe before a block),
and every re-read frame is checked against its digest; where the source cannot be re-read (a plain iterator,
or seeking gives other pictures) the input is spooled once as compressed uint8/uint16 images, never float32.
Temporary disk (``Plan.disk``) holds ``groups + every`` states and ``keep`` blocks of features, chosen to fit
``Hooks.disk_budget`` by ``twoplan`` (which also says why three runs, under a small budget). Where everything fits (a short video, or one block) the backward branch runs once per
frame; with a state per block twice, less the kept blocks; with a state every few blocks three times. The
result is the whole-video result for every block size and plan (tests compare them).

Resuming: pass 1's states and a marker stay in the work folder; pass 2 restarts at a block boundary from the
forward state handed to ``Hooks.on_state`` (the states are recomputed, nothing is approximated).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vsrkit.atomic import write_atomic
from vsrkit.errors import VsrkitError
from vsrkit.infer.colour import Item
from vsrkit.infer.hooks import Hooks, Phase
from vsrkit.infer.runtime import EngineConfig
from vsrkit.infer.tiling import Runner
from vsrkit.infer.twoplan import (  # noqa: F401 - the plan, under the names its callers use
    DEFAULT_BUDGET, Plan, make_plan, plan_for, sizes, state_bytes,
)
from vsrkit.jobs import hold_lock
from vsrkit.models.spec import Block, ModelSpec

log = logging.getLogger(__name__)

CACHE_BYTES = 256 * 2**20  # decoded frames kept around re-read blocks (a keyframe interval, mostly)
TEMP_PREFIX = "vsrkit-job-"  # temporary folders made here are found by the leftover sweep (vsrkit.jobs)


# ------------------------------------------------------------------------------------------------- disk
def free_bytes(folder: Path) -> int:
    """Free space (bytes) for an unprivileged writer in the filesystem holding ``folder``."""
    p = Path(folder)
    while not p.exists() and p != p.parent:
        p = p.parent
    st = os.statvfs(p)
    return st.f_bavail * st.f_frsize


def check_space(plan: Plan, folder: Path, what: str = "two-pass streaming") -> None:
    """A one-line error when ``folder`` has less free space than the plan needs."""
    free = free_bytes(folder)
    if plan.disk > free:
        raise VsrkitError(f"{what} needs about {plan.disk / 2**30:.2f} GiB of temporary disk in {folder}, only "
                          f"{free / 2**30:.2f} GiB is free (free some space, or lower --temp-disk to trade it for time)")


# ------------------------------------------------------------------------------------------------- inputs
def _digest(image: np.ndarray) -> bytes:
    a = np.ascontiguousarray(image)
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((a.shape, a.dtype.str)).encode())
    h.update(memoryview(a).cast("B"))
    return h.digest()


class MemoryInput:
    """Frames already in memory (``upscale_tensor``): nothing to re-read."""

    def __init__(self, items: Iterable[Item]):
        self._source = items
        self.items: list[Item] = []
        self.total = 0
        self.digest = ""

    def read_all(self, workdir: Path, progress: Callable[[int], None]) -> None:
        self.items = list(self._source)
        self.total = len(self.items)
        self.size = tuple(self.items[0].x.shape[-2:]) if self.items else (0, 0)
        progress(self.total)

    def get(self, lo: int, hi: int) -> list[Item]:
        return self.items[lo:hi]

    def spool_bytes(self) -> int:
        return 0


class _Mismatch(Exception):
    """A re-read frame is not the frame of the first pass."""


class ImageInput:
    """(payload, image) frames, read once in pass 0 (digests), then by blocks: from ``reopen`` when given,
    else from a spool of compressed images written in pass 0."""

    def __init__(self, frames: Iterable[tuple[Any, np.ndarray]], to_item: Callable[[Any, np.ndarray], Item],
                 reopen: Callable[[int], Iterator[tuple[int, Any, np.ndarray]]] | None):
        self._frames = frames
        self._to_item = to_item
        self._reopen = reopen
        self.payloads: list[Any] = []
        self.digests: list[bytes] = []
        self.total = 0
        self.digest = ""
        self._spool: Path | None = None
        self._spool_bytes = 0
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_bytes = 0
        self._cursor: Iterator[tuple[int, Any, np.ndarray]] | None = None
        self._cursor_at = -1
        self._block = 1
        self.size = (0, 0)

    # pass 0
    def read_all(self, workdir: Path, progress: Callable[[int], None], block: int = 24) -> None:
        self._block = block
        spool = None if self._reopen is not None else workdir / "spool"
        pending: list[np.ndarray] = []
        whole = hashlib.blake2b(digest_size=16)
        for payload, image in self._frames:
            if not self.payloads:
                self.size = tuple(image.shape[:2])
            self.payloads.append(payload)
            d = _digest(image)
            self.digests.append(d)
            whole.update(d)
            if spool is not None:
                pending.append(image)
                if len(pending) == block:
                    self._write_spool(spool, len(self.payloads) // block - 1, pending)
                    pending = []
            if len(self.payloads) % 16 == 0:
                progress(len(self.payloads))
        if spool is not None and pending:
            self._write_spool(spool, (len(self.payloads) - 1) // block, pending)
        self._spool = spool
        self.total = len(self.payloads)
        self.digest = whole.hexdigest()
        progress(self.total)

    def spool_bytes(self) -> int:
        return self._spool_bytes

    def _write_spool(self, spool: Path, b: int, images: list[np.ndarray]) -> None:
        spool.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        for a in images:
            np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
        data = zlib.compress(buf.getvalue(), 1)
        (spool / f"{b:08d}.npz1").write_bytes(data)
        self._spool_bytes += len(data)

    def _read_spool(self, b: int) -> list[np.ndarray]:
        buf = io.BytesIO(zlib.decompress((self._spool / f"{b:08d}.npz1").read_bytes()))
        out = []
        while buf.tell() < len(buf.getbuffer()):
            out.append(np.load(buf, allow_pickle=False))
        return out

    # re-reading
    def _remember(self, i: int, image: np.ndarray) -> None:
        if i in self._cache:
            self._cache.move_to_end(i)
            return
        self._cache[i] = image
        self._cache_bytes += image.nbytes
        while self._cache_bytes > CACHE_BYTES and len(self._cache) > 2 * self._block + 16:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= old.nbytes

    def _from_source(self, lo: int, hi: int) -> None:
        """Read frames [lo, hi) that are not cached: continue the open reader when it is just before them,
        else reopen at lo (the reader starts at the keyframe before it; those frames are cached too)."""
        need = [i for i in range(lo, hi) if i not in self._cache]
        if not need:
            return
        first = need[0]
        if self._cursor is None or not (self._cursor_at <= first <= self._cursor_at + 2 * self._block):
            self._cursor = iter(self._reopen(first))
            self._cursor_at = -1
        for i, _payload, image in self._cursor:
            if i >= self.total or _digest(image) != self.digests[i]:
                raise _Mismatch(i)
            self._remember(i, image)
            self._cursor_at = i + 1
            if i >= hi - 1:
                return
        self._cursor = None
        if any(i not in self._cache for i in range(lo, hi)):
            raise _Mismatch(lo)

    def _spool_now(self, workdir: Path) -> None:
        """Seeking gave other pictures: read the input once more from the start and spool it."""
        log.warning("re-reading the input by seeking gave different pictures; spooling it instead")
        self._cursor = None
        self._cache.clear()
        self._cache_bytes = 0
        spool = workdir / "spool"
        pending: list[np.ndarray] = []
        n = 0
        for i, _payload, image in self._reopen(0):
            if i != n or i >= self.total or _digest(image) != self.digests[i]:
                raise VsrkitError(f"the input changed while it was being upscaled (frame {i} differs on re-reading)")
            pending.append(image)
            n += 1
            if len(pending) == self._block:
                self._write_spool(spool, n // self._block - 1, pending)
                pending = []
        if pending:
            self._write_spool(spool, (n - 1) // self._block, pending)
        if n != self.total:
            raise VsrkitError(f"the input changed while it was being upscaled ({n} frames on re-reading, {self.total} before)")
        self._spool = spool
        self._reopen = None

    def get(self, lo: int, hi: int, workdir: Path | None = None) -> list[Item]:
        if self._spool is not None:
            images = {}
            for b in range(lo // self._block, (hi - 1) // self._block + 1):
                for j, a in enumerate(self._read_spool(b)):
                    images[b * self._block + j] = a
            return [self._to_item(self.payloads[i], images[i]) for i in range(lo, hi)]
        try:
            self._from_source(lo, hi)
        except _Mismatch:
            self._spool_now(workdir)
            return self.get(lo, hi, workdir)
        return [self._to_item(self.payloads[i], self._cache[i]) for i in range(lo, hi)]


# ------------------------------------------------------------------------------------------------- run
def _save(obj: Any, path: Path) -> None:
    write_atomic(path, lambda tmp: torch.save(obj, tmp))


def _load(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


def _cpu(state: dict[Any, torch.Tensor]) -> dict[Any, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}


def _to(obj: Any, device: torch.device | str) -> Any:
    """Backward features (a tensor, or tuples/dicts of them: IconVSR's keyframe features) on ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(v, device) for v in obj)
    return obj


def _survey(model: torch.nn.Module, survey: Any, runner: Runner, frames: Callable[[int, int], tuple[list[Item], torch.Tensor]],
            total: int, k: int, workdir: Path, fingerprint: dict[str, Any], progress: Callable[[int], None]) -> Any:
    """The whole video's ``Survey`` decision: ``measure`` over every block of ``k`` frames and every tile's own part
    (``Runner.owned``: each pixel counted once), summed, then ``decide``. The sums stay in the work folder, so a
    resumed run decides the same without measuring again."""
    path, marker = workdir / "survey.pt", workdir / "survey.json"
    if marker.exists() and json.loads(marker.read_text()) == fingerprint and path.exists():
        sums = _load(path)
    else:
        marker.unlink(missing_ok=True)
        sums = None
        for a in range(0, total, k):
            _, x = frames(a, min(a + k, total))
            h, w = x.shape[-2:]

            def one(t: torch.Tensor, key: Any) -> None:
                nonlocal sums
                part = survey.measure(model, t, runner.owned(h, w, key)).detach().double().cpu()
                sums = part if sums is None else sums + part

            runner.each_tile(one, x)
            progress(min(a + k, total))
        _save(sums, path)
        marker.write_text(json.dumps(fingerprint))
    return survey.decide(model, sums)


class _Clock:
    """Progress of the phases of a run, for ``Hooks.on_progress``."""

    def __init__(self, hooks, phases):
        self.hooks, self.phases = hooks, phases

    def __call__(self, index: int, done: int) -> None:
        if self.hooks.on_progress is not None:
            self.hooks.on_progress(self.phases, index, done)


def run(model: torch.nn.Module, spec: ModelSpec, runner: Runner, inp, cfg: EngineConfig, hooks: Hooks,
        plan: Plan | None = None) -> Iterator[tuple[Item, torch.Tensor]]:
    """The two passes (see the module docstring); yields (item, output (c, sh, sw)) from ``hooks.start``.

    ``plan``: the disk plan made before the run (``vsrkit.infer.plan.plan_run``, its space already checked); used
    as it is when pass 0 counts the frames it was made for. Without one (or when the count differs: a container
    that gave a wrong count) it is made here, once the frames are counted, and its space checked."""
    k = max(cfg.chunk, 1)
    passes = spec.passes
    ctx = passes.context
    own_dir = hooks.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX)) if own_dir else Path(hooks.workdir) / "twopass"
    lock = None
    try:
        if own_dir:
            lock = hold_lock(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        phases = [Phase("reading", None, 0.0), Phase("backward", None, 1.0), Phase("forward", None, 1.0 + passes.forward_cost)]
        if passes.survey is not None:
            phases.insert(1, Phase("survey", None, passes.survey.cost))
        i_back, i_fwd = len(phases) - 2, len(phases) - 1  # the indices of the two passes' phases
        clock = _Clock(hooks, phases)

        # pass 0: read everything once
        if isinstance(inp, ImageInput):
            inp.read_all(workdir, lambda n: clock(0, n), block=k)
        else:
            inp.read_all(workdir, lambda n: clock(0, n))
        total = inp.total
        if total == 0:
            return
        start = hooks.start
        if start % k or start > total:
            raise ValueError(f"two-pass runs resume at a block boundary (a multiple of {k}), not at frame {start}")
        if plan is None or (plan.frames, plan.block, plan.spool_bytes) != (total, k, inp.spool_bytes()):
            if plan is None:
                h, w = inp.size
                sb, fb = sizes(model, spec, runner, h, w)
                fb = fb * k + 4096
            else:  # the sizes were measured for the plan: only the frame count changed
                log.info("two-pass plan: %d frames, not the %d planned: planning again", total, plan.frames)
                sb, fb = plan.state_bytes, plan.feature_bytes
            plan = make_plan(total, k, sb, inp.spool_bytes(), hooks.disk_budget, feature_bytes=fb)
            check_space(plan, workdir)
        nb, K, keep = plan.blocks, plan.every, plan.keep
        log.info("two-pass plan: %d frames: %s, %.2f GiB of temporary disk, backward branch %.2f times per frame",
                 total, plan.summary, plan.disk / 2**30, plan.backward_runs)

        def block(b: int) -> tuple[Block, int, int]:
            a, e = b * k, min((b + 1) * k, total)
            lo, hi = max(a - ctx, 0), min(e + ctx, total)
            return Block(a, e, total, lo, decided), lo, hi

        def frames(lo: int, hi: int) -> tuple[list[Item], torch.Tensor]:
            items = inp.get(lo, hi, workdir) if isinstance(inp, ImageInput) else inp.get(lo, hi)
            return items, torch.stack([it.x for it in items])[None]

        # the survey: a whole-video decision the passes depend on (RealBasicVSR: how often to clean the frames)
        decided = None
        if passes.survey is not None:
            phases[1].frames = total
            fp = {"frames": total, "digest": inp.digest, "tile": cfg.tile, "tile_overlap": cfg.tile_overlap,
                  "precision": str(cfg.autocast_dtype)}
            decided = _survey(model, passes.survey, runner, frames, total, k, workdir, fp, lambda n: clock(1, n))

        def backward_block(b: int, state: dict[Any, torch.Tensor], feats: dict[Any, Any] | None = None) -> dict[Any, torch.Tensor]:
            """The backward state of block b's first frame, from the state of the frame after it (and the block's
            backward features in ``feats``, on the CPU, when given)."""
            blk, lo, hi = block(b)
            _, x = frames(lo, hi)
            out: dict[Any, torch.Tensor] = {}

            def back(t: torch.Tensor, key: Any) -> None:
                prev = state.get(key)
                f, out[key] = passes.backward(model, t, None if prev is None else prev.to(t.device), blk)
                if feats is not None:
                    feats[key] = _to(f, "cpu")

            runner.each_tile(back, x)
            return out

        # pass 1: the backward branch from the last block; keep the state entering each group's last block
        marker = workdir / "pass1.json"
        fingerprint = {"frames": total, "block": k, "every": K, "keep": keep, "digest": inp.digest, "tile": cfg.tile,
                       "tile_overlap": cfg.tile_overlap}
        done1 = marker.exists() and json.loads(marker.read_text()) == fingerprint
        # group 0's blocks are recomputed in pass 2 from the state entering block K - 1, unless pass 1 keeps the
        # backward features of the first blocks: then it runs down to the first frame
        first_needed = 0 if keep else K
        kept_frames = min(keep * k, total)
        phases[i_back].frames = 0 if done1 else max(0, total - min(first_needed * k, total))
        phases[i_fwd].frames = total - start
        phases[i_fwd].cost = (total - kept_frames) / total + passes.forward_cost + (1.0 if K > 1 else 0.0)
        clock(i_back, 0)
        if not done1:
            marker.unlink(missing_ok=True)
            state: dict[Any, torch.Tensor] = {}
            done = 0
            for b in reversed(range(nb)):
                if b >= keep and (b % K == K - 1 or b == nb - 1):
                    _save(_cpu(state), workdir / f"group{b // K:06d}.pt")
                if b < first_needed:
                    break
                feats: dict[Any, Any] | None = {} if b < keep else None
                state = backward_block(b, state, feats)
                if feats is not None:
                    _save(feats, workdir / f"feats{b:08d}.pt")
                done += block(b)[0].size
                clock(i_back, done)
            state = {}
            marker.write_text(json.dumps(fingerprint))

        # pass 2: group by group, block by block
        fstate: dict[Any, torch.Tensor] = {}
        if start:
            fstate = {key: v.to(cfg.device) for key, v in dict(hooks.state or {}).items()}
        b0 = start // k
        done = 0
        for g in range(b0 // K, plan.groups):
            blocks = range(g * K, min((g + 1) * K, nb))
            state = _load(workdir / f"group{g:06d}.pt") if g * K >= keep else {}  # (keep > 0 only when K == 1)
            if K > 1:  # the state entering each block of the group, from the group's kept state
                for b in reversed(blocks):
                    if b < b0:
                        break
                    _save(state, workdir / f"block{b:08d}.pt")
                    if b > max(b0, blocks[0]):
                        state = _cpu(backward_block(b, state))
            for b in blocks:
                if b < b0:
                    continue
                bstate = _load(workdir / f"block{b:08d}.pt") if K > 1 else state
                kept = _load(workdir / f"feats{b:08d}.pt") if b < keep else None
                blk, lo, hi = block(b)
                if hooks.on_state is not None and hooks.state_every and blk.start % hooks.state_every == 0 \
                        and blk.start > start:
                    hooks.on_state(blk.start, _cpu(fstate))
                items, x = frames(lo, hi)

                def fwd(t: torch.Tensor, key: Any) -> torch.Tensor:
                    if kept is not None:  # pass 1 kept this block's backward features
                        feats = _to(kept[key], t.device)
                    else:
                        bs = bstate.get(key)
                        feats, _ = passes.backward(model, t, None if bs is None else bs.to(t.device), blk)
                    y, fstate[key] = passes.forward(model, t, feats, fstate.get(key), blk)
                    return y

                y = runner.run(fwd, x)
                for j in range(blk.size):
                    yield items[blk.offset + j], y[0, j]
                if K > 1:
                    (workdir / f"block{b:08d}.pt").unlink(missing_ok=True)
                done += blk.size
                clock(i_fwd, done)
    finally:
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)
            if lock is not None:
                lock.close()
