"""Peak CPU memory (RSS) of BasicVSR++ streamed through the engine, for videos of 100, 500 and 1,000 frames: it must
not grow with the video's length (the engine holds one temporal chunk and its context, never the whole video).

Every length runs in a fresh subprocess that reports ``getrusage(RUSAGE_SELF).ru_maxrss`` at the end. Frames are
made one at a time (64x64 uint8, a moving pattern plus noise) and go through ``vsrkit.infer.upscale_frames``;
the outputs are consumed one at a time (summed), as the pipeline writes them.

    python benchmarks/bench_basicvsrpp_memory.py                       # 100, 500 and 1000 frames
    python benchmarks/bench_basicvsrpp_memory.py --frames 100 500 --threads 2

Results: see the end of this file.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

MIB = 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB  # ru_maxrss is KiB on Linux


def child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from vsrkit.infer import make_config, upscale_frames
    from vsrkit.models.basicvsrpp import BasicVSRPlusPlus

    torch.set_num_threads(args.threads)
    length = args.frames[0]
    torch.manual_seed(0)
    model = BasicVSRPlusPlus(mid_channels=args.mid_channels, num_blocks=args.num_blocks).eval()
    base = _peak_rss_mib()

    def frames():
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0 : args.size, 0 : args.size]
        for t in range(length):
            wave = 127 + 100 * np.sin((xx + 2 * t) / 7.0) * np.cos((yy - t) / 9.0)
            img = np.clip(wave[..., None] + rng.normal(0, 8, (args.size, args.size, 3)), 0, 255)
            yield img.astype(np.uint8)

    cfg = make_config("cpu", chunk=args.chunk)
    t0 = time.perf_counter()
    n, total = 0, 0.0
    for out in upscale_frames(model, frames(), cfg):
        n += 1
        total += float(out.mean())
    sec = time.perf_counter() - t0
    print(json.dumps({"frames": n, "peak_rss_mib": _peak_rss_mib(), "after_model_mib": base, "seconds": sec,
                      "out_shape": list(out.shape), "mean": total / n}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, nargs="+", default=[100, 500, 1000])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--mid-channels", type=int, default=16)
    ap.add_argument("--num-blocks", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=24)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    print(f"BasicVSR++ (mid_channels {args.mid_channels}, {args.num_blocks} blocks), {args.size}x{args.size} frames, "
          f"engine chunks of {args.chunk} with the model's overlap, {args.threads} thread(s)")
    for n in args.frames:
        cmd = [sys.executable, __file__, "--child", "--frames", str(n), "--size", str(args.size), "--mid-channels",
               str(args.mid_channels), "--num-blocks", str(args.num_blocks), "--chunk", str(args.chunk),
               "--threads", str(args.threads)]
        res = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1])
        print(f"  {res['frames']:5d} frames: peak RSS {res['peak_rss_mib']:7.1f} MiB "
              f"(after building the model {res['after_model_mib']:.1f} MiB), {res['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()

# Results (shared 2-core CPU under load, 1 thread):
# BasicVSR++ (mid_channels 16, 1 blocks), 64x64 frames, engine chunks of 24 with the model's overlap (12), 1 thread
#     100 frames: peak RSS   562.2 MiB (after building the model 231.4 MiB), 118 s
#     500 frames: peak RSS   611.4 MiB (after building the model 231.2 MiB), 454 s
#    1000 frames: peak RSS   586.0 MiB (after building the model 231.3 MiB), 625 s
# Flat within the allocator's noise (one chunk of 48 frames and its 4x outputs is the working set); the whole
# 1,000-frame output alone would be 196 MB as uint8 and 786 MB as float.
