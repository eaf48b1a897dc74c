"""Writing videos, image sequences and single images on PyAV: :class:`VideoWriter`.

What is written (``output_kind``)
    ``.mp4``/``.m4v``/``.mov``/``.mkv``: a video. A path ending with ``/``, an existing folder, or a name without
    an extension that does not exist yet: a folder of PNG frames (``00000000.png``, ...; grey, alpha and 16-bit
    kept; encoded by ``images``). ``.png``/``.jpg``/``.jpeg``/``.tif``/``.tiff``/``.bmp``: one image, for a single image in. Any
    other extension is a one-line error that lists these.

Videos
    H.264 (libx264, ``crf``, ``preset``, ``pix_fmt``), BT.709 tagged, keeping the source's time base and every
    frame's pts (variable frame rate survives; mp4/mov exactly, including a non-zero start; Matroska stores
    timestamps in milliseconds). Audio and subtitle streams of ``source`` are copied packet by packet
    (``remux``), interleaved; an audio codec the container cannot hold is re-encoded to AAC, a subtitle codec it cannot
    hold, or a stream of a codec FFmpeg does not know, is left out, each said once when the writer is made. Alpha is dropped (warning); 16-bit frames are converted to ``pix_fmt``.
    Odd sizes with chroma-subsampled ``pix_fmt`` (yuv420p needs even width and height, yuv422p even width) are
    **padded** by repeating the last column/row (a warning says so); ``yuv444p`` keeps the exact size.

Temporary files, segments and resuming
    Everything is written in a work folder (``workdir``, by default the job folder of ``vsrkit.jobs`` beside the
    output) and renamed into place only by a successful :meth:`VideoWriter.close`; :meth:`VideoWriter.abort`
    (also called by ``__exit__`` on an exception) deletes it, so nothing is ever left under the final name. A
    video is encoded in segments of ``segment`` frames, each a complete file starting with a keyframe; ``close``
    joins them (packets copied, not re-encoded) and adds the audio. With ``resume=True`` the frames or complete
    segments already in ``workdir`` are checked and kept (``frames_written`` says how many); the same frames
    written in one go or resumed give the same file.

Late failures never throw the frames away
    When the audio or subtitles fail while the video is joined, the video is written without them (a one-line
    warning). When finishing fails otherwise (joining, renaming), :class:`~vsrkit.errors.WorkKeptError` says so
    and the work folder is kept, complete segments or frames included, for a resumed run.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vsrkit.errors import VsrkitError, WorkKeptError
from vsrkit.io.files import WRITE_FORMATS, one_line, open_input
from vsrkit.io.images import IMAGE_CODECS, PNG_NAME, ImageEncoder, drop_frames, keep_frames, write_frame
from vsrkit.io.pixfmt import ARRAY_FORMATS, is_yuv
from vsrkit.io.probe import VideoInfo, count_frames
from vsrkit.io.remux import Carry, StreamCopy, plan_copies

__all__ = ["VideoWriter", "check_output", "finished", "is_image_folder_output", "output_kind", "DEFAULT_SEGMENT"]

log = logging.getLogger(__name__)

DEFAULT_SEGMENT = 120  # frames per video segment: what a resumed run may have to redo
_ACCEPTED = ("a video (.mp4, .m4v, .mov, .mkv), a folder of PNG frames (a name ending with / or without an "
             "extension), or for a single image in: one image (.png, .jpg, .tif, .bmp)")
_SEGMENT_NAME = re.compile(r"^seg(\d{6})\.mp4$")
_TAG = "vsrkit job"  # a finished video's comment: "vsrkit job <the job's digest>, <n> frames"


def output_kind(path: str | os.PathLike, single_image: bool = False) -> str:
    """What ``path`` asks for: ``"video"``, ``"frames"`` (a PNG folder) or ``"image"`` (one image, only for a
    single image in); a one-line error for anything else."""
    s = os.fspath(path)
    suffix = Path(s).suffix.lower()
    if os.path.isdir(s) and not s.endswith(("/", os.sep)) and (suffix in WRITE_FORMATS or suffix in IMAGE_CODECS):
        raise VsrkitError(f"{s}: is a folder, but its name asks for a{'n image' if suffix in IMAGE_CODECS else ' video'}; "
                          f"give another name (a folder of PNG frames: a name without an extension)")
    if s.endswith(("/", os.sep)) or os.path.isdir(s):
        return "frames"
    if suffix in WRITE_FORMATS:
        return "video"
    if suffix == "":
        if os.path.lexists(s):
            raise VsrkitError(f"{s}: exists as a file; a name without an extension is a folder of PNG frames "
                              f"(give a video or image name, or another folder)")
        return "frames"
    if suffix in IMAGE_CODECS:
        if single_image:
            return "image"
        raise VsrkitError(f"{s}: a {suffix} output holds one image but the input has several frames; "
                          f"write {_ACCEPTED}")
    raise VsrkitError(f"{s}: cannot write {suffix} files; write {_ACCEPTED}")


def is_image_folder_output(path: str | os.PathLike) -> bool:
    """True if ``path`` names a PNG-folder output: an existing folder, a path ending with a path separator,
    or a name without an extension."""
    s = os.fspath(path)
    if s.endswith(("/", os.sep)) or os.path.isdir(s):
        return True
    return Path(s).suffix == ""


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
    from vsrkit.jobs import check_name

    final = Path(path)
    check_name(final)
    if source is not None and _same_file(final, Path(source)):
        raise VsrkitError(f"{final}: output is the input file; choose another output")
    if final.exists() and not overwrite:
        raise VsrkitError(f"{final}: output already exists (pass --overwrite to replace it)")


def finished(path: str | os.PathLike, tag: str, frames: int, width: int, height: int) -> bool:
    """Whether ``path`` is the complete output of the job ``tag`` (a digest of what it was made with): a video
    whose metadata names the job and holds the frames it says it holds (``frames`` is not used); a PNG folder of
    exactly ``frames`` frames of ``width x height``, or one such image (all that a folder or an image can tell)."""
    path = Path(path)
    try:
        kind = output_kind(path, single_image=path.suffix.lower() in IMAGE_CODECS)
        if kind == "video":
            with open_input(path) as c:
                meta = {k.lower(): v for k, v in c.metadata.items()}
            m = re.fullmatch(re.escape(_TAG) + r" (\S+), (\d+) frames", meta.get("comment", ""))
            return bool(m) and m.group(1) == tag and count_frames(path) == int(m.group(2))
        if kind == "image":
            files = [path]
        else:
            files = sorted(q for q in path.iterdir() if PNG_NAME.match(q.name))
            if [q.name for q in files] != [f"{i:08d}.png" for i in range(frames)]:
                return False
            files = files[:1] + files[-1:]
        for f in files:
            with open_input(f) as c:
                fr = next(c.decode(video=0))
                if (fr.width, fr.height) != (width, height):
                    return False
        return True
    except (VsrkitError, av.error.FFmpegError, OSError, ValueError, StopIteration, UnicodeDecodeError):
        return False


def _write_error(path: Path, what: str, e: BaseException) -> VsrkitError:
    msg = e.strerror if isinstance(e, OSError) and e.strerror else one_line(e)
    return VsrkitError(f"{path}: {what} failed: {msg}")


class VideoWriter:
    """Write frames to an H.264 video, a PNG folder or one image (see the module docstring).

    ``source`` (the input's :class:`VideoInfo`) gives frame rate, time base and the audio/subtitle
    streams to copy; ``fps`` is used when there is no source rate (default 25). ``write`` takes
    ``height x width x C`` (or ``height x width``) uint8/uint16 arrays; C and dtype may be 1/3/4 and
    8/16-bit whatever ``channels``/``bit_depth`` say (those document the expected frames). ``pts`` is in
    the source time base (missing: the frame index at the source rate); it must increase. ``tag`` (a job's
    digest) is written in a video's metadata, so that :func:`finished` knows the output later.
    """

    def __init__(self, path: str | os.PathLike, *, width: int, height: int, source: VideoInfo | None = None,
                 crf: int = 18, preset: str = "medium", pix_fmt: str = "yuv420p", channels: int = 3,
                 bit_depth: int = 8, overwrite: bool = False, fps: Fraction | float | None = None,
                 single_image: bool = False, workdir: str | os.PathLike | None = None,
                 segment: int = DEFAULT_SEGMENT, resume: bool = False, tag: str | None = None) -> None:
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self.source = source
        self.channels, self.bit_depth = channels, bit_depth
        self.kind = output_kind(path, single_image)
        self.is_folder = self.kind == "frames"
        self.frames_written = 0
        self.segment = max(1, int(segment))
        self._closed = False
        self._container: av.container.OutputContainer | None = None
        self._copy: StreamCopy | None = None  # the source's audio and subtitles (video outputs)
        self._carry: list[Carry] = []  # which of them, and how (decided before any frame)
        self._images = ImageEncoder()
        self._warned: set[str] = set()
        self._last_pts: int | None = None
        self._seg: av.container.OutputContainer | None = None
        self._seg_index = -1
        self._job = None
        self._crf, self._preset, self._pix_fmt = crf, preset, pix_fmt
        self._tag = tag
        if self.width <= 0 or self.height <= 0:
            raise VsrkitError(f"{self.path}: invalid output size {width}x{height}")
        final = self.path
        check_output(final, source.path if source is not None else None, overwrite)
        if final.exists():
            if self.is_folder and final.is_dir():
                others = [q.name for q in final.iterdir() if not PNG_NAME.match(q.name)]
                if others:
                    raise VsrkitError(f"{final}: output folder holds other files ({others[0]}, ...); "
                                      "refusing to replace it")
            elif self.is_folder != final.is_dir():
                raise VsrkitError(f"{final}: exists as a {'folder' if final.is_dir() else 'file'}; "
                                  "cannot replace it with a " + ("PNG folder" if self.is_folder else self.kind))
        src_fps = source.fps if source is not None and source.fps else None
        self.fps = Fraction(src_fps or fps or 25).limit_denominator(1_000_000)
        tb = source.time_base if source is not None and source.time_base and not source.is_image_sequence else None
        self.time_base = Fraction(tb) if tb else 1 / self.fps
        if self.kind == "video":
            self._check_pix_fmt(pix_fmt)
            if source is not None and not source.is_image_sequence:
                self._carry = plan_copies(source, WRITE_FORMATS[final.suffix.lower()], final)
        if workdir is None:
            from vsrkit.jobs import Job

            self._job = Job(final).open()
            workdir = self._job.dir
        self.workdir = Path(workdir)
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            if self.kind == "frames":
                self._frames_dir = self.workdir / "frames"
                if resume and self._frames_dir.is_dir():
                    self._keep_frames()
                else:
                    shutil.rmtree(self._frames_dir, ignore_errors=True)
                    self._frames_dir.mkdir()
                if source is not None and source.has_audio:
                    log.warning("%s: PNG folder output: the audio of %s is not kept", final, source.path)
            elif self.kind == "video":
                self._segments = self.workdir / "segments"
                if resume and self._segments.is_dir():
                    self._keep_segments()
                else:
                    shutil.rmtree(self._segments, ignore_errors=True)
                    self._segments.mkdir()
        except VsrkitError:
            self.abort()
            raise
        except OSError as e:
            self.abort()
            raise _write_error(final, "preparing the output", e) from None

    # resuming
    def _keep_frames(self) -> None:
        """Keep the frames 0, 1, ... already written that decode to the expected size; remove the rest."""
        self.frames_written = keep_frames(self._frames_dir, self.width, self.height)

    def _keep_segments(self) -> None:
        """Keep the complete segments 0, 1, ... (each of ``segment`` frames, decodable); remove the rest."""
        n = 0
        last_pts = None
        while True:
            f = self._segments / f"seg{n:06d}.mp4"
            if not f.is_file():
                break
            try:
                with open_input(f) as c:
                    s = c.streams.video[0]
                    pts = [p.pts for p in c.demux(s) if p.size]
                ok = len(pts) == self.segment and None not in pts
            except (av.error.FFmpegError, OSError, ValueError, IndexError, UnicodeDecodeError):
                ok = False
            if not ok:
                break
            last_pts = round(max(pts) * s.time_base / self.time_base)
            n += 1
        for q in self._segments.iterdir():
            m = _SEGMENT_NAME.match(q.name)
            if not m or int(m.group(1)) >= n:
                q.unlink()
        self.frames_written = n * self.segment
        self._last_pts = last_pts

    def truncate(self, n: int) -> None:
        """Drop the frames from ``n`` on (a resumed run redoes them); for a video ``n`` is a segment boundary."""
        if n >= self.frames_written:
            return
        if self.kind == "frames":
            drop_frames(self._frames_dir, n)
        elif self.kind == "video":
            if n % self.segment:
                raise ValueError(f"a video resumes at a segment boundary, not at frame {n}")
            for q in self._segments.iterdir():
                m = _SEGMENT_NAME.match(q.name)
                if m and int(m.group(1)) >= n // self.segment:
                    q.unlink()
            self._last_pts = None
            if n:
                with open_input(self._segments / f"seg{n // self.segment - 1:06d}.mp4") as c:
                    s = c.streams.video[0]
                    self._last_pts = round(max(p.pts for p in c.demux(s) if p.size) * s.time_base / self.time_base)
        else:
            self._image = None
        self.frames_written = n

    # setup
    def _check_pix_fmt(self, pix_fmt: str) -> None:
        try:
            vf = av.VideoFormat(pix_fmt)
        except (ValueError, av.error.FFmpegError):
            raise VsrkitError(f"{self.path}: unknown pixel format {pix_fmt!r}") from None
        sub_w = vf.chroma_width(2) < 2 if is_yuv(vf) else False
        sub_h = vf.chroma_height(2) < 2 if is_yuv(vf) else False
        self.enc_width = self.width + (self.width % 2 if sub_w else 0)
        self.enc_height = self.height + (self.height % 2 if sub_h else 0)
        if (self.enc_width, self.enc_height) != (self.width, self.height):
            log.warning("%s: %s needs even sizes: %dx%d is padded to %dx%d by repeating the last column/row",
                        self.path, pix_fmt, self.width, self.height, self.enc_width, self.enc_height)
        self._yuv = is_yuv(vf)

    def _mp4_options(self) -> dict[str, str]:
        # edit lists (start offsets) are in the movie timescale, 1 ms by default: make it exact
        den = self.time_base.denominator
        ts = den * 1000 // math.gcd(den, 1000)
        return {"movie_timescale": str(ts if ts < 2**31 else min(den, 2**31 - 1))}

    def _open_segment(self, index: int) -> None:
        """Start segment ``index``: its own H.264 stream, so that it decodes on its own."""
        path = self._segments / f"seg{index:06d}.part.mp4"
        self._seg = c = av.open(str(path), "w", format="mp4", options=self._mp4_options())
        self._seg_index = index
        try:
            s = c.add_stream("libx264", rate=self.fps)
        except (av.error.FFmpegError, ValueError) as e:
            raise VsrkitError(f"{self.path}: H.264 encoder unavailable: {one_line(e)}") from None
        cc = s.codec_context
        cc.width, cc.height = self.enc_width, self.enc_height
        try:
            cc.pix_fmt = self._pix_fmt
        except (ValueError, av.error.FFmpegError) as e:
            raise VsrkitError(f"{self.path}: pixel format {self._pix_fmt!r}: {one_line(e)}") from None
        cc.time_base = self.time_base
        s.time_base = self.time_base
        cc.framerate = self.fps
        cc.options = {"crf": str(self._crf), "preset": str(self._preset)}
        if self._yuv:
            cc.colorspace = 1
            cc.color_primaries = 1
            cc.color_trc = 1
            cc.color_range = 2 if self._pix_fmt.startswith("yuvj") else 1
        self._seg_stream = s

    def _close_segment(self) -> None:
        """Flush and finish the open segment, then give it its final name (complete segments only)."""
        c, s = self._seg, self._seg_stream
        try:
            for p in s.encode(None):
                c.mux(p)
            c.close()
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise _write_error(self.path, f"writing segment {self._seg_index}", e) from None
        self._seg = None
        part = self._segments / f"seg{self._seg_index:06d}.part.mp4"
        os.replace(part, self._segments / f"seg{self._seg_index:06d}.mp4")

    def _setup_copies(self, final: Path) -> None:
        """Add an output stream for each audio/subtitle stream of the source that is carried (copy or AAC)."""
        self._copy = StreamCopy(self._container, self.source.path, final, self._carry)

    def _finish_copies(self) -> None:
        """Copy the rest of the audio/subtitles: all of it, or up to the end of the video when fewer
        frames were written than the source declares (a partial run, e.g. the first N frames)."""
        if self._copy is None or not self._copy.active:
            return
        declared = self.source.num_frames
        if declared and self.frames_written < declared and self._last_pts is not None:
            step = max(1, round(1 / (self.fps * self.time_base)))
            end = float((self._last_pts + step) * self.time_base)
            if self._copy.cut(end):
                log.info("%s: %d of %d frames written: audio/subtitles cut at %.3f s",
                         self.path, self.frames_written, declared, end)
        else:
            self._copy.pump(None)

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
        try:
            if self.kind == "frames":
                self._write_png(a)
            elif self.kind == "image":
                if self.frames_written:
                    raise VsrkitError(f"{self.path}: a single image output holds one frame")
                self._image = a
            else:
                self._write_video(a, pts)
        except VsrkitError:
            raise
        except (OSError, av.error.FFmpegError) as e:
            raise _write_error(self.path, f"writing frame {self.frames_written}", e) from None
        self.frames_written += 1

    def _write_png(self, a: np.ndarray) -> None:
        write_frame(self._frames_dir, self.frames_written, self._images.encode(a, "png"))

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
                                           format=ARRAY_FORMATS[(c, depth)])
        if self._yuv:
            frame = frame.reformat(format=self._pix_fmt, src_colorspace=1, dst_colorspace=1,
                                   src_color_range=2, dst_color_range=2 if self._pix_fmt.startswith("yuvj") else 1)
        elif frame.format.name != self._pix_fmt:
            frame = frame.reformat(format=self._pix_fmt)
        frame.pts = pts
        frame.time_base = self.time_base
        if self._seg is None:
            self._open_segment(self.frames_written // self.segment)
        try:
            for p in self._seg_stream.encode(frame):
                self._seg.mux(p)
        except (av.error.FFmpegError, ValueError) as e:
            if isinstance(e, OSError) and e.errno is not None:
                raise
            raise VsrkitError(f"{self.path}: encoding frame {self.frames_written} failed: {one_line(e)}") from None
        if (self.frames_written + 1) % self.segment == 0:
            self._close_segment()

    # finishing
    def _join(self, copies: bool) -> Path:
        """The segments' packets, and with ``copies`` the source's audio/subtitles, in the final container (no
        re-encoding)."""
        suffix = self.path.suffix.lower()
        fmt = WRITE_FORMATS[suffix]
        out = self.workdir / ("joined" + suffix)
        segs = sorted(q for q in self._segments.iterdir() if _SEGMENT_NAME.match(q.name))
        opts = self._mp4_options() if fmt in ("mp4", "mov") else {}
        self._container = av.open(str(out), "w", format=fmt, options=opts)
        if self._tag is not None:
            self._container.metadata["comment"] = f"{_TAG} {self._tag}, {self.frames_written} frames"
        last_dts = None
        with open_input(segs[0]) as first:
            self._vstream = self._container.add_stream_from_template(first.streams.video[0])
        # the frame rate a player reads (Matroska: its default duration): the source's, not the time base
        self._vstream.codec_context.framerate = self.fps
        self._copy = None
        if copies:
            self._setup_copies(self.path)
        for seg in segs:
            with open_input(seg) as c:
                s = c.streams.video[0]
                for p in c.demux(s):
                    if p.size == 0:
                        continue
                    # each segment's encoder starts its decode times a few frames early: keep them increasing
                    if p.dts is not None and last_dts is not None and p.dts <= last_dts:
                        p.dts = last_dts + 1
                    last_dts = p.dts
                    p.stream = self._vstream
                    self._mux_video(p)
        self._finish_copies()
        self._container.close()
        self._container = None
        return out

    def _mux_video(self, p: av.Packet) -> None:
        if self._copy is not None and p.dts is not None:
            self._copy.pump(float(p.dts * p.time_base))
        self._container.mux(p)

    def _drop_join(self) -> None:
        """Forget a join that failed: its container, its source and its partial file."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - a broken container is being thrown away
                pass
            self._container = None
        self._close_src()
        self._copy = None
        try:
            (self.workdir / ("joined" + self.path.suffix.lower())).unlink()
        except OSError:
            pass

    def _finish_video(self) -> Path:
        """Join the segments with the audio/subtitles; when those fail, join the video alone (a warning)."""
        if self._seg is not None:
            self._close_segment()
        if self._carry:
            try:
                return self._join(copies=True)
            except Exception as e:  # noqa: BLE001 - whatever the audio does, the upscaled video is kept
                self._drop_join()
                log.warning("%s: copying the audio/subtitles of %s failed (%s): the video is written without them",
                            self.path, self.source.path, one_line(e))
        return self._join(copies=False)

    def close(self) -> None:
        """Finish the output (join the video's segments, copy the audio) and rename it into place.

        Every frame is in the work folder by now: a failure from here on raises :class:`WorkKeptError` and keeps
        the work folder (the complete segments or frames), so that a resumed run only finishes the job."""
        if self._closed:
            return
        if self.frames_written == 0:
            self.abort()
            raise VsrkitError(f"{self.path}: no frames were written")
        what = {"video": "finishing the video", "image": "writing the image"}.get(self.kind, "finishing the frames")
        try:
            if self.kind == "video":
                done = self._finish_video()
            elif self.kind == "image":
                done = self.workdir / ("image" + self.path.suffix.lower())
                done.write_bytes(self._images.encode(self._image, IMAGE_CODECS[self.path.suffix.lower()]))
            else:
                done = self._frames_dir
            self._close_src()
            final = self.path
            if final.exists():  # overwrite was checked in __init__
                if final.is_dir():
                    shutil.rmtree(final)
                else:
                    final.unlink()
            os.replace(done, final)
        except Exception as e:  # noqa: BLE001 - any failure: the frames made are kept if a resumed run can use them
            keep = self._worth_keeping()
            self.abort(keep=keep)
            error = e if isinstance(e, VsrkitError) else _write_error(self.path, what, e)
            if keep:
                raise WorkKeptError(f"{error}; the upscaled frames are kept in {self.workdir}") from None
            if error is e:
                raise
            raise error from None
        except BaseException:
            self.abort()
            raise
        self._closed = True
        if self._job is not None:
            self._job.finish()
        elif self.kind != "frames":
            shutil.rmtree(self.workdir / "segments", ignore_errors=True)

    def _worth_keeping(self) -> bool:
        """Whether the work folder holds what a resumed run keeps: complete segments, or frames."""
        try:
            if self.kind == "video":
                return any(_SEGMENT_NAME.match(q.name) for q in self._segments.iterdir())
            return self.kind == "frames" and any(PNG_NAME.match(q.name) for q in self._frames_dir.iterdir())
        except OSError:
            return False

    def _close_src(self) -> None:
        if self._copy is not None:
            self._copy.close()

    def abort(self, keep: bool = False) -> None:
        """Stop and delete what was written (``keep``: leave the work folder for a resumed run); the final
        path is left untouched."""
        self._closed = True
        for c in (self._container, self._seg):
            if c is not None:
                try:
                    c.close()
                except Exception:
                    pass
        self._container = self._seg = None
        self._close_src()
        if self._job is not None:
            self._job.abort(keep=keep)
        elif not keep:
            for sub in ("frames", "segments"):
                shutil.rmtree(self.workdir / sub, ignore_errors=True)
            for q in ("joined" + self.path.suffix.lower(), "image" + self.path.suffix.lower()):
                try:
                    (self.workdir / q).unlink()
                except OSError:
                    pass

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()
