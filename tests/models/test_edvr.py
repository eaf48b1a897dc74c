"""EDVR: golden cases from BasicSR, forward_sliding, detect, strict loading, the original-name converter."""

from __future__ import annotations

import pytest
import torch

from compare import assert_close_rel
from golden import assert_close, load_case
from vsrkit.hub.checkpoint import load_state_dict, load_strict
from vsrkit.errors import VsrkitError
from vsrkit.models import edvr as pretrained
from vsrkit.models.edvr import convert_state_dict, detect_edvr as detect
from vsrkit.models.edvr import EDVR, PCDAlignment, TSAFusion, forward_sliding, upsample_in_strips

CASES = ["edvr_m_tsa", "edvr_m_notsa", "edvr_predeblur_hrin", "edvr_small_dcn_offsets"]


def _golden_model(name):
    meta, io, d = load_case(name)
    sd = load_state_dict(d / "weights.pth")
    model = EDVR(**meta["kwargs"]).eval()
    load_strict(model, sd, source=name)
    return meta, io, sd, model


@pytest.mark.parametrize("name", CASES)
def test_golden(name):
    meta, io, sd, model = _golden_model(name)
    with torch.no_grad():
        out = model(io["input"])
        slid = forward_sliding(model, io["input"])
    assert_close(out, io["output"])
    assert_close(slid[:, 0], io["output"], what="forward_sliding")
    assert model.spec.scale == (1 if meta["kwargs"]["hr_in"] else 4)
    assert model.spec.size_multiple == (16 if meta["kwargs"]["hr_in"] else 4)
    # detect reads the configuration back from the checkpoint
    cls, kwargs = detect(sd, "weights.pth")
    assert cls == "EDVR"
    expect = {k: v for k, v in meta["kwargs"].items() if k != "center_frame_idx"}
    assert kwargs == expect


def test_golden_aligned_feat_nontrivial_dcn():
    _, io, _, model = _golden_model("edvr_small_dcn_offsets")
    x = io["input"]
    b, t, c, h, w = x.shape
    with torch.no_grad():
        feats = [f.view(b, t, *f.shape[1:]) for f in model.extract_features(x.reshape(b * t, c, h, w))]
        aligned = model.align_window(feats)
        # the official per-neighbour call signature gives the same
        ref = [f[:, model.center_frame_idx] for f in feats]
        one = model.pcd_align([f[:, 0] for f in feats], ref)
    assert_close(aligned, io["aligned_feat"], what="aligned_feat")
    assert_close(one, io["aligned_feat"][:, 0], what="aligned_feat[0]")


@pytest.mark.parametrize("name", ["edvr_small_dcn_offsets", "edvr_predeblur_hrin"])
def test_forward_sliding_equals_windows(name):
    _, io, _, model = _golden_model(name)
    torch.manual_seed(5)
    b, t, c, h, w = io["input"].shape
    x = torch.rand(2, t + 2, c, h, w)  # 3 windows, batch 2
    with torch.no_grad():
        slid = forward_sliding(model, x, frame_chunk=3)
        for k in range(3):
            assert_close_rel(slid[:, k], model(x[:, k : k + t]), what=f"window {k}")
    assert slid.shape == (2, 3, c, h * model.spec.scale, w * model.spec.scale)


def test_upsample_in_strips_is_exact():
    """The strip adapter (8-row strips here, 3 of them) equals the network's plain upsampling."""
    torch.manual_seed(0)
    m = EDVR(num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1).eval()
    feat, centre = torch.rand(2, 8, 20, 6), torch.rand(2, 3, 20, 6)
    with torch.no_grad():
        whole = m.upsample(feat, centre)
        strips = upsample_in_strips(m, feat, centre, budget=1)
    assert_close_rel(strips, whole)


def test_contract_attributes():
    m = EDVR(num_feat=8, num_extract_block=1, num_reconstruct_block=1, deformable_groups=2)
    assert m.spec.temporal.kind == "window" and m.spec.temporal.window == 5 and m.spec.temporal.ahead == 2
    assert m.spec.sliding is forward_sliding
    assert m.spec.channels == 3 and m.spec.scale == 4 and m.spec.size_multiple == 4
    d = EDVR(num_feat=8, num_extract_block=1, num_reconstruct_block=1, deformable_groups=2,
             with_predeblur=True, hr_in=True)
    assert d.spec.scale == 1 and d.spec.size_multiple == 16
    # the end padding is the protocol of the released models, not an argument of the network
    assert pretrained.default_protocol("EDVR", {}).end_padding == "reflection_circle"
    assert pretrained.default_protocol("EDVR", {"with_predeblur": True}).end_padding == "replicate"
    assert {e.name: e.protocol.end_padding for e in pretrained.FAMILY.entries if e.weights}["edvr-m-reds"] == "reflection_circle"
    with pytest.raises(ValueError):
        EDVR(hr_in=True, with_predeblur=False)
    with pytest.raises(ValueError):
        m(torch.rand(1, 5, 3, 10, 12))  # not a multiple of 4


def test_building_blocks_importable_with_official_signatures():
    pcd = PCDAlignment(num_feat=8, deformable_groups=2)
    tsa = TSAFusion(num_feat=8, num_frame=3, center_frame_idx=1)
    assert "dcn_pack.l1.conv_offset.weight" in pcd.state_dict()
    assert "cas_dcnpack.weight" in pcd.state_dict()
    assert tsa(torch.rand(1, 3, 8, 8, 8)).shape == (1, 8, 8, 8)


def test_strict_load_names_first_mismatch(tmp_path):
    _, _, sd, _ = _golden_model("edvr_m_tsa")
    path = tmp_path / "edvr.pth"
    torch.save({"params": sd}, path)
    loaded = load_state_dict(path)
    other = EDVR(num_feat=32, num_extract_block=2, num_reconstruct_block=3, deformable_groups=8, with_tsa=True)
    with pytest.raises(VsrkitError, match=r"missing key 'reconstruction\.2\.conv1\.weight'"):
        load_strict(other, loaded, source=str(path))
    notsa = EDVR(num_feat=32, num_extract_block=2, num_reconstruct_block=2, with_tsa=False)
    pattern = r"missing key 'fusion\.weight'.*unexpected key 'fusion\.temporal_attn1\.weight'"
    with pytest.raises(VsrkitError, match=pattern):
        load_strict(notsa, loaded, source=str(path))
    wide = EDVR(num_feat=16, num_extract_block=2, num_reconstruct_block=2)
    with pytest.raises(VsrkitError, match="has shape"):
        load_strict(wide, loaded, source=str(path))


def test_detect_rejects_other_models():
    _, _, sd, _ = _golden_model("edvr_m_tsa")
    # IconVSR: EDVR modules under 'edvr.' beside BasicVSR trunks
    tail = ("reconstruction", "upconv", "conv_hr", "conv_last")
    icon = {f"edvr.{k}": v for k, v in sd.items() if not k.startswith(tail)}
    icon["backward_trunk.main.0.weight"] = torch.zeros(1)
    assert detect(icon) is None
    # BasicSR's EDVR_*_pretrained_for_IconVSR: feature extractor only
    fe = {k: v for k, v in sd.items() if not k.startswith(tail)}
    assert detect(fe) is None
    assert detect({"conv_first.weight": torch.zeros(1)}) is None


def test_detect_counts_and_groups():
    m = EDVR(num_feat=8, num_frame=7, deformable_groups=4, num_extract_block=3, num_reconstruct_block=4,
             with_tsa=False, with_predeblur=True)
    cls, kw = detect(m.state_dict())
    assert kw == dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_frame=7, deformable_groups=4, num_extract_block=3,
                      num_reconstruct_block=4, hr_in=False, with_predeblur=True, with_tsa=False)


def _to_original_names(sd):
    """BasicSR -> xinntao/EDVR names (BasicSR convert_models.py:convert_edvr), to test the inverse."""
    import re

    out = {}
    for k, v in sd.items():
        o = k
        o = re.sub(r"^predeblur\.stride_conv_hr1\.", "pre_deblur.conv_first_2.", o)
        o = re.sub(r"^predeblur\.stride_conv_hr2\.", "pre_deblur.conv_first_3.", o)
        o = re.sub(r"^predeblur\.conv_first\.", "pre_deblur.conv_first_1.", o)
        o = re.sub(r"^predeblur\.stride_conv_l([23])\.", r"pre_deblur.deblur_L\1_conv.", o)
        o = re.sub(r"^predeblur\.resblock_l3\.", "pre_deblur.RB_L3_1.", o)
        o = re.sub(r"^predeblur\.resblock_l2_(\d)\.", r"pre_deblur.RB_L2_\1.", o)
        o = re.sub(r"^predeblur\.resblock_l1\.(\d)\.", lambda m: f"pre_deblur.RB_L1_{int(m.group(1)) + 1}.", o)
        o = re.sub(r"^conv_l([23])_(\d)\.", r"fea_L\1_conv\2.", o)
        o = re.sub(r"^pcd_align\.dcn_pack\.l(\d)\.conv_offset\.", r"pcd_align.L\1_dcnpack.conv_offset_mask.", o)
        o = re.sub(r"^pcd_align\.dcn_pack\.l(\d)\.", r"pcd_align.L\1_dcnpack.", o)
        o = re.sub(r"^pcd_align\.offset_conv(\d)\.l(\d)\.", r"pcd_align.L\2_offset_conv\1.", o)
        o = re.sub(r"^pcd_align\.feat_conv\.l(\d)\.", r"pcd_align.L\1_fea_conv.", o)
        o = re.sub(r"^pcd_align\.cas_dcnpack\.conv_offset\.", "pcd_align.cas_dcnpack.conv_offset_mask.", o)
        o = re.sub(r"^fusion\.temporal_attn1\.", "tsa_fusion.tAtt_2.", o)
        o = re.sub(r"^fusion\.temporal_attn2\.", "tsa_fusion.tAtt_1.", o)
        o = re.sub(r"^fusion\.feat_fusion\.", "tsa_fusion.fea_fusion.", o)
        o = re.sub(r"^fusion\.spatial_attn_add(\d)\.", r"tsa_fusion.sAtt_add_\1.", o)
        o = re.sub(r"^fusion\.spatial_attn_l(\d)\.", r"tsa_fusion.sAtt_L\1.", o)
        o = re.sub(r"^fusion\.spatial_attn(\d)\.", r"tsa_fusion.sAtt_\1.", o)
        o = re.sub(r"^fusion\.", "tsa_fusion.", o)
        o = re.sub(r"^reconstruction\.", "recon_trunk.", o)
        o = re.sub(r"^conv_hr\.", "HRconv.", o)
        out[o] = v
    return out


@pytest.mark.parametrize("kw", [dict(with_tsa=True), dict(with_tsa=False), dict(with_predeblur=True, hr_in=True)])
def test_convert_original_names_round_trip(kw):
    m = EDVR(num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=2, **kw)
    sd = m.state_dict()
    orig = _to_original_names(sd)
    assert "pcd_align.L1_offset_conv1.weight" in orig
    back = convert_state_dict(orig)
    assert set(back) == set(sd) and all(back[k] is sd[k] for k in sd)
    cls, detected = detect(orig)
    assert cls == "EDVR" and detected["with_tsa"] == kw.get("with_tsa", True)
    assert detected["hr_in"] == kw.get("hr_in", False)


def test_models_entries():
    names = [e.name for e in pretrained.FAMILY.entries]
    assert len(names) == len(set(names))
    for e in pretrained.FAMILY.entries:
        assert e.arch == "EDVR" and e.name.startswith("edvr")
        if e.weights:
            assert e.weights.url and "drive.usercontent.google.com" in e.weights.url
            assert e.weights.filename.split("-")[-1].startswith(e.weights.sha256)
    lbig = next(e for e in pretrained.FAMILY.entries if e.name == "edvr-l")
    m = EDVR(**lbig.kwargs)
    n = sum(p.numel() for p in m.parameters())
    assert 20e6 < n < 21e6  # EDVR-L has ~20.7 M parameters
