"""What a source holds, read from its header and first picture: :class:`VideoInfo`, :func:`probe`.

Probing opens a video file (or an image folder) once, checks it has a decodable picture, and learns what the reader
needs: the layout of its frames (``pixfmt.layout``: palette transparency needs the first picture), its display
matrix (phone videos: :func:`orientation`, applied by :func:`orient` as players do), its size (upright), frame
count, rate and time base, and its other streams with their codecs (:class:`StreamInfo`: known before any work
starts, so that one that cannot be carried into the output is said at once). Errors are one line naming the file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vsrkit.errors import VsrkitError
from vsrkit.io.decode import decode_image, decode_video
from vsrkit.io.files import IMAGE_SUFFIXES, list_images, one_line, open_input
from vsrkit.io.pixfmt import layout

__all__ = ["VideoInfo", "StreamInfo", "Orientation", "Source", "probe", "bits_per_pixel", "open_source", "orientation",
           "orient", "frame_count", "count_frames"]

log = logging.getLogger(__name__)

Orientation = tuple[bool, bool, bool]  # (transpose, flip rows, flip columns), applied in that order


@dataclass(frozen=True)
class StreamInfo:
    """An audio, subtitle or data stream of a video file: its index, type and codec (None: FFmpeg has no decoder
    for it, e.g. a damaged or unknown codec id)."""

    index: int
    type: str
    codec: str | None


@dataclass
class VideoInfo:
    """What a source holds; ``channels``/``bit_depth`` describe the frames the reader yields."""

    path: str
    width: int
    height: int
    num_frames: int | None  # from the container index/header, or files in a folder; None if unknown
    fps: Fraction | None  # average frame rate
    time_base: Fraction | None
    channels: int  # 1 grey, 3 colour, 4 colour + alpha
    bit_depth: int  # 8 or 16
    is_image_sequence: bool
    has_audio: bool
    # bits per second of the video stream, from the container (the stream's, else the whole file's when it holds
    # nothing else); None for image folders and when the container does not say
    bit_rate: int | None = None
    streams: tuple[StreamInfo, ...] = ()  # the other streams of a video file (audio, subtitles, data)


@dataclass
class Source:
    """What probing a path found, for the reader: its description, the frame files of an image folder, the turn
    that makes its frames upright, and the video file opened again at its start (None for a folder)."""

    info: VideoInfo
    files: list[Path]
    orientation: Orientation | None
    container: av.container.InputContainer | None


def _kind(path: Path) -> str:
    """'image' or 'video', for messages about a single file."""
    return "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"



# --------------------------------------------------------------------------------------- orientation
def orientation(frame: av.VideoFrame, path: Path) -> Orientation | None:
    """How to turn a decoded frame upright, from its display matrix (None: already upright).

    FFmpeg's matrix maps a stored pixel (column p, row q) to the shown one: x = a p + c q, y = b p + d q,
    with a, b, c, d the 16.16 entries 0, 1, 3 and 4. Quarter turns and mirrors are applied exactly; any
    other angle is reported and left as stored.
    """
    try:
        side = list(frame.side_data)
    except (ValueError, TypeError, AttributeError):  # side data of a type PyAV does not know: the angle alone
        try:
            turn = round(frame.rotation) % 360
        except (ValueError, TypeError, AttributeError):
            return None
        return {90: (True, True, False), 180: (False, True, True), 270: (True, False, True)}.get(turn)
    for sd in side:
        if getattr(sd.type, "name", str(sd.type)).split(".")[-1] != "DISPLAYMATRIX":
            continue
        m = np.frombuffer(memoryview(sd), np.uint8)[:36].copy().view(np.int32)
        a, b, c, d = (int(v) for v in (m[0], m[1], m[3], m[4]))
        unit = max(abs(a), abs(b), abs(c), abs(d))
        signs = [0 if abs(v) < unit / 1000 else (1 if v > 0 else -1) for v in (a, b, c, d)]
        sa, sb, sc, sd_ = signs
        if unit and sa == 0 and sd_ == 0 and sb and sc:  # x from the row, y from the column: transpose
            return (True, sb < 0, sc < 0)
        if unit and sb == 0 and sc == 0 and sa and sd_:
            return None if (sa > 0 and sd_ > 0) else (False, sd_ < 0, sa < 0)
        log.warning("%s: display matrix turns by %.1f degrees (not a quarter turn): frames kept as stored",
                    path, getattr(frame, "rotation", 0.0))
        return None
    return None


def orient(arr: np.ndarray, o: Orientation | None) -> np.ndarray:
    """``arr`` (H x W x C) turned upright by ``o`` (None: as it is)."""
    if o is None:
        return arr
    transpose, flip_rows, flip_cols = o
    if transpose:
        arr = arr.transpose(1, 0, 2)
    if flip_rows:
        arr = arr[::-1]
    if flip_cols:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------------------- probing
def frame_count(s: av.video.stream.VideoStream) -> int | None:
    """The frames a video stream declares: its index entries (not the dropped ones), else its header."""
    try:
        n = sum(1 for e in s.index_entries if e.size > 0 and not e.is_discard)
    except Exception:  # pragma: no cover - index not available
        n = 0
    # AVI declares dropped (empty) frames in its header; its index does not hold them
    return n or s.frames or None


def count_frames(path: str | os.PathLike) -> int:
    """The exact frame count of a video file, from its packets (demuxed, not decoded: a container's header or index
    may not hold it); a one-line error for a file that is no video."""
    path = Path(path)
    try:
        with open_input(path) as c:
            if not c.streams.video:
                raise VsrkitError(f"{path}: holds no video stream")
            s = c.streams.video[0]
            return sum(1 for p in c.demux(s) if p.size)
    except VsrkitError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise VsrkitError(f"{path}: not a readable video ({one_line(e)})") from None


def other_streams(c: av.container.InputContainer) -> tuple[StreamInfo, ...]:
    """The streams of ``c`` other than its first video stream, each with its codec (None: no decoder for it)."""
    video = c.streams.video[0].index if c.streams.video else -1
    found = []
    for s in c.streams:
        if s.index == video:
            continue
        cc = s.codec_context
        found.append(StreamInfo(s.index, s.type, cc.name if cc is not None else None))
    return tuple(found)


def _video_bit_rate(c: av.container.InputContainer, s: av.video.stream.VideoStream) -> int | None:
    """The video stream's bit rate as the container states it; the file's when the video is its only stream."""
    rate = s.bit_rate or (s.codec_context.bit_rate if s.codec_context is not None else 0)
    if not rate and len(c.streams) == 1:
        rate = c.bit_rate
    return int(rate) if rate and rate > 0 else None


def bits_per_pixel(info: VideoInfo) -> float | None:
    """How many bits the container spends on each pixel of each frame: ``bit_rate / (width * height * fps)``; None
    when the bit rate or frame rate is unknown (image folders, some containers). A measure of compression: web
    H.264 runs at about 0.05-0.1, camera and disc video at 0.2-0.5, near-lossless video above 1."""
    if not info.bit_rate or not info.fps or not info.width or not info.height:
        return None
    return info.bit_rate / (info.width * info.height * float(info.fps))


def probe(path: str | os.PathLike) -> VideoInfo:
    """Open ``path`` (video file or image folder), read its header (and first picture) and describe it."""
    src = open_source(path)
    if src.container is not None:
        src.container.close()
    return src.info


def open_source(path: str | os.PathLike) -> Source:
    """Probe ``path``; the :class:`Source` holds the video opened again at its start (the caller closes it)."""
    p = Path(path)
    if not p.exists():
        raise VsrkitError(f"{p}: no such file or folder")
    if p.is_dir():
        files = list_images(p)
        if not files:
            raise VsrkitError(f"{p}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        first = decode_image(files[0], 0)
        ch, depth = layout(first.format, first)
        info = VideoInfo(str(p), first.width, first.height, len(files), None, None, ch, depth, True, False)
        return Source(info, files, None, None)
    what = _kind(p)
    try:
        c = open_input(p)
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise VsrkitError(f"{p}: not a readable {what} ({one_line(e)})") from None
    try:
        if not c.streams.video:
            raise VsrkitError(f"{p}: not an image" if what == "image" else f"{p}: holds no video stream")
        s = c.streams.video[0]
        cc = s.codec_context
        if cc is None:  # no decoder for the codec tag (e.g. a corrupted tag)
            raise VsrkitError(f"{p}: {what} codec not recognised (a damaged or unsupported file)")
        if cc.format is None or not cc.width or not cc.height:
            raise VsrkitError(f"{p}: cannot read image: no decodable picture" if what == "image"
                              else f"{p}: video stream has no decodable picture (codec {cc.name})")
        # the first picture tells palette transparency and the display matrix
        frames = decode_video(c, p)
        first = None
        try:
            first = next(frames, None)
            # everything the first picture tells is read before its decoder is closed
            turn = orientation(first, p) if first is not None else None
            ch, depth = layout(cc.format, first)
        except VsrkitError as e:
            raise VsrkitError(str(e).replace("video frame", "picture") if what == "image" else str(e)) from None
        finally:
            frames.close()
            del first
    finally:
        c.close()
    # the header, from the file opened again (as the reader will read it)
    c = open_input(p)
    s = c.streams.video[0]
    cc = s.codec_context
    fps = s.average_rate or s.guessed_rate or s.base_rate
    w, h = cc.width, cc.height
    if turn is not None and turn[0]:
        w, h = h, w
    info = VideoInfo(
        path=str(p), width=w, height=h, num_frames=frame_count(s),
        fps=Fraction(fps) if fps else None, time_base=Fraction(s.time_base) if s.time_base else None,
        channels=ch, bit_depth=depth, is_image_sequence=False, has_audio=bool(c.streams.audio),
        bit_rate=_video_bit_rate(c, s), streams=other_streams(c),
    )
    return Source(info, [], turn, c)
