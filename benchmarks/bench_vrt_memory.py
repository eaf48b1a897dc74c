"""Peak CPU memory (RSS) of VRT x4 (the ``vrt-reds-6f`` architecture, random weights) on a tiled clip.

Every setting runs in a fresh subprocess and reports ``getrusage(RUSAGE_SELF).ru_maxrss`` at the end, so the
figures do not leak into each other. The clip goes through ``vsrkit.infer.upscale_tensor`` (spatial tiles
with blended overlap) when the engine is importable, else through a small local tiling loop.

    python benchmarks/bench_vrt_memory.py                      # 180x320, 6 frames, tile 128 (official tile)
    python benchmarks/bench_vrt_memory.py --tiles 64 96 128    # several tile sizes, one subprocess each
    python benchmarks/bench_vrt_memory.py --one-tile           # only the first tile: the same peak, ~1/6 time

Peak memory is that of one tile (tiles run one after the other) plus the output frames, so ``--one-tile``
gives the peak of the full run within the size of the output buffers (~0.1 GiB at 720x1280x6).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

GIB = 2**30


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # ru_maxrss is KiB on Linux


def _local_tiled(model, frames, tile: int, overlap: int):
    """(T, c, h, w) -> (T, c, sh, sw): overlapping tiles, averaged where they overlap (benchmark stand-in)."""
    import torch

    t, c, h, w = frames.shape
    s = model.scale

    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        return list(range(0, n - tile, tile - overlap)) + [n - tile]

    out = torch.zeros(t, c, h * s, w * s)
    weight = torch.zeros(1, 1, h * s, w * s)
    for y0 in starts(h):
        for x0 in starts(w):
            patch = frames[None, :, :, y0 : y0 + tile, x0 : x0 + tile]
            y = model(patch)[0]
            out[..., y0 * s : (y0 + y.shape[-2] // s) * s, x0 * s : (x0 + y.shape[-1] // s) * s] += y
            weight[..., y0 * s : (y0 + y.shape[-2] // s) * s, x0 * s : (x0 + y.shape[-1] // s) * s] += 1
    return out / weight


def child(args: argparse.Namespace) -> None:
    import torch

    from vsrkit.models.vrt import MODELS, VRT

    if args.threads:
        torch.set_num_threads(args.threads)
    entry = next(e for e in MODELS if e.name == args.model)
    torch.manual_seed(0)
    model = VRT(**entry.kwargs).eval()
    base = _peak_rss_gib()
    h, w = args.height, args.width
    if args.one_tile:
        h, w = min(h, args.tile), min(w, args.tile)
    frames = torch.rand(args.frames, 3, h, w)
    t0 = time.perf_counter()
    with torch.inference_mode():
        try:
            from vsrkit.infer import make_config, upscale_tensor

            cfg = make_config(device="cpu", tile=args.tile, tile_overlap=args.overlap)
            out = upscale_tensor(model, frames, cfg)
            how = "vsrkit.infer.upscale_tensor"
        except ImportError:
            out = _local_tiled(model, frames, args.tile, args.overlap)
            how = "local tiling loop"
    sec = time.perf_counter() - t0
    print(
        json.dumps(
            dict(
                model=args.model,
                frames=args.frames,
                size=[h, w],
                tile=args.tile,
                overlap=args.overlap,
                output=list(out.shape),
                via=how,
                seconds=round(sec, 1),
                threads=torch.get_num_threads(),
                model_rss_gib=round(base, 3),
                peak_rss_gib=round(_peak_rss_gib(), 3),
            )
        ),
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vrt-reds-6f")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--height", type=int, default=180)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--tiles", type=int, nargs="+", default=[128])
    ap.add_argument("--overlap", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--one-tile", action="store_true", help="run only one tile-sized crop (same peak, faster)")
    ap.add_argument("--limit-gib", type=float, default=8.0)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tile", type=int, default=128, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    for tile in args.tiles:
        cmd = [sys.executable, __file__, "--child", "--tile", str(tile), "--model", args.model,
               "--frames", str(args.frames), "--height", str(args.height), "--width", str(args.width),
               "--overlap", str(args.overlap), "--threads", str(args.threads)]
        if args.one_tile:
            cmd.append("--one-tile")
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(f"tile {tile}: failed (exit {res.returncode}): {res.stderr.strip().splitlines()[-1:]}")
            continue
        row = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(row)
        ok = "under" if row["peak_rss_gib"] < args.limit_gib else "OVER"
        print(f"tile {tile:4d}  {row['size'][0]}x{row['size'][1]}x{row['frames']}f  peak RSS {row['peak_rss_gib']:.2f} GiB "
              f"({ok} {args.limit_gib:g} GiB; model alone {row['model_rss_gib']:.2f})  {row['seconds']:.0f} s  via {row['via']}",
              flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
