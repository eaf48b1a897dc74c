"""Two-pass streaming of long videos: temporary disk and compute, and exactness on a real clip.

1. A short real clip (carphone) through ``upscale_file`` with BasicVSR (REDS4 weights when installed), the input
   re-read from the mp4 and the backward states bounded (``--temp-disk`` small enough for a state every few
   blocks): the PNG frames are compared with a whole-video run of the same frames, and the backward/forward
   frames actually computed are counted (the planner's one-frame probe is not counted). Then the same with the
   default budget, where pass 1's backward features are kept: the backward branch runs once per frame.
2. The per-frame costs of the two branches (multiply-adds, counted without computing, and with ``--timed`` also
   seconds) and the size of one backward state at 480x270, and from them the plan for one hour at 25 fps
   (90,000 frames): temporary disk, backward runs per frame, and total compute against the one-pass cost (the
   model's own forward over the whole video), with the least compute any exact schedule can reach there.

    python benchmarks/bench_long_video.py [--frames 24] [--budget-gib 4] [--threads 2] [--small] [--timed]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import vsrkit
from vsrkit.hub.download import package_file
from vsrkit.models.registry import get_entry
from vsrkit.infer import make_config, twopass
from vsrkit.infer.colour import image_to_item, item_to_image
from vsrkit.infer.tiling import Runner
from vsrkit.io import VideoReader
from vsrkit.models.basicvsr import BasicVSR
from vsrkit.models.spec import Block

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips" / "carphone_pristine.mp4"


def load() -> torch.nn.Module:
    if package_file(get_entry("basicvsr-reds4")[1].weights) is not None:
        return vsrkit.load_model("basicvsr-reds4")
    print("(basicvsr-reds4 weights not installed: BasicVSR with random weights)")
    torch.manual_seed(0)
    return BasicVSR(num_feat=64, num_block=30).eval()


def counting(model: torch.nn.Module, frames: int) -> dict[str, int]:
    """Wrap the model's passes to count the frames each branch computes over the video (not the probes)."""
    calls = {"backward": 0, "forward": 0}
    p = model.spec.passes

    def backward(m, x, state, block):
        if block.total == frames:
            calls["backward"] += block.size
        return p.backward(m, x, state, block)

    def forward(m, x, feats, state, block):
        calls["forward"] += block.size
        return p.forward(m, x, feats, state, block)

    model.spec = dataclasses.replace(model.spec, passes=dataclasses.replace(p, backward=backward, forward=forward))
    return calls


def exactness(model: torch.nn.Module, frames: int, chunk: int, small_budget: bool = True) -> None:
    with VideoReader(CLIP) as r:
        images = [f.image for _, f in zip(range(frames), r)]
    x = torch.stack([image_to_item(a, 3).x for a in images])
    t = time.perf_counter()
    with torch.inference_mode():
        whole = model(x[None])[0]
    t_whole = time.perf_counter() - t
    want = [item_to_image(image_to_item(a, 3), y, 3, np.uint8) for a, y in zip(images, whole)]
    state, feats = twopass.sizes(model, model.spec, Runner(model, model.spec, make_config("cpu")), 144, 176)
    # room for about five states: a state every few blocks; else the default budget (the features kept)
    budget = 5.5 * state if small_budget else twopass.DEFAULT_BUDGET
    passes = model.spec.passes
    calls = counting(model, frames)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "frames/"
        t = time.perf_counter()
        vsrkit.upscale(str(CLIP), str(out) + "/", model=model, device="cpu", chunk=chunk, max_frames=frames,
                       temp_disk=budget / 2**30, progress=False, say=lambda m: print("  " + m))
        t_stream = time.perf_counter() - t
        with VideoReader(out) as r:
            got = [f.image for f in r]
    model.spec = dataclasses.replace(model.spec, passes=passes)
    plan = twopass.make_plan(frames, chunk, state, 0, budget, feature_bytes=feats * chunk + 4096)
    diff = max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(got, want))
    how = f"--temp-disk {budget / 2**20:.1f} MiB" if small_budget else "the default budget"
    print(f"short clip: {frames} frames of carphone 176x144, {plan.summary}, {plan.disk / 2**20:.1f} MiB of "
          f"temporary disk ({how})")
    print(f"  PNG frames identical to the whole-video run: {all(np.array_equal(a, b) for a, b in zip(got, want))} "
          f"(max difference {diff} levels)")
    print(f"  frames computed: backward {calls['backward']} ({calls['backward'] / frames:.2f} per frame, plan "
          f"{plan.backward_runs:.2f}), forward {calls['forward']} ({calls['forward'] / frames:.2f} per frame)")
    print(f"  wall time: streamed {t_stream:.1f} s (with reading, writing), whole-video forward {t_whole:.1f} s")


def macs(model: torch.nn.Module, h: int = 270, w: int = 480) -> tuple[float, float]:
    """Multiply-adds per frame of the backward and forward branches at h x w, counted on fake tensors (nothing is
    computed: quick and the same on every machine)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    n = 2
    blk = Block(1, n + 1, n + 2, 0)
    p = model.spec.passes
    with torch.inference_mode(), FakeTensorMode(allow_non_fake_inputs=True):
        x = torch.zeros(1, n + 2, 3, h, w)
        with FlopCounterMode(display=False) as fc:
            feats, _ = p.backward(model, x, None, blk)
        mb = fc.get_total_flops() / 2 / n
        with FlopCounterMode(display=False) as fc:
            p.forward(model, x, feats, None, blk)
        mf = fc.get_total_flops() / 2 / n
    return mb, mf


def costs(model: torch.nn.Module, n: int = 4, h: int = 270, w: int = 480) -> tuple[float, float]:
    """Seconds per frame of the backward and forward branches at h x w."""
    x = torch.rand(1, n + 2, 3, h, w)
    blk = Block(1, n + 1, n + 2, 0)
    p = model.spec.passes
    with torch.inference_mode():
        p.backward(model, x[:, :3], None, Block(1, 2, 3, 0))  # warm up
        t = time.perf_counter()
        feats, state = p.backward(model, x, None, blk)
        tb = (time.perf_counter() - t) / n
        t = time.perf_counter()
        p.forward(model, x, feats, None, blk)
        tf = (time.perf_counter() - t) / n
    return tb, tf


def least_runs(blocks: int, states: int) -> float:
    """A lower bound on the backward branch's runs per frame for any exact schedule keeping ``states`` block
    states on disk (and one block's features in memory): pass 2 consumes the states in the opposite order from
    the one they are made in, so (checkpointing reversal, Griewank's ``revolve``, repetition number r) at least
    r * blocks - C(states + r, r - 1) block runs precede pass 2's own run of each block, r the least with
    C(states + r, r) >= blocks."""
    r = 1
    while math.comb(states + r, r) < blocks:
        r += 1
    return (max(blocks - 1, r * blocks - math.comb(states + r, r - 1)) + blocks) / blocks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--chunk", type=int, default=4)
    ap.add_argument("--budget-gib", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--small", action="store_true", help="a small BasicVSR for the short clip (counts, exactness)")
    ap.add_argument("--timed", action="store_true", help="also time the branches at 480x270 (slow on a CPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if CLIP.exists():
        for small_budget in (True, False):
            if args.small:
                torch.manual_seed(0)
                model = BasicVSR(num_feat=16, num_block=2).eval()
            else:
                model = load()
            exactness(model, args.frames, args.chunk, small_budget)
    model = load()
    mb, mf = macs(model)
    sb, fb = twopass.sizes(model, model.spec, Runner(model, model.spec, make_config("cpu")), 270, 480)
    print(f"\n480x270 per frame: backward branch {mb / 1e9:.1f} G multiply-adds, forward branch (with upsampling) "
          f"{mf / 1e9:.1f} G (forward/backward {mf / mb:.2f}); one backward state {sb / 2**20:.1f} MiB")
    tb = tf = None
    if args.timed:
        tb, tf = costs(model)
        print(f"  timed: backward branch {tb:.3f} s, forward branch {tf:.3f} s (forward/backward {tf / tb:.2f})")
    frames = 3600 * 25
    old = frames * 270 * 480 * 3 * 4 + twopass.make_plan(frames, 24, sb, 0, 1e18).disk
    print(f"one hour at 25 fps, 480x270 ({frames} frames), blocks of 24:")
    print(f"  before (float32 spool + a state per block): {old / 2**30:.0f} GiB of temporary disk")

    def ratio(runs: float, b: float, f: float) -> float:
        return (runs * b + f) / (b + f)

    for label, budget in (("state per block", 1e18), (f"--temp-disk {args.budget_gib:g} (default 4)", args.budget_gib * 2**30)):
        plan = twopass.make_plan(frames, 24, sb, 0, budget, feature_bytes=fb * 24 + 4096 if budget < 1e18 else 0)
        timed = f", timed {ratio(plan.backward_runs, tb, tf):.2f}x" if tb else ""
        print(f"  {label}: {plan.summary}, {plan.disk / 2**30:.2f} GiB temporary disk, backward branch "
              f"{plan.backward_runs:.2f} times per frame: compute {ratio(plan.backward_runs, mb, mf):.2f}x the one-pass "
              f"multiply-adds{timed}")
        if budget < 1e18:
            states = int(budget // sb)
            least = least_runs(plan.blocks, states)
            print(f"    the least any exact schedule keeping {states} states can do: backward branch {least:.2f} times per "
                  f"frame, {ratio(least, mb, mf):.2f}x")
    need = next((g for g in range(1, 400) if twopass.make_plan(frames, 24, sb, 0, g * 2**30).every == 1), None)
    print(f"  a state per block (the least recompute) needs --temp-disk {need or '>400'} GiB")
    target = next((g for g in range(1, 400)
                   if ratio(twopass.make_plan(frames, 24, sb, 0, g * 2**30).backward_runs, mb, mf) <= 1.6), None)
    print(f"  compute <= 1.6x the one-pass multiply-adds needs --temp-disk {target or '>400'} GiB")


if __name__ == "__main__":
    main()
