"""Fuzz the readers and the command line with many cases (default 3,000) and print the counts.

Each case runs in a worker process with a timeout (``tests/fuzzing.py``): a hang or an interpreter crash is
counted, never fatal. Cases: mutations of real seed files (truncated, flipped bytes, cut headers, zero-length,
renamed, inserted/spliced bytes, damaged codec tags, absurd PNG sizes, frame folders with a frame of another
size or layout) through the reader and the command line; valid generated inputs of every shape (1x1,
odd, long and thin, grey/alpha/16-bit) that must upscale correctly; files with sound (AAC in mp4 and mov, AC-3
in Matroska) whose chunks are duplicated, swapped or cut (``--audio``: their share of the cases), upscaled into
a video, where a late stage (join, audio copy) must never lose the upscaled frames (``lost``); and bad numbers
(NaN, infinities, huge, negative) for every numeric option of every command (``--args``: their share).

    python benchmarks/bench_fuzz.py [--cases 3000] [--seed 0] [--timeout 30] [--audio 0.25] [--args 0.1]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fuzzing import (CHUNK_MUTATIONS, GOOD, MUTATIONS, Fuzzer, _frames, argument_case, argument_cases,  # noqa: E402
                     argument_inputs, make_audio_seeds, make_seeds, mutate, write_image, write_video)


def valid_case(d: Path, rng: random.Random) -> dict:
    h = rng.choice([1, 2, 3, 5, 8, 13, 17, rng.randint(1, 40), 720])
    w = rng.choice([1, 2, 7, 16, 31, rng.randint(1, 40)]) if h == 720 else rng.choice([1, 2, 3, 9, 16, 33, 1280, rng.randint(1, 40)])
    c = rng.choice([1, 3, 4])
    deep = rng.random() < 0.4
    n = rng.randint(1, 3)
    frames = _frames(n, h, w, c, np.uint16 if deep else np.uint8, seed=rng.randrange(1000))
    where = rng.choice(["folder", "png", "mkv"])
    if where == "png":
        src = write_image(d / "in.png", frames[0])
        out = rng.choice(["o.png", "o.tif", "frames/", "o.mp4"])
    elif where == "folder":
        src = d / "in"
        src.mkdir()
        for i, a in enumerate(frames):
            write_image(src / f"{i:03d}.png", a)
        out = rng.choice(["frames/", "o.mp4", "o.mkv"])
    else:
        fmt = {(1, False): "gray", (1, True): "gray16le", (3, False): "bgr0", (3, True): "rgb48le",
               (4, False): "bgra", (4, True): "rgba64le"}[(c, deep)]
        in_fmt = {1: "gray16le" if deep else "gray", 3: "rgb48le" if deep else "rgb24", 4: "rgba64le" if deep else "rgba"}[c]
        src = write_video(d / "in.mkv", frames, codec="ffv1", pix_fmt=fmt, in_fmt=in_fmt)
        out = rng.choice(["frames/", "o.mp4", "o.mov"])
    return {"kind": "cli", "input": str(src), "output": str(d / out), "valid": True}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--audio", type=float, default=0.25, help="share of the cases on files with sound")
    ap.add_argument("--args", type=float, default=0.1, help="share of the cases on bad option values")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    by_kind: Counter = Counter()
    failures: list[str] = []
    fuzzer = Fuzzer(timeout=args.timeout)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seeds = make_seeds(root / "seeds")
        sound = make_audio_seeds(root / "sound")
        inputs = argument_inputs(root / "args")
        arg_cases = argument_cases(inputs)
        for k in range(args.cases):
            d = root / f"c{k}"
            d.mkdir()
            r = rng.random()
            if r < args.args:
                name, opt, value = rng.choice(arg_cases)
                case = argument_case(inputs, name, opt, value, d)
                label = f"args/{name}"
            elif r < args.args + args.audio:
                kind = rng.choice(CHUNK_MUTATIONS)
                src = mutate(rng.choice(sound), d, kind, rng)
                case = {"kind": "cli", "input": str(src), "output": str(d / rng.choice(["out.mp4", "out.mkv",
                                                                                         "out.mov"]))}
                label = f"{kind}/sound"
            elif r < args.args + args.audio + 0.15 * (1 - args.args - args.audio):
                try:
                    case = valid_case(d, rng)
                except Exception:  # noqa: BLE001 - the encoder cannot make that input
                    continue
                label = "valid"
            else:
                kind = rng.choice(MUTATIONS)
                src = mutate(rng.choice(seeds + sound), d, kind, rng)
                via = "reader" if rng.random() < 0.47 else "cli"
                out = rng.choice(["out.mp4", "out/", "out.mkv"])
                case = {"kind": "reader", "path": str(src)} if via == "reader" else \
                    {"kind": "cli", "input": str(src), "output": str(d / out)}
                label = f"{kind}/{via}"
            res = fuzzer.run(case)
            ok = res.verdict == "ok" if case.get("valid") else res.verdict in GOOD
            by_kind[(label, res.verdict)] += 1
            if not ok:
                failures.append(f"{label}: {res.verdict}: {case}: {res.detail[-400:]}")
            if (k + 1) % 500 == 0:
                print(f"{k + 1} cases, {time.monotonic() - t0:.0f} s: {dict(fuzzer.counts)}", flush=True)
    fuzzer.close()
    total = sum(fuzzer.counts.values())
    print(f"\n{total} cases in {time.monotonic() - t0:.0f} s")
    for verdict in ("ok", "error", "traceback", "wrong", "lost", "hang", "crash"):
        print(f"  {verdict:10s} {fuzzer.counts.get(verdict, 0)}")
    print("\nby case kind (kind/path: verdicts):")
    labels = sorted({label for label, _ in by_kind})
    for label in labels:
        parts = ", ".join(f"{v} {by_kind[(label, v)]}" for v in ("ok", "error", "traceback", "wrong", "lost", "hang", "crash")
                          if by_kind[(label, v)])
        print(f"  {label:24s} {parts}")
    print(f"\nfailures: {len(failures)}")
    for f in failures[:30]:
        print("  " + f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
