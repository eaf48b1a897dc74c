"""Soak: ``vsrkit upscale`` over 10,000 frames (a real clip looped, a fast model), watched from outside.

The clip (carphone, 176x144) is decoded once and written again and again into one H.264 input of
``--frames`` frames; ``vsrkit upscale IN -o OUT.mp4 --model esr-max-x2`` then runs as a child process while
this script samples its resident memory (VmRSS), open file descriptors (/proc/PID/fd) and threads every
``--every`` seconds, and prints them with the frames written so far (from the progress-free output size).
RSS, descriptors and threads must stay flat after the first samples: the script prints the growth between
the first sample after warm-up and the last, and exits non-zero if descriptors or threads grew, or RSS grew
by more than ``--rss-slack`` MiB.

    python benchmarks/bench_soak.py [--frames 10000] [--every 5] [--model esr-max-x2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips" / "carphone_pristine.mp4"


def looped_input(path: Path, frames: int) -> None:
    with av.open(str(CLIP)) as c:
        pictures = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = pictures[0].shape[1], pictures[0].shape[0], "yuv420p"
        s.options = {"crf": "18", "preset": "ultrafast"}
        for i in range(frames):
            for p in s.encode(av.VideoFrame.from_ndarray(pictures[i % len(pictures)], format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def sample(pid: int) -> tuple[float, int, int]:
    """RSS in MiB, open descriptors, threads of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss = int(fields["VmRSS"].split()[0]) / 1024
    threads = int(fields["Threads"])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds, threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--every", type=float, default=5.0)
    ap.add_argument("--model", default="esr-max-x2")
    ap.add_argument("--rss-slack", type=float, default=64.0, help="MiB of RSS growth still counted as flat")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        t = time.monotonic()
        looped_input(src, args.frames)
        print(f"input: {args.frames} frames of {CLIP.name} looped, {src.stat().st_size / 2**20:.1f} MiB, "
              f"made in {time.monotonic() - t:.0f} s", flush=True)
        cmd = [sys.executable, "-m", "vsrkit.cli.main", "upscale", str(src), "-o", str(out), "-m", args.model,
               "--device", "cpu", "-q"]
        t0 = time.monotonic()
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        rows = []
        print(f"{'s':>6} {'RSS MiB':>8} {'fds':>4} {'threads':>7} {'temp MiB':>8}", flush=True)
        while child.poll() is None:
            try:
                rss, fds, threads = sample(child.pid)
            except (FileNotFoundError, ProcessLookupError, KeyError):
                break
            written = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file() and p != src) / 2**20
            rows.append((time.monotonic() - t0, rss, fds, threads))
            print(f"{rows[-1][0]:6.0f} {rss:8.1f} {fds:4d} {threads:7d} {written:8.1f}", flush=True)
            time.sleep(args.every)
        text = child.communicate()[0]
        wall = time.monotonic() - t0
        if child.returncode != 0:
            print(text)
            sys.exit(f"vsrkit upscale failed with exit code {child.returncode}")
        with av.open(str(out)) as c:
            n = sum(1 for p in c.demux(video=0) if p.size)
    print(f"\n{n} output frames in {wall:.0f} s ({args.frames / wall:.0f} frames/s)")
    if len(rows) < 3:
        sys.exit("too few samples to judge")
    first = rows[len(rows) // 5]  # after the warm-up (model load, first encodes)
    last = rows[-1]
    print(f"from {first[0]:.0f} s to {last[0]:.0f} s: RSS {first[1]:.1f} -> {last[1]:.1f} MiB "
          f"(max {max(r[1] for r in rows):.1f}), fds {first[2]} -> {last[2]} (max {max(r[2] for r in rows)}), "
          f"threads {first[3]} -> {last[3]} (max {max(r[3] for r in rows)})")
    flat = last[2] <= first[2] and last[3] <= first[3] and last[1] - first[1] <= args.rss_slack
    print("flat" if flat else "GROWING")
    sys.exit(0 if flat else 1)


if __name__ == "__main__":
    main()
