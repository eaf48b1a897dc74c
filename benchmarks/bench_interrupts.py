"""Interruptions at random moments: ``vsrkit upscale --resume`` sent one SIGTERM (or SIGINT) at a random time, again
and again, must always end cleanly, and the run resumed to the end must equal an uninterrupted one.

A clip of ``--frames`` frames (with AAC audio) is upscaled by ``--model`` (random weights, seeded by the name) with
``--resume``; each try is a child process that gets one signal after a random delay in ``[0, --max-delay]``
seconds: during start-up (imports), model loading, probing and resuming, the frames, the join. A try must end
with exit 143 (SIGTERM) or 130 (SIGINT) and one line, or exit 0 when it finished first; anything else is
counted: a death by a signal (a crash: SIGSEGV, SIGABRT...), a traceback, another exit code, a hang (no end
within ``--timeout`` seconds after the signal). After a try that finished, the output is removed so that the
next try starts again (its work folder resumed). At the end one more run finishes the job, compared frame by
frame with an uninterrupted run (tries alternate between a video output and a PNG-frame output).

    python benchmarks/bench_interrupts.py [--tries 50] [--frames 150] [--max-delay SECONDS] [--seed 0]

Tries go on until ``--tries`` runs were interrupted (got their signal before they ended), at most 5 x that many.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from media import child_env, cli_command, decoded, make_clip  # noqa: E402


def one_try(args: list[str], delay: float, sig: int, timeout: float) -> tuple[str, int, str]:
    """(verdict, exit code, stderr tail) of one run sent ``sig`` after ``delay`` seconds."""
    p = subprocess.Popen(cli_command() + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=child_env(OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1")))
    try:
        p.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        p.send_signal(sig)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        return "hang", p.returncode, err[-800:]
    code = p.returncode
    lines = [line for line in err.strip().splitlines() if line.strip()]
    if code == -sig and not err.strip():  # the signal's own default action, before Python ran any of vsrkit
        return "ended before start-up", code, ""
    if code < 0:
        return f"crash ({signal.Signals(-code).name})", code, err[-800:]
    if "Traceback" in err:
        return "traceback", code, err[-800:]
    if code == 0:
        return "finished", code, ""
    want = 143 if sig == signal.SIGTERM else 130
    if code == want and lines and ("terminated" in lines[-1] or "interrupted" in lines[-1]):
        return "stopped", code, ""
    return "wrong exit", code, err[-800:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tries", type=int, default=50, help="interruptions: runs that get their signal before they end")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--model", default="esr-max-x2")
    ap.add_argument("--max-delay", type=float, default=None,
                    help="latest signal, seconds after the start (default: the uninterrupted run's time)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds a run may take to end after its signal")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    verdicts: Counter = Counter()
    bad: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = make_clip(root / "in.mp4", n=args.frames, w=96, h=72, audio="aac")
        whole, out = root / "whole.mp4", root / "out.mp4"
        common = ["--model", args.model, "-q", "--segment", "10"]
        t0 = time.monotonic()
        r = subprocess.run(cli_command() + ["upscale", str(src), "-o", str(whole), *common], capture_output=True,
                           text=True, env=child_env())
        if r.returncode != 0:
            sys.exit(f"the uninterrupted run failed: {r.stderr[-2000:]}")
        took = time.monotonic() - t0
        max_delay = args.max_delay if args.max_delay is not None else took
        print(f"uninterrupted run: {took:.1f} s; signals at 0..{max_delay:.1f} s", flush=True)
        frames_whole, frames_out = root / "whole-frames", root / "out-frames"
        r = subprocess.run(cli_command() + ["upscale", str(src), "-o", str(frames_whole), *common], capture_output=True,
                           text=True, env=child_env())
        k = 0
        while verdicts["stopped"] + verdicts["ended before start-up"] < args.tries and k < 5 * args.tries:
            sig = signal.SIGTERM if rng.random() < 0.8 else signal.SIGINT
            delay = rng.uniform(0.0, max_delay)
            target = out if k % 2 == 0 else frames_out  # a video (segments, join, audio) or PNG frames
            verdict, code, tail = one_try(["upscale", str(src), "-o", str(target), *common, "--resume"], delay, sig,
                                          args.timeout)
            verdicts[verdict] += 1
            print(f"try {k + 1:3d}: {target.name}, {sig.name} at {delay:4.2f} s: {verdict} (exit {code})", flush=True)
            if verdict not in ("stopped", "finished", "ended before start-up"):
                bad.append(f"{target.name}, {sig.name} at {delay:.2f} s: {verdict} (exit {code}): {tail}")
            if verdict == "finished":  # start again (this try's work folder is gone with the finished output)
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            k += 1
        ends = [subprocess.run(cli_command() + ["upscale", str(src), "-o", str(t), *common, "--resume"],
                               capture_output=True, text=True, env=child_env()).returncode for t in (out, frames_out)]
        same = False
        if ends == [0, 0]:
            # PNG frames: exactly the uninterrupted run's; the video: as many frames, the same timestamps (libx264's
            # bytes were seen to differ from one encoder to the next in one process, for some frame sizes)
            a, b = decoded(whole), decoded(out)
            pa, pb = sorted(frames_whole.iterdir()), sorted(frames_out.iterdir())
            same = (a[1] == b[1] and len(a[0]) == len(b[0]) == args.frames and len(pa) == len(pb) == args.frames
                    and all(x.read_bytes() == y.read_bytes() for x, y in zip(pa, pb)))
        shutil.rmtree(root, ignore_errors=True)
    interrupted = verdicts["stopped"] + verdicts["ended before start-up"]
    print(f"\n{k} tries, {interrupted} interrupted: " + ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items())))
    print(f"resumed to the end: exit {ends}; the same frames as an uninterrupted run: {same}")
    crashes = sum(n for v, n in verdicts.items() if v not in ("stopped", "finished", "ended before start-up"))
    print(f"crashes, tracebacks, hangs or wrong exits: {crashes}")
    for b in bad[:20]:
        print("  " + b)
    sys.exit(1 if crashes or not same else 0)


if __name__ == "__main__":
    main()
