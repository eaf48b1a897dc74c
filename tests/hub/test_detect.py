"""Checkpoint recognition round trips: save several configurations of each family, recognise each back."""

from __future__ import annotations

import json

import pytest
import torch

import vsrkit
from vsrkit.errors import VsrkitError
from vsrkit.hub.detect import detect
from vsrkit.models.family import count_blocks
from vsrkit.models.registry import all_families
from vsrkit.hub.loader import build

from golden import GOLDEN

CONFIGS = [
    ("basicvsr", "BasicVSR", {"num_feat": 8, "num_block": 1}),
    ("basicvsr", "BasicVSR", {"num_feat": 16, "num_block": 3}),
    ("basicvsr", "IconVSR", {"num_feat": 8, "num_block": 2, "keyframe_stride": 5, "temporal_padding": 2}),
    ("basicvsr", "IconVSR", {"num_feat": 16, "num_block": 1, "keyframe_stride": 5, "temporal_padding": 3}),
    ("edvr", "EDVR", dict(num_in_ch=3, num_out_ch=3, num_feat=16, num_frame=5, deformable_groups=4, num_extract_block=1,
                          num_reconstruct_block=2, hr_in=False, with_predeblur=False, with_tsa=True)),
    ("edvr", "EDVR", dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_frame=7, deformable_groups=2, num_extract_block=2,
                          num_reconstruct_block=1, hr_in=False, with_predeblur=False, with_tsa=False)),
    ("edvr", "EDVR", dict(num_in_ch=3, num_out_ch=3, num_feat=16, num_frame=3, deformable_groups=8, num_extract_block=1,
                          num_reconstruct_block=1, hr_in=True, with_predeblur=True, with_tsa=True)),
    ("rlsp", "RLSP", {"layers": 3, "filters": 8, "state_dim": 8, "kernel_size": 3, "factor": 4, "in_channels": 3}),
    ("rlsp", "RLSP", {"layers": 5, "filters": 16, "state_dim": 16, "kernel_size": 5, "factor": 4, "in_channels": 1}),
    ("rlsp", "RLSP", {"layers": 7, "filters": 48, "state_dim": 48, "kernel_size": 3, "factor": 4, "in_channels": 3}),
    ("rlsp", "RLSPReleased", {"layers": 7, "filters": 48, "state_dim": 48, "factor": 4}),
    ("rlsp", "RLSPReleased", {"layers": 4, "filters": 8, "state_dim": 8, "factor": 2}),
    ("edgesr", "ESPCN", {"model_id": "ESPCN_s3_D16_S8"}),
    ("edgesr", "Bicubic", {"model_id": "Bicubic_s4"}),
    ("edgesr", "EdgeSRCNN", {"model_id": "eSR-CNN_s3_C3_D3_S6"}),
]


def _roundtrip(family, arch, kwargs, tmp_path, filename="ckpt.pth"):
    with torch.device("meta"):
        shapes = build(family, arch, kwargs).state_dict()
    found = detect({k: torch.empty(v.shape, device="meta") for k, v in shapes.items()}, filename)
    assert found == (family, arch, kwargs)
    # and a real file through load_model, on a small configuration, loads strictly with the same weights
    if sum(v.numel() for v in shapes.values()) < 300_000:
        torch.manual_seed(0)
        model = build(family, arch, kwargs)
        path = tmp_path / filename
        torch.save({"params": model.state_dict()}, path)
        back = vsrkit.load_model(weights=str(path))
        assert type(back) is type(model)
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), back.state_dict().values()))


@pytest.mark.parametrize("family,arch,kwargs", CONFIGS, ids=lambda v: v if isinstance(v, str) else None)
def test_each_configuration_is_recognised_back(family, arch, kwargs, tmp_path):
    _roundtrip(family, arch, kwargs, tmp_path)


def test_edge_sr_ids_that_shapes_cannot_tell_come_from_the_official_file_name(tmp_path):
    for model_id, arch in (("FSRCNN_s3_D12_S4_M2", "FSRCNN"), ("eSR-TR_s2_K5_C4", "EdgeSRTR"),
                           ("eSR-MAX_s4_K3_C2", "EdgeSRMAX")):
        _roundtrip("edgesr", arch, {"model_id": model_id}, tmp_path, f"{model_id}.model")


def test_vrt_configurations_are_recognised_back(tmp_path):
    path = GOLDEN / "vrt_official_configs.json"
    if not path.is_file():
        pytest.skip(f"{path} not found (../shared is not beside this checkout)")
    configs = json.loads(path.read_text())
    small = json.loads((GOLDEN / "vrt_small_x4" / "case.json").read_text())["kwargs"]
    kwargs = [small, dict(small, pa_frames=4), *(c["kwargs"] for c in configs.values() if "kwargs" in c)]
    for kw in kwargs:
        with torch.device("meta"):
            sd = build("vrt", "VRT", kw).state_dict()
        family, arch, found = detect(sd, "vrt.pth")
        assert (family, arch) == ("vrt", "VRT")
        for k, v in kw.items():
            if k in found:
                assert found[k] == (list(v) if isinstance(v, tuple) else v), k


def test_rules_are_checked_in_the_declared_order():
    rules = [(f.name, r) for f in all_families() for r in f.rules]
    built_in = [(f, r.read.__name__) for f, r in rules if f in ("basicvsr", "edvr", "rlsp", "edgesr", "vrt")]
    assert [f for f, _ in built_in] == ["basicvsr", "edvr", "rlsp", "rlsp", "rlsp", "edgesr", "vrt"]
    assert [n for _, n in built_in[2:5]] == ["detect_rlsp", "detect_rlsp_released", "detect_rlsp_released"]


def test_the_one_block_counter():
    sd = {f"trunk.{i}.conv1.weight": torch.zeros(1) for i in range(4)} | {"trunk.10x.weight": torch.zeros(1)}
    assert count_blocks(sd, "trunk.") == 4
    assert count_blocks(sd, "other.") == 0
    del sd["trunk.2.conv1.weight"]
    with pytest.raises(VsrkitError, match="non-contiguous"):
        count_blocks(sd, "trunk.")
