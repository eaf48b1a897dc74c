"""Streaming video and image-sequence I/O on PyAV: :class:`VideoReader`, :class:`VideoWriter`, :func:`probe`.

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

Writing
    ``.mp4``/``.m4v``/``.mov``/``.mkv``: H.264 (libx264, ``crf``, ``preset``, ``pix_fmt``), BT.709
    tagged, keeping the source's time base and every frame's pts (variable frame rate survives; mp4/mov
    exactly, including a non-zero start; Matroska stores timestamps in milliseconds). Audio
    and subtitle streams of ``source`` are copied packet by packet (interleaved while writing); an audio
    codec the container cannot hold is re-encoded to AAC, a subtitle codec it cannot hold is dropped,
    both with a warning. Alpha is dropped (warning); 16-bit frames are converted to ``pix_fmt``.

    Odd sizes: chroma-subsampled ``pix_fmt`` (yuv420p needs even width and height, yuv422p even width)
    are **padded** by repeating the last column/row, so no picture content is lost; the encoded picture
    is then one pixel wider/taller than ``width``/``height`` (a warning says so). ``yuv444p`` keeps
    the exact size.

    Any other path (no video suffix, an existing folder, or a path ending with ``/``) is a PNG folder:
    ``00000000.png``, ``00000001.png``, ... keeping grey, alpha and 16-bit.

    Output goes to a hidden temporary file/folder beside the final path and is renamed into place only
    by a successful :meth:`VideoWriter.close`; :meth:`VideoWriter.abort` (also called by ``__exit__`` on an
    exception) deletes it, so nothing is ever left under the final name by a failed run.
"""

from __future__ import annotations

import heapq
import io
import logging
import math
import os
import re
import shutil
import sys
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from vsrkit.errors import VsrkitError

__all__ = ["VideoInfo", "Frame", "probe", "VideoReader", "VideoWriter", "is_image_folder_output",
           "IMAGE_SUFFIXES", "VIDEO_SUFFIXES"]

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


def is_image_folder_output(path: str | os.PathLike) -> bool:
    """True if ``path`` names a PNG-folder output: an existing folder, a path ending with a path
    separator, or a path without a video suffix (``.mp4``, ``.mkv``, ...)."""
    s = os.fspath(path)
    if s.endswith(("/", os.sep)) or os.path.isdir(s):
        return True
    return Path(s).suffix.lower() not in VIDEO_SUFFIXES


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


# --------------------------------------------------------------------------------------- writing
def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists() and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return a.resolve() == b.resolve()


class VideoWriter:
    """Write frames to an H.264 video (``.mp4``/``.m4v``/``.mov``/``.mkv``) or a PNG folder.

    ``source`` (the input's :class:`VideoInfo`) gives frame rate, time base and the audio/subtitle
    streams to copy; ``fps`` is used when there is no source rate (default 25). ``write`` takes
    ``height x width x C`` (or ``height x width``) uint8/uint16 arrays; C and dtype may be 1/3/4 and
    8/16-bit whatever ``channels``/``bit_depth`` say (those document the expected frames). ``pts`` is in
    the source time base (missing: the frame index at the source rate); it must increase.
    See the module docstring for odd sizes, alpha, temporary names and stream copying.
    """

    def __init__(self, path: str | os.PathLike, *, width: int, height: int, source: VideoInfo | None = None,
                 crf: int = 18, preset: str = "medium", pix_fmt: str = "yuv420p", channels: int = 3,
                 bit_depth: int = 8, overwrite: bool = False, fps: Fraction | float | None = None) -> None:
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self.source = source
        self.channels, self.bit_depth = channels, bit_depth
        self.is_folder = is_image_folder_output(path)
        self.frames_written = 0
        self._closed = False
        self._container: av.container.OutputContainer | None = None
        self._src: av.container.InputContainer | None = None
        self._png: av.CodecContext | None = None
        self._png_key: tuple[int, int] | None = None
        self._warned: set[str] = set()
        self._last_pts: int | None = None
        if self.width <= 0 or self.height <= 0:
            raise VsrkitError(f"{self.path}: invalid output size {width}x{height}")
        final = self.path
        if source is not None and _same_file(final, Path(source.path)):
            raise VsrkitError(f"{final}: output is the input file; choose another output")
        if not self.is_folder and final.suffix.lower() not in _WRITE_FORMATS:
            raise VsrkitError(f"{final}: cannot write {final.suffix} video; use .mp4, .mkv, .mov or .m4v "
                              "(or a folder for PNG frames)")
        if final.exists():
            if not overwrite:
                raise VsrkitError(f"{final}: output already exists (pass overwrite to replace it)")
            if self.is_folder and final.is_dir():
                others = [q.name for q in final.iterdir() if not _PNG_NAME.match(q.name)]
                if others:
                    raise VsrkitError(f"{final}: output folder holds other files ({others[0]}, ...); "
                                      "refusing to replace it")
            elif self.is_folder != final.is_dir():
                raise VsrkitError(f"{final}: exists as a {'folder' if final.is_dir() else 'file'}; "
                                  "cannot replace it with a " + ("PNG folder" if self.is_folder else "video"))
        final.parent.mkdir(parents=True, exist_ok=True)
        tag = f".{final.name}.partial-{os.getpid()}"
        self._tmp = final.parent / (tag if self.is_folder else tag + final.suffix)
        if self._tmp.is_dir():
            shutil.rmtree(self._tmp)
        elif self._tmp.exists():
            self._tmp.unlink()

        src_fps = source.fps if source is not None and source.fps else None
        self.fps = Fraction(src_fps or fps or 25).limit_denominator(1_000_000)
        tb = source.time_base if source is not None and source.time_base and not source.is_image_sequence else None
        self.time_base = Fraction(tb) if tb else 1 / self.fps
        if self.is_folder:
            self._tmp.mkdir()
            if source is not None and source.has_audio:
                log.warning("%s: PNG folder output: the audio of %s is not kept", final, source.path)
            return
        try:
            self._open_video(final, crf, preset, pix_fmt)
        except BaseException:
            self.abort()
            raise

    # setup
    def _open_video(self, final: Path, crf: int, preset: str, pix_fmt: str) -> None:
        try:
            vf = av.VideoFormat(pix_fmt)
        except (ValueError, av.error.FFmpegError):
            raise VsrkitError(f"{final}: unknown pixel format {pix_fmt!r}") from None
        sub_w = vf.chroma_width(2) < 2 if _is_yuv(vf) else False
        sub_h = vf.chroma_height(2) < 2 if _is_yuv(vf) else False
        self.enc_width = self.width + (self.width % 2 if sub_w else 0)
        self.enc_height = self.height + (self.height % 2 if sub_h else 0)
        if (self.enc_width, self.enc_height) != (self.width, self.height):
            log.warning("%s: %s needs even sizes: %dx%d is padded to %dx%d by repeating the last column/row",
                        final, pix_fmt, self.width, self.height, self.enc_width, self.enc_height)
        self.pix_fmt = pix_fmt
        fmt = _WRITE_FORMATS[final.suffix.lower()]
        opts = {}
        if fmt in ("mp4", "mov"):
            # edit lists (start offsets) are in the movie timescale, 1 ms by default: make it exact
            den = self.time_base.denominator
            ts = den * 1000 // math.gcd(den, 1000)
            opts["movie_timescale"] = str(ts if ts < 2**31 else min(den, 2**31 - 1))
        self._container = c = av.open(str(self._tmp), "w", format=fmt, options=opts)
        try:
            s = c.add_stream("libx264", rate=self.fps)
        except (av.error.FFmpegError, ValueError) as e:
            raise VsrkitError(f"{final}: H.264 encoder unavailable: {_one_line(e)}") from None
        cc = s.codec_context
        cc.width, cc.height = self.enc_width, self.enc_height
        try:
            cc.pix_fmt = pix_fmt
        except (ValueError, av.error.FFmpegError) as e:
            raise VsrkitError(f"{final}: pixel format {pix_fmt!r}: {_one_line(e)}") from None
        cc.time_base = self.time_base
        s.time_base = self.time_base
        cc.framerate = self.fps
        cc.options = {"crf": str(crf), "preset": str(preset)}
        self._yuv = _is_yuv(vf)
        if self._yuv:
            cc.colorspace = 1
            cc.color_primaries = 1
            cc.color_trc = 1
            cc.color_range = 2 if pix_fmt.startswith("yuvj") else 1
        self._vstream = s
        self._copies: dict[int, tuple[av.stream.Stream, object]] = {}
        if self.source is not None and not self.source.is_image_sequence:
            self._setup_copies(final)

    def _setup_copies(self, final: Path) -> None:
        """Add an output stream for each audio/subtitle stream of the source (copy or AAC)."""
        try:
            self._src = av.open(self.source.path)
        except (av.error.FFmpegError, OSError) as e:
            log.warning("%s: cannot reopen %s to copy its audio: %s", final, self.source.path, _one_line(e))
            return
        fmt = self._container.format.name.split(",")[0]
        for ins in self._src.streams:
            if ins.type not in ("audio", "subtitle"):
                continue
            name = ins.codec_context.name
            if self._remux_ok(fmt, ins):
                self._copies[ins.index] = (self._container.add_stream_from_template(ins), None)
            elif ins.type == "audio":
                log.warning("%s: %s cannot hold %s audio (stream %d): re-encoding it to AAC",
                            final, final.suffix, name, ins.index)
                out = self._container.add_stream("aac", rate=ins.codec_context.sample_rate)
                n_ch = ins.codec_context.channels or 2  # a default channel order AAC accepts
                layout = _DEFAULT_LAYOUTS.get(n_ch) or ins.codec_context.layout.name
                out.codec_context.layout = layout
                out.codec_context.bit_rate = 192_000
                out.time_base = Fraction(1, ins.codec_context.sample_rate)
                res = av.AudioResampler(format=out.codec_context.codec.audio_formats[0].name,
                                        layout=layout, rate=ins.codec_context.sample_rate,
                                        frame_size=1024)
                self._copies[ins.index] = (out, res)
            else:
                log.warning("%s: %s cannot hold %s subtitles (stream %d): dropped", final, final.suffix,
                            name, ins.index)
        if not self._copies:
            self._src.close()
            self._src = None
            return
        self._pending = deque()
        self._flushed: set[int] = set()
        self._src_packets = self._src.demux(*[self._src.streams[i] for i in self._copies])
        self._src_done = False

    @staticmethod
    def _remux_ok(fmt: str, ins: av.stream.Stream) -> bool:
        """Whether the muxer accepts this stream copied as is (a header written to memory)."""
        try:
            with av.open(io.BytesIO(), "w", format=fmt) as probe_out:
                probe_out.add_stream_from_template(ins)
                probe_out.start_encoding()
            return True
        except (av.error.FFmpegError, ValueError, OSError):
            return False

    # copying
    def _pump(self, until: float | None) -> None:
        """Mux source audio/subtitle packets up to ``until`` seconds (all when None)."""
        if self._src is None:
            return
        while True:
            if not self._pending:
                if self._src_done:
                    return
                try:
                    self._pending.append(next(self._src_packets))
                except StopIteration:
                    self._src_done = True
                    continue
                except (av.error.FFmpegError, OSError) as e:
                    log.warning("%s: copying audio stopped early: %s", self.path, _one_line(e))
                    self._src_done = True
                    continue
            pk = self._pending[0]
            ts = pk.dts if pk.dts is not None else pk.pts
            if until is not None and ts is not None and float(ts * pk.time_base) > until:
                return
            self._pending.popleft()
            self._copy_packet(pk)

    def _finish_copies(self) -> None:
        """Copy the rest of the audio/subtitles: all of it, or up to the end of the video when fewer
        frames were written than the source declares (a partial run, e.g. the first N frames)."""
        if self._src is None:
            return
        declared = self.source.num_frames
        if declared and self.frames_written < declared and self._last_pts is not None:
            step = max(1, round(1 / (self.fps * self.time_base)))
            end = float((self._last_pts + step) * self.time_base)
            self._pump(end)
            if self._pending or not self._src_done:
                log.info("%s: %d of %d frames written: audio/subtitles cut at %.3f s",
                         self.path, self.frames_written, declared, end)
            for index in self._copies:
                self._flush_transcoder(index)
        else:
            self._pump(None)

    def _copy_packet(self, pk: av.Packet) -> None:
        out, res = self._copies[pk.stream.index]
        if res is None:
            if pk.size == 0 or (pk.dts is None and pk.pts is None):
                return
            pk.stream = out
            self._container.mux(pk)
            return
        try:
            frames = pk.decode()
        except (av.error.FFmpegError, ValueError):
            return
        if pk.size == 0 or pk.dts is None:  # the demuxer's flush packet
            frames = list(frames)
        for f in frames:
            for rf in res.resample(f):
                for p in out.encode(rf):
                    self._container.mux(p)
        if pk.size == 0 or pk.dts is None:
            self._flush_transcoder(pk.stream.index)

    def _flush_transcoder(self, index: int) -> None:
        out, res = self._copies[index]
        if res is None or index in self._flushed:
            return
        self._flushed.add(index)
        for rf in res.resample(None):
            for p in out.encode(rf):
                self._container.mux(p)
        for p in out.encode(None):
            self._container.mux(p)

    # frames
    def _check(self, image: np.ndarray) -> np.ndarray:
        a = np.asarray(image)
        if a.ndim == 2:
            a = a[:, :, None]
        if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.dtype not in (np.uint8, np.uint16):
            raise VsrkitError(f"{self.path}: frame {self.frames_written}: expected H x W x 1/3/4 uint8 or "
                              f"uint16, got shape {a.shape} {a.dtype}")
        if a.shape[:2] != (self.height, self.width):
            raise VsrkitError(f"{self.path}: frame {self.frames_written} is {a.shape[1]}x{a.shape[0]}, "
                              f"the output is {self.width}x{self.height}")
        return a

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        """Append one frame (``pts`` in the source time base; None: from the frame index)."""
        if self._closed:
            raise VsrkitError(f"{self.path}: writer is closed")
        a = self._check(image)
        if self.is_folder:
            self._write_png(a)
        else:
            self._write_video(a, pts)
        self.frames_written += 1

    def _write_png(self, a: np.ndarray) -> None:
        key = (a.shape[2], 16 if a.dtype == np.uint16 else 8)
        if self._png is None or self._png_key != key:
            self._png = av.CodecContext.create("png", "w")
            self._png.width, self._png.height = self.width, self.height
            self._png.pix_fmt = _PNG_FORMATS[key]
            self._png_key = key
        frame = av.VideoFrame.from_ndarray(a[:, :, 0] if key[0] == 1 else a, format=_ARRAY_FORMATS[key])
        if frame.format.name != _PNG_FORMATS[key]:
            frame = frame.reformat(format=_PNG_FORMATS[key])
        data = b"".join(bytes(p) for p in self._png.encode(frame))
        (self._tmp / f"{self.frames_written:08d}.png").write_bytes(data)

    def _write_video(self, a: np.ndarray, pts: int | None) -> None:
        if pts is None:
            pts = round(self.frames_written / (self.fps * self.time_base))
        pts = int(pts)
        if self._last_pts is not None and pts <= self._last_pts:
            if "pts" not in self._warned:
                self._warned.add("pts")
                log.warning("%s: frame %d: timestamp %d does not increase (previous %d); moved after it",
                            self.path, self.frames_written, pts, self._last_pts)
            pts = self._last_pts + 1
        self._last_pts = pts
        c, depth = a.shape[2], (16 if a.dtype == np.uint16 else 8)
        if c == 4 and "alpha" not in self._warned:
            self._warned.add("alpha")
            log.warning("%s: H.264 has no alpha channel: alpha dropped (write a PNG folder to keep it)", self.path)
        if c == 1 and self._yuv:  # swscale's gray -> yuv path shifts levels; go through RGB
            a, c = np.repeat(a, 3, axis=2), 3
        if (self.enc_width, self.enc_height) != (self.width, self.height):
            a = np.pad(a, ((0, self.enc_height - self.height), (0, self.enc_width - self.width), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(a[:, :, 0] if c == 1 else np.ascontiguousarray(a),
                                           format=_ARRAY_FORMATS[(c, depth)])
        if self._yuv:
            frame = frame.reformat(format=self.pix_fmt, src_colorspace=1, dst_colorspace=1,
                                   src_color_range=2, dst_color_range=2 if self.pix_fmt.startswith("yuvj") else 1)
        elif frame.format.name != self.pix_fmt:
            frame = frame.reformat(format=self.pix_fmt)
        frame.pts = pts
        frame.time_base = self.time_base
        try:
            for p in self._vstream.encode(frame):
                self._mux_video(p)
        except (av.error.FFmpegError, ValueError) as e:
            raise VsrkitError(f"{self.path}: encoding frame {self.frames_written} failed: {_one_line(e)}") from None

    def _mux_video(self, p: av.Packet) -> None:
        if self._src is not None and p.dts is not None:
            self._pump(float(p.dts * p.time_base))
        self._container.mux(p)

    # finishing
    def close(self) -> None:
        """Flush the encoder, copy the remaining audio/subtitles, finalize and rename into place."""
        if self._closed:
            return
        try:
            if self.frames_written == 0:
                raise VsrkitError(f"{self.path}: no frames were written")
            if not self.is_folder:
                try:
                    for p in self._vstream.encode(None):
                        self._mux_video(p)
                    self._finish_copies()
                    self._container.close()
                except (av.error.FFmpegError, OSError, ValueError) as e:
                    raise VsrkitError(f"{self.path}: finishing the video failed: {_one_line(e)}") from None
                self._container = None
            self._close_src()
            final = self.path
            if final.exists():  # overwrite was checked in __init__
                if final.is_dir():
                    shutil.rmtree(final)
                else:
                    final.unlink()
            os.replace(self._tmp, final)
            self._closed = True
        except BaseException:
            self.abort()
            raise

    def _close_src(self) -> None:
        if self._src is not None:
            try:
                self._src.close()
            except Exception:
                pass
            self._src = None

    def abort(self) -> None:
        """Stop and delete the temporary output; the final path is left untouched."""
        self._closed = True
        if self._container is not None:
            try:
                self._container.close()
            except Exception:
                pass
            self._container = None
        self._close_src()
        try:
            if self._tmp.is_dir():
                shutil.rmtree(self._tmp, ignore_errors=True)
            elif self._tmp.exists():
                self._tmp.unlink()
        except OSError:
            pass

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()
