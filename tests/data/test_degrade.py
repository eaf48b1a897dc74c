"""BI and BD against the golden case degrade_bi_bd (official recipes): exact uint8, ±1 only at flagged near-ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from golden import load_case

from vsrkit.data.degrade import (bd_downscale, bd_downscale_tensor, bd_kernel, bi_downscale, bi_downscale_tensor,
                                 degrade, degrade_tensor, imresize, modcrop)

SET5 = ("baby", "bird", "butterfly", "head", "woman")


@pytest.fixture(scope="module")
def golden():
    meta, io, _ = load_case("degrade_bi_bd")
    return meta, {k: v.numpy() for k, v in io.items()}


def assert_golden(out: np.ndarray, key: str, golden) -> int:
    """Exact equality outside ``<key>_neartie``, ±1 inside; returns how many values needed the ±1."""
    meta, io = golden
    want, tie = io[key], io[key + "_neartie"].astype(bool)
    assert out.shape == want.shape and out.dtype == np.uint8, f"{key}: {out.shape} {out.dtype} vs {want.shape}"
    assert int(tie.sum()) == meta["near_tie_counts"][key]
    diff = out.astype(np.int16) - want.astype(np.int16)
    outside = (diff != 0) & ~tie
    assert not outside.any(), (f"{key}: {int(outside.sum())} of {diff.size} values differ outside the near-tie mask "
                               f"(first at {tuple(np.argwhere(outside)[0])}: {int(diff[outside][0]):+d})")
    assert np.abs(diff).max() <= 1, f"{key}: a near-tie value differs by {np.abs(diff).max()}"
    return int((diff != 0).sum())


@pytest.mark.parametrize("mode", ["bi", "bd"])
@pytest.mark.parametrize("name", SET5)
def test_set5_x4(golden, name, mode):
    hr = golden[1][f"set5_{name}_hr"]
    assert_golden(degrade(hr, mode, 4), f"set5_{name}_{mode}_x4", golden)


@pytest.mark.parametrize("mode", ["bi", "bd"])
def test_carphone_frames_x4(golden, mode):
    """(T, H, W, 3) frames in one call."""
    assert_golden(degrade(golden[1]["carphone_hr"], mode, 4), f"carphone_{mode}_x4", golden)


@pytest.mark.parametrize("scale", [2, 3])
def test_bird_bi_x2_x3(golden, scale):
    assert_golden(bi_downscale(golden[1]["set5_bird_hr"], scale), f"set5_bird_bi_x{scale}", golden)


def test_bi_before_rounding(golden):
    """The unrounded BI values, against BasicSR's float32 imresize (1e-6 on [0, 1])."""
    hr = torch.from_numpy(golden[1]["set5_butterfly_hr"]).permute(2, 0, 1)
    want = torch.from_numpy(golden[1]["set5_butterfly_bi_x4_float32"]).permute(2, 0, 1)
    out = bi_downscale_tensor(hr.float() / 255, 4, quantize=False)
    assert out.dtype == torch.float32
    assert (out - want).abs().max().item() <= 1e-6
    assert (imresize(hr.double() / 255, 1 / 4) - want.double()).abs().max().item() <= 1e-6


def test_bd_before_rounding_and_kernel(golden):
    io = golden[1]
    kernel = bd_kernel()
    assert kernel.shape == (12, 12)
    np.testing.assert_allclose(kernel, io["bd_kernel_fspecial_gaussian_12_sigma1p6"], rtol=0, atol=1e-17)
    hr = torch.from_numpy(io["set5_butterfly_hr"]).permute(2, 0, 1).double() / 255
    out = bd_downscale_tensor(hr, 4, quantize=False).permute(1, 2, 0).numpy() * 255
    np.testing.assert_allclose(out, io["set5_butterfly_bd_x4_float64"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("mode", ["bi", "bd"])
def test_tensor_paths(golden, mode):
    """uint8 tensors give the numpy result exactly; float [0, 1] tensors the same levels (±1/255 at near-ties)."""
    hr = golden[1]["carphone_hr"]  # (T, H, W, 3)
    want = degrade(hr, mode, 4)
    x = torch.from_numpy(hr).permute(0, 3, 1, 2)  # (T, 3, H, W)
    out = degrade_tensor(x, mode, 4)
    assert out.dtype == torch.uint8
    assert np.array_equal(out.permute(0, 2, 3, 1).numpy(), want)
    f = degrade_tensor(x.float() / 255, mode, 4)
    assert f.dtype == torch.float32
    levels = (f.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.int16)
    tie = golden[1][f"carphone_{mode}_x4_neartie"].astype(bool)
    diff = levels - want
    assert not diff[~tie].any() and np.abs(diff).max() <= 1


def test_bicubic_upscale_is_the_metric_input(golden):
    """imresize x4 up (no antialias effect) reproduces the stored metric input; its nearest .5 tie is 2.9e-6
    away, far beyond float64 error, so this is exact."""
    io = golden[1]
    lr = torch.from_numpy(io["set5_butterfly_bi_x4"]).permute(2, 0, 1).double() / 255
    up = torch.floor(imresize(lr, 4) * 255 + 0.5).clamp(0, 255).permute(1, 2, 0).numpy().astype(np.uint8)
    assert np.array_equal(up, io["set5_butterfly_bicup_x4"])


def test_bi_rounds_halves_away_from_zero():
    """x2 bicubic weights are k/256, so one row of 128 gives exact .5 values: 14.5 -> 15 and 55.5 -> 56
    (im2uint8), where round-half-to-even would give 14."""
    img = np.zeros((16, 16), np.uint8)
    img[6] = 128
    out = bi_downscale(img, 2)
    assert (out[2] == 15).all() and (out[3] == 56).all() and (out[4] == 0).all()
    exact = imresize(torch.from_numpy(img).double(), 1 / 2)[2:4, 0]
    assert exact.tolist() == [14.5, 55.5]


def test_layouts_sizes_and_uint16():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(30, 22, 3), dtype=np.uint8)
    assert bi_downscale(img, 4).shape == (8, 6, 3)  # imresize: ceil(h / s)
    assert bi_downscale(img[..., 0], 4).shape == (8, 6)
    assert modcrop(img, 4).shape == (28, 20, 3)
    assert np.array_equal(bd_downscale(modcrop(img, 4)[..., :1], 4)[..., 0], bd_downscale(modcrop(img, 4)[..., 0], 4))
    # uint16 follows the same recipe on 0..65535: 257 * v keeps the uint8 result's levels (within a near-tie)
    wide = modcrop(img, 4).astype(np.uint16) * 257
    for mode in ("bi", "bd"):
        out16, out8 = degrade(wide, mode, 4), degrade(modcrop(img, 4), mode, 4)
        assert out16.dtype == np.uint16
        assert np.abs(out16.astype(np.int64) - out8.astype(np.int64) * 257).max() <= 129


@pytest.mark.parametrize("call, error", [
    (lambda im: degrade(im, "bicubic", 4), ValueError),
    (lambda im: bd_downscale(im, 2), ValueError),
    (lambda im: bd_downscale(im[:30], 4), ValueError),
    (lambda im: bi_downscale(im, 0), ValueError),
    (lambda im: bi_downscale(im, 2.5), ValueError),
    (lambda im: bi_downscale(im.astype(np.float32), 4), TypeError),
    (lambda im: degrade_tensor(torch.from_numpy(im).int(), "bi", 4), TypeError),
])
def test_bad_arguments(call, error):
    with pytest.raises(error):
        call(np.zeros((32, 32, 3), np.uint8))
