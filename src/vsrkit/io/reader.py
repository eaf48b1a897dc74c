"""Reading videos and image sequences on PyAV: :class:`VideoReader` (and :func:`probe`, from ``probe``).

A reader is made by probing its source (``probe``: header, first picture, display matrix); frames come from the
one decode loop (``decode``), in the layout of ``pixfmt``, with their timestamps repaired here.

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
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from vsrkit.errors import VsrkitError
from vsrkit.io.decode import decode_image, decode_video
from vsrkit.io.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, list_images, open_input
from vsrkit.io.pixfmt import layout, to_array
from vsrkit.io.probe import Orientation, VideoInfo, open_source, orient, probe

__all__ = ["VideoInfo", "Frame", "probe", "VideoReader", "read_image", "list_images", "IMAGE_SUFFIXES",
           "VIDEO_SUFFIXES"]

log = logging.getLogger(__name__)

_REORDER_WINDOW = 4  # decoded frames looked ahead to repair out-of-order timestamps


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


# --------------------------------------------------------------------------------------- reading
def read_image(path: str | os.PathLike) -> np.ndarray:
    """One image file as ``H x W x C`` uint8/uint16, as a reader of its folder gives it (decoded once)."""
    frame = decode_image(Path(path))
    channels, depth = layout(frame.format, frame)
    return to_array(frame, channels, depth)


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
        src = open_source(self.path)
        self.info = src.info
        self._files = src.files
        self._orientation = src.orientation
        self._container = src.container

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
            frame = decode_image(f, i)
            if (frame.width, frame.height) != (info.width, info.height):
                raise VsrkitError(
                    f"{f}: size {frame.width}x{frame.height} differs from the first image "
                    f"{self._files[0].name} ({info.width}x{info.height}) (frame {i})")
            yield Frame(to_array(frame, info.channels, info.bit_depth), None, i)

    # video files
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
            out = Frame(orient(to_array(fr, info.channels, info.bit_depth), self._orientation), int(pts), index)
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

        for fr in decode_video(self._container, self.path, declared=self.info.num_frames):
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
                frame = decode_image(self._files[i], i)
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
        try:
            c.seek(key_pts, stream=s, backward=True, any_frame=False)
        except (av.error.FFmpegError, OSError):
            yield from self._from_the_start(start)
            return
        expect = None
        pictures = decode_video(c, self.path, start=key_index)
        for fr in pictures:
            i = seek.by_pts.get(fr.pts)
            if expect is None:
                if i is None or i > key_index:  # landed after the keyframe, or on an unknown picture
                    break
                if i < key_index:
                    continue
                expect = i
            if i != expect:
                break
            yield Frame(orient(to_array(fr, self.info.channels, self.info.bit_depth), self._orientation),
                        seek.pts[i], i)
            expect += 1
            if expect >= len(seek.pts):
                for _ in pictures:  # nothing left, unless the file grew: the loop ends and reports any damage
                    pass
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
