"""Reading videos and image sequences on PyAV: :class:`VideoReader`, :func:`probe`.

Reading
    Anything FFmpeg decodes (mp4, mkv, mov, avi, webm, ...) or a folder of images (png, jpg/jpeg, bmp,
    tif/tiff, natural order: ``2.png`` before ``10.png``). Frames stream one at a time (a look-ahead of
    a few decoded frames is kept to repair out-of-order timestamps, see below).

    Frames keep the source's native layout, ``H x W x C``:

    ============================================  ====  =======
    source pixel format                           C     dtype
    ============================================  ====  =======
    grey (gray, gray16, monob, ...)               1     uint8 / uint16
    colour (yuv*, rgb*, bayer, ...)               3     uint8 / uint16
    with alpha (rgba, yuva*, ya8, bgra, ...)      4     uint8 / uint16
    palette (pal8): 4 if the palette has          3/4   uint8
    transparency (first frame), else 3
    ============================================  ====  =======

    Sources with more than 8 bits per component (rgb48, gray16, rgba64, 10/12-bit yuv, float) give
    ``uint16`` scaled to the full 0..65535 range; everything else gives ``uint8``. YUV is converted with
    the matrix and range the stream is tagged with (untagged: BT.601 below 720 lines, BT.709 from 720).

    Timestamps: ``Frame.pts`` is in ``VideoInfo.time_base`` units and strictly increasing. Containers
    that store B-frame timestamps in decode order (e.g. MPEG-4 ASP in AVI) are repaired by sorting the
    timestamps over a small window; a missing or repeated timestamp becomes the previous one plus one
    frame duration.

    Rotation: a display matrix (phone videos) is applied to the frames as players do (quarter turns and
    mirroring), so frames, ``info.width`` and ``info.height`` are upright; writers then carry no matrix.

    Re-reading: :meth:`VideoReader.frames_from` starts again at any frame, seeking to the keyframe before
    it when a complete pass has recorded where the keyframes are (two-pass streaming reads long inputs
    from their source twice instead of spooling them).

    Damaged input: frames that cannot be decoded are skipped, and a truncated or corrupt file is read up
    to the last decodable frame; both are reported with a ``logging`` warning naming the file and the
    frame index. A file with no decodable frame at all raises :class:`VsrkitError`.

"""

from __future__ import annotations

import heapq
import logging
import os
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from vsrkit.errors import VsrkitError
from vsrkit.io.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, list_images, one_line, open_input
from vsrkit.io.pixfmt import layout, to_array

__all__ = ["VideoInfo", "Frame", "probe", "VideoReader", "list_images", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES"]

log = logging.getLogger(__name__)

_REORDER_WINDOW = 4  # decoded frames looked ahead to repair out-of-order timestamps


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


@dataclass
class _SeekIndex:
    """What a complete pass learnt about where frames are (see ``VideoReader.frames_from``)."""

    by_pts: dict = None  # the decoder's pts of a frame -> its index
    pts: list = None  # the repaired pts of each frame
    keys: list = None  # (index, decoder pts) of the keyframes
    ok: bool = True  # every frame has its own pts

    def clear(self) -> None:
        self.by_pts, self.pts, self.keys, self.ok = {}, [], [], True


@dataclass
class Frame:
    """One decoded frame: ``image`` is H x W x C uint8/uint16; ``pts`` in ``info.time_base`` units."""

    image: np.ndarray
    pts: int | None
    index: int


# --------------------------------------------------------------------------------------- helpers
def _kind(path: Path) -> str:
    """'image' or 'video', for messages about a single file."""
    return "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"


# --------------------------------------------------------------------------------------- orientation
Orientation = tuple[bool, bool, bool]  # (transpose, flip rows, flip columns), applied in that order


def _orientation(frame: av.VideoFrame, path: Path) -> Orientation | None:
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


def _orient(arr: np.ndarray, o: Orientation | None) -> np.ndarray:
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


# --------------------------------------------------------------------------------------- reading
def probe(path: str | os.PathLike) -> VideoInfo:
    """Open ``path`` (video file or image folder), read its header only and describe it."""
    with VideoReader(path) as r:
        return r.info


def _decode_image(path: Path, index: int) -> av.VideoFrame:
    try:
        with open_input(path) as c:
            if not c.streams.video:
                raise VsrkitError(f"{path}: not an image (frame {index})")
            for frame in c.decode(c.streams.video[0]):
                return frame
    except VsrkitError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise VsrkitError(f"{path}: cannot read image (frame {index}): {one_line(e)}") from None
    raise VsrkitError(f"{path}: image holds no picture (frame {index})")


class VideoReader:
    """Iterate the frames of a video file or image folder as :class:`Frame`, one at a time.

    ``info`` is filled on construction (header only). Use as a context manager or call :meth:`close`.
    Iterating a second time starts again from the first frame.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._container: av.container.InputContainer | None = None
        self._files: list[Path] = []
        self._orientation: Orientation | None = None
        self._seek = _SeekIndex()
        self._seek.clear()
        p = self.path
        if not p.exists():
            raise VsrkitError(f"{p}: no such file or folder")
        if p.is_dir():
            self._files = list_images(p)
            if not self._files:
                raise VsrkitError(f"{p}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            first = _decode_image(self._files[0], 0)
            ch, depth = layout(first.format, first)
            self.info = VideoInfo(str(p), first.width, first.height, len(self._files), None, None,
                                  ch, depth, True, False)
            return
        what = _kind(p)
        try:
            self._container = open_input(p)
        except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
            raise VsrkitError(f"{p}: not a readable {what} ({one_line(e)})") from None
        c = self._container
        if not c.streams.video:
            self.close()
            raise VsrkitError(f"{p}: not an image" if what == "image" else f"{p}: holds no video stream")
        s = c.streams.video[0]
        cc = s.codec_context
        if cc is None:  # no decoder for the codec tag (e.g. a corrupted tag)
            self.close()
            raise VsrkitError(f"{p}: {what} codec not recognised (a damaged or unsupported file)")
        if cc.format is None or not cc.width or not cc.height:
            self.close()
            raise VsrkitError(f"{p}: cannot read image: no decodable picture" if what == "image"
                              else f"{p}: video stream has no decodable picture (codec {cc.name})")
        # the first picture tells palette transparency and the display matrix
        frames = self._raw_frames()
        first = None
        try:
            first = next(frames, None)
            # everything the first picture tells is read before its decoder is closed
            self._orientation = _orientation(first, p) if first is not None else None
            ch, depth = layout(cc.format, first)
        except VsrkitError as e:
            self.close()
            raise VsrkitError(str(e).replace("video frame", "picture") if what == "image" else str(e)) from None
        finally:
            frames.close()
            del first
        self._restart()
        c = self._container
        s = c.streams.video[0]
        cc = s.codec_context
        fps = s.average_rate or s.guessed_rate or s.base_rate
        w, h = cc.width, cc.height
        if self._orientation is not None and self._orientation[0]:
            w, h = h, w
        self.info = VideoInfo(
            path=str(p), width=w, height=h, num_frames=self._count(s),
            fps=Fraction(fps) if fps else None, time_base=Fraction(s.time_base) if s.time_base else None,
            channels=ch, bit_depth=depth, is_image_sequence=False, has_audio=bool(c.streams.audio),
        )

    @staticmethod
    def _count(s: av.video.stream.VideoStream) -> int | None:
        try:
            n = sum(1 for e in s.index_entries if e.size > 0 and not e.is_discard)
        except Exception:  # pragma: no cover - index not available
            n = 0
        # AVI declares dropped (empty) frames in its header; its index does not hold them
        return n or s.frames or None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        if self._container is not None:
            self._container.close()
            self._container = None

    def _restart(self) -> None:
        self.close()
        self._container = open_input(self.path)

    def __iter__(self) -> Iterator[Frame]:
        if self.info.is_image_sequence:
            yield from self._iter_images()
            return
        if self._container is None:
            self._restart()
        elif self._started:
            self._restart()
        self._started = True
        yield from self._iter_video()

    _started = False

    # image folders
    def _iter_images(self) -> Iterator[Frame]:
        info = self.info
        for i, f in enumerate(self._files):
            frame = _decode_image(f, i)
            if (frame.width, frame.height) != (info.width, info.height):
                raise VsrkitError(
                    f"{f}: size {frame.width}x{frame.height} differs from the first image "
                    f"{self._files[0].name} ({info.width}x{info.height}) (frame {i})")
            yield Frame(to_array(frame, info.channels, info.bit_depth), None, i)

    # video files
    def _raw_frames(self) -> Iterator[av.VideoFrame]:
        """Decoded frames in display order, damage skipped and reported, decoder fully flushed."""
        c = self._container
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        n_out = 0
        skipped = 0
        ended_early: str | None = None
        packets = c.demux(s)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except (av.error.FFmpegError, OSError) as e:  # demuxer hit damage / truncation
                ended_early = one_line(e)
                break
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, ValueError) as e:
                skipped += 1
                log.debug("%s: packet skipped: %s", self.path, e)
                continue
            for fr in frames:
                n_out += 1
                yield fr
        if ended_early is not None:
            try:  # flush what the decoder still holds
                for fr in s.codec_context.decode(None):
                    n_out += 1
                    yield fr
            except (av.error.FFmpegError, ValueError):
                pass
        if n_out == 0:
            raise VsrkitError(f"{self.path}: no decodable video frame"
                              + (f" ({ended_early})" if ended_early else ""))
        if ended_early is not None:
            log.warning("%s: file is damaged or truncated after frame %d (%s); kept the %d frames before",
                        self.path, n_out - 1, ended_early, n_out)
        if skipped:
            log.warning("%s: %d damaged video packet(s) could not be decoded and were skipped", self.path, skipped)
        declared = self.info.num_frames if hasattr(self, "info") else None
        if declared and not ended_early and n_out < declared * 0.98 - 1:
            log.warning("%s: decoded %d frames, the container declares %d (damaged or truncated file?)",
                        self.path, n_out, declared)

    def _iter_video(self, record: bool = True) -> Iterator[Frame]:
        info = self.info
        tb = info.time_base
        step = 1
        if info.fps and tb:
            step = max(1, round(1 / (info.fps * tb)))
        window: deque[av.VideoFrame] = deque()
        heap: list[int] = []
        last: int | None = None
        index = 0

        def emit(fr: av.VideoFrame) -> Frame:
            nonlocal last, index
            pts = heapq.heappop(heap) if heap else None
            if pts is None or (last is not None and pts <= last):
                dur = fr.duration if fr.duration and fr.duration > 0 else step
                pts = (last + dur) if last is not None else 0
            last = pts
            out = Frame(_orient(to_array(fr, info.channels, info.bit_depth), self._orientation), int(pts), index)
            index += 1
            return out

        seek = self._seek
        if record:
            seek.clear()

        def remember(fr: av.VideoFrame, frame: Frame) -> Frame:
            # where each frame is, for frames_from: its own timestamp, whether it is a keyframe, its repaired pts
            if not record:
                return frame
            if fr.pts is None or fr.pts in seek.by_pts:
                seek.ok = False
            seek.by_pts[fr.pts] = frame.index
            seek.pts.append(frame.pts)
            if fr.key_frame:
                seek.keys.append((frame.index, fr.pts))
            return frame

        for fr in self._raw_frames():
            ts = fr.pts if fr.pts is not None else fr.dts
            if ts is not None:
                heapq.heappush(heap, ts)
            window.append(fr)
            if len(window) > _REORDER_WINDOW:
                first = window.popleft()
                yield remember(first, emit(first))
        while window:
            first = window.popleft()
            yield remember(first, emit(first))

    def frames_from(self, start: int) -> Iterator[Frame]:
        """Frames again, from a frame at or before ``start`` (``Frame.index`` says which) to the end.

        A video seeks to the keyframe before ``start`` when an earlier pass has gone past it and the stream's
        timestamps identify its frames; otherwise it decodes from the first frame. Frames keep the indices and
        (repaired) timestamps of the first pass.
        """
        if self.info.is_image_sequence:
            for i in range(start, len(self._files)):
                frame = _decode_image(self._files[i], i)
                yield Frame(to_array(frame, self.info.channels, self.info.bit_depth), None, i)
            return
        seek = self._seek
        keys = [k for k in seek.keys if k[0] <= start]
        if start == 0 or not seek.ok or not keys or start >= len(seek.pts):
            yield from self._from_the_start(start)
            return
        key_index, key_pts = keys[-1]
        self._restart()
        c = self._container
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        try:
            c.seek(key_pts, stream=s, backward=True, any_frame=False)
        except (av.error.FFmpegError, OSError):
            yield from self._from_the_start(start)
            return
        expect = None
        for fr in self._decode_here():
            i = seek.by_pts.get(fr.pts)
            if expect is None:
                if i is None or i > key_index:  # landed after the keyframe, or on an unknown picture
                    break
                if i < key_index:
                    continue
                expect = i
            if i != expect:
                break
            yield Frame(_orient(to_array(fr, self.info.channels, self.info.bit_depth), self._orientation),
                        seek.pts[i], i)
            expect += 1
            if expect >= len(seek.pts):
                return
        else:
            if expect is not None:
                return
        # seeking did not give the frames in order: decode from the first frame instead
        yield from self._from_the_start(max(start, expect or 0))

    def _from_the_start(self, start: int) -> Iterator[Frame]:
        self._restart()
        self._started = True
        for frame in self._iter_video(record=False):
            if frame.index >= start:
                yield frame

    def _decode_here(self) -> Iterator[av.VideoFrame]:
        """Decoded frames from the container's position (after a seek), damage skipped."""
        c = self._container
        s = c.streams.video[0]
        packets = c.demux(s)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.error.FFmpegError, OSError):
                break
            try:
                yield from packet.decode()
            except (av.error.FFmpegError, ValueError):
                continue
        try:
            yield from s.codec_context.decode(None)
        except (av.error.FFmpegError, ValueError):
            pass


