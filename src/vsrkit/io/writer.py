"""Writing videos and image sequences on PyAV: :class:`VideoWriter`.

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

import io
import logging
import math
import os
import shutil
from collections import deque
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vsrkit.errors import VsrkitError
from vsrkit.io.reader import (
    _ARRAY_FORMATS, _DEFAULT_LAYOUTS, _PNG_FORMATS, _PNG_NAME, _WRITE_FORMATS, VIDEO_SUFFIXES, VideoInfo, _is_yuv,
    _one_line,
)

__all__ = ["VideoWriter", "check_output", "is_image_folder_output"]

log = logging.getLogger(__name__)



def is_image_folder_output(path: str | os.PathLike) -> bool:
    """True if ``path`` names a PNG-folder output: an existing folder, a path ending with a path
    separator, or a path without a video suffix (``.mp4``, ``.mkv``, ...)."""
    s = os.fspath(path)
    if s.endswith(("/", os.sep)) or os.path.isdir(s):
        return True
    return Path(s).suffix.lower() not in VIDEO_SUFFIXES


# --------------------------------------------------------------------------------------- writing
def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists() and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output(path: str | os.PathLike, source: str | os.PathLike | None = None, overwrite: bool = False) -> None:
    """Refuse an output that is the input (also through a link), or that exists without ``overwrite``."""
    final = Path(path)
    if source is not None and _same_file(final, Path(source)):
        raise VsrkitError(f"{final}: output is the input file; choose another output")
    if final.exists() and not overwrite:
        raise VsrkitError(f"{final}: output already exists (pass --overwrite to replace it)")


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
        check_output(final, source.path if source is not None else None, overwrite)
        if not self.is_folder and final.suffix.lower() not in _WRITE_FORMATS:
            raise VsrkitError(f"{final}: cannot write {final.suffix} video; use .mp4, .mkv, .mov or .m4v "
                              "(or a folder for PNG frames)")
        if final.exists():
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
        for f in frames:
            for rf in res.resample(f):
                for p in out.encode(rf):
                    self._container.mux(p)
        if pk.size == 0:  # only the demuxer's empty flush packet ends the stream (a missing DTS does not)
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
