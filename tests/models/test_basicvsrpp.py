"""BasicVSR++: golden outputs of mmagic's code (strict loading of its checkpoint container), the deformable
alignment's offset layout, the contract (spec, channels-last, fp32 sampling under bf16), the engine's exact and
chunked schedules, and the released-checkpoint table."""

from __future__ import annotations

import re

import pytest
import torch
from torch.nn import functional as F

import vsrkit.models.basicvsrpp as bvpp
from golden import assert_close, load_case
from vsrkit.hub.checkpoint import load_state_dict, load_strict
from vsrkit.infer import make_config, upscale_tensor
from vsrkit.models.basicvsrpp import BasicVSRPlusPlus, SecondOrderDeformableAlignment
from vsrkit.models.spec import Protocol

GOLDEN_CASES = ["mmagic_basicvsrpp_dcn_offsets", "mmagic_basicvsrpp_hr_input"]


def golden(name: str) -> tuple[BasicVSRPlusPlus, dict[str, torch.Tensor]]:
    meta, io, d = load_case(name)
    assert meta["cls"] == "BasicVSRPlusPlusNet"
    model = BasicVSRPlusPlus(**meta["kwargs"]).eval()
    # mmagic's container {'state_dict': {'generator.<key>': ...}}: unwrapped by the hub, then loaded strictly
    sd = load_state_dict(d / "weights.pth")
    assert not any(k.startswith("generator") for k in sd)
    load_strict(model, sd, source=name)
    return model, io


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_golden(name):
    model, io = golden(name)
    with torch.no_grad():
        y = model(io["input"])
    assert_close(y, io["output"])


def _dy_dx_swapped(x, offset, *args, **kwargs):
    b, _, h, w = offset.shape
    return REAL_DCN(x, offset.view(b, -1, 2, h, w).flip(2).reshape(b, -1, h, w), *args, **kwargs)


def _tap_major(x, offset, weight, bias, stride, padding, dilation, mask):
    """Offsets and masks read as (tap, group) instead of (group, tap)."""
    b, _, h, w = offset.shape
    taps, groups = 9, offset.shape[1] // 18
    offset = offset.view(b, taps, groups, 2, h, w).transpose(1, 2).reshape(b, -1, h, w)
    mask = mask.view(b, taps, groups, h, w).transpose(1, 2).reshape(b, -1, h, w)
    return REAL_DCN(x, offset, weight, bias, stride, padding, dilation, mask)


REAL_DCN = bvpp.deform_conv2d


@pytest.mark.parametrize("wrong", [_dy_dx_swapped, _tap_major], ids=["dx-dy-swapped", "tap-major"])
def test_golden_case_guards_the_offset_layout(monkeypatch, wrong):
    """The golden case has live offsets and masks in every alignment module (16 groups): reading them in another
    layout moves the output far beyond the golden tolerance (measured: 4.7e-3 with (dx, dy) pairs, 2.1e-3 with
    taps before groups, against 1e-4)."""
    model, io = golden("mmagic_basicvsrpp_dcn_offsets")
    monkeypatch.setattr(bvpp, "deform_conv2d", wrong)
    with torch.no_grad():
        y = model(io["input"])
    assert (y - io["output"]).abs().max() > 1e-3


def test_flow_guided_offsets_with_zero_residue_shift_by_the_flow():
    """With the official initialisation (no offset residue, masks 0.5), the deformable alignment of the two states
    is a shift of each by its flow (first 8 groups by flow_1, last 8 by flow_2) followed by the convolution, times
    0.5: the flow (x, y) becomes (dy, dx) offsets for every group and tap."""
    torch.manual_seed(0)
    c, h, w = 16, 20, 24
    align = SecondOrderDeformableAlignment(2 * c, c, 3, padding=1, deform_groups=16).eval()
    x = torch.rand(1, 2 * c, h, w)
    cond = torch.rand(1, 3 * c, h, w)
    (dx1, dy1), (dx2, dy2) = (2, -1), (-3, 1)
    flow_1 = torch.tensor([float(dx1), float(dy1)]).view(1, 2, 1, 1).expand(1, 2, h, w)
    flow_2 = torch.tensor([float(dx2), float(dy2)]).view(1, 2, 1, 1).expand(1, 2, h, w)
    with torch.no_grad():
        y = align(x, cond, flow_1, flow_2)

    def shifted(t, dx, dy):  # s[y, x] = t[y + dy, x + dx], zero outside
        p = 4
        t = F.pad(t, (p, p, p, p))
        return t[..., p + dy: p + dy + h, p + dx: p + dx + w]

    s = torch.cat([shifted(x[:, :c], dx1, dy1), shifted(x[:, c:], dx2, dy2)], 1)
    want = F.conv2d(0.5 * s, align.weight, align.bias, padding=1)
    m = 5  # the border, where the shifted image's zero padding and the convolution's differ
    err = (y - want)[..., m:-m, m:-m].abs().max()
    assert err <= 1e-5 * want.abs().max(), err
    # the check has teeth: a flow read as (y, x) aligns elsewhere
    flipped = align(x, cond, flow_1.flip(1), flow_2.flip(1)).detach()
    assert (flipped - want)[..., m:-m, m:-m].abs().max() > 1e-2


@pytest.mark.parametrize("lr,scale,multiple,min_size", [(True, 4, 1, 64), (False, 1, 4, 256)])
def test_spec(lr, scale, multiple, min_size):
    spec = BasicVSRPlusPlus(16, 1, is_low_res_input=lr).spec
    assert spec.temporal.kind == "sequence"
    assert (spec.scale, spec.size_multiple, spec.min_size) == (scale, multiple, min_size)
    assert spec.protocol == Protocol(clip_overlap=bvpp.CHUNK_OVERLAP)


def test_default_arguments_and_key_names_are_mmagics():
    model = BasicVSRPlusPlus()
    assert (model.mid_channels, len(model.backbone["forward_2"].main[2]), model.cpu_cache_length) == (64, 7, 100)
    assert model.deform_align["backward_1"].max_residue_magnitude == 10
    keys = set(model.state_dict())
    for k in ("spynet.basic_module.5.basic_module.4.conv.weight", "spynet.mean",
              "deform_align.forward_2.conv_offset.6.weight", "backbone.backward_2.main.2.6.conv2.bias",
              "upsample1.upsample_conv.weight", "reconstruction.main.0.weight", "conv_last.bias"):
        assert k in keys, k
    assert model.deform_align["forward_1"].conv_offset[6].weight.shape == (27 * 16, 64, 3, 3)
    assert model.backbone["forward_2"].main[0].weight.shape[1] == 5 * 64
    hr = BasicVSRPlusPlus(is_low_res_input=False)
    assert "feat_extract.4.main.0.weight" in hr.state_dict() and hr.feat_extract[0].stride == (2, 2)


def test_bad_arguments_and_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="mid_channels 12"):
        BasicVSRPlusPlus(mid_channels=12)
    model = BasicVSRPlusPlus(8, 1).eval()
    with pytest.raises(ValueError, match=r"\[b, t, c, h, w\]"):
        model(torch.rand(3, 3, 64, 64))
    with pytest.raises(ValueError, match="multiples of 4, got 258x256"):
        BasicVSRPlusPlus(8, 1, is_low_res_input=False)(torch.rand(1, 2, 3, 258, 256))


def test_mirror_extended_clips_reuse_the_backward_flows(monkeypatch):
    """A clip followed by itself reversed: the forward flows are the backward ones reversed (one SpyNet call
    instead of two), with the same result as computing both."""
    torch.manual_seed(0)
    model = BasicVSRPlusPlus(8, 1).eval()
    x = torch.rand(1, 2, 3, 40, 40)
    x = torch.cat([x, x.flip(1)], 1)
    calls = []
    real = model.spynet.forward
    monkeypatch.setattr(model.spynet, "forward", lambda a, b: calls.append(1) or real(a, b))
    with torch.no_grad():
        y = model(x)
        assert len(calls) == 1
        monkeypatch.setattr(BasicVSRPlusPlus, "is_mirror_extended", staticmethod(lambda _x: False))
        want = model(x)
    assert len(calls) == 3
    assert (y - want).abs().max() <= 1e-5 * want.abs().max()


def test_single_frame_and_two_frames():
    torch.manual_seed(0)
    model = BasicVSRPlusPlus(8, 1).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 3, 36, 36)).shape == (1, 1, 3, 144, 144)
        assert model(torch.rand(2, 2, 3, 36, 44)).shape == (2, 2, 3, 144, 176)


def test_engine_runs_whole_clips_exactly_and_long_ones_in_chunks():
    """``--chunk`` at least the clip's length: one call, the plain forward's result. Shorter chunks: every frame
    once, in order, each from a chunk with context on both sides (small frames are padded to 64)."""
    torch.manual_seed(0)
    model = BasicVSRPlusPlus(8, 1).eval()
    x = torch.rand(5, 3, 40, 48)
    with torch.no_grad():
        want = model(F.pad(x, (0, 16, 0, 24), mode="reflect")[None])[0, ..., :160, :192]
    got = upscale_tensor(model, x, make_config("cpu", chunk=5))
    assert_close(got, want, tol=1e-5 * float(want.abs().max()))
    calls = []
    real = model.forward
    model.forward = lambda t: calls.append(t.shape[1]) or real(t)
    chunked = upscale_tensor(model, x, make_config("cpu", chunk=2, chunk_overlap=1))
    assert chunked.shape == want.shape and calls == [3, 4, 2]


def test_offsets_stay_float32_under_autocast():
    """(The whole model's sampling under bf16: tests/infer/test_fast_paths.py, with the other families.)"""
    torch.manual_seed(0)
    align = SecondOrderDeformableAlignment(32, 16, 3, padding=1, deform_groups=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        offset, mask = align.offset_mask(torch.rand(1, 48, 8, 8), 30 * torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8))
    assert offset.dtype == mask.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the CPU cache of long clips works on a GPU")
def test_cpu_cache_gives_the_same_numbers_on_a_gpu():
    torch.manual_seed(0)
    model = BasicVSRPlusPlus(8, 1).eval().cuda()
    x = torch.rand(1, 4, 3, 64, 64, device="cuda")
    with torch.no_grad():
        want = model(x).cpu()
        model.cpu_cache_length = 2
        got = model(x)
    assert got.device.type == "cpu"
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()


# ---- the released checkpoints


def test_release_table():
    """Every release mmagic lists (and the official repository's deblurring/denoising models): a vsrkit name, the
    constructor arguments of its config, an openmmlab URL whose file name carries the sha256 prefix."""
    rel = bvpp.RELEASES
    assert set(rel) == {
        "basicvsrpp-reds4", "basicvsrpp-vimeo-bi", "basicvsrpp-vimeo-bd", "basicvsrpp-ntire-vsr",
        "basicvsrpp-ntire-decompress-t1", "basicvsrpp-ntire-decompress-t2", "basicvsrpp-ntire-decompress-t3",
        "basicvsrpp-deblur-dvd", "basicvsrpp-deblur-gopro", "basicvsrpp-denoise",
    }
    for name, e in rel.items():
        assert e["arch"] == "BasicVSRPlusPlus" and e["licence"] == "Apache-2.0" and e["summary"]
        model = BasicVSRPlusPlus(**e["kwargs"])  # the kwargs build
        assert model.spec.scale == (4 if e["kwargs"]["is_low_res_input"] else 1)
        assert e["url"].startswith("https://download.openmmlab.com/mmediting/restorers/basicvsr_plusplus/")
        m = re.search(r"-([0-9a-f]{8})\.pth$", e["url"])
        assert m and e["sha256"] == m.group(1) and e["url"].endswith("/" + e["file"]), name
        Protocol(**e["protocol"])
    assert rel["basicvsrpp-reds4"]["published"]["REDS4 BIx4 PSNR RGB"] == 32.3855
    assert rel["basicvsrpp-vimeo-bi"]["published"]["Vid4 BIx4 PSNR Y"] == 27.7882
    assert rel["basicvsrpp-vimeo-bd"]["published"]["Vid4 BDx4 PSNR Y"] == 29.04
    assert rel["basicvsrpp-ntire-vsr"]["kwargs"] == {"mid_channels": 128, "num_blocks": 25, "is_low_res_input": True}
    assert rel["basicvsrpp-deblur-dvd"]["kwargs"] == {"mid_channels": 64, "num_blocks": 15, "is_low_res_input": False}


def test_released_names_and_recognition_tell_the_variants_apart():
    """Every release resolves by name with its URL and the sha256 prefix of its official file name; recognition from
    keys tells c64n7 from c128n25 and the low-resolution input from the same-size restoration variant."""
    from vsrkit.hub.detect import detect
    from vsrkit.models.registry import get_entry

    names = {"basicvsrpp-reds4": (64, 7, True), "basicvsrpp-vimeo-bi": (64, 7, True),
             "basicvsrpp-vimeo-bd": (64, 7, True), "basicvsrpp-ntire-vsr": (128, 25, True),
             "basicvsrpp-ntire-decompress-t1": (128, 25, False), "basicvsrpp-ntire-decompress-t2": (128, 25, False),
             "basicvsrpp-ntire-decompress-t3": (128, 25, False), "basicvsrpp-deblur-dvd": (64, 15, False),
             "basicvsrpp-deblur-gopro": (64, 15, False), "basicvsrpp-denoise": (64, 15, False)}
    for name, (mid, blocks, low_res) in names.items():
        family, entry = get_entry(name)
        assert family.name == "basicvsrpp" and entry.arch == "BasicVSRPlusPlus"
        w = entry.weights
        assert w.url.startswith("https://download.openmmlab.com/") and w.url.endswith(w.filename)
        assert len(w.sha256) == 8 and w.filename.removesuffix(".pth").endswith(w.sha256)
        with torch.device("meta"):
            sd = BasicVSRPlusPlus(**entry.kwargs).state_dict()
        assert detect(sd, w.filename) == ("basicvsrpp", "BasicVSRPlusPlus",
                                          {"mid_channels": mid, "num_blocks": blocks, "is_low_res_input": low_res})
