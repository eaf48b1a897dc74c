"""Fuzzing helpers: seed files, mutations, and a worker process that runs each case bounded in time.

Every case runs in a long-lived child process (``fuzz_worker.py``), so a hang is cut off by a timeout and an
interpreter crash (a segfault in a decoder) is seen as the child's death; the child is then restarted. A case
ends in one of:

- ``ok``: a correct output (exit 0; the output's frames are the scale times the input's size, as many as the
  reader decodes) or, for the reader, frames of the declared layout;
- ``error``: a one-line ``vsrkit: error:`` (exit 2, nothing else after it, no traceback);
- ``traceback``, ``hang``, ``crash``, ``wrong`` or ``lost`` (every frame was upscaled, then a late stage -- the join,
  the audio copy, the rename -- threw them away instead of writing the video without the failing stream or keeping
  them for ``--resume``): a failure of vsrkit.

Cases: mutations of real seed files (``MUTATIONS``), the chunks of real files with audio duplicated, swapped or cut
(``CHUNK_MUTATIONS`` on ``make_audio_seeds``), and bad numbers for every numeric option of every command
(:func:`argument_cases`, the options enumerated from the command line itself).
"""

from __future__ import annotations

import json
import os
import random
import select
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
GOOD = ("ok", "error")
FAILURES = ("traceback", "hang", "crash", "wrong", "lost")


# ------------------------------------------------------------------------------------------------- seed files
def _frames(n: int, h: int, w: int, c: int = 3, dtype=np.uint8, seed: int = 0) -> list[np.ndarray]:
    g = np.random.default_rng(seed)
    hi = 65535 if dtype == np.uint16 else 255
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        base = (xx * 7 + yy * 3 + i * 11) % (hi + 1)
        a = np.stack([base, base[::-1] if h > 1 else base, (base * 2) % (hi + 1), np.full_like(base, hi)][:c], -1)
        a = (a + g.integers(0, 4, a.shape)) % (hi + 1)
        out.append(a.astype(dtype))
    return out


def write_video(path: Path, frames: list[np.ndarray], codec: str = "libx264", pix_fmt: str = "yuv420p",
                fmt: str | None = None, rate: int = 25, in_fmt: str = "rgb24") -> Path:
    with av.open(str(path), "w", format=fmt) as o:
        s = o.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        if codec == "libx264":
            s.codec_context.options = {"preset": "ultrafast", "g": "4"}
        for i, a in enumerate(frames):
            f = av.VideoFrame.from_ndarray(a if a.shape[2] > 1 else a[:, :, 0], format=in_fmt)
            f.pts = i
            for p in s.encode(f):
                o.mux(p)
        for p in s.encode(None):
            o.mux(p)
    return path


def write_image(path: Path, a: np.ndarray) -> Path:
    """PNG (any layout), JPEG, BMP or TIFF by suffix."""
    suffix = path.suffix.lower()
    c, bits = a.shape[2], 16 if a.dtype == np.uint16 else 8
    arr_fmt = {(1, 8): "gray", (1, 16): "gray16le", (3, 8): "rgb24", (3, 16): "rgb48le", (4, 8): "rgba",
               (4, 16): "rgba64le"}[(c, bits)]
    codec, pix = {".png": ("png", {"gray16le": "gray16be", "rgb48le": "rgb48be", "rgba64le": "rgba64be"}.get(arr_fmt, arr_fmt)),
                  ".jpg": ("mjpeg", "yuvj444p"), ".bmp": ("bmp", "bgr24"), ".tif": ("tiff", arr_fmt)}[suffix]
    if codec in ("mjpeg", "bmp"):
        a = a[:, :, :3] if c >= 3 else np.repeat(a, 3, 2)
        if bits == 16:
            a = (a >> 8).astype(np.uint8)
        arr_fmt = "rgb24"
    cc = av.CodecContext.create(codec, "w")
    cc.width, cc.height, cc.pix_fmt = a.shape[1], a.shape[0], pix
    from fractions import Fraction

    cc.time_base = Fraction(1, 25)
    f = av.VideoFrame.from_ndarray(a[:, :, 0] if a.shape[2] == 1 else np.ascontiguousarray(a), format=arr_fmt)
    if f.format.name != pix:
        f = f.reformat(format=pix)
    data = b"".join(bytes(p) for p in cc.encode(f)) + b"".join(bytes(p) for p in cc.encode(None))
    path.write_bytes(data)
    return path


def make_seeds(folder: Path) -> list[Path]:
    """Small valid inputs of many kinds: containers, codecs, layouts, sizes, and frame folders."""
    folder.mkdir(parents=True, exist_ok=True)
    f = _frames(6, 24, 32)
    seeds = [
        write_video(folder / "h264.mp4", f),
        write_video(folder / "h264.mov", f),
        write_video(folder / "ffv1.mkv", f, codec="ffv1", pix_fmt="yuv444p"),
        write_video(folder / "vp9.webm", f, codec="libvpx-vp9"),
        write_video(folder / "mpeg4.avi", f, codec="mpeg4"),
        write_video(folder / "odd.mp4", _frames(4, 15, 17), pix_fmt="yuv444p"),
        write_video(folder / "grey16.mkv", _frames(3, 16, 16, 1, np.uint16), codec="ffv1", pix_fmt="gray16le",
                    in_fmt="gray16le"),
        write_video(folder / "rgba.mkv", _frames(3, 16, 16, 4), codec="ffv1", pix_fmt="bgra", in_fmt="rgba"),
        write_image(folder / "rgb.png", _frames(1, 20, 24)[0]),
        write_image(folder / "grey.png", _frames(1, 9, 13, 1)[0]),
        write_image(folder / "rgba16.png", _frames(1, 10, 10, 4, np.uint16)[0]),
        write_image(folder / "photo.jpg", _frames(1, 16, 16)[0]),
        write_image(folder / "img.bmp", _frames(1, 8, 12)[0]),
        write_image(folder / "img.tif", _frames(1, 8, 12, 3, np.uint16)[0]),
    ]
    seq = folder / "seq"
    seq.mkdir(exist_ok=True)
    for i, a in enumerate(_frames(4, 12, 16)):
        write_image(seq / f"{i}.png", a)
    return seeds + [seq]


def make_audio_seeds(folder: Path) -> list[Path]:
    """Small valid videos with sound, as cameras and encoders write them: H.264 with AAC in mp4 (index at the end,
    and at the start as streaming sites write it), in mov, and with AC-3 in Matroska."""
    from media import make_clip

    folder.mkdir(parents=True, exist_ok=True)
    seeds = [make_clip(folder / "aac.mp4", n=8, w=32, h=24, audio="aac"),
             make_clip(folder / "aac.mov", n=8, w=32, h=24, audio="aac"),
             make_clip(folder / "ac3.mkv", n=8, w=32, h=24, audio="ac3")]
    fast = folder / "aac-faststart.mp4"
    with av.open(str(seeds[0])) as src, av.open(str(fast), "w", format="mp4", options={"movflags": "faststart"}) as o:
        outs = {s.index: o.add_stream_from_template(s) for s in src.streams}
        for p in src.demux():
            if p.size:
                p.stream = outs[p.stream.index]
                o.mux(p)
    return seeds + [fast]


# ------------------------------------------------------------------------------------------------- mutations
CHUNK_MUTATIONS = ("chunk_dup", "chunk_swap", "chunk_cut")  # on the media data (mostly) or the index of a file


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, tuple[int, int]]:
    """The top-level ISO-BMFF boxes (mp4, mov) of ``data``: name -> (offset, size)."""
    end = len(data) if end is None else end
    found, i = {}, start
    while i + 8 <= end:
        size, name = struct.unpack(">I4s", data[i:i + 8])
        if size == 1 and i + 16 <= end:
            size = struct.unpack(">Q", data[i + 8:i + 16])[0]
        if size < 8:
            break
        found.setdefault(name, (i, size))
        i += size
    return found


def mutate_chunks(data: bytes, kind: str, rng: random.Random) -> bytes:
    """A run of bytes ("a chunk": some audio and video packets) duplicated, swapped with another or cut out, inside
    the media data (an mp4's ``mdat``, whose size is kept right; the middle of other files) or, one time in four,
    inside the index (an mp4's ``moov``, sizes left wrong: a damaged sample table)."""
    boxes = _boxes(data)
    b = bytearray(data)
    fix = None
    if b"mdat" in boxes and (b"moov" not in boxes or rng.random() < 0.75):
        at, size = boxes[b"mdat"]
        lo, hi, fix = at + 8, at + size, at
    elif b"moov" in boxes:
        at, size = boxes[b"moov"]
        lo, hi = at + 8, at + size
    else:
        lo, hi = len(b) // 8, len(b)
    if hi - lo < 32:
        return _mutate_bytes(data, "splice", rng)
    n = rng.randint(16, max(16, min(2000, (hi - lo) // 3)))
    i = rng.randrange(lo, hi - n)
    run = bytes(b[i:i + n])
    if kind == "chunk_dup":
        b[i + n:i + n] = run
        grow = n
    elif kind == "chunk_cut":
        del b[i:i + n]
        grow = -n
    elif kind == "chunk_swap":
        j = rng.randrange(lo, hi - n)
        b[i:i + n], b[j:j + n] = bytes(b[j:j + n]), run
        grow = 0
    else:
        raise ValueError(kind)
    if fix is not None and grow and struct.unpack(">I", b[fix:fix + 4])[0] > 1:
        struct.pack_into(">I", b, fix, struct.unpack(">I", b[fix:fix + 4])[0] + grow)
    return bytes(b)


MUTATIONS = ("truncate", "flip", "cut_header", "zero", "rename", "insert", "splice", "png_size", "codec_tag")
_TAGS = (b"avc1", b"mp4v", b"V_VP9", b"V_MPEG4", b"FFV1", b"FMP4", b"XVID", b"IHDR", b"hvc1", b"vp09")


def _png_size(data: bytes, w: int, h: int) -> bytes:
    """Change a PNG's declared size (IHDR), with a correct checksum."""
    i = data.find(b"IHDR")
    if i < 0:
        return data
    body = struct.pack(">II", w, h) + data[i + 12: i + 21]
    return data[:i + 4] + body + struct.pack(">I", zlib.crc32(b"IHDR" + body)) + data[i + 25:]


def mutate(src: Path, dst_dir: Path, kind: str, rng: random.Random) -> Path:
    """One mutated copy of a seed file or folder (a folder: one of its images mutated, or a frame of another size)."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        out = dst_dir / f"{src.name}-{kind}"
        out.mkdir()
        files = sorted(src.iterdir())
        victim = rng.randrange(len(files))
        for j, p in enumerate(files):
            data = p.read_bytes()
            if j == victim:
                if kind in ("png_size", "rename"):  # a frame of another size or layout in the folder
                    a = _frames(1, rng.choice([1, 5, 12, 40]), rng.choice([1, 7, 16]), rng.choice([1, 3, 4]),
                                rng.choice([np.uint8, np.uint16]), seed=j)[0]
                    write_image(out / p.name, a)
                    continue
                data = _mutate_bytes(data, kind, rng)
            (out / p.name).write_bytes(data)
        return out
    data = src.read_bytes()
    suffix = src.suffix
    if kind in CHUNK_MUTATIONS:
        out = dst_dir / f"{src.stem}-{kind}{suffix}"
        out.write_bytes(mutate_chunks(data, kind, rng))
        return out
    if kind == "rename":
        suffix = rng.choice([".mp4", ".mkv", ".avi", ".png", ".jpg", ".webm", ".mov", ".txt", ".gif"])
    else:
        data = _mutate_bytes(data, kind, rng)
    out = dst_dir / f"{src.stem}-{kind}{suffix}"
    out.write_bytes(data)
    return out


def _mutate_bytes(data: bytes, kind: str, rng: random.Random) -> bytes:
    b = bytearray(data)
    if kind == "truncate":
        return bytes(b[: rng.randrange(0, max(len(b), 1))])
    if kind == "flip":
        for _ in range(rng.randint(1, 24)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8) if rng.random() < 0.7 else rng.randrange(256)
        return bytes(b)
    if kind == "cut_header":
        return bytes(b[rng.randint(1, min(len(b), 512)):])
    if kind == "zero":
        return b""
    if kind == "insert":
        i = rng.randrange(len(b) + 1)
        return bytes(b[:i] + os.urandom(rng.randint(1, 64)) + b[i:])
    if kind == "splice":
        i, j = sorted(rng.randrange(len(b) + 1) for _ in range(2))
        k = rng.randrange(len(b) + 1)
        return bytes(b[:k] + b[i:j] + b[k:])
    if kind == "codec_tag":  # the codec named in the container, damaged
        tags = [t for t in _TAGS if t in data]
        if not tags:
            return _mutate_bytes(data, "flip", rng)
        tag = rng.choice(tags)
        return data.replace(tag, bytes(rng.randrange(32, 127) for _ in tag))
    if kind == "png_size":
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return _png_size(data, rng.choice([1, 3, 70000, 2**31 - 1]), rng.choice([1, 2, 65535, 100000]))
        return _mutate_bytes(data, "flip", rng)
    raise ValueError(kind)


# ------------------------------------------------------------------------------------------------- arguments
INT_VALUES = ("nan", "inf", "-1", "0", "1e3", str(10**12), str(2**63), str(-2**63 - 1))
FLOAT_VALUES = ("nan", "inf", "-inf", "-1", "0", "1e308", "1e400", "-0")


def numeric_options() -> list[tuple[str, str, bool]]:
    """(command, option, is a float) for every numeric option of every command, read from the command line."""
    import click

    from vsrkit.cli.main import main

    found = []
    for name, cmd in sorted(main.commands.items()):
        for p in cmd.params:
            t = p.type
            if not isinstance(p, click.Option) or p.is_flag:
                continue
            floaty = isinstance(t, click.types.FloatParamType) or t.name == "number"
            if floaty or isinstance(t, (click.types.IntParamType, click.types._NumberRangeBase)):
                found.append((name, max(p.opts, key=len), floaty))
    return found


def argument_inputs(folder: Path) -> dict[str, list[str]]:
    """For each command with numeric options, a command line that works on tiny inputs made in ``folder`` (the
    output names inside ``folder``); the commands with no such line are missing."""
    from media import make_clip, write_png

    folder.mkdir(parents=True, exist_ok=True)
    clip = make_clip(folder / "in.mp4", n=3, w=64, h=48, audio="aac")
    gt = folder / "gt" / "clipA"
    for i in range(3):
        write_png(gt / f"{i:08d}.png", np.full((32, 48, 3), 40 * i, np.uint8))
    return {
        "upscale": ["upscale", str(clip), "-o", "{out}/o.mp4", "--model", "esr-tr-x2", "-q"],
        "degrade": ["degrade", str(clip), "-o", "{out}/d", "-q"],
        "eval": ["eval", "--model", "esr-tr-x2", "--gt", str(folder / "gt"), "--degrade", "bi", "-q", "--device", "cpu"],
        "bench": ["bench", "-m", "esr-tr-x2", "--size", "16x16", "--device", "cpu", "--warmup", "0", "--repeat", "1"],
        "export": ["export", "esr-tr-x2", "-o", "{out}/m.onnx", "--no-check"],
    }


def argument_cases(inputs: dict[str, list[str]], values_per_option: int | None = None,
                   rng: random.Random | None = None) -> list[tuple[str, str, str]]:
    """(command, option, value): every numeric option of every command with a line in ``inputs``, with each bad
    value (or ``values_per_option`` of them, drawn by ``rng``; NaN always among them)."""
    cases = []
    for name, opt, floaty in numeric_options():
        if name not in inputs:
            continue
        values = list(FLOAT_VALUES if floaty else INT_VALUES)
        if values_per_option is not None:
            values = ["nan"] + (rng or random.Random(0)).sample(values[1:], values_per_option - 1)
        cases += [(name, opt, v) for v in values]
    return cases


def argument_case(inputs: dict[str, list[str]], name: str, opt: str, value: str, out: Path) -> dict:
    """The worker's case for ``vsrkit NAME ... OPT VALUE`` (the option last, so that it wins over the line's own)."""
    argv = [a.replace("{out}", str(out)) for a in inputs[name]]
    return {"kind": "args", "argv": argv + [opt, value], "folder": str(out)}


# ------------------------------------------------------------------------------------------------- worker
@dataclass
class Result:
    verdict: str  # ok, error, traceback, hang, crash, wrong
    detail: str = ""
    seconds: float = 0.0


class Fuzzer:
    """Runs cases in a child process, each bounded by ``timeout`` seconds; restarts the child after a hang or crash."""

    def __init__(self, timeout: float = 30.0, model: str = "esr-tr-x2"):
        self.timeout = timeout
        self.model = model
        self.proc: subprocess.Popen | None = None
        self.counts: dict[str, int] = {}

    def _start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "src"), str(HERE)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        env.setdefault("OMP_NUM_THREADS", "1")
        self.proc = subprocess.Popen([sys.executable, str(HERE / "fuzz_worker.py"), self.model], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True, bufsize=1)
        ready = self._read(120.0)
        if ready is None or json.loads(ready).get("ready") is not True:
            raise RuntimeError("the fuzz worker did not start")

    def _read(self, timeout: float) -> str | None:
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return None
        return self.proc.stdout.readline()

    def run(self, case: dict) -> Result:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        t0 = time.monotonic()
        self.proc.stdin.write(json.dumps(case) + "\n")
        self.proc.stdin.flush()
        line = self._read(self.timeout)
        if line is None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            res = Result("hang", f"no answer in {self.timeout:.0f} s", time.monotonic() - t0)
        elif line == "":
            code = self.proc.wait()
            self.proc = None
            res = Result("crash", f"worker died with {code}", time.monotonic() - t0)
        else:
            d = json.loads(line)
            res = Result(d["verdict"], d.get("detail", ""), time.monotonic() - t0)
        self.counts[res.verdict] = self.counts.get(res.verdict, 0) + 1
        return res

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001
                self.proc.kill()
            self.proc = None
