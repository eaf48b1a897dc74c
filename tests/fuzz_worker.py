"""The fuzz worker: reads one JSON case per line on stdin, runs it in this process, answers one JSON line.

Run by ``fuzzing.Fuzzer``; a case that hangs or crashes the interpreter is caught by the parent."""

from __future__ import annotations

import functools
import json
import logging
import shutil
import sys
import traceback
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    torch.set_num_threads(1)
    logging.basicConfig(handlers=[logging.NullHandler()])  # warnings are not the point here
    from click.testing import CliRunner

    import vsrkit.pipeline as pipeline
    from vsrkit.cli.main import main as cli
    from vsrkit.errors import VsrkitError, WorkKeptError
    from vsrkit.io import VideoReader, VideoWriter

    model_name = sys.argv[1]
    real_load = pipeline.load_model

    @functools.lru_cache(maxsize=4)
    def cached(name, weights=None, progress=True):
        return real_load(name, weights=weights, progress=False)

    pipeline.load_model = lambda name, weights=None, progress=True: cached(name, weights)
    net = cached(model_name)
    scale = net.spec.scale

    # a late stage that throws away upscaled frames: VideoWriter.close failing after frames were written, other
    # than by keeping them for --resume (WorkKeptError)
    late: list[str] = []
    real_close = VideoWriter.close

    def watched_close(self):
        try:
            return real_close(self)
        except BaseException as e:
            if self.frames_written and not isinstance(e, WorkKeptError):
                late.append(f"{type(e).__name__}: {e}")
            raise

    VideoWriter.close = watched_close

    def read_all(path: str, limit: int = 400) -> tuple[object, list[np.ndarray]]:
        with VideoReader(path) as r:
            frames = []
            for k, f in enumerate(r):
                if k >= limit:
                    break
                frames.append(f.image)
            return r.info, frames

    def reader_case(case: dict) -> dict:
        try:
            info, frames = read_all(case["path"])
        except VsrkitError as e:
            msg = str(e)
            return {"verdict": "error" if "\n" not in msg and msg else "wrong", "detail": msg}
        want = (info.height, info.width, info.channels)
        dtype = np.uint16 if info.bit_depth == 16 else np.uint8
        bad = [f.shape for f in frames if f.shape != want or f.dtype != dtype]
        if bad:
            return {"verdict": "wrong", "detail": f"frames {bad[0]} for a declared {want} {dtype}"}
        return {"verdict": "ok", "detail": f"{len(frames)} frames {want}"}

    def one_line_error(r, text: str) -> str | None:
        """The error line of a run that ended in exactly one (exit 2, no traceback), else None."""
        lines = [line for line in text.strip().splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("vsrkit: error:")]
        if "Traceback" in text or len(errors) != 1 or lines[-1] != errors[0] or r.exit_code != 2:
            return None
        return errors[0]

    def kept_for_resume(out: Path, error: str) -> list[str]:
        """The job folders left beside ``out``; one kept for --resume (said by the error) is expected: removed."""
        left = [p for p in out.parent.iterdir() if p.name.startswith(".vsrkit-job-")] if out.parent.exists() else []
        if left and "--resume" in error:
            for p in left:
                shutil.rmtree(p, ignore_errors=True)
            return []
        return [p.name for p in left]

    def args_case(case: dict) -> dict:
        del late[:]
        r = CliRunner().invoke(cli, case["argv"])
        if late:
            return {"verdict": "lost", "detail": f"{late[0]}; {r.output[-300:]}"}
        if r.exit_code == 0:
            return {"verdict": "ok"}
        if r.exception is None or isinstance(r.exception, SystemExit):
            error = one_line_error(r, r.output)
            if error is None:
                return {"verdict": "wrong", "detail": r.output[-500:]}
            folder = Path(case["folder"])
            left = [p.name for p in folder.rglob(".vsrkit-job-*")] if folder.exists() else []
            if left and "--resume" not in error:
                return {"verdict": "wrong", "detail": f"error but left {left}"}
            return {"verdict": "error", "detail": error}
        tb = "".join(traceback.format_exception(*r.exc_info)) if r.exc_info else r.output
        return {"verdict": "traceback", "detail": tb[-1500:]}

    def cli_case(case: dict) -> dict:
        out = Path(case["output"])
        args = ["upscale", case["input"], "-o", str(out), "--model", model_name, "-q", *case.get("args", [])]
        del late[:]
        r = CliRunner().invoke(cli, args)
        text = r.output
        if late:
            return {"verdict": "lost", "detail": f"{late[0]}; {text[-300:]}"}
        if r.exit_code == 0:
            if not out.exists():
                return {"verdict": "wrong", "detail": "exit 0 without an output"}
            try:
                info, frames = read_all(case["input"])
                oinfo, oframes = read_all(str(out))
            except VsrkitError as e:
                return {"verdict": "wrong", "detail": f"exit 0 but: {e}"}
            n = len(frames) if not case.get("max_frames") else min(len(frames), case["max_frames"])
            same = (oinfo.width, oinfo.height) == (info.width * scale, info.height * scale)
            even = (oinfo.width - info.width * scale, oinfo.height - info.height * scale)
            if len(oframes) != n or not (same or (out.suffix in (".mp4", ".mkv") and even in ((0, 1), (1, 0), (1, 1)))):
                return {"verdict": "wrong", "detail": f"{len(oframes)} frames {oinfo.width}x{oinfo.height} "
                                                      f"from {len(frames)} {info.width}x{info.height}"}
            shutil.rmtree(out) if out.is_dir() else out.unlink()
            return {"verdict": "ok"}
        if r.exit_code == 2 and r.exception is None or isinstance(r.exception, SystemExit):
            error = one_line_error(r, text)
            if error is None:
                return {"verdict": "wrong", "detail": text[-500:]}
            left = kept_for_resume(out, error)
            if out.exists() or left:
                return {"verdict": "wrong", "detail": f"error but left {out if out.exists() else left}"}
            return {"verdict": "error", "detail": error}
        tb = "".join(traceback.format_exception(*r.exc_info)) if r.exc_info else text
        return {"verdict": "traceback", "detail": tb[-1500:]}

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        case = json.loads(line)
        if case["kind"] == "_hang":  # the parent's own checks: a hang and a crash are seen as such
            import time

            time.sleep(10**6)
        if case["kind"] == "_crash":
            import os

            os.abort()
        try:
            answer = {"reader": reader_case, "args": args_case}.get(case["kind"], cli_case)(case)
        except Exception:  # noqa: BLE001 - a bug in the case itself is reported, not hidden
            answer = {"verdict": "traceback", "detail": traceback.format_exc()[-1500:]}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
