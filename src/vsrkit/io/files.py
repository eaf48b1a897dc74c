"""File names and opening files with PyAV: what the reader, the writer and the callers of both share.

- the suffixes read (``IMAGE_SUFFIXES``, ``VIDEO_SUFFIXES``) and the video containers written (``WRITE_FORMATS``);
- the natural order of frame files (``2.png`` before ``10.png``): :func:`natural_key`, :func:`list_images`;
- :func:`open_input` (undecodable metadata is not fatal) and :func:`one_line` (a PyAV error in one line).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import av

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "WRITE_FORMATS", "natural_key", "list_images", "open_input", "one_line"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".m2ts",
    ".mts", ".3gp", ".ogv", ".y4m", ".gif", ".mxf", ".vob", ".asf", ".divx", ".qt",
})
# suffix -> FFmpeg muxer for the videos we write
WRITE_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def natural_key(name: str) -> tuple:
    """Sort key of a file name in natural order: digit runs compare as numbers, the rest without case."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", name) if t)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in ``folder`` (not hidden), in natural order: the frames a reader reads."""
    files = [p for p in Path(folder).iterdir()
             if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()]
    files.sort(key=lambda p: natural_key(p.name))
    return files


def one_line(e: BaseException) -> str:
    """A PyAV (or any) error in one line, without the file name FFmpeg repeats."""
    if isinstance(e, av.error.FFmpegError) and e.strerror:
        msg = e.strerror
        if isinstance(e, av.error.EOFError):
            msg = "the file ends too early: empty or truncated"
        return " ".join(msg.split())
    msg = " ".join(str(e).split())
    return msg or type(e).__name__


def open_input(path: str | os.PathLike) -> av.container.InputContainer:
    """Open for reading; undecodable metadata strings (a flipped byte) are replaced, not fatal."""
    return av.open(str(path), metadata_errors="replace")
