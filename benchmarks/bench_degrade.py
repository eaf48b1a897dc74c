"""Time the BI and BD x4 degradations on 1280x720 RGB frames: ms per frame, uint8 numpy (HWC, what a
DataLoader worker does) and float32 tensors (C, H, W), single thread and default threads.

    PYTHONPATH=src python benchmarks/bench_degrade.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from vsrkit.data.degrade import degrade, degrade_tensor


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (tap tables are cached)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(720, 1280, 3), dtype=np.uint8)
    ten = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    default_threads = torch.get_num_threads()
    print(f"1280x720 RGB frame, x4, median of {args.repeats}; torch {torch.__version__}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        for mode in ("bi", "bd"):
            a = median_ms(lambda: degrade(img, mode, 4), args.repeats)
            b = median_ms(lambda: degrade_tensor(ten, mode, 4), args.repeats)
            print(f"{mode.upper()}  threads={threads}:  uint8 numpy {a:7.1f} ms/frame   float32 tensor {b:7.1f} ms/frame")
    torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()
