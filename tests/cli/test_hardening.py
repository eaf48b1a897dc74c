"""The failures of issue 12, each kept fixed: corrupt codec tags, long names, read-only folders, rotated phone
videos, output kinds, SIGTERM and leftovers, clearer messages."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from media import assert_one_line_error, child_env, cli_command, decoded, make_clip, run, run_child, write_png
from vsrkit.io import VideoReader, probe

FAST = ("--model", "esr-tr-x2", "-q")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# 1 ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix,codec,tag,bad", [(".mp4", "libx264", b"avc1", b"zzzz"), (".mov", "libx264", b"avc1", b"zzzz"),
                                                  (".webm", "libvpx-vp9", b"V_VP9", b"V_ZZ9")])
def test_corrupt_codec_tag_is_a_one_line_error(tmp_path, suffix, codec, tag, bad):
    good = make_clip(tmp_path / f"good{suffix}", codec=codec)
    data = good.read_bytes()
    assert tag in data
    broken = tmp_path / f"broken{suffix}"
    broken.write_bytes(data.replace(tag, bad))
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run("upscale", broken, "-o", out, *FAST), "broken", "codec")
    assert not out.exists() and leftovers(tmp_path) == []


# 2 ------------------------------------------------------------------------------------------------------------
def test_long_but_legal_output_name(tmp_path):
    src = make_clip(tmp_path / "in.mp4", n=3)
    out = tmp_path / ("a" * 245 + ".mp4")
    code, text = run("upscale", src, "-o", out, *FAST)
    assert code == 0, text
    assert len(decoded(out)[0]) == 3 and leftovers(tmp_path) == []
    too_long = tmp_path / ("b" * 300 + ".mp4")
    assert_one_line_error(*run("upscale", src, "-o", too_long, *FAST), "too long")


# 3 ------------------------------------------------------------------------------------------------------------
def test_unwritable_output_is_refused_before_any_work(tmp_path, monkeypatch):
    src = make_clip(tmp_path / "in.mp4", n=3)
    blocker = tmp_path / "plain-file"
    blocker.write_text("a file, not a folder")
    import vsrkit.pipeline as pipeline

    def no_load(*a, **k):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(pipeline, "load_model", no_load)
    for out in (blocker / "o.mp4", blocker / "sub" / "frames/"):
        assert_one_line_error(*run("upscale", src, "-o", out, *FAST), "plain-file")
    assert blocker.read_text() == "a file, not a folder"


def _unprivileged() -> list[str]:
    """A command prefix that makes folder permissions apply (root ignores them): drop the override capabilities."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: folder permissions cannot be enforced")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_read_only_folder_as_a_user(tmp_path):
    """In a read-only folder (a real permission error, as an unprivileged user): one line, before any frame."""
    base = Path(tempfile.mkdtemp(prefix="vsrkit-ro-"))
    try:
        os.chmod(base, 0o755)
        src = make_clip(base / "in.mp4", n=40)
        os.chmod(src, 0o644)
        ro = base / "ro"
        ro.mkdir()
        os.chmod(ro, 0o555)
        prefix = _unprivileged()
        for out in (ro / "o.mp4", ro / "missing" / "o.mp4", str(ro / "frames") + "/"):
            r = subprocess.run(prefix + cli_command() + ["upscale", str(src), "-o", str(out), *FAST], capture_output=True,
                               text=True, timeout=120, env=child_env(), cwd=base)
            assert_one_line_error(r.returncode, r.stderr, "cannot write", "ro")
        assert os.listdir(ro) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


# 4 ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rotation,hflip", [(90, False), (270, False), (180, False), (90, True)])
def test_phone_rotation_is_applied_to_the_frames(tmp_path, rotation, hflip):
    """Frames are turned upright as players show them (the output carries no display matrix)."""
    src = make_clip(tmp_path / "phone.mp4", n=3, w=32, h=16, rotation=rotation, hflip=hflip)
    plain = make_clip(tmp_path / "plain.mp4", n=3, w=32, h=16)
    info = probe(src)
    upright = (32, 16) if rotation % 180 == 0 else (16, 32)  # (width, height) as shown
    assert (info.width, info.height) == upright
    with VideoReader(plain) as r:
        raw = [f.image for f in r]
    with VideoReader(src) as r:
        shown = [f.image for f in r]
    k = rotation // 90  # counter-clockwise quarter turns
    want = [np.rot90(a, k) for a in raw]
    if hflip:
        want = [a[:, ::-1] for a in want]
    for a, b in zip(shown, want):
        assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 1
    out = tmp_path / "o.mp4"
    code, text = run("upscale", src, "-o", out, *FAST)
    assert code == 0, text
    frames, _ = decoded(out)
    assert frames[0].shape[:2] == (upright[1] * 2, upright[0] * 2)
    with av.open(str(out)) as c:
        assert next(c.decode(video=0)).rotation == 0


# 5 ------------------------------------------------------------------------------------------------------------
def test_output_kinds(tmp_path):
    src = make_clip(tmp_path / "in.mp4", n=2)
    for name in ("out.xyz", "out.jpg", "out.avi"):
        line = assert_one_line_error(*run("upscale", src, "-o", tmp_path / name, *FAST), name)
        assert ".mp4" in line and ".mkv" in line and "folder" in line
        assert not (tmp_path / name).exists()
    # a name without an extension that does not exist yet, or a trailing slash: a folder of PNG frames
    code, text = run("upscale", src, "-o", tmp_path / "noext", *FAST)
    assert code == 0 and sorted(os.listdir(tmp_path / "noext")) == ["00000000.png", "00000001.png"], text
    code, text = run("upscale", src, "-o", str(tmp_path / "slash") + "/", *FAST)
    assert code == 0 and len(os.listdir(tmp_path / "slash")) == 2, text
    # an existing file without an extension is not silently turned into a folder
    (tmp_path / "afile").write_text("x")
    assert_one_line_error(*run("upscale", src, "-o", tmp_path / "afile", *FAST, "--overwrite"), "afile")
    # one image in, one image out
    single = write_png(tmp_path / "single.png", np.full((10, 12, 3), 90, np.uint8))
    code, text = run("upscale", single, "-o", tmp_path / "out.png", *FAST)
    assert code == 0, text
    assert (tmp_path / "out.png").is_file()
    with av.open(str(tmp_path / "out.png")) as c:
        img = next(c.decode(video=0))
    assert (img.width, img.height) == (24, 20)
    code, text = run("upscale", single, "-o", tmp_path / "out.jpg", *FAST)
    assert code == 0 and (tmp_path / "out.jpg").is_file(), text
    assert_one_line_error(*run("upscale", single, "-o", tmp_path / "out.mp4x", *FAST), ".png")
    assert leftovers(tmp_path) == []


# 6 ------------------------------------------------------------------------------------------------------------
def _slow_job(tmp_path: Path, src: Path, out: Path, extra=()) -> subprocess.Popen:
    """A two-pass job slow enough to be caught in the middle (BasicVSR, random weights, tiny frames)."""
    return subprocess.Popen(cli_command() + ["upscale", str(src), "-o", str(out), "--model", "basicvsr", "--chunk", "2",
                                             "--device", "cpu", "-q", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(TMPDIR=str(tmp_path / "tmp")))


def _wait_for(cond, timeout=90.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _job_started(tmp_path: Path) -> bool:
    here = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    temp = list((tmp_path / "tmp").iterdir())
    return bool(here or temp) and any(p.is_dir() and any(p.rglob("*.pt")) for p in here + temp)


@pytest.mark.slow
def test_sigterm_cleans_up_like_sigint(tmp_path):
    (tmp_path / "tmp").mkdir()
    src = make_clip(tmp_path / "in.mp4", n=60, w=64, h=48)
    out = tmp_path / "o.mp4"
    p = _slow_job(tmp_path, src, out)
    _wait_for(lambda: _job_started(tmp_path))
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "vsrkit: terminated; no output was left behind", err
    assert not out.exists() and leftovers(tmp_path) == [] and list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.slow
def test_leftovers_of_a_killed_run_are_removed_by_the_next_run(tmp_path):
    (tmp_path / "tmp").mkdir()
    src = make_clip(tmp_path / "in.mp4", n=60, w=64, h=48)
    out = tmp_path / "o.mp4"
    p = _slow_job(tmp_path, src, out)
    _wait_for(lambda: _job_started(tmp_path))
    p.kill()
    p.wait()
    left = leftovers(tmp_path) + os.listdir(tmp_path / "tmp")
    assert left, "a killed run leaves its temporary files (which the next run must remove)"
    # a leftover of a process that is still alive (this test holds its lock) must stay
    from vsrkit.jobs import JOB_PREFIX

    alive = tmp_path / "tmp" / f"{JOB_PREFIX}alive"
    alive.mkdir()
    lock = open(alive / "lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    r = run_child("upscale", src, "-o", out, "--model", "esr-tr-x2", "--max-frames", "2", "-q",
                  env=child_env(TMPDIR=str(tmp_path / "tmp")))
    assert r.returncode == 0, r.stderr
    assert "removed" in r.stderr  # said, not silent
    assert leftovers(tmp_path) == [] and os.listdir(tmp_path / "tmp") == [alive.name]
    lock.close()


# 7 ------------------------------------------------------------------------------------------------------------
def test_clearer_checkpoint_messages(tmp_path):
    src = make_clip(tmp_path / "in.mp4", n=2)
    out = tmp_path / "o.mp4"
    folder = tmp_path / "weights.pth"
    folder.mkdir()
    line = assert_one_line_error(*run("upscale", src, "-o", out, "-w", folder, "-q"), "weights.pth", "folder")
    assert "not found" not in line

    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(Evil()))
    torch.save({"x": torch.zeros(1)}, tmp_path / "ok.pth")
    line = assert_one_line_error(*run("upscale", src, "-o", out, "-w", evil, "-q"), "evil.pth", "unsafe")
    assert "weights_only" not in line and "False" not in line
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes((20).to_bytes(8, "little") + b"\xff\xfe\x80abc" + b"x" * 100)
    line = assert_one_line_error(*run("upscale", src, "-o", out, "-w", junk, "-q"), "junk.safetensors")
    assert "utf" not in line.lower()


def test_undecodable_metadata_does_not_stop_a_readable_video(tmp_path):
    """A byte flipped in a metadata string used to print a raw ``'utf-8' codec can't decode``."""
    good = make_clip(tmp_path / "good.mp4", n=3)
    with av.open(str(good)) as c, av.open(str(tmp_path / "tagged.mp4"), "w") as o:
        s = o.add_stream_from_template(c.streams.video[0])
        o.metadata["title"] = "TITLEMARK"
        for p in c.demux(c.streams.video[0]):
            if p.size:
                p.stream = s
                o.mux(p)
    data = (tmp_path / "tagged.mp4").read_bytes()
    assert b"TITLEMARK" in data
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(data.replace(b"TITLEMARK", b"TIT\xf1\xffMARK"))
    code, text = run("upscale", bad, "-o", tmp_path / "o.mp4", *FAST)
    assert code == 0 and "utf-8" not in text, text
    assert len(decoded(tmp_path / "o.mp4")[0]) == 3


def test_broken_png_is_called_an_image(tmp_path):
    ok = write_png(tmp_path / "ok.png", np.zeros((16, 16, 3), np.uint8))
    broken = tmp_path / "broken.png"
    broken.write_bytes(ok.read_bytes()[:40])
    line = assert_one_line_error(*run("upscale", broken, "-o", tmp_path / "o.png", *FAST), "broken.png", "image")
    assert "video" not in line


@pytest.mark.parametrize("opt,value,needle", [("--crf", "99", "--crf"), ("--crf", "-1", "--crf"),
                                              ("--max-frames", "-3", "--max-frames"), ("--max-frames", "0", "--max-frames")])
def test_out_of_range_options_are_refused(tmp_path, opt, value, needle):
    src = make_clip(tmp_path / "in.mp4", n=2)
    out = tmp_path / "o.mp4"
    assert_one_line_error(*run("upscale", src, "-o", out, *FAST, opt, value), needle)
    assert not out.exists()
