"""Evaluate models on real clips (BI x4 of ../shared/data), benchmark them, and write the HTML report.

    python benchmarks/eval_report_demo.py [--frames 30] [--models bicubic-x4,basicvsr-reds4]
                                          [--rlsp-weights FILE] [--out vsrkit-eval-demo]

Prints each model's PSNR/SSIM (Y, averaged per clip then over clips), flicker and warping errors, the
bench table, and writes ``OUT/report.html`` (quality/speed table, scatter with Pareto front, per-frame
PSNR curves, crops with a slider). With ``--rlsp-weights`` (any RLSP checkpoint vsrkit recognises, PyTorch or the released TensorFlow ``.index``) the per-frame
curves show a unidirectional recurrent model's weak first frames against bidirectional BasicVSR.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--models", default="bicubic-x4,basicvsr-reds4")
    ap.add_argument("--rlsp-weights", default=None)
    ap.add_argument("--clips", default="carphone_pristine.mp4")
    ap.add_argument("--out", default="vsrkit-eval-demo")
    args = ap.parse_args()

    from vsrkit.bench.run import format_table, run_bench
    from vsrkit.cli.eval import format_summary
    from vsrkit.eval.protocols import resolve_protocol
    from vsrkit.eval.report import write_report
    from vsrkit.eval.run import evaluate, write_csv, write_json
    from vsrkit.io import VideoReader, VideoWriter

    out = Path(args.out).resolve()
    gt = out / "gt"
    for name in args.clips.split(","):
        clip_dir = gt / Path(name).stem
        if clip_dir.exists():
            continue
        with VideoReader(DATA / "clips" / name) as r:
            w = r.info.width - r.info.width % 4
            h = r.info.height - r.info.height % 4
            with VideoWriter(clip_dir, width=w, height=h) as wr:
                for f in r:
                    if f.index >= args.frames:
                        break
                    wr.write(f.image[:h, :w])
    models = [(m, None) for m in args.models.split(",") if m]
    if args.rlsp_weights:
        models.append((None, args.rlsp_weights))  # the architecture is recognised from the file
    results = []
    for name, weights in models:
        t0 = time.perf_counter()
        if name is None:
            from vsrkit.hub.loader import load_model

            name = f"rlsp({Path(weights).stem})"
            net, weights = load_model(weights=args.rlsp_weights), None
            net.spec = dataclasses.replace(net.spec, name=name)
        else:
            net = name
        r = evaluate(net, gt, degradation="bi", weights=weights, metrics=("psnr", "ssim", "flicker"),
                     protocol=resolve_protocol("vid4"), device="auto", progress=False)
        tag = name if weights is None else f"{name}-weights"
        results.append(write_json(r, out / f"eval-{tag}.json"))
        write_csv(r, out / f"eval-{tag}.csv")
        print(format_summary(r))
        print(f"  ({time.perf_counter() - t0:.0f} s)\n", flush=True)
    with VideoReader(next(iter(sorted(gt.iterdir())))) as r:
        size = (r.info.height // 4, r.info.width // 4)
    names = [m for m, w in models if m is not None and w is None]
    bench = run_bench(names, [size], ["auto"], ["fp32"], frames=8, warmup=1, repeat=3)
    print(format_table(bench))
    results.append(write_json(bench, out / "bench.json"))
    print("wrote", write_report(results, out / "report.html", "vsrkit: real clips, BI x4"))


if __name__ == "__main__":
    main()
