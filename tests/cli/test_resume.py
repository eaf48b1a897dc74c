"""``vsrkit upscale --resume`` after a real SIGKILL of a child process: the result equals an uninterrupted run.

- PNG frames: identical files; frames already on disk are verified (a damaged one is redone);
- video: identical decoded frames, frame count and timestamps, audio kept (complete segments are reused);
- recurrent models (RLSP) restart from their state saved with the last complete segment;
- two-pass models (BasicVSR) reuse pass 1's saved backward states and restart pass 2 from the saved
  forward state.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from golden import data_path
from media import child_env, cli_command, decoded, make_clip, run
from vsrkit.jobs import job_dir


@pytest.fixture
def esr(tmp_path) -> list[str]:
    """Options for a fast model with fixed weights (named models without released weights are random)."""
    import vsrkit

    torch.manual_seed(0)
    path = tmp_path / "esr.pth"
    torch.save(vsrkit.load_model("esr-tr-x2").state_dict(), path)
    return ["--model", "esr-tr-x2", "-w", str(path)]


def kill_when(args: list[str], ready, timeout: float = 120) -> None:
    """Run the command line in a child and SIGKILL it as soon as ``ready()`` holds (it must not finish first)."""
    # the same number of threads as the runs in this process: float results then agree to the bit
    env = child_env(OMP_NUM_THREADS=str(torch.get_num_threads()))
    p = subprocess.Popen(cli_command() + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            if ready():
                p.send_signal(signal.SIGKILL)
                break
            if p.poll() is not None:
                raise AssertionError("the job ended before it could be killed: " + p.stderr.read().decode()[-2000:])
            time.sleep(0.01)
        else:
            raise AssertionError("timed out")
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        p.stderr.close()
    assert p.returncode == -signal.SIGKILL


def count(folder: Path, pattern: str) -> int:
    return len(list(folder.glob(pattern))) if folder.is_dir() else 0


def test_png_frames_resume_after_sigkill_and_damaged_frames_are_redone(tmp_path, esr):
    src = data_path("clips", "carphone_pristine.mp4")
    ref, out = tmp_path / "ref", tmp_path / "out"
    args = [*esr, "-q", "--max-frames", "60"]
    code, text = run("upscale", src, "-o", ref, *args)
    assert code == 0, text
    frames = job_dir(out) / "out" / "frames"
    kill_when(["upscale", str(src), "-o", str(out), *args], lambda: count(frames, "*.png") >= 10)
    done = sorted(frames.glob("*.png"))
    assert 10 <= len(done) < 60 and not out.exists()
    done[-1].write_bytes(done[-1].read_bytes()[:100])  # as if the disk lost the end of the last frame
    code, text = run("upscale", src, "-o", out, *args, "--resume")
    assert code == 0, text
    assert f"resuming out at frame {len(done) - 1}" in text
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in ref.iterdir()) and len(names) == 60
    for name in names:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert not job_dir(out).exists()


def _audio(path: Path) -> list[tuple]:
    with av.open(str(path)) as c:
        return [(p.pts, p.size) for p in c.demux(c.streams.audio[0]) if p.size]


def test_video_resumes_from_complete_segments_with_identical_frames_timing_and_audio(tmp_path, esr):
    src = data_path("clips", "bigbuckbunny.mp4")
    small = tmp_path / "small.mp4"
    # a 160x90 copy with the audio, as the input
    with av.open(str(src)) as c, av.open(str(small), "w") as o:
        vs = c.streams.video[0]
        ov = o.add_stream("libx264", rate=25)
        ov.width, ov.height, ov.pix_fmt = 160, 96, "yuv420p"
        ov.codec_context.options = {"preset": "ultrafast"}
        oa = o.add_stream_from_template(c.streams.audio[0])
        for pk in c.demux(vs, c.streams.audio[0]):
            if pk.stream.type == "audio":
                if pk.size:
                    pk.stream = oa
                    o.mux(pk)
                continue
            for f in pk.decode():
                g = f.reformat(width=160, height=96)
                g.pts = f.pts
                for q in ov.encode(g):
                    o.mux(q)
        for q in ov.encode(None):
            o.mux(q)
    ref, out = tmp_path / "ref.mp4", tmp_path / "out.mp4"
    args = [*esr, "-q", "--segment", "16", "--max-frames", "100"]
    code, text = run("upscale", small, "-o", ref, *args)
    assert code == 0, text
    segs = job_dir(out) / "out" / "segments"
    kill_when(["upscale", str(small), "-o", str(out), *args], lambda: count(segs, "seg*[0-9].mp4") >= 2)
    kept = count(segs, "seg*[0-9].mp4")
    code, text = run("upscale", small, "-o", out, *args, "--resume")
    assert code == 0, text
    assert f"resuming out.mp4 at frame {16 * kept}" in text
    a, pa = decoded(ref)
    b, pb = decoded(out)
    assert len(a) == len(b) == 100 and pa == pb
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert _audio(out) == _audio(ref) and len(_audio(ref)) > 10


def _save_weights(model: torch.nn.Module, path: Path, key: str) -> Path:
    torch.save({key: model.state_dict()}, path)
    return path


@pytest.mark.parametrize("family", ["rlsp", "basicvsr"])
def test_stateful_models_resume_from_their_saved_state(tmp_path, family):
    torch.manual_seed(0)
    if family == "rlsp":
        from vsrkit.models.rlsp import RLSP

        weights = _save_weights(RLSP(filters=16, state_dim=16, layers=3), tmp_path / "rlsp.pth", "rlsp")
        extra = []
    else:
        from vsrkit.models.basicvsr import BasicVSR

        weights = _save_weights(BasicVSR(num_feat=8, num_block=1), tmp_path / "basicvsr.pth", "params")
        extra = ["--chunk", "3"]
    src = make_clip(tmp_path / "in.mp4", n=18, w=64, h=48)
    ref, out = tmp_path / "ref", tmp_path / "out"
    args = ["-w", str(weights), "-q", "--segment", "6", "--device", "cpu", *extra]
    code, text = run("upscale", src, "-o", ref, *args)
    assert code == 0, text
    job = job_dir(out)
    kill_when(["upscale", str(src), "-o", str(out), *args], lambda: (job / "state.pt").exists())
    if family == "basicvsr":
        assert (job / "twopass" / "pass1.json").exists()  # pass 1's backward states are kept for the resumed run
    code, text = run("upscale", src, "-o", out, *args, "--resume")
    assert code == 0, text
    assert "resuming out at frame" in text and "frame 0" not in text
    for name in sorted(p.name for p in ref.iterdir()):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert len(list(out.iterdir())) == 18


def test_resume_refuses_a_job_made_with_other_options(tmp_path, esr):
    src = data_path("clips", "carphone_pristine.mp4")
    out = tmp_path / "out"
    frames = job_dir(out) / "out" / "frames"
    kill_when(["upscale", str(src), "-o", str(out), *esr, "-q"], lambda: count(frames, "*.png") >= 3)
    code, text = run("upscale", src, "-o", out, "--model", "esr-max-x2", "-q", "--resume")
    assert code == 2 and "cannot resume" in text and "model" in text, text
    assert count(frames, "*.png") >= 3  # the interrupted work is kept
    code, text = run("upscale", src, "-o", out, "--model", "esr-max-x2", "-q", "--max-frames", "20")  # start again
    assert code == 0 and "removed the leftovers" in text, text
