"""``vsrkit degrade`` on frame folders and videos: golden-exact PNG output, lossless-YUV video, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from golden import data_path, load_case

from vsrkit.cli.main import main
from vsrkit.data.degrade import degrade as degrade_image
from vsrkit.io import VideoReader, VideoWriter


def run(*args: str):
    return CliRunner().invoke(main, ["degrade", *map(str, args)])


def write_frames(folder: Path, frames) -> Path:
    with VideoWriter(folder, width=frames[0].shape[1], height=frames[0].shape[0]) as w:
        for f in frames:
            w.write(f)
    return folder


def read_frames(path: Path) -> np.ndarray:
    with VideoReader(path) as r:
        return np.stack([f.image for f in r])


@pytest.mark.parametrize("mode", ["bi", "bd"])
def test_frame_folder_to_png_matches_golden(tmp_path, mode):
    _, io, _ = load_case("degrade_bi_bd")
    src = write_frames(tmp_path / "hr", list(io["carphone_hr"].numpy()))
    res = run(src, "-o", tmp_path / "lr", "--mode", mode, "--scale", 4, "-q")
    assert res.exit_code == 0, res.output
    out = read_frames(tmp_path / "lr")
    want, tie = io[f"carphone_{mode}_x4"].numpy(), io[f"carphone_{mode}_x4_neartie"].numpy().astype(bool)
    diff = out.astype(np.int16) - want
    assert out.shape == want.shape and not diff[~tie].any() and np.abs(diff).max() <= 1
    assert sorted(p.name for p in (tmp_path / "lr").iterdir()) == ["00000000.png", "00000001.png", "00000002.png"]


def test_video_to_lossless_yuv_video(tmp_path):
    """crf 0 yuv444p is lossless in YUV; the 8-bit RGB <-> YUV round trip moves values by at most 2 levels."""
    clip = data_path("clips", "carphone_pristine.mp4")
    res = run(clip, "-o", tmp_path / "lr.mp4", "--mode", "bi", "--max-frames", 3, "-q")
    assert res.exit_code == 0, res.output
    out, hr = read_frames(tmp_path / "lr.mp4"), read_frames(clip)[:3]
    assert out.shape == (3, 36, 44, 3)
    diff = np.abs(out.astype(np.int16) - degrade_image(hr, "bi", 4))
    assert diff.max() <= 2 and diff.mean() < 0.6


@pytest.mark.parametrize("case, needle", [
    ("missing", "no such file"),
    ("mode", "unknown --mode"),
    ("bd_size", "not divisible by 4"),
    ("bd_scale", "--scale 4 only"),
    ("exists", "already exists"),
    ("onto_input", "output is the input"),
    ("later_frame", "differs from the first image"),
])
def test_bad_input_is_one_line(tmp_path, case, needle):
    frames = write_frames(tmp_path / "odd", [np.zeros((30, 30, 3), np.uint8)] * 2)
    before = sorted(p.name for p in frames.iterdir())
    out = tmp_path / "out"
    if case == "exists":
        out.mkdir()
        (out / "keep.txt").write_text("x")
    if case == "later_frame":  # a folder whose first frame fits BD but whose second does not (the reader refuses it)
        (frames / "00000000.png").unlink()
        write_frames(tmp_path / "even", [np.zeros((32, 32, 3), np.uint8)])
        (tmp_path / "even" / "00000000.png").rename(frames / "00000000.png")
        (tmp_path / "even").rmdir()
        before = sorted(p.name for p in frames.iterdir())
    args = {
        "missing": (tmp_path / "nope.mp4", "-o", out),
        "mode": (frames, "-o", out, "--mode", "bicubic"),
        "bd_size": (frames, "-o", out, "--mode", "bd"),
        "bd_scale": (frames, "-o", out, "--mode", "bd", "--scale", 2),
        "exists": (frames, "-o", out),
        "onto_input": (frames, "-o", frames, "--overwrite"),
        "later_frame": (frames, "-o", out, "--mode", "bd"),
    }[case]
    res = run(*args, "-q")
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vsrkit: error:") and needle in lines[0], res.output
    assert sorted(p.name for p in frames.iterdir()) == before  # the input is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd"] + (["out"] if case == "exists" else [])
    if case == "exists":
        assert [p.name for p in out.iterdir()] == ["keep.txt"]
