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

    Damaged input: frames that cannot be decoded are skipped, and a truncated or corrupt file is read up
    to the last decodable frame; both are reported with a ``logging`` warning naming the file and the
    frame index. A file with no decodable frame at all raises :class:`VsrkitError`.

"""

from __future__ import annotations

import heapq
import logging
import os
import re
import sys
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from vsrkit.errors import VsrkitError

__all__ = ["VideoInfo", "Frame", "probe", "VideoReader", "list_images", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".m2ts",
    ".mts", ".3gp", ".ogv", ".y4m", ".gif", ".mxf", ".vob", ".asf", ".divx", ".qt",
})
# suffix -> FFmpeg muxer for the outputs we write
_WRITE_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_REORDER_WINDOW = 4  # decoded frames looked ahead to repair out-of-order timestamps
_LE = sys.byteorder == "little"
_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
_PNG_NAME = re.compile(r"^\d{8}\.png$")


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
class Frame:
    """One decoded frame: ``image`` is H x W x C uint8/uint16; ``pts`` in ``info.time_base`` units."""

    image: np.ndarray
    pts: int | None
    index: int


# --------------------------------------------------------------------------------------- helpers
def _one_line(e: BaseException) -> str:
    if isinstance(e, av.error.FFmpegError) and e.strerror:  # without the file name FFmpeg repeats
        msg = e.strerror
        if isinstance(e, av.error.EOFError):
            msg = "the file ends too early: empty or truncated"
        return " ".join(msg.split())
    msg = " ".join(str(e).split())
    return msg or type(e).__name__


def _natural_key(name: str) -> tuple:
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", name) if t)


def _layout(fmt: av.VideoFormat, frame: av.VideoFrame | None = None) -> tuple[int, int]:
    """(channels, bit_depth) the reader yields for a source pixel format."""
    comps = list(fmt.components)
    alpha = any(c.is_alpha for c in comps)
    colour = [c for c in comps if not c.is_alpha]
    if fmt.has_palette:
        if frame is None:
            return 4, 8
        pal = np.frombuffer(bytes(frame.planes[1]), np.uint8)[: 256 * 4].reshape(-1, 4)
        # AVPALETTE entries are native-endian 0xAARRGGBB words: alpha is byte 3 on little-endian
        a = pal[:, 3] if _LE else pal[:, 0]
        return (4 if (a != 255).any() else 3), 8
    bits = max((c.bits for c in comps), default=8)
    depth = 16 if bits > 8 and not fmt.is_bayer else 8
    if len(colour) == 1 and not fmt.is_rgb:
        return (4 if alpha else 1), depth
    return (4 if alpha else 3), depth


_ARRAY_FORMATS = {
    (1, 8): "gray", (1, 16): "gray16le" if _LE else "gray16be",
    (3, 8): "rgb24", (3, 16): "rgb48le" if _LE else "rgb48be",
    (4, 8): "rgba", (4, 16): "rgba64le" if _LE else "rgba64be",
}
_PNG_FORMATS = {(1, 8): "gray", (1, 16): "gray16be", (3, 8): "rgb24", (3, 16): "rgb48be",
                (4, 8): "rgba", (4, 16): "rgba64be"}


def _is_yuv(fmt: av.VideoFormat) -> bool:
    comps = [c for c in fmt.components if not c.is_alpha]
    return not fmt.is_rgb and not fmt.has_palette and len(comps) == 3 and not fmt.name.startswith("xyz")


def _to_array(frame: av.VideoFrame, channels: int, depth: int) -> np.ndarray:
    """Decoded frame -> H x W x C array in the reader's layout."""
    target = _ARRAY_FORMATS[(channels, depth)]
    kw = {}
    if _is_yuv(frame.format):
        cs = frame.colorspace
        if cs in (0, 2, 3) or cs > 10:  # rgb / unspecified / reserved: guess like players do
            cs = 1 if frame.height >= 720 else 5
        elif cs == 10:
            cs = 9
        kw = dict(src_colorspace=cs, dst_colorspace=cs,
                  src_color_range=frame.color_range if frame.color_range in (1, 2) else 1,
                  dst_color_range=2)
    if frame.format.name == target:
        arr = frame.to_ndarray()
    else:
        arr = frame.reformat(format=target, **kw).to_ndarray()
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------------------- reading
def probe(path: str | os.PathLike) -> VideoInfo:
    """Open ``path`` (video file or image folder), read its header only and describe it."""
    with VideoReader(path) as r:
        return r.info


def _list_images(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir()
             if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()]
    files.sort(key=lambda p: _natural_key(p.name))
    return files


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in ``folder``, in the order a :class:`VideoReader` reads them (natural order)."""
    return _list_images(Path(folder))


def _decode_image(path: Path, index: int) -> av.VideoFrame:
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise VsrkitError(f"{path}: not an image (frame {index})")
            for frame in c.decode(c.streams.video[0]):
                return frame
    except VsrkitError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VsrkitError(f"{path}: cannot read image (frame {index}): {_one_line(e)}") from None
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
        self._first: av.VideoFrame | None = None
        p = self.path
        if not p.exists():
            raise VsrkitError(f"{p}: no such file or folder")
        if p.is_dir():
            self._files = _list_images(p)
            if not self._files:
                raise VsrkitError(f"{p}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            first = _decode_image(self._files[0], 0)
            ch, depth = _layout(first.format, first)
            self.info = VideoInfo(str(p), first.width, first.height, len(self._files), None, None,
                                  ch, depth, True, False)
            return
        try:
            self._container = av.open(str(p))
        except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
            raise VsrkitError(f"{p}: not a readable video ({_one_line(e)})") from None
        c = self._container
        if not c.streams.video:
            self.close()
            raise VsrkitError(f"{p}: holds no video stream")
        s = c.streams.video[0]
        cc = s.codec_context
        if cc.format is None or not cc.width or not cc.height:
            self.close()
            raise VsrkitError(f"{p}: video stream has no decodable picture (codec {cc.name})")
        first = None
        if cc.format.has_palette:  # palette transparency is only known from a picture
            first = next(self._raw_frames(), None)
            self._restart()
        ch, depth = _layout(cc.format, first)
        fps = s.average_rate or s.guessed_rate or s.base_rate
        self.info = VideoInfo(
            path=str(p), width=cc.width, height=cc.height, num_frames=self._count(s),
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
        self._container = av.open(str(self.path))

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
            yield Frame(_to_array(frame, info.channels, info.bit_depth), None, i)

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
                ended_early = _one_line(e)
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

    def _iter_video(self) -> Iterator[Frame]:
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
            out = Frame(_to_array(fr, info.channels, info.bit_depth), int(pts), index)
            index += 1
            return out

        for fr in self._raw_frames():
            ts = fr.pts if fr.pts is not None else fr.dts
            if ts is not None:
                heapq.heappush(heap, ts)
            window.append(fr)
            if len(window) > _REORDER_WINDOW:
                yield emit(window.popleft())
        while window:
            yield emit(window.popleft())


