"""vsrkit.io.decode: one decode loop for every read, first pass or re-read after a seek, and it reports damage."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np

from vsrkit.io import VideoReader


def _damaged_mp4(path: Path, frames: int = 30, damaged: tuple[int, ...] = (26, 27)) -> Path:
    """An H.264 mp4 with a keyframe every 5 frames whose packets ``damaged`` (decode order) are overwritten."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as o:
        s = o.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.options = {"preset": "ultrafast", "g": "5"}
        for i in range(frames):
            fr = av.VideoFrame.from_ndarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), format="rgb24")
            fr.pts = i
            for p in s.encode(fr):
                o.mux(p)
        for p in s.encode(None):
            o.mux(p)
    with av.open(str(path)) as c:
        where = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    for k in damaged:
        pos, size = where[k]
        data[pos:pos + size] = b"\xff" * size
    path.write_bytes(bytes(data))
    return path


def test_a_reread_after_a_seek_reports_damage_as_the_first_pass_does(tmp_path, caplog):
    bad = _damaged_mp4(tmp_path / "bad.mp4")
    with VideoReader(bad) as r, caplog.at_level(logging.WARNING, logger="vsrkit.io"):
        first = list(r)
        assert "bad.mp4: 2 damaged video packet(s)" in caplog.text
        caplog.clear()
        again = list(r.frames_from(22))  # seeks to the keyframe at 20 (the first pass learnt where it is)
    assert [f.index for f in again] == list(range(20, len(first)))
    assert all(np.array_equal(a.image, first[a.index].image) and a.pts == first[a.index].pts for a in again)
    assert "bad.mp4: 2 damaged video packet(s) could not be decoded and were skipped" in caplog.text
