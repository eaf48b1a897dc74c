"""The RLSP authors' Vid4 degradation: Gaussian sigma 1.5 on uint8 (truncating), every 4th pixel from 0."""

from __future__ import annotations

import numpy as np
import pytest

from golden import load_case
from vsrkit.data.degrade_rlsp import rlsp_gaussian_downscale
from vsrkit.errors import VsrkitError


def test_reproduces_the_official_low_resolution_frames():
    from safetensors.numpy import load_file

    _meta, _io, d = load_case("rlsp_tf_official")
    io = load_file(str(d / "io.safetensors"))
    hr, lr = io["input_hr"], io["input"]
    for t in range(hr.shape[0]):
        got = rlsp_gaussian_downscale(hr[t], 4)
        assert got.dtype == np.uint8 and got.shape == lr[t].shape == (36, 44, 3)
        diff = np.abs(got.astype(int) - lr[t].astype(int))
        assert diff.max() <= 1 and (diff > 0).sum() <= 5, f"frame {t}: {(diff > 0).sum()} pixels differ"


def test_a_float_blur_would_not_reproduce_them():
    """The uint8 truncation matters: blurring in float and rounding is about one level brighter."""
    from safetensors.numpy import load_file
    from scipy.ndimage import gaussian_filter

    _meta, _io, d = load_case("rlsp_tf_official")
    io = load_file(str(d / "io.safetensors"))
    hr, lr = io["input_hr"][0], io["input"][0].astype(int)
    rounded = np.rint(gaussian_filter(hr.astype(np.float64), [1.5, 1.5, 0])[0::4, 0::4]).astype(int)
    assert (rounded != lr).mean() > 0.3 and (rounded - lr).mean() > 0.3
    assert np.array_equal(rlsp_gaussian_downscale(hr).astype(int), lr)


def test_refuses_float_frames():
    with pytest.raises(VsrkitError, match="uint8"):
        rlsp_gaussian_downscale(np.zeros((8, 8, 3), np.float32))


def test_vsrkit_degrade_mode_rlsp_writes_the_official_frames(tmp_path):
    """``vsrkit degrade --mode rlsp`` on a PNG folder gives the authors' LR frames exactly."""
    from click.testing import CliRunner
    from safetensors.numpy import load_file

    from vsrkit.cli.main import main
    from vsrkit.io import VideoReader, VideoWriter

    _meta, _io, d = load_case("rlsp_tf_official")
    io = load_file(str(d / "io.safetensors"))
    hr = io["input_hr"][:3]
    with VideoWriter(tmp_path / "hr", width=hr.shape[2], height=hr.shape[1]) as w:
        for f in hr:
            w.write(f)
    res = CliRunner().invoke(main, ["degrade", str(tmp_path / "hr"), "-o", str(tmp_path / "lr"), "--mode", "rlsp", "-q"])
    assert res.exit_code == 0, res.output
    with VideoReader(tmp_path / "lr") as r:
        out = np.stack([f.image for f in r])
    assert np.array_equal(out, io["input"][:3])
