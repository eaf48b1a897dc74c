"""Single pictures as image files: the one image (and PNG) encoder, and the frames of a PNG folder output.

- :class:`ImageEncoder` / :func:`encode_png`: an ``H x W x C`` uint8/uint16 array (C 1, 3 or 4) as the bytes of a
  PNG (grey, alpha and 16-bit kept), JPEG, TIFF or BMP file (8-bit but TIFF), with PyAV's encoders;
- a PNG folder output holds ``00000000.png``, ``00000001.png``, ...: :func:`write_frame` writes one through a
  temporary name, :func:`keep_frames` keeps what a resumed run can keep, :func:`drop_frames` removes the rest.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vsrkit.atomic import write_atomic_bytes
from vsrkit.io.files import open_input
from vsrkit.io.pixfmt import ARRAY_FORMATS, PNG_FORMATS

__all__ = ["IMAGE_CODECS", "PNG_NAME", "ImageEncoder", "encode_png", "write_frame", "keep_frames", "drop_frames"]

# suffix -> the encoder of a single-image output
IMAGE_CODECS = {".png": "png", ".jpg": "mjpeg", ".jpeg": "mjpeg", ".tif": "tiff", ".tiff": "tiff", ".bmp": "bmp"}
PNG_NAME = re.compile(r"^\d{8}\.png$")  # the frames of a PNG folder output


class ImageEncoder:
    """Encodes pictures to image files' bytes; the PNG encoder is kept from one picture to the next (a PNG folder
    encodes thousands)."""

    def __init__(self) -> None:
        self._png: av.CodecContext | None = None
        self._png_key: tuple[int, int, int, int] | None = None

    def encode(self, a: np.ndarray, codec: str = "png") -> bytes:
        """One ``H x W x C`` picture with ``codec`` (png keeps grey, alpha and 16-bit; jpeg/bmp are 8-bit)."""
        if a.ndim == 2:
            a = a[:, :, None]
        h, w = a.shape[:2]
        key = (a.shape[2], 16 if a.dtype == np.uint16 else 8)
        if codec == "png":
            fmt = PNG_FORMATS[key]
        else:
            if key[1] == 16 and codec != "tiff":
                a, key = (a >> 8).astype(np.uint8), (key[0], 8)
            if codec == "mjpeg":
                if key[0] == 4:
                    a, key = a[:, :, :3], (3, 8)
                fmt = "gray" if key[0] == 1 else "yuvj444p"
            elif codec == "bmp":
                fmt = {1: "gray", 3: "bgr24", 4: "bgra"}[key[0]]
            else:
                fmt = {(1, 8): "gray", (1, 16): "gray16le", (3, 8): "rgb24", (3, 16): "rgb48le", (4, 8): "rgba",
                       (4, 16): "rgba64le"}[key]
        if codec == "png" and self._png is not None and self._png_key == (*key, h, w):
            cc = self._png
        else:
            cc = av.CodecContext.create(codec, "w")
            cc.width, cc.height = w, h
            cc.pix_fmt = fmt
            cc.time_base = Fraction(1, 25)
            if codec == "png":
                self._png, self._png_key = cc, (*key, h, w)
        frame = av.VideoFrame.from_ndarray(a[:, :, 0] if key[0] == 1 else np.ascontiguousarray(a),
                                           format=ARRAY_FORMATS[key])
        if frame.format.name != fmt:
            frame = frame.reformat(format=fmt)
        data = b"".join(bytes(p) for p in cc.encode(frame))
        if codec != "png":
            data += b"".join(bytes(p) for p in cc.encode(None))
        return data


def encode_png(image: np.ndarray) -> bytes:
    """One ``H x W x C`` (or ``H x W``) uint8/uint16 image as PNG bytes (grey, alpha and 16-bit kept)."""
    return ImageEncoder().encode(np.asarray(image), "png")


def write_frame(folder: Path, index: int, data: bytes) -> None:
    """Frame ``index`` of a PNG folder, through a temporary name (a frame is complete or absent)."""
    write_atomic_bytes(folder / f"{index:08d}.png", data)


def keep_frames(folder: Path, width: int, height: int) -> int:
    """Resuming a PNG folder: keep the frames 0, 1, ... that decode to ``width x height``, remove the rest (and
    anything else); returns how many are kept."""
    n = 0
    while True:
        f = folder / f"{n:08d}.png"
        if not f.is_file():
            break
        try:
            with open_input(f) as c:
                fr = next(c.decode(video=0))
            ok = (fr.width, fr.height) == (width, height)
        except (av.error.FFmpegError, OSError, ValueError, StopIteration, UnicodeDecodeError):
            ok = False
        if not ok:
            break
        n += 1
    drop_frames(folder, n, everything_else=True)
    return n


def drop_frames(folder: Path, n: int, everything_else: bool = False) -> None:
    """Remove the frames from ``n`` on (``everything_else``: and every file that is not a frame)."""
    for q in folder.iterdir():
        if PNG_NAME.match(q.name):
            if int(q.stem) >= n:
                q.unlink()
        elif everything_else:
            q.unlink()
