"""Decoding with PyAV: the one loop that turns a video's packets into pictures, and one image file into a picture.

Damaged input: packets that cannot be decoded are skipped, and a demuxer error (a truncated or corrupt file) ends
the video after the decoder has given the pictures it still holds; both are reported with a ``logging`` warning
naming the file and the frame index. Read from its start, a file with no decodable picture at all is a
:class:`VsrkitError`, and one that gives clearly fewer pictures than its container declares is reported too.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterator

import av

from vsrkit.errors import VsrkitError
from vsrkit.io.files import one_line, open_input

__all__ = ["decode_video", "decode_image"]

log = logging.getLogger(__name__)


def decode_video(container: av.container.InputContainer, path: str | os.PathLike, start: int = 0,
                 declared: int | None = None) -> Iterator[av.VideoFrame]:
    """The pictures of ``container``'s first video stream from where it stands, in display order, damage skipped and
    reported, the decoder fully flushed. ``start``: the index of the first picture (0: the file's start; after a seek,
    the frame sought), for messages; ``declared``: the frame count the container declares (checked from the start)."""
    s = container.streams.video[0]
    if not s.codec_context.is_open:
        s.thread_type = "AUTO"
    n_out = 0
    skipped = 0
    ended_early: str | None = None
    packets = container.demux(s)
    while True:
        try:
            packet = next(packets)
        except StopIteration:  # the demuxer's last, empty packet has flushed the decoder
            break
        except (av.error.FFmpegError, OSError) as e:  # demuxer hit damage / truncation
            ended_early = one_line(e)
            break
        try:
            frames = packet.decode()
        except (av.error.FFmpegError, ValueError) as e:
            skipped += 1
            log.debug("%s: packet skipped: %s", path, e)
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
    if n_out == 0 and start == 0:
        raise VsrkitError(f"{path}: no decodable video frame" + (f" ({ended_early})" if ended_early else ""))
    if ended_early is not None:
        log.warning("%s: file is damaged or truncated after frame %d (%s); kept the %d frames before",
                    path, start + n_out - 1, ended_early, start + n_out)
    if skipped:
        log.warning("%s: %d damaged video packet(s) could not be decoded and were skipped", path, skipped)
    if start == 0 and declared and not ended_early and n_out < declared * 0.98 - 1:
        log.warning("%s: decoded %d frames, the container declares %d (damaged or truncated file?)",
                    path, n_out, declared)


def decode_image(path: Path, index: int | None = None) -> av.VideoFrame:
    """The picture of one image file (``index``: its frame in a folder, for messages)."""
    where = "" if index is None else f" (frame {index})"
    try:
        with open_input(path) as c:
            if not c.streams.video:
                raise VsrkitError(f"{path}: not an image{where}")
            for frame in c.decode(c.streams.video[0]):
                return frame
    except VsrkitError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise VsrkitError(f"{path}: cannot read image{where}: {one_line(e)}") from None
    raise VsrkitError(f"{path}: image holds no picture{where}")
