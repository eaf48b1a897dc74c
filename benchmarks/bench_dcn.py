"""Speed of vsrkit's pure-PyTorch deformable convolution against a plain conv2d of the same size.

    python benchmarks/bench_dcn.py [--size 180x320] [--channels 64] [--groups 8] [--threads N] [--edvr]

Prints milliseconds per call (best of --repeat) of ``deform_conv2d`` (3x3, modulated, dg groups,
random offsets of a few pixels) and of ``F.conv2d``, and with --edvr the DCN's share of EDVR-M's time
per frame (``forward_sliding``), measured by timing every ``deform_conv2d`` call inside the model.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn import functional as F

from vsrkit.models import dcn as dcn_mod
from vsrkit.models.layers.dcn import deform_conv2d


def best_of(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="180x320")
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--groups", type=int, default=8, help="deformable groups")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--edvr", action="store_true", help="also the DCN share of EDVR-M per frame")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.split("x"))
    c, dg = args.channels, args.groups
    torch.manual_seed(0)
    x = torch.randn(1, c, h, w)
    weight = torch.randn(c, c, 3, 3) / (3 * c**0.5)
    bias = torch.zeros(c)
    offset = torch.randn(1, 2 * dg * 9, h, w) * 2
    mask = torch.rand(1, dg * 9, h, w)
    with torch.no_grad():
        t_conv = best_of(lambda: F.conv2d(x, weight, bias, 1, 1), args.repeat)
        t_dcn = best_of(lambda: deform_conv2d(x, offset, weight, bias, 1, 1, 1, mask), args.repeat)
    print(f"threads {torch.get_num_threads()}, input 1x{c}x{h}x{w}, 3x3, {dg} deformable groups")
    print(f"conv2d         {t_conv * 1e3:8.1f} ms")
    print(f"deform_conv2d  {t_dcn * 1e3:8.1f} ms  ({t_dcn / t_conv:.1f}x conv2d)")

    if args.edvr:
        from vsrkit.models.edvr import EDVR

        model = EDVR(num_feat=64, num_frame=5, deformable_groups=8, num_extract_block=5, num_reconstruct_block=10)
        model.eval()
        frames = torch.rand(1, 7, 3, h, w)
        spent = [0.0]
        inner = dcn_mod.deform_conv2d

        def timed(*a, **k):
            t0 = time.perf_counter()
            out = inner(*a, **k)
            spent[0] += time.perf_counter() - t0
            return out

        dcn_mod.deform_conv2d = timed
        try:
            with torch.no_grad():
                model.forward_sliding(frames[:, :5])  # warm-up
                spent[0] = 0.0
                t0 = time.perf_counter()
                model.forward_sliding(frames)
                total = time.perf_counter() - t0
        finally:
            dcn_mod.deform_conv2d = inner
        n = frames.shape[1] - 4
        print(
            f"EDVR-M forward_sliding: {total / n:.2f} s/frame, of which deform_conv2d {spent[0] / n:.2f} s "
            f"({100 * spent[0] / total:.0f}%)"
        )


if __name__ == "__main__":
    main()
