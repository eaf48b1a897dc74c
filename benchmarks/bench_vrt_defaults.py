"""VRT x4 at its default settings, end to end: 180x320 real frames -> 720x1280 video, peak RSS printed.

Takes the first frames of ../shared/data/frames/reds_demo_000_lr (320x180, REDS-style LR), runs
`upscale_file` with the `vrt-reds-6f` architecture (random weights: speed and memory do not depend on
them) and no --tile/--max-memory, so the engine plans tiles from its default CPU budget
(min(8 GiB, half the RAM)). Prints the tile chosen, the time and the process's peak RSS.

    python benchmarks/bench_vrt_defaults.py [--frames 6] [--model vrt-reds-6f]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from vsrkit.models.registry import get_entry, network_class
from vsrkit.pipeline import upscale_file

FRAMES = Path(__file__).resolve().parents[2] / "shared" / "data" / "frames" / "reds_demo_000_lr"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="vrt-reds-6f")
    ap.add_argument("--frames", type=int, default=6)
    args = ap.parse_args()
    family, entry = get_entry(args.model)
    model = network_class(family.name, entry.arch)(**entry.kwargs).eval()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "lr"
        src.mkdir()
        for f in sorted(FRAMES.glob("*.png"))[: args.frames]:
            shutil.copy(f, src / f.name)
        print(f"{args.model} (random weights), {args.frames} frames 320x180 -> 1280x720, default settings")
        t0 = time.perf_counter()
        upscale_file(src, Path(tmp) / "vrt_x4.mp4", model=model, device="cpu", progress=False, say=print)
        secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"time {secs:.0f} s ({secs / args.frames:.0f} s/frame); peak RSS {peak:.2f} GiB")


if __name__ == "__main__":
    main()
