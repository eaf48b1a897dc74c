"""Small media helpers shared by the command-line and long-job tests: tiny clips, CLI runs, error checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]


def make_clip(path: Path, n: int = 6, w: int = 32, h: int = 24, rate: int = 25, codec: str = "libx264",
              pix_fmt: str = "yuv420p", rotation: int | None = None, hflip: bool = False,
              audio: str | None = None) -> Path:
    """A tiny moving-gradient clip (``rotation``: a display matrix as phones write it; ``audio``: an audio codec,
    e.g. ``"aac"``, for a stereo tone as long as the video, interleaved with it as a camera writes it)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if rotation is not None:
            s.set_display_rotation(rotation, hflip=hflip)
        packets = []
        for i in range(n):
            yy, xx = np.mgrid[0:h, 0:w]
            img = np.stack([(xx * 8 + i * 10) % 256, (yy * 10) % 256, (xx + yy + i) % 256], -1).astype(np.uint8)
            fr = av.VideoFrame.from_ndarray(img, format="rgb24")
            if audio is not None:
                fr.pts = i
            packets += s.encode(fr)
        packets += s.encode()
        if audio is not None:
            packets += _tone(c, audio, n / rate)
        # interleaved by time, as a camera writes them (the muxer sees each stream's packets in order)
        packets.sort(key=lambda p: float((p.dts if p.dts is not None else 0) * p.time_base))
        for p in packets:
            c.mux(p)
    return path


def _tone(c: av.container.OutputContainer, codec: str, seconds: float, rate: int = 48000) -> list[av.Packet]:
    """The packets of a stereo tone of ``seconds`` in a new ``codec`` stream of ``c``."""
    a = c.add_stream(codec, rate=rate)
    a.layout = "stereo"
    fmt = a.codec_context.codec.audio_formats[0].name
    res = av.AudioResampler(format=fmt, layout="stereo", rate=rate, frame_size=a.codec_context.frame_size or 1024)
    t = np.arange(int(rate * seconds)) / rate
    tone = (np.sin(2 * np.pi * 440 * t) * 0.3).astype(np.float32)
    af = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
    af.sample_rate, af.pts = rate, 0
    packets = []
    for rf in res.resample(af) + res.resample(None):
        packets += a.encode(rf)
    return packets + list(a.encode(None))


def write_png(path: Path, a: np.ndarray) -> Path:
    """An H x W x C uint8/uint16 array as a PNG file."""
    fmts = {(1, 1): "gray", (1, 2): "gray16be", (3, 1): "rgb24", (3, 2): "rgb48be", (4, 1): "rgba", (4, 2): "rgba64be"}
    if a.ndim == 2:
        a = a[:, :, None]
    fmt = fmts[(a.shape[2], a.dtype.itemsize)]
    arr_fmt = {"gray16be": "gray16le", "rgb48be": "rgb48le", "rgba64be": "rgba64le"}.get(fmt, fmt)
    cc = av.CodecContext.create("png", "w")
    cc.width, cc.height, cc.pix_fmt = a.shape[1], a.shape[0], fmt
    fr = av.VideoFrame.from_ndarray(a[:, :, 0] if a.shape[2] == 1 else a, format=arr_fmt)
    if fr.format.name != fmt:
        fr = fr.reformat(format=fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(bytes(p) for p in cc.encode(fr)))
    return path


def run(*args: str) -> tuple[int, str]:
    """The command line in this process: (exit code, stdout + stderr)."""
    from vsrkit.cli.main import main

    r = CliRunner().invoke(main, [str(a) for a in args])
    return r.exit_code, r.output


def cli_command() -> list[str]:
    return [sys.executable, "-m", "vsrkit.cli"]


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


def run_child(*args: str, timeout: float = 120, **popen) -> subprocess.CompletedProcess:
    """The command line in a child process (text output)."""
    return subprocess.run(cli_command() + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env=popen.pop("env", child_env()), **popen)


def assert_one_line_error(code: int, out: str, *needles: str) -> str:
    """Exit code 2, exactly one ``vsrkit: error:`` line (warnings may come before it), no traceback."""
    assert code == 2, out
    assert "Traceback" not in out, out
    lines = [line for line in out.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("vsrkit: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], out
    for n in needles:
        assert n in errors[0], out
    return errors[0]


def decoded(path: Path) -> tuple[list[np.ndarray], list[int]]:
    """Every decoded frame (rgb24) and its pts."""
    with av.open(str(path)) as c:
        frames = list(c.decode(c.streams.video[0]))
    return [f.to_ndarray(format="rgb24") for f in frames], [f.pts for f in frames]


def reencode(src: Path, dst: Path, n: int = 10, bit_rate: int | None = None, crf: int | None = None) -> Path:
    """The first ``n`` frames of a real clip encoded again with libx264 (yuv420p, the source's frame rate), at a
    target ``bit_rate`` (bits/s) or a constant ``crf``."""
    with av.open(str(src)) as ic:
        vs = ic.streams.video[0]
        rate = vs.average_rate
        frames = []
        for f in ic.decode(vs):
            frames.append(f.to_ndarray(format="rgb24"))
            if len(frames) == n:
                break
    h, w = frames[0].shape[:2]
    with av.open(str(dst), "w") as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        if bit_rate is not None:
            s.bit_rate = bit_rate
        if crf is not None:
            s.options = {"crf": str(crf)}
        for img in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return dst
