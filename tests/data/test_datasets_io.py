"""Datasets read frames through ``vsrkit.io``: training sees the pictures ``vsrkit upscale`` reads."""

from __future__ import annotations

import numpy as np

from golden import data_path
from media import write_png
from vsrkit.data.datasets import VideoFrames, read_image
from vsrkit.io import VideoReader
from vsrkit.io.pixfmt import to_rgb8
from vsrkit.io.probe import count_frames


def test_video_frames_are_the_readers_frames():
    """bigbuckbunny.mp4 is 720p without colour tags: the reader (and so a dataset) takes it as BT.709, as players
    do; a dataset that decoded it itself with FFmpeg's default matrix differed by 2.6 levels on average."""
    clip = data_path("clips", "bigbuckbunny.mp4")
    frames = VideoFrames(clip)
    assert len(frames) == count_frames(clip) == 132
    with VideoReader(clip) as r:
        want = [to_rgb8(f.image) for f, _ in zip(r, range(3))]
    got = frames.read(0, 3)
    assert got.shape == (3, 720, 1280, 3) and got.dtype == np.uint8
    assert np.array_equal(got, np.stack(want))


def test_image_files_are_read_as_the_readers_folders(tmp_path):
    rng = np.random.default_rng(0)
    grey16 = rng.integers(0, 65536, (10, 12, 1), dtype=np.uint16)
    write_png(tmp_path / "0.png", grey16)
    with VideoReader(tmp_path) as r:
        want = to_rgb8(next(iter(r)).image)
    got = read_image(tmp_path / "0.png")
    assert got.shape == (10, 12, 3) and got.dtype == np.uint8
    assert np.array_equal(got, want)
    assert np.array_equal(got[..., 0], got[..., 1]) and np.abs(got[..., 0].astype(int) - grey16[..., 0] / 257).max() < 2  # swscale dithers
