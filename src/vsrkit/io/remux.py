"""The audio and subtitle streams of a source, carried into a video output (``VideoWriter``).

What happens to each audio or subtitle stream is decided before any work starts (:func:`plan_copies`, which says
what is not copied as it is, once): it is copied packet by packet when the output container can hold its codec as
it is (checked by writing a header to memory); an audio codec it cannot hold is re-encoded to AAC; a subtitle codec
it cannot hold, and a stream whose codec FFmpeg does not know (a damaged file), are left out. Packets are
interleaved with the video by time (:meth:`StreamCopy.pump`); a partial run (fewer frames than the source) cuts
them at the end of its video.
"""

from __future__ import annotations

import io
import logging
import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from vsrkit.io.files import one_line, open_input
from vsrkit.io.probe import VideoInfo

__all__ = ["Carry", "StreamCopy", "plan_copies"]

log = logging.getLogger(__name__)

# a default channel order AAC accepts, by number of channels
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def remux_ok(fmt: str, ins: av.stream.Stream) -> bool:
    """Whether the muxer ``fmt`` accepts this stream copied as is (a header written to memory)."""
    try:
        with av.open(io.BytesIO(), "w", format=fmt) as probe_out:
            probe_out.add_stream_from_template(ins)
            probe_out.start_encoding()
        return True
    except (av.error.FFmpegError, ValueError, OSError):
        return False


@dataclass(frozen=True)
class Carry:
    """What happens to one audio/subtitle stream of the source: ``"copy"`` (as it is) or ``"aac"`` (re-encoded)."""

    index: int
    action: str


def plan_copies(source: VideoInfo, fmt: str, final: Path) -> list[Carry]:
    """The source's audio/subtitle streams that the muxer ``fmt`` will carry, and how; a warning for each one that
    is re-encoded or left out. Run before any work, so that the user knows at once."""
    wanted = [s for s in source.streams if s.type in ("audio", "subtitle")]
    plan: list[Carry] = []
    for s in wanted:
        if s.codec is None:
            log.warning("%s: %s stream %d of %s has a codec FFmpeg does not know (a damaged or unsupported "
                        "stream): it is left out", final, s.type, s.index, source.path)
    wanted = [s for s in wanted if s.codec is not None]
    if not wanted:
        return plan
    try:
        src = open_input(source.path)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        log.warning("%s: cannot reopen %s to copy its audio: %s", final, source.path, one_line(e))
        return plan
    with src:
        by_index = {ins.index: ins for ins in src.streams}
        for s in wanted:
            ins = by_index.get(s.index)
            if ins is None or ins.codec_context is None or ins.type != s.type:
                log.warning("%s: %s stream %d of %s cannot be read again: it is left out", final, s.type, s.index,
                            source.path)
            elif remux_ok(fmt, ins):
                plan.append(Carry(s.index, "copy"))
            elif s.type == "audio" and ins.codec_context.type == "audio" and ins.codec_context.sample_rate:
                log.warning("%s: %s cannot hold %s audio (stream %d): re-encoding it to AAC",
                            final, final.suffix, s.codec, s.index)
                plan.append(Carry(s.index, "aac"))
            else:
                log.warning("%s: %s cannot hold %s %s (stream %d): it is left out", final, final.suffix, s.codec,
                            "subtitles" if s.type == "subtitle" else s.type, s.index)
    return plan


class StreamCopy:
    """The audio/subtitle streams of ``source`` that ``plan`` names, added to ``container`` (the output being
    written to ``final``).

    ``streams`` maps a source stream index to (output stream, resampler: None when copied as is); it is empty when
    the plan is, or the source cannot be reopened (a warning says so). ``packets`` is the source's packets of those
    streams, in file order.
    """

    def __init__(self, container: av.container.OutputContainer, source: str | os.PathLike, final: Path,
                 plan: Sequence[Carry]) -> None:
        self.container = container
        self.final = final
        self.streams: dict[int, tuple[av.stream.Stream, av.AudioResampler | None]] = {}
        self._src: av.container.InputContainer | None = None
        if not plan:
            return
        try:
            self._src = open_input(source)
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
            log.warning("%s: cannot reopen %s to copy its audio: %s", final, source, one_line(e))
            return
        for carry in plan:
            ins = self._src.streams[carry.index]
            if carry.action == "copy":
                self.streams[ins.index] = (container.add_stream_from_template(ins), None)
                continue
            out = container.add_stream("aac", rate=ins.codec_context.sample_rate)
            n_ch = ins.codec_context.channels or 2
            layout = DEFAULT_LAYOUTS.get(n_ch) or ins.codec_context.layout.name
            out.codec_context.layout = layout
            out.codec_context.bit_rate = 192_000
            out.time_base = Fraction(1, ins.codec_context.sample_rate)
            res = av.AudioResampler(format=out.codec_context.codec.audio_formats[0].name,
                                    layout=layout, rate=ins.codec_context.sample_rate,
                                    frame_size=1024)
            self.streams[ins.index] = (out, res)
        self._pending: deque[av.Packet] = deque()
        self._flushed: set[int] = set()
        self.packets: Iterator[av.Packet] = self._src.demux(*[self._src.streams[i] for i in self.streams])
        self._done = False

    @property
    def active(self) -> bool:
        """Whether there is anything to carry (and the source is open)."""
        return self._src is not None

    def pump(self, until: float | None) -> None:
        """Mux source audio/subtitle packets up to ``until`` seconds (all when None)."""
        if self._src is None:
            return
        while True:
            if not self._pending:
                if self._done:
                    return
                try:
                    self._pending.append(next(self.packets))
                except StopIteration:
                    self._done = True
                    continue
                except (av.error.FFmpegError, OSError) as e:
                    log.warning("%s: copying audio stopped early: %s", self.final, one_line(e))
                    self._done = True
                    continue
            pk = self._pending[0]
            ts = pk.dts if pk.dts is not None else pk.pts
            if until is not None and ts is not None and float(ts * pk.time_base) > until:
                return
            self._pending.popleft()
            self._copy_packet(pk)

    def cut(self, end: float) -> bool:
        """Mux the packets up to ``end`` seconds and end the re-encoded streams there; True when the source had more."""
        if self._src is None:
            return False
        self.pump(end)
        more = bool(self._pending) or not self._done
        for index in self.streams:
            self._flush_transcoder(index)
        return more

    def _copy_packet(self, pk: av.Packet) -> None:
        out, res = self.streams[pk.stream.index]
        if res is None:
            if pk.size == 0 or (pk.dts is None and pk.pts is None):
                return
            pk.stream = out
            self.container.mux(pk)
            return
        try:
            frames = pk.decode()
        except (av.error.FFmpegError, ValueError):
            return
        for f in frames:
            for rf in res.resample(f):
                for p in out.encode(rf):
                    self.container.mux(p)
        if pk.size == 0:  # only the demuxer's empty flush packet ends the stream (a missing DTS does not)
            self._flush_transcoder(pk.stream.index)

    def _flush_transcoder(self, index: int) -> None:
        out, res = self.streams[index]
        if res is None or index in self._flushed:
            return
        self._flushed.add(index)
        for rf in res.resample(None):
            for p in out.encode(rf):
                self.container.mux(p)
        for p in out.encode(None):
            self.container.mux(p)

    def close(self) -> None:
        """Release the source."""
        if self._src is not None:
            try:
                self._src.close()
            except Exception:
                pass
            self._src = None
