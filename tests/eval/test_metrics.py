"""PSNR/SSIM against the golden values of BasicSR's calculate_psnr/calculate_ssim, and SSIM against scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from golden import load_case

from vsrkit.data.degrade import imresize
from vsrkit.eval.metrics import psnr, psnr_float, rgb_to_y, ssim

SET5 = ("baby", "bird", "butterfly", "head", "woman")


@pytest.fixture(scope="module")
def golden():
    meta, io, _ = load_case("degrade_bi_bd")
    return meta, {k: v.numpy() for k, v in io.items()}


def bicubic_up(lr: np.ndarray) -> np.ndarray:
    """The case's metric input: clamp(floor(255 * imresize(lr / 255, 4) + 0.5))."""
    x = torch.from_numpy(lr).permute(2, 0, 1).double() / 255
    return torch.floor(imresize(x, 4) * 255 + 0.5).clamp(0, 255).permute(1, 2, 0).numpy().astype(np.uint8)


def test_butterfly_stored_input_exact(golden):
    """From the stored arrays the values are BasicSR's to 1e-9 relative (the case's own figure)."""
    meta, io = golden
    want = meta["metrics"]["set5_butterfly"]
    sr, hr = io["set5_butterfly_bicup_x4"], io["set5_butterfly_hr"]
    for cb in (0, 4):
        assert psnr(sr, hr, crop_border=cb) == pytest.approx(want[f"psnr_y_crop{cb}"], rel=1e-9, abs=0)
        assert ssim(sr, hr, crop_border=cb) == pytest.approx(want[f"ssim_y_crop{cb}"], rel=1e-9, abs=0)


@pytest.mark.parametrize("name", SET5)
def test_set5_bicubic_metrics(golden, name):
    """Our own float64 bicubic input: within the case's 1e-5 dB / 1e-6 (it differs from BasicSR's float32
    resize at a few near-tie pixels of baby and bird)."""
    meta, io = golden
    want = meta["metrics"][f"set5_{name}"]
    sr, hr = bicubic_up(io[f"set5_{name}_bi_x4"]), io[f"set5_{name}_hr"]
    for cb in (0, 4):
        assert psnr(sr, hr, crop_border=cb) == pytest.approx(want[f"psnr_y_crop{cb}"], abs=1e-5)
        assert ssim(sr, hr, crop_border=cb) == pytest.approx(want[f"ssim_y_crop{cb}"], abs=1e-6)


def test_channel_order_pitfall(golden):
    """RGB arrays read as BGR give BasicSR's 'RGB passed' number; BGR arrays declared as such the right one."""
    meta, io = golden
    want = meta["metrics"]["set5_butterfly"]
    sr, hr = io["set5_butterfly_bicup_x4"], io["set5_butterfly_hr"]
    wrong = psnr(sr, hr, crop_border=4, order="bgr")
    assert wrong == pytest.approx(want["pitfall_rgb_passed_psnr_y_crop4"], rel=1e-9, abs=0)
    assert abs(wrong - want["psnr_y_crop4"]) > 0.1
    right = psnr(sr[..., ::-1], hr[..., ::-1], crop_border=4, order="bgr")
    assert right == pytest.approx(want["psnr_y_crop4"], rel=1e-9, abs=0)
    assert ssim(sr[..., ::-1], hr[..., ::-1], crop_border=4, order="bgr") == pytest.approx(
        want["ssim_y_crop4"], rel=1e-9, abs=0)


def test_ssim_matches_scikit_image(golden):
    metrics = pytest.importorskip("skimage.metrics", reason="scikit-image is a test dependency (pip install -e .[test])")
    io = golden[1]
    sr, hr = io["set5_butterfly_bicup_x4"][4:-4, 4:-4], io["set5_butterfly_hr"][4:-4, 4:-4]
    opts = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, K1=0.01, K2=0.03)
    sk_y = metrics.structural_similarity(rgb_to_y(sr), rgb_to_y(hr), **opts)
    sk_rgb = metrics.structural_similarity(sr.astype(np.float64), hr.astype(np.float64), channel_axis=2, **opts)
    assert ssim(sr, hr) == pytest.approx(sk_y, rel=1e-9, abs=0)
    assert ssim(sr, hr, y_channel=False) == pytest.approx(sk_rgb, rel=1e-9, abs=0)
    noisy = np.clip(hr + np.random.default_rng(0).normal(0, 20, hr.shape), 0, 255).astype(np.uint8)
    sk_noisy = metrics.structural_similarity(noisy.astype(np.float64), hr.astype(np.float64), channel_axis=2, **opts)
    assert ssim(noisy, hr, y_channel=False) == pytest.approx(sk_noisy, rel=1e-9, abs=0)


def test_rgb_psnr_and_edge_cases():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-3, 4, a.shape), 0, 255).astype(np.uint8)
    mse = np.mean((a[2:-2, 2:-2].astype(float) - b[2:-2, 2:-2]) ** 2)
    assert psnr(a, b, crop_border=2, y_channel=False) == pytest.approx(10 * np.log10(255**2 / mse), rel=1e-12)
    assert psnr(a, a) == float("inf")
    assert rgb_to_y(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0, abs=1e-4)
    assert rgb_to_y(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0, abs=1e-4)
    assert psnr_float(torch.zeros(4), torch.full((4,), 0.1)) == pytest.approx(20.0)
    with pytest.raises(ValueError):
        psnr(a, b[:-1])
    with pytest.raises(ValueError):
        psnr(a, b, order="yuv")
    with pytest.raises(ValueError):
        ssim(a, b, crop_border=5)  # 10 x 14 left: smaller than the 11 x 11 window
