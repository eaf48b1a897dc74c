"""Every model family through the engine (and the command line) with its golden checkpoint."""

from __future__ import annotations

import dataclasses

import shutil

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import vsrkit
from vsrkit.models.spec import Protocol
from vsrkit.cli.main import main
from vsrkit.infer import make_config, upscale_tensor
from vsrkit.eval.metrics import psnr_float

from golden import assert_close, data_path, load_case


def golden_model(case: str, **kw):
    meta, io, d = load_case(case)
    return vsrkit.load_model(weights=str(d / "weights.pth"), **kw), io


def test_edge_sr_runs_frame_by_frame_in_the_engine():
    meta, io, d = load_case("esr_tr_C4_K5_s2")
    model = vsrkit.load_model("esr-tr", weights=str(d / "weights.pth"), **meta["kwargs"])
    assert model.spec.temporal.kind == "frame" and model.spec.channels == 1
    y = upscale_tensor(model, io["input"], make_config("cpu"))
    assert_close(y, io["output"])


def test_rlsp_runs_recurrently_and_matches_its_golden_sequence():
    model, io = golden_model("rlsp_f64_s64")
    assert model.spec.temporal.kind == "recurrent" and model.spec.temporal.ahead == 1
    calls = []
    step = model.step
    model.step = lambda x, s: (calls.append(1), step(x, s))[1]
    y = upscale_tensor(model, io["input"][0], make_config("cpu"))
    assert_close(y, io["output"][0])
    assert len(calls) == io["input"].shape[1]  # one step per frame, past frames never re-run


def test_edvr_runs_as_a_sliding_window_in_the_engine():
    model, io = golden_model("edvr_m_tsa")
    assert model.spec.temporal.kind == "window" and model.spec.temporal.window == 5
    y = upscale_tensor(model, io["input"][0], make_config("cpu"))
    assert y.shape == (5, 3, 128, 128)
    assert_close(y[2], io["output"][0])  # the centre frame's window has no padding: the golden case


@pytest.mark.parametrize("chunk", [3])
def test_iconvsr_streams_exactly_in_two_passes(chunk):
    """IconVSR is bidirectional: any block size gives the golden whole-clip output (keyframes 0, 5 and the last
    frame 6, whose EDVR windows reach into the neighbouring blocks and the mirrored ends)."""
    model, io = golden_model("basicsr_iconvsr")
    assert model.spec.temporal.kind == "bidirectional"
    y = upscale_tensor(model, io["input"][0], make_config("cpu", chunk=chunk))
    assert_close(y, io["output"][0], what=f"IconVSR in blocks of {chunk}")


def test_vrt_small_matches_golden_through_the_engine():
    model, io = golden_model("vrt_small_x4")
    y = upscale_tensor(model, io["input"][0], make_config("cpu"))
    assert_close(y, io["output"][0])


def test_vrt_tiled_and_windowed_agrees_with_whole_on_real_frames():
    """Temporal windows of the clip length plus spatial tiles against one untiled pass: >= 45 dB."""
    files = sorted(data_path("frames", "reds_demo_000_lr").glob("*.png"))[:6]
    imgs = [next(av.open(str(f)).decode(video=0)).to_ndarray(format="rgb24")[40:88, 80:168] for f in files]
    x = torch.stack([torch.from_numpy(i).permute(2, 0, 1).float() / 255 for i in imgs])  # 6 x 3 x 48 x 88
    model, _ = golden_model("vrt_small_x4")
    whole = upscale_tensor(model, x, make_config("cpu"))
    windowed, _ = golden_model("vrt_small_x4")
    clips = dataclasses.replace(make_config("cpu", tile=56, tile_overlap=24), protocol=Protocol(clip=3, clip_overlap=0))
    tiled = upscale_tensor(windowed, x, clips)  # 2 tiles x 2 clips
    assert psnr_float(tiled, whole) >= 45


@pytest.mark.parametrize("case,name", [("esr_tr_C4_K5_s2", "esr-tr"), ("rlsp_f64_s64", "rlsp"),
                                        ("esr_fsrcnn_D6_S3_M4_s2", "fsrcnn")])
def test_upscale_command_with_model_name_and_official_file(case, name, tmp_path):
    meta, _, d = load_case(case)
    weights = d / "weights.pth"
    if "model_id" in meta["kwargs"]:
        weights = tmp_path / f"{meta['kwargs']['model_id']}.model"
        shutil.copy(d / "weights.pth", weights)
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        with av.open(str(src / f"{i}.png"), "w", format="image2") as c:
            s = c.add_stream("png")
            s.width, s.height, s.pix_fmt = 24, 16, "rgb24"
            img = (rng.random((16, 24, 3)) * 255).astype(np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
            for p in s.encode():
                c.mux(p)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["upscale", str(src), "-o", str(out), "--model", name, "--weights", str(weights), "-q"])
    assert r.exit_code == 0, r.output
    pngs = sorted(out.glob("*.png"))
    scale = vsrkit.load_model(name, weights=str(weights)).spec.scale
    assert len(pngs) == 3
    frame = next(av.open(str(pngs[0])).decode(video=0))
    assert (frame.width, frame.height) == (24 * scale, 16 * scale)
