"""Web video as a degradation (issue 21): H.264 at a constant rate factor (``io.codec_roundtrip.crf_roundtrip``), the
real-world pipeline's ``web`` preset that trains the fast real-world model, ``vsrkit eval --crf`` that scores it, and
the validation data of its training config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from eval_clips import carphone, write_clip

from vsrkit.data.degrade import degrade
from vsrkit.data.realworld import (BlurConfig, NoiseConfig, RealWorldConfig, ResizeConfig, SharpenConfig, VideoConfig,
                                   degrade_clip, preset_config, resize, web_bi_config, web_video_config)
from vsrkit.errors import VsrkitError
from vsrkit.io.codec_roundtrip import crf_roundtrip

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


def clip(n: int = 6, box=(16, 24, 96, 128)) -> np.ndarray:
    return np.stack(carphone(n, box))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0 ** 2 / mse)


# ------------------------------------------------------------------------------------------------ crf
def test_crf_roundtrip_is_lossy_by_crf_and_deterministic():
    lr = degrade(clip(), "bi", 4)  # 6 x 24 x 32
    outs = {crf: np.stack(list(crf_roundtrip(iter(lr), crf))) for crf in (12, 40)}
    assert all(o.shape == lr.shape and o.dtype == np.uint8 for o in outs.values())
    assert psnr(outs[12], lr) > psnr(outs[40], lr) + 3  # a higher crf loses more
    assert psnr(outs[40], lr) < 40  # it is compressed at all
    again = np.stack(list(crf_roundtrip(iter(lr), 40)))
    assert np.array_equal(again, outs[40])


def test_crf_roundtrip_odd_sizes_and_bad_crf():
    odd = degrade(clip(3, (0, 0, 84, 124)), "bi", 4)  # 21 x 31: padded for x264, cropped back
    out = np.stack(list(crf_roundtrip(iter(odd), 23)))
    assert out.shape == odd.shape
    for bad in (-1, 52, float("nan")):
        with pytest.raises(ValueError, match="crf must be in 0..51"):
            crf_roundtrip(iter(odd), bad)


# ------------------------------------------------------------------------------------------ web preset
def test_matlab_resize_is_the_bi_degradation():
    gt = clip(1)[0]
    t = torch.from_numpy(gt).permute(2, 0, 1).contiguous()
    got = resize(t, (24, 32), "matlab").permute(1, 2, 0).numpy()
    assert got.dtype == np.uint8 and np.array_equal(got, degrade(gt, "bi", 4))


def test_web_preset_compresses_the_low_resolution_clip_last():
    """Everything but the final MATLAB resize and the H.264 step switched off: the pipeline's output is exactly the
    BI clip through x264 at the drawn crf, so the compression runs on the LR frames, after the resize."""
    off = dict(prob=0.0)
    cfg = RealWorldConfig(sharpen=SharpenConfig(enabled=False), blur1=BlurConfig(**off), resize1=ResizeConfig(**off),
                          noise1=NoiseConfig(**off), jpeg1=web_video_config().jpeg1, video1=VideoConfig(**off),
                          blur2=BlurConfig(**off), resize2=ResizeConfig(**off), noise2=NoiseConfig(**off),
                          jpeg2=web_video_config().jpeg2, video2=VideoConfig(prob=1.0, crf=(33.0, 33.0)),
                          final_interpolations=("matlab",), final_interpolation_probs=(1.0,),
                          final_sinc=BlurConfig(**off), video_last=True)
    gt = clip(5)
    got = degrade_clip(gt, 4, 7, cfg)
    want = np.stack(list(crf_roundtrip(iter(degrade(gt, "bi", 4)), 33)))
    assert np.array_equal(got, want.astype(np.float32))


def test_web_preset_sizes_seeds_and_names():
    gt = clip(4)
    cfg = preset_config("web")
    a, b, c = (degrade_clip(gt, 4, s, cfg) for s in ((1, 0), (1, 0), (2, 0)))
    assert a.shape == (4, 24, 32, 3) and 0 <= a.min() and a.max() <= 255
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert psnr(np.rint(a), degrade(gt, "bi", 4)) > 22  # mild: close to the BI clip, unlike mmagic's pipeline
    assert preset_config("realbasicvsr") == RealWorldConfig()
    with pytest.raises(ValueError, match="unknown realworld preset 'nope'"):
        preset_config("nope")


def test_web_bi_preset_is_bi_then_h264():
    """``web-bi``: apart from its H.264 step the pipeline is exactly the BI degradation (no blur, no noise, MATLAB
    resizing): left clean it gives the BI clip, with the crf pinned the BI clip through x264 at that crf."""
    import dataclasses

    cfg = preset_config("web-bi")
    assert cfg == web_bi_config() and cfg.video2.crf == (18.0, 34.0) and cfg.video2.prob == 0.9
    gt = clip(4)
    bi = degrade(gt, "bi", 4)
    clean = degrade_clip(gt, 4, 3, dataclasses.replace(cfg, video2=VideoConfig(prob=0.0)))
    # the BI clip (the pipeline resizes in float: a few values rounded the other way, by one level)
    assert np.abs(clean - bi).max() <= 1 and np.mean(clean != bi) < 1e-3
    pinned = degrade_clip(gt, 4, 3, dataclasses.replace(cfg, video2=VideoConfig(prob=1.0, crf=(30.0, 30.0))))
    want = np.stack(list(crf_roundtrip(iter(np.rint(clean).astype(np.uint8)), 30)))
    assert np.array_equal(pinned, want.astype(np.float32))
    drawn = [degrade_clip(gt, 4, s, cfg) for s in range(6)]
    assert all(d.shape == bi.shape for d in drawn) and not all(np.array_equal(drawn[0], d) for d in drawn[1:])
    assert min(psnr(np.rint(d), bi) for d in drawn) > 25  # BI through H.264 at crf <= 34 stays near BI


# --------------------------------------------------------------------------------------- eval --crf
def test_eval_crf_scores_the_compressed_clip(tmp_path):
    from vsrkit.eval.cards import MatlabBicubic
    from vsrkit.eval.run import evaluate

    write_clip(tmp_path / "gt" / "a", list(clip(4)))
    clean = evaluate(MatlabBicubic(4), tmp_path / "gt", degradation="bi", metrics=("psnr",), device="cpu",
                     progress=False)
    web = evaluate(MatlabBicubic(4), tmp_path / "gt", degradation="bi", crf=40, metrics=("psnr",), device="cpu",
                   progress=False)
    assert web["dataset"]["degradation"] == "bi+h264(crf=40)"
    assert web["overall"]["psnr"] < clean["overall"]["psnr"] - 0.3
    # the same LR as the round trip gives: bicubic of it scored against the GT
    from vsrkit.data.degrade import bicubic_baseline
    from vsrkit.eval import metrics as M

    gt = clip(4)
    lr = list(crf_roundtrip(iter(degrade(gt, "bi", 4)), 40))
    want = np.mean([M.psnr(bicubic_baseline(x, 4), g, 0, True) for x, g in zip(lr, gt)])
    assert abs(web["overall"]["psnr"] - want) < 1e-9


def test_eval_crf_bad_values_are_one_line(tmp_path):
    from vsrkit.cli.main import main

    write_clip(tmp_path / "gt" / "a", list(clip(2)))
    for bad in ("60", "nan", "-1"):
        res = CliRunner().invoke(main, ["eval", "-m", "bicubic-x4", "--gt", str(tmp_path / "gt"), "--degrade", "bi",
                                        "--crf", bad, "-q"])
        assert res.exit_code == 2 and "--crf must be a number in 0..51" in res.output, res.output
        assert "Traceback" not in res.output


# ------------------------------------------------------------------------------------------ datasets
def test_val_dataset_crf_and_train_preset(tmp_path):
    from vsrkit.data.config import DataCfg
    from vsrkit.data.datasets import TrainDataset, ValDataset

    gt = clip(3)
    write_clip(tmp_path / "gt" / "a", list(gt))
    v = ValDataset(DataCfg(kind="clips", root=str(tmp_path / "gt"), degradation="bi", crf=35))[0]
    want = np.stack(list(crf_roundtrip(iter(degrade(gt, "bi", 4)), 35)))
    assert torch.equal(v["lq"], torch.from_numpy(want).permute(0, 3, 1, 2).float() / 255)
    ds = TrainDataset(DataCfg(kind="clips", root=str(tmp_path / "gt"), num_frame=3, gt_size=64,
                              degradation="realworld", realworld="web"))
    s = ds[(0, 9)]
    crop = (s["gt"] * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    web = degrade_clip(crop, 4, (9, 0), web_video_config())
    assert torch.allclose(s["lq"] * 255, torch.from_numpy(web).permute(0, 3, 1, 2), atol=1e-3)
    mmagic = degrade_clip(crop, 4, (9, 0))
    assert not np.allclose(web, mmagic)


def test_config_checks_preset_and_crf():
    from vsrkit.train.config import load_config

    cfg = load_config(CONFIGS / "rlsp_fast_real_48_x4.yml")
    assert cfg.data.realworld == "web" and cfg.val.data.crf == 30
    assert load_config(CONFIGS / "rlsp_fast_real_64_x4_stage3.yml").data.realworld == "web-bi"  # the shipped recipe
    with pytest.raises(VsrkitError, match="data.realworld must be one of realbasicvsr, web"):
        load_config(CONFIGS / "rlsp_fast_real_48_x4.yml", ["data.realworld=webby"])
    with pytest.raises(VsrkitError, match="data.crf must be in 0..51 and is for val.data only"):
        load_config(CONFIGS / "rlsp_fast_real_48_x4.yml", ["data.crf=30"])
    with pytest.raises(VsrkitError, match="val.data.crf must be in 0..51"):
        load_config(CONFIGS / "rlsp_fast_real_48_x4.yml", ["val.data.crf=70"])
