"""The README's real-video table (issue 21): Y PSNR of models on a clip made as web video is made, BI x4 then H.264
(libx264, preset medium) at a few crf values, each through ``vsrkit eval --degrade bi --crf N``.

    python benchmarks/real_video_table.py [--clip bigbuckbunny.mp4] [--frames 20] [--crf none,23,30,36] \\
        [--models rlsp-fast-x4,rlsp-fast-real-x4,basicvsr-reds4]

Prints one markdown row per LR input (bicubic first, then each model, then each model's gain over bicubic) and the
time per frame of each model in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from vsrkit.eval.cards import MatlabBicubic, write_heldout_frames
from vsrkit.eval.run import evaluate

CLIPS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "clips"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default="bigbuckbunny.mp4")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--crf", default="none,23,30,36")
    ap.add_argument("--models", default="rlsp-fast-x4,rlsp-fast-real-x4,basicvsr-reds4")
    args = ap.parse_args()
    crfs = [None if c == "none" else float(c) for c in args.crf.split(",")]
    models = args.models.split(",")
    ms: dict[str, list[float]] = {m: [] for m in models}
    with tempfile.TemporaryDirectory() as tmp:
        gt = write_heldout_frames(CLIPS, Path(tmp) / "gt", args.frames, (args.clip,))
        print("| LR input | bicubic | " + " | ".join(models) + " | " + " | ".join(f"{m} gain" for m in models) + " |")
        print("|---" * (2 + 2 * len(models)) + "|")
        for crf in crfs:
            row = {}
            for m in ["bicubic", *models]:
                t0 = time.time()
                r = evaluate(MatlabBicubic(4) if m == "bicubic" else m, gt, degradation="bi", crf=crf,
                             metrics=("psnr",), device="cpu", progress=False)
                row[m] = r["overall"]["psnr"]
                if m != "bicubic":
                    ms[m].append(r["overall"]["ms_per_frame"])
            what = "clean (BI x4)" if crf is None else f"H.264 crf {crf:g}"
            gains = [f"{row[m] - row['bicubic']:+.2f} dB" for m in models]
            print(f"| {what} | {row['bicubic']:.2f} | " + " | ".join(f"{row[m]:.2f}" for m in models) + " | "
                  + " | ".join(gains) + " |", flush=True)
    print("\nms per frame (eval, this run): " + ", ".join(f"{m} {sum(v) / len(v):.0f}" for m, v in ms.items()))


if __name__ == "__main__":
    main()
