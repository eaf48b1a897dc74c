"""The RLSP authors' Vid4 degradation, the recipe of their released result frames: Gaussian sigma 1.5 on float
values, rounded, clipped, uint8, then every 4th pixel from 0."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from golden import data_path, load_case
from vsrkit.data.degrade import degrade
from vsrkit.data.degrade_rlsp import rlsp_gaussian_downscale
from vsrkit.errors import VsrkitError
from vsrkit.io import VideoReader, VideoWriter


def frames(clip: str, n: int) -> list[np.ndarray]:
    out = []
    with VideoReader(data_path("clips", clip)) as r:
        for f in r:
            out.append(f.image[..., :3])
            if len(out) == n:
                break
    return out


def float_recipe(hr: np.ndarray, scale: int = 4) -> np.ndarray:
    """The released frames' recipe, written out with scipy: float blur, rint, clip, uint8, [0::s, 0::s]."""
    blurred = gaussian_filter(hr.astype(np.float64), sigma=[1.5, 1.5, 0])
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)[0::scale, 0::scale]


def uint8_recipe(hr: np.ndarray, scale: int = 4) -> np.ndarray:
    """The official script's blur on the uint8 frame (scipy keeps uint8: truncates after each pass)."""
    return gaussian_filter(hr, sigma=[1.5, 1.5, 0])[0::scale, 0::scale]


@pytest.mark.parametrize("clip, crop", [("carphone_pristine.mp4", None), ("bikes.mp4", (143, 201))])
def test_the_float_recipe_on_real_frames(clip, crop):
    """Real frames (a size that is not a multiple of 4 too): exactly the recipe, one grey level off the uint8 one."""
    for hr in frames(clip, 3):
        if crop is not None:
            hr = np.ascontiguousarray(hr[: crop[0], : crop[1]])
        got = rlsp_gaussian_downscale(hr, 4)
        want = float_recipe(hr)
        assert got.dtype == np.uint8 and got.shape == want.shape == (-(-hr.shape[0] // 4), -(-hr.shape[1] // 4), 3)
        assert np.array_equal(got, want)
        assert np.array_equal(degrade(hr, "rlsp", 4), want)
        # not the truncating blur: that one is darker by about half a grey level on average
        assert (want.astype(int) - uint8_recipe(hr).astype(int)).mean() > 0.3


def test_the_golden_input_was_made_by_the_scripts_uint8_recipe():
    """``rlsp_tf_official``'s LR input comes from the official script (blur on uint8), not from the recipe of the
    released frames: the golden tests use it as stored."""
    from safetensors.numpy import load_file

    _meta, _io, d = load_case("rlsp_tf_official")
    io = load_file(str(d / "io.safetensors"))
    hr, lr = io["input_hr"], io["input"].astype(int)
    for t in range(hr.shape[0]):
        diff = np.abs(uint8_recipe(hr[t]).astype(int) - lr[t])
        assert diff.max() <= 1 and (diff > 0).sum() <= 5, f"frame {t}: {(diff > 0).sum()} pixels differ"
    ours = rlsp_gaussian_downscale(hr[0]).astype(int)
    assert (ours != lr[0]).mean() > 0.3 and (ours - lr[0]).mean() > 0.3


def test_refuses_float_frames():
    with pytest.raises(VsrkitError, match="uint8"):
        rlsp_gaussian_downscale(np.zeros((8, 8, 3), np.float32))


def test_vsrkit_degrade_mode_rlsp_writes_the_recipe(tmp_path):
    """``vsrkit degrade --mode rlsp`` on a PNG folder of real frames writes the recipe's frames exactly."""
    from click.testing import CliRunner

    from vsrkit.cli.main import main

    hr = frames("carphone_pristine.mp4", 3)
    with VideoWriter(tmp_path / "hr", width=hr[0].shape[1], height=hr[0].shape[0]) as w:
        for f in hr:
            w.write(f)
    res = CliRunner().invoke(main, ["degrade", str(tmp_path / "hr"), "-o", str(tmp_path / "lr"), "--mode", "rlsp", "-q"])
    assert res.exit_code == 0, res.output
    with VideoReader(tmp_path / "lr") as r:
        out = [f.image for f in r]
    assert len(out) == 3 and all(np.array_equal(o, float_recipe(f)) for o, f in zip(out, hr))
