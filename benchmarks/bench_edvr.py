"""EDVR seconds per output frame: ``forward`` once per window (as the official test loop) vs ``forward_sliding``.

    python benchmarks/bench_edvr.py [--size 180x320] [--frames 7] [--config m|l] [--threads N]

Wall-clock time is what counts; the process CPU time (all threads) is printed beside it because it is
less disturbed by other processes on a shared machine. Random weights: the speed does not depend on
them, except that all-zero DCN offsets would be unusual, so the offset convolutions get small random
weights and the samples land between pixels.
"""

from __future__ import annotations

import argparse
import time

import torch

from vsrkit.models.edvr import EDVR

CONFIGS = {
    "m": dict(num_feat=64, num_frame=5, deformable_groups=8, num_extract_block=5, num_reconstruct_block=10),
    "l": dict(num_feat=128, num_frame=5, deformable_groups=8, num_extract_block=5, num_reconstruct_block=40),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="180x320")
    ap.add_argument("--frames", type=int, default=7, help="input frames (outputs = frames - num_frame + 1)")
    ap.add_argument("--config", default="m", choices=sorted(CONFIGS))
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--skip-windows", action="store_true", help="only time forward_sliding")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.split("x"))
    torch.manual_seed(0)
    model = EDVR(**CONFIGS[args.config]).eval()
    for name, p in model.named_parameters():
        if "conv_offset" in name:
            torch.nn.init.normal_(p, std=1e-3)
    nf = model.num_frame
    x = torch.rand(1, args.frames, 3, h, w)
    n_out = args.frames - nf + 1
    cfg = args.config.upper()
    print(f"EDVR-{cfg} {h}x{w}, {args.frames} frames -> {n_out} outputs, threads {torch.get_num_threads()}")
    with torch.no_grad():
        model(x[:, :nf])  # warm-up
        if not args.skip_windows:
            t0, c0 = time.perf_counter(), time.process_time()
            per_window = [model(x[:, k : k + nf]) for k in range(n_out)]
            t_win = (time.perf_counter() - t0) / n_out
            c_win = (time.process_time() - c0) / n_out
            print(f"forward per window   {t_win:6.2f} s/frame  (process CPU time {c_win:.2f} s/frame)")
        t0, c0 = time.perf_counter(), time.process_time()
        slid = model.forward_sliding(x)
        t_slide = (time.perf_counter() - t0) / n_out
        c_slide = (time.process_time() - c0) / n_out
        print(f"forward_sliding      {t_slide:6.2f} s/frame  (process CPU time {c_slide:.2f} s/frame)")
        if not args.skip_windows:
            err = max((slid[:, k] - per_window[k]).abs().max().item() for k in range(n_out))
            print(f"speed-up {t_win / t_slide:.2f}x, max abs difference {err:.2g}")


if __name__ == "__main__":
    main()
