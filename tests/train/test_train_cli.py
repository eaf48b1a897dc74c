"""``vsrkit train CONFIG [--resume] [--set key=value ...]``: a run, a resume, and one-line errors (exit 2)."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from golden import data_path
from trainutil import CONFIGS
from vsrkit.cli.main import main
from vsrkit.train.loop import read_log

TINY = str(CONFIGS / "tiny_rlsp_clips.yml")


def _sets(out, total):
    sets = [f"output={out}", f"data.root={data_path('clips')}", f"val.data.root={data_path('clips')}",
            f"train.total_iter={total}", "train.num_workers=0", "train.save_every=2", "val.every=2",
            "val.data.max_frames=1", "data.gt_size=48", "data.num_frame=2"]
    return sum((["--set", s] for s in sets), [])


def test_train_then_resume(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["train", TINY, *_sets(tmp_path, 2), "--set", "train.progress=true"])
    assert r.exit_code == 0, r.output
    assert "effective batch 2 x 1 = 2" in r.output and "validation PSNR" in r.output
    # the progress bar (stderr): iterations/s and the time left
    bar = [ln for ln in r.output.replace("\r", "\n").splitlines() if "2/2" in ln]
    assert bar and re.search(r"\d+(\.\d+)?(it/s|s/it)", bar[-1]) and re.search(r"<\d\d:\d\d", bar[-1]), r.output
    # TensorBoard: loss, every group's learning rate, validation PSNR/SSIM and a sample crop (output | ground truth)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0}).Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss", "train/lr_group0", "val/psnr", "val/ssim"} <= set(scalars), scalars
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    assert events.Scalars("val/psnr")[0].value == pytest.approx(read_log(tmp_path / "log.jsonl")[-1]["val"]["psnr"])
    (image,) = events.Images("val/bikes.mp4")
    assert (image.step, image.width, image.height) == (2, 2 * 256, 256)  # 256-pixel centre crops side by side
    assert (tmp_path / "checkpoints" / "iter_00000002.safetensors").is_file()
    r = runner.invoke(main, ["train", TINY, *_sets(tmp_path, 2)])
    assert r.exit_code == 2 and "already holds a training run: use --resume" in r.output
    r = runner.invoke(main, ["train", TINY, "--resume", *_sets(tmp_path, 4)])
    assert r.exit_code == 0, r.output
    assert "resumed from iteration 2" in r.output
    assert [e["iter"] for e in read_log(tmp_path / "log.jsonl") if "loss" in e] == [1, 2, 3, 4]
    assert (tmp_path / "weights" / "net_g_00000004.safetensors").is_file()


def test_errors_are_one_line(tmp_path):
    runner = CliRunner()
    for args, text in (
        (["train", TINY, "--set", "train.bacth_size=2"], "unknown key train.bacth_size"),
        (["train", str(tmp_path / "none.yml")], "config not found"),
        (["train", TINY, "--set", f"output={tmp_path}", "--set", f"data.root={tmp_path / 'nowhere'}"],
         "folder not found"),
    ):
        r = runner.invoke(main, args)
        assert r.exit_code == 2, r.output
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("vsrkit: error:") and text in lines[0], r.output
