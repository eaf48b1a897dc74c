"""``vsrkit upscale INPUT_DIR -o OUTPUT_DIR``: every video and frame folder, finished ones skipped, a bad file does
not stop the others, and under torchrun the files are split between the processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from media import child_env, decoded, make_clip, run, write_png
from vsrkit.batch import batch_items, is_batch, output_for, share

FAST = ("--model", "esr-tr-x2", "-q")


def make_batch(folder: Path, videos: int = 2) -> Path:
    folder.mkdir()
    for i in range(videos):
        make_clip(folder / f"clip{i}.mp4", n=3 + i)
    make_clip(folder / "old.avi", n=2, codec="mpeg4")
    frames = folder / "frames"
    frames.mkdir()
    for i in range(3):
        write_png(frames / f"f{i}.png", np.full((12, 16, 3), 40 * i, np.uint8))
    (folder / "notes.txt").write_text("not a video")
    return folder


def test_batch_upscales_everything_skips_finished_and_lists_failures(tmp_path):
    src = make_batch(tmp_path / "in")
    (src / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(300))
    out = tmp_path / "out"
    assert is_batch(src) and not is_batch(src / "frames")
    code, text = run("upscale", src, "-o", out, *FAST)
    assert code == 2, text
    lines = text.strip().splitlines()
    assert "failed: broken.mp4:" in text and lines[-1] == "vsrkit: error: 1 of 5 files failed (listed above)", text
    assert sorted(os.listdir(out)) == ["clip0.mp4", "clip1.mp4", "frames", "old.avi.mp4"]
    assert [len(decoded(out / n)[0]) for n in ("clip0.mp4", "clip1.mp4", "old.avi.mp4")] == [3, 4, 2]
    assert len(os.listdir(out / "frames")) == 3
    before = {n: (out / n).stat().st_mtime_ns for n in ("clip0.mp4", "old.avi.mp4")}
    (src / "broken.mp4").unlink()
    code, text = run("upscale", src, "-o", out, *FAST)
    assert code == 0 and "0 upscaled, 4 already done, 0 failed" in text, text
    assert before == {n: (out / n).stat().st_mtime_ns for n in before}


def test_batch_items_and_names(tmp_path):
    src = make_batch(tmp_path / "in", videos=1)
    (src / "frames2").mkdir()  # empty: not an item
    assert [p.name for p in batch_items(src)] == ["clip0.mp4", "frames", "old.avi"]
    assert output_for(src / "old.avi", tmp_path).name == "old.avi.mp4"
    assert str(output_for(src / "frames", tmp_path)).endswith(os.sep)


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_every_file_goes_to_exactly_one_process(tmp_path, world):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(11):
        (src / f"v{i}.mp4").write_bytes(b"x" * (1000 * (i % 4 + 1)))
    items = batch_items(src)
    shares = [share(items, r, world) for r in range(world)]
    flat = [p for s in shares for p in s]
    assert sorted(flat) == sorted(items) and len(flat) == len(set(flat))
    counts = [len(s) for s in shares]
    assert max(counts) - min(counts) <= 1  # none can be read: each weighs the same (they fail at once)


def test_each_process_takes_its_own_gpu(tmp_path, monkeypatch):
    import torch
    import vsrkit.pipeline as pipeline

    src = make_batch(tmp_path / "in", videos=1)
    seen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(pipeline, "upscale_file", lambda item, out, device, **kw: seen.append(device))
    from vsrkit.batch import upscale_batch

    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        upscale_batch(src, tmp_path / f"out{rank}", model=torch.nn.Identity(), say=lambda m: None, progress=False)
    assert set(seen) == {"cuda:0", "cuda:1"} and len(seen) == 3


@pytest.mark.slow
def test_torchrun_with_two_cpu_processes_splits_the_files(tmp_path):
    src = make_batch(tmp_path / "in", videos=3)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "0",
           "-m", "vsrkit.cli", "upscale", str(src), "-o", str(out), *FAST, "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=child_env(), cwd=tmp_path)
    text = r.stdout + r.stderr
    assert r.returncode == 0, text[-3000:]
    wrote = re.findall(r"process (\d) of 2: wrote (\S+)", text)
    names = [Path(p).name for _, p in wrote]
    assert sorted(names) == ["clip0.mp4", "clip1.mp4", "clip2.mp4", "frames", "old.avi.mp4"], text[-3000:]
    assert {rank for rank, _ in wrote} == {"0", "1"}  # both processes worked
    assert sorted(os.listdir(out)) == ["clip0.mp4", "clip1.mp4", "clip2.mp4", "frames", "old.avi.mp4"]
