"""Speed of vsrkit's pure-PyTorch deformable convolution against a plain conv2d of the same size.

    python benchmarks/bench_dcn.py [--size 180x320] [--channels 64] [--groups 8] [--threads N] [--edvr] [--train]

Prints milliseconds per call (best of --repeat) of ``deform_conv2d`` (3x3, modulated, dg groups,
random offsets of a few pixels) and of ``F.conv2d``, and with --edvr the DCN's share of EDVR-M's time
per frame (``forward_sliding``), measured by timing every ``deform_conv2d`` call inside the model.

--train: forward + backward (gradients for input, offset, mask, weight and bias) at EDVR-M's training sizes
(--train-size 64x64, --batch 2, the same --channels and --groups), of the differentiable path as it is
(``_EXACT_GRID``: torchvision's offset gradient at integer positions) against the former grid, with zero
offsets (the official initialisation: every sample on a pixel) and with random ones. The two run interleaved,
--train-repeat times each; it prints the best and the median milliseconds and their ratios new / old.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn import functional as F

from vsrkit.models.layers import dcn as dcn_mod
from vsrkit.models.layers.dcn import deform_conv2d


def best_of(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_train(args: argparse.Namespace) -> None:
    h, w = (int(v) for v in args.train_size.split("x"))
    b, c, dg = args.batch, args.channels, args.groups
    torch.manual_seed(0)
    x = torch.randn(b, c, h, w, requires_grad=True)
    weight = (torch.randn(c, c, 3, 3) / (3 * c**0.5)).requires_grad_(True)
    bias = torch.zeros(c, requires_grad=True)
    mask = torch.rand(b, dg * 9, h, w, requires_grad=True)
    grad_out = torch.randn(b, c, h, w)
    print(f"threads {torch.get_num_threads()}, input {b}x{c}x{h}x{w}, 3x3, {dg} deformable groups, forward+backward")
    for what, offset in (("zero offsets", torch.zeros(b, 2 * dg * 9, h, w)),
                         ("random offsets", torch.randn(b, 2 * dg * 9, h, w) * 2)):
        offset.requires_grad_(True)

        def step() -> None:
            out = deform_conv2d(x, offset, weight, bias, 1, 1, 1, mask)
            torch.autograd.backward(out, grad_out)

        times: dict[bool, list[float]] = {False: [], True: []}
        try:
            for exact in (False, True):  # warm-up
                dcn_mod._EXACT_GRID = exact
                step()
            for r in range(args.train_repeat):
                for exact in (False, True) if r % 2 else (True, False):
                    dcn_mod._EXACT_GRID = exact
                    t0 = time.perf_counter()
                    step()
                    times[exact].append(time.perf_counter() - t0)
        finally:
            dcn_mod._EXACT_GRID = True
        old, new = times[False], times[True]
        print(
            f"{what:15s} former grid {min(old) * 1e3:7.1f} ms (median {statistics.median(old) * 1e3:7.1f}), "
            f"exact grid {min(new) * 1e3:7.1f} ms (median {statistics.median(new) * 1e3:7.1f}); "
            f"ratio {min(new) / min(old):.3f} best, {statistics.median(new) / statistics.median(old):.3f} median"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="180x320")
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--groups", type=int, default=8, help="deformable groups")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--edvr", action="store_true", help="also the DCN share of EDVR-M per frame")
    ap.add_argument("--train", action="store_true", help="only forward+backward, exact vs former grid")
    ap.add_argument("--train-size", default="64x64")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--train-repeat", type=int, default=20)
    args = ap.parse_args()
    if args.train:
        if args.threads:
            torch.set_num_threads(args.threads)
        bench_train(args)
        return
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
