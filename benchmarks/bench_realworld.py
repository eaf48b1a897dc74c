"""Throughput of the real-world degradation (data.realworld) in one DataLoader worker: clips per second for
RealBasicVSR's training shape (15-frame 256x256 GT clips -> x4 LR), one thread, many seeds (the cost depends on the
draws: the first stage may enlarge 1.5x, x264 costs more than mpeg4). Prints the CPU it ran on.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_realworld.py [--clips 24] [--frames 15] [--size 256]

Prints wall-clock and CPU-time rates (on a busy machine the second is what a free core would give). GT clips are
256x256 crops of ../shared/data/clips/bigbuckbunny.mp4 (real content: codecs and noise behave as on
training data); without that file, a synthetic textured clip.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from vsrkit.data.realworld import degrade_clip

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips" / "bigbuckbunny.mp4"


def cpu() -> str:
    """lscpu's model name and whether the CPU has avx512_bf16 / AMX."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and name in ("", platform.machine(), platform.processor()):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    has = [f for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return f"{name} ({', '.join(has) if has else 'no avx512/amx'})"


def gt_clips(n: int, frames: int, size: int) -> list[np.ndarray]:
    """``n`` clips of ``frames`` consecutive frames, ``size`` x ``size`` crops at varied places."""
    rng = np.random.default_rng(0)
    if CLIP.is_file():
        from vsrkit.io import VideoReader

        video = []
        with VideoReader(CLIP) as r:
            for f in r:
                video.append(f.image)
        video = np.stack(video)
        out = []
        for _ in range(n):
            t = int(rng.integers(0, len(video) - frames + 1))
            y = int(rng.integers(0, video.shape[1] - size + 1))
            x = int(rng.integers(0, video.shape[2] - size + 1))
            out.append(np.ascontiguousarray(video[t:t + frames, y:y + size, x:x + size]))
        return out
    yy, xx = np.mgrid[0:size, 0:size]
    base = (127 + 60 * np.sin(xx / 7.0) * np.cos(yy / 11.0))[..., None] + rng.normal(0, 8, (size, size, 3))
    return [np.stack([np.roll(base, 2 * t + 5 * k, 1) for t in range(frames)]).clip(0, 255).astype(np.uint8)
            for k in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=24, help="clips timed (one seed each)")
    ap.add_argument("--frames", type=int, default=15)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--scale", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(1)  # a DataLoader worker's setting
    clips = gt_clips(args.clips, args.frames, args.size)
    degrade_clip(clips[0], args.scale, 10_000)  # warm-up (tap tables, codec libraries)
    times, cpu_times = [], []
    for seed, clip in enumerate(clips):
        t0, c0 = time.perf_counter(), time.process_time()
        lr = degrade_clip(clip, args.scale, seed)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    assert lr.shape == (args.frames, args.size // args.scale, args.size // args.scale, 3)
    total = sum(times)
    print(f"real-world degradation, {args.frames} x {args.size}x{args.size} GT -> x{args.scale} LR, {args.clips} clips "
          f"(seeds 0..{args.clips - 1}), torch threads 1, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"CPU: {cpu()}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; torch {torch.__version__}")
    print(f"{args.clips / total:.2f} clips/s per worker ({1000 * total / args.clips:.0f} ms/clip on average; "
          f"median {1000 * statistics.median(times):.0f} ms, min {1000 * min(times):.0f}, max {1000 * max(times):.0f})")
    # on a busy machine the wall clock counts other processes' turns; CPU time is what a free core would take
    print(f"{args.clips / sum(cpu_times):.2f} clips/s per worker in CPU time "
          f"({1000 * sum(cpu_times) / args.clips:.0f} ms of CPU per clip)")


if __name__ == "__main__":
    main()
