"""RLSP as released (TensorFlow checkpoints 7-64 and 7-48): conversion, the official graph's tensors, the engine."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compare import assert_close_rel
from golden import assert_close, load_case
from vsrkit.hub.detect import detect
from vsrkit.hub.download import convert_tf_checkpoint
from vsrkit.models.rlsp import detect_rlsp_released
from vsrkit.models.rlsp_keys import convert_rlsp_released
from vsrkit.models.rlsp import RELEASED_Y_WEIGHTS, RLSP, RLSPReleased, studio_y
from vsrkit.models.spec import Protocol

# checkpoint file -> suffix of its tensors in io.safetensors, filters
CKPTS = {"ckpt_rlsp_64": ("", 64), "ckpt_rslp_48": ("_48", 48)}
TOL_Y = 2e-3  # on the 0..255 scale (golden README)
TOL_STATE = 1e-2


@pytest.fixture(scope="module")
def case():
    return load_case("rlsp_tf_official")


def _model(d, name) -> RLSPReleased:
    sd = convert_tf_checkpoint(d / "checkpoints" / f"{name}.index")
    arch, kwargs = detect_rlsp_released(sd)
    assert arch == "RLSPReleased"
    model = RLSPReleased(**kwargs).eval()
    model.load_state_dict(sd, strict=True)
    return model


def _nchw(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 3, 1, 2).float()


def _lr_frames(io) -> torch.Tensor:
    """The golden LR input (t, h, w, 3) uint8 -> (t, 3, h, w) in [0, 1], the engine's convention."""
    return _nchw(io["input"]) / 255.0


@pytest.mark.parametrize("name", list(CKPTS))
def test_conversion_drops_adam_and_transposes(case, name):
    _meta, _io, d = case
    sd = convert_tf_checkpoint(d / "checkpoints" / f"{name}.index")
    f = CKPTS[name][1]
    assert detect_rlsp_released(sd) == ("RLSPReleased", {"layers": 7, "filters": f, "state_dim": f, "factor": 4})
    assert set(sd) == set(RLSPReleased(filters=f).state_dict())  # no Adam slots, no beta powers
    assert tuple(sd["trunk.0.weight"].shape) == (f, 9 + f + 16, 3, 3)
    from vsrkit.hub.tfbundle import read_tensors

    tf = read_tensors(d / "checkpoints" / name)  # everything, the optimiser's slots included
    assert torch.equal(sd["trunk.0.weight"][5, 7, 2, 1], tf["layer0/kernel"][2, 1, 7, 5])  # HWIO -> OIHW
    assert torch.equal(sd["state_head.bias"], tf["layer6/bias"])
    assert torch.equal(sd["out_head.weight"], tf["layer7/kernel"].permute(3, 2, 0, 1))
    # recognised in TensorFlow names with the optimiser slots too, through the hub's declared rules
    assert detect(tf, f"{name}.index") == ("rlsp", "RLSPReleased", {"layers": 7, "filters": f, "state_dim": f, "factor": 4})
    assert detect(sd)[1] == "RLSPReleased"
    conv = convert_rlsp_released(tf)
    assert set(conv) == set(sd) and all(torch.equal(conv[k], sd[k]) for k in sd)


def test_detects_7_128_from_its_variable_list(case):
    """The 7-128 data blob is not in the golden copy; its .index variable list is in case.json."""
    meta, _io, _d = case
    sd = {k: torch.zeros(s) for k, s in meta["checkpoint_variables"]["ckpt_rlsp_128"]}
    assert detect_rlsp_released(sd) == ("RLSPReleased", {"layers": 7, "filters": 128, "state_dim": 128, "factor": 4})
    assert set(convert_rlsp_released(sd)) == set(RLSPReleased(filters=128).state_dict())


def test_detect_tells_the_two_rlsp_variants_apart(case):
    _meta, _io, d = case
    assert detect(RLSPReleased(filters=8).state_dict())[1:] == (
        "RLSPReleased", {"layers": 7, "filters": 8, "state_dim": 8, "factor": 4})
    assert detect(RLSP(filters=8, state_dim=8).state_dict())[1] == "RLSP"
    assert detect_rlsp_released(RLSP(filters=8, state_dim=8).state_dict()) is None
    sd = RLSPReleased(filters=8).state_dict()
    sd["out_head.weight"] = torch.zeros(9, 8, 3, 3)  # 9 output channels: no square factor
    assert detect_rlsp_released(sd) is None
    sd = convert_tf_checkpoint(d / "checkpoints" / "ckpt_rslp_48.index")
    sd["extra.weight"] = torch.zeros(1)
    assert detect_rlsp_released(sd) is None


@pytest.mark.parametrize("name", list(CKPTS))
def test_official_graph_tensors(case, name):
    """The released cell on the 0..255 scale, official protocol (no end padding): step i takes frames
    (i, i+1, i+2) and gives frame i+1; state and feedback are zero at the first step."""
    _meta, io, d = case
    sfx, _f = CKPTS[name]
    model = _model(d, name)
    x = _nchw(io["input"])[None]  # (1, t, 3, h, w), 0..255
    outs, state = [], None
    with torch.no_grad():
        for i in range(x.shape[1] - 2):
            y, head, state = model.cell(x[:, i : i + 3], state)
            if i == 0:
                assert_close(head, _nchw(io["head_step0" + sfx]), TOL_Y, "head_step0")
                assert_close(y - head, _nchw(io["res_add_step0" + sfx]), TOL_Y, "res_add_step0")
                assert_close(state[0], _nchw(io["state_step0" + sfx]), TOL_STATE, "state_step0")
            assert state[1] is y  # the feedback is the raw, unclipped output
            outs.append(F.pixel_shuffle(y, 4))
    assert_close(state[0], _nchw(io["state_last" + sfx]), TOL_STATE, "state_last")
    assert_close(torch.cat(outs), _nchw(io["output" + sfx]), TOL_Y, "output")


@pytest.mark.parametrize("name", list(CKPTS))
def test_engine_every_frame_replicated_ends(case, name):
    """The engine's default: every frame, the ends replicated, through step() in [0, 1] with RGB out."""
    from vsrkit.infer.engine import upscale_tensor

    _meta, io, d = case
    model = _model(d, name)
    assert model.spec.protocol.end_padding == "replicate"
    out = upscale_tensor(model, _lr_frames(io))
    assert tuple(out.shape) == (6, 3, 144, 176)
    assert_close(studio_y(out), _nchw(io["output_replpad" + CKPTS[name][0]]), TOL_Y, "output_replpad")
    with torch.no_grad():  # forward() (the model's own recurrence) gives the same
        assert_close_rel(model(_lr_frames(io)[None])[0], out, what="forward vs engine")


@pytest.mark.parametrize("name", list(CKPTS))
def test_engine_official_protocol_no_end_padding(case, name):
    """``Protocol(end_padding="none")``: the official evaluation, T-2 outputs for frames 1..T-2."""
    from vsrkit.models.rlsp import RLSP_RELEASED_EVAL
    from vsrkit.infer.engine import upscale_tensor
    from vsrkit.infer.runtime import make_config

    _meta, io, d = case
    model = _model(d, name)
    assert RLSP_RELEASED_EVAL == Protocol(end_padding="none")
    cfg = dataclasses.replace(make_config(device="cpu"), protocol=RLSP_RELEASED_EVAL)
    out = upscale_tensor(model, _lr_frames(io), cfg)
    assert tuple(out.shape) == (4, 3, 144, 176)
    assert_close(studio_y(out), _nchw(io["output" + CKPTS[name][0]]), TOL_Y, "output")
    # the same through the model's own declaration
    model.spec = dataclasses.replace(model.spec, protocol=RLSP_RELEASED_EVAL)
    assert_close(upscale_tensor(model, _lr_frames(io)), out, 0.0, "protocol from the spec")
    with torch.no_grad():
        assert_close_rel(model(_lr_frames(io)[None], end_padding="none")[0], out, what="forward vs engine")


def test_colour_output_keeps_the_chroma_of_the_bicubic_upscale(case):
    """RGB out: the bicubic upscale of the LR centre frame with its luma replaced by the network's Y."""
    _meta, io, d = case
    model = _model(d, "ckpt_rslp_48")
    x = _lr_frames(io)[None, :3]
    with torch.no_grad():
        rgb, _ = model.step(x, None)
        y, _head, _ = model.cell(x * 255.0, None)
    up = F.interpolate(x[:, 1], scale_factor=4, mode="bicubic", align_corners=False)
    assert_close_rel(studio_y(rgb), F.pixel_shuffle(y, 4), 1e-5, what="luma of the RGB output")  # 0..255, a few ops
    # the colour differences (R-Y, G-Y, B-Y, full range) are those of the bicubic upscale
    assert_close_rel(rgb - (studio_y(rgb) - 16) / 219, up - (studio_y(up) - 16) / 219, 1e-5, what="chroma")


def test_named_configurations():
    from vsrkit.hub.loader import describe_entry
    from vsrkit.models.registry import get_entry

    for f in (48, 64, 128, 256):
        family, entry = get_entry(f"rlsp-7-{f}-released")
        assert family.name == "rlsp" and entry.arch == "RLSPReleased" and entry.protocol.end_padding == "replicate"
        assert (entry.weights is None) == (f == 256)
        row = describe_entry(family.name, entry)
        assert (row["scale"], row["channels"], row["temporal"]) == ("x4", "RGB", "recurrent (3 frames, 1 ahead)")
        with torch.device("meta"):
            m = RLSPReleased(**entry.kwargs)
        assert m.trunk[0].in_channels == 9 + f + 16 and len(m.trunk) == 6 and m.state_dim == f
    _, e64 = get_entry("rlsp-7-64-released")
    assert [p.name for p in e64.weights.parts] == ["ckpt_rlsp_64.index", "ckpt_rlsp_64.data-00000-of-00001"]
    assert all("dariofuoli/RLSP" in p.url and len(p.sha256) == 64 for p in e64.weights.parts)
    _, e48 = get_entry("rlsp-7-48-released")
    assert e48.weights.parts[0].url.endswith("/evaluate/checkpoints/ckpt_rslp_48.index")


def test_uint8_frames_give_the_official_rgb_frames(case):
    """uint8 RGB in, uint8 RGB out through the engine's colour edges, official protocol: close to the PNGs the
    official script writes (their chroma is upscaled by skimage's spline, ours bicubically: a few levels)."""
    from vsrkit.models.rlsp import RLSP_RELEASED_EVAL
    from vsrkit.infer.engine import upscale_frames

    _meta, io, d = case
    model = _model(d, "ckpt_rslp_48")
    model.spec = dataclasses.replace(model.spec, protocol=RLSP_RELEASED_EVAL)
    out = torch.from_numpy(np.stack(list(upscale_frames(model, iter(io["input"].numpy()))))).float()
    ref = io["output_rgb_png_48"].float()
    assert out.shape == ref.shape == (4, 144, 176, 3)
    diff = (out - ref).abs()
    assert diff.mean() < 0.7 and diff.max() <= 8, (diff.mean().item(), diff.max().item())
    # the luma is the network's, to the rounding of RGB, except where RGB was clipped (out of gamut)
    y = 16 + (out * torch.tensor(RELEASED_Y_WEIGHTS)).sum(-1)
    inside = ((out > 0) & (out < 255)).all(-1)
    assert ((y - io["output_uint8_48"][..., 0].float()).abs()[inside] <= 1.0).all()
