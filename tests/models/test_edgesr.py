"""edge-SR family: golden outputs, official ids and file names, shape detection, bicubic by definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from golden import assert_close, load_case
from vsrkit.hub.detect import detect
from vsrkit.models.edgesr import FAMILY, detect_edgesr
from vsrkit.models.registry import get_entry
from vsrkit.hub.checkpoint import load_state_dict, load_strict
from vsrkit.errors import VsrkitError
from vsrkit.models import edgesr
from vsrkit.models.spec import Temporal

CASES = [
    "esr_bicubic_s2",
    "esr_cnn_C4_D3_S6_s2",
    "esr_espcn_D4_S6_s2",
    "esr_fsrcnn_D6_S3_M1_s2",
    "esr_fsrcnn_D6_S3_M4_s2",
    "esr_max_C4_K5_s2",
    "esr_tm_C4_K5_s2",
    "esr_tr_C4_K5_s2",
]


@pytest.mark.parametrize("case", CASES)
def test_golden(case):
    meta, io, d = load_case(case)
    model_id = meta["kwargs"]["model_id"]
    sd = load_state_dict(d / "weights.pth")
    cls_name, kwargs = detect_edgesr(sd, f"model-files/{model_id}.model")
    assert kwargs == {"model_id": model_id}
    model = getattr(edgesr, cls_name)(**kwargs).eval()
    load_strict(model, sd)
    # the released checkpoint layout: every key and shape listed in case.json
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == meta["released_weights"]["keys"]
    with torch.no_grad():
        out = model(io["input"])
    assert_close(out, io["output"])


def test_golden_cases_all_listed():
    from golden import GOLDEN

    if not GOLDEN.is_dir():
        pytest.skip("no golden data")
    assert sorted(p.name for p in GOLDEN.glob("esr_*")) == sorted(CASES)


def test_contract_attributes():
    for entry in FAMILY.entries:
        model = getattr(edgesr, entry.arch)(**entry.kwargs)
        assert model.spec.temporal == Temporal("frame")
        assert model.spec.channels == 1 and model.spec.size_multiple == 1
        assert "Y only; chroma bicubic" in entry.summary
        assert model.spec.scale == int(entry.kwargs["model_id"].split("_")[1][1:])
        with torch.device("meta"):  # `vsrkit models` builds them on the meta device
            getattr(edgesr, entry.arch)(**entry.kwargs)
    names = {e.name for e in FAMILY.entries}
    assert {f"{n}-x{s}" for n in ("esr-max", "esr-tm", "esr-tr", "esr-cnn", "espcn", "fsrcnn", "bicubic")
            for s in (2, 3, 4)} | {"espcn-fast-x2", "espcn-fast-x4"} == names  # + vsrkit's own bundled ESPCNs
    # the scale is in the name; a plain name is the x4 model
    assert get_entry("esr-tr-x2")[1].kwargs == {"model_id": "eSR-TR_s2_K7_C16"}
    assert get_entry("esr-tr")[1].kwargs == {"model_id": "eSR-TR_s4_K7_C16"}
    assert get_entry("espcn")[1].name == "espcn-x4"


# every kind at every scale, with hyper-parameters from the released model-files
IDS = [
    f"{tpl.format(s=s)}"
    for s in (2, 3, 4)
    for tpl in (
        "eSR-MAX_s{s}_K3_C1",
        "eSR-TM_s{s}_K5_C2",
        "eSR-TR_s{s}_K7_C3",
        "eSR-CNN_s{s}_C4_D3_S6",
        "eSR-CNN_s{s}_C2_D0_S3",
        "ESPCN_s{s}_D0_S3",
        "ESPCN_s{s}_D4_S6",
        "FSRCNN_s{s}_D6_S3_M1",
        "FSRCNN_s{s}_D6_S3_M4",
        "Bicubic_s{s}",
    )
]


@pytest.mark.parametrize("model_id", IDS)
def test_every_id_shape_and_filename_roundtrip(model_id, tmp_path):
    model = edgesr.build(model_id).eval()
    s = model.spec.scale
    with torch.no_grad():
        y = model(torch.rand(2, 1, 7, 9))
    assert y.shape == (2, 1, 7 * s, 9 * s)
    # saved like the official model-files and detected by file name
    path = tmp_path / f"{model_id}.model"
    torch.save(model.state_dict(), path)
    sd = load_state_dict(path)
    assert detect_edgesr(sd, str(path)) == (type(model).__name__, {"model_id": model_id})
    again = edgesr.build(model_id)
    load_strict(again, sd)


def test_keyword_hyperparameters():
    assert edgesr.EdgeSRTR(scale=4, K=3, C=5).model_id == "eSR-TR_s4_K3_C5"
    assert edgesr.EdgeSRCNN(scale=2, C=8, D=3, S=6).model_id == "eSR-CNN_s2_C8_D3_S6"
    assert edgesr.FSRCNN(scale=3, D=56, S=12, M=4).model_id == "FSRCNN_s3_D56_S12_M4"
    assert edgesr.ESPCN("ESPCN_s2_D64_S32", scale=4).model_id == "ESPCN_s4_D64_S32"
    assert edgesr.Bicubic(scale=3).spec.scale == 3
    # token order does not matter in an id (as in the official parser); the canonical id is official order
    assert edgesr.EdgeSRCNN("eSR-CNN_s2_D3_S6_C8").model_id == "eSR-CNN_s2_C8_D3_S6"
    with pytest.raises(ValueError, match="needs a model_id"):
        edgesr.EdgeSRTR(scale=2, K=5)
    with pytest.raises(ValueError, match="not eSR-TR"):
        edgesr.EdgeSRTR("eSR-TM_s2_K5_C4")
    with pytest.raises(ValueError, match="odd"):
        edgesr.EdgeSRMAX("eSR-MAX_s2_K4_C4")
    with pytest.raises(ValueError, match="pixel-shuffle"):
        edgesr.Bicubic("Bicubic_s2_PS")


@pytest.mark.parametrize(
    "name",
    [
        "eSR-TR_s4_K3.model",  # C missing
        "eSR-CNN_s2_C8_D3_X6.model",  # unknown letter
        "FSRCNN_s2_D56_S12_M4_M4.model",  # repeated
        "ESPCN_s2_D64_S32 (1).model",  # download-renamed
        "esr-tr_s2_k5_c4.model",  # lower-cased letters
    ],
)
def test_bad_file_names(name):
    sd = edgesr.EdgeSRTR("eSR-TR_s2_K5_C4").state_dict()
    with pytest.raises(VsrkitError, match="cannot parse edge-SR model id"):
        detect(sd, name)


def test_file_name_must_fit_weights():
    sd = edgesr.EdgeSRTR("eSR-TR_s2_K5_C4").state_dict()
    with pytest.raises(VsrkitError, match="does not fit eSR-TR_s2_K5_C8"):
        detect_edgesr(sd, "/x/eSR-TR_s2_K5_C8.model")
    with pytest.raises(VsrkitError, match="does not fit ESPCN"):
        detect_edgesr(sd, "ESPCN_s2_D4_S6.pth")
    with pytest.raises(VsrkitError, match="named like an edge-SR"):
        detect_edgesr({"conv1.weight": torch.zeros(1)}, "eSR-TR_s2_K5_C4.model")


def test_detect_from_shapes():
    def sd(model_id):
        return edgesr.build(model_id).state_dict()

    assert detect_edgesr(sd("ESPCN_s3_D64_S32")) == ("ESPCN", {"model_id": "ESPCN_s3_D64_S32"})
    assert detect_edgesr(sd("ESPCN_s4_D0_S9"), "weights.pth") == ("ESPCN", {"model_id": "ESPCN_s4_D0_S9"})
    for s in (2, 3, 4):
        assert detect_edgesr(sd(f"Bicubic_s{s}")) == ("Bicubic", {"model_id": f"Bicubic_s{s}"})
    # 2*9*C with C odd: only x3 fits
    assert detect_edgesr(sd("eSR-CNN_s3_C3_D3_S6")) == ("EdgeSRCNN", {"model_id": "eSR-CNN_s3_C3_D3_S6"})
    with pytest.raises(VsrkitError, match="scale s and C cannot be told"):
        detect_edgesr(sd("eSR-CNN_s2_C4_D3_S6"))
    with pytest.raises(VsrkitError, match=r"variant \(MAX/TM/TR\), scale s and C cannot be told"):
        detect_edgesr(sd("eSR-TR_s2_K5_C4"))
    with pytest.raises(VsrkitError, match="scale s cannot be told"):
        detect_edgesr(sd("FSRCNN_s2_D56_S12_M4"))
    # other families are left alone
    assert detect_edgesr({"conv1.weight": torch.zeros(1), "conv_out.weight": torch.zeros(1)}) is None
    assert detect_edgesr({"spynet.mean": torch.zeros(1)}, "BasicVSR_REDS4.pth") is None


def _cubic(x, a=-0.5):
    x = np.abs(x)
    return np.where(x < 1, (a + 2) * x**3 - (a + 3) * x**2 + 1, np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0.0))


def _bicubic_matrix(n, s):
    """Independent 1-D bicubic interpolation matrix: Keys a=-0.5, samples outside the image are 0.

    Output pixel o sits at input position (o + 1/2)/s - 1/2 (centres aligned) for even s, and o/s - 1/2 for
    odd s (the official Bicubic model's grid).
    """
    o = np.arange(n * s)
    pos = (o + (0.5 if s % 2 == 0 else 0.0)) / s - 0.5
    return _cubic(pos[:, None] - np.arange(n)[None, :])


@pytest.mark.parametrize("s", [2, 3, 4])
def test_bicubic_is_bicubic_interpolation(s):
    torch.manual_seed(0)
    x = torch.rand(2, 1, 11, 14, dtype=torch.float64)
    model = edgesr.Bicubic(f"Bicubic_s{s}").double()
    ref = np.einsum("oh,bchw,pw->bcop", _bicubic_matrix(11, s), x.numpy(), _bicubic_matrix(14, s))
    with torch.no_grad():
        y = model(x)
    # float32 weights (as in the released files): x3 taps are not exactly representable
    assert (y - torch.from_numpy(ref)).abs().max().item() < 1e-6
    # the interior of a constant image stays constant (partition of unity)
    with torch.no_grad():
        c = model(torch.full((1, 1, 12, 12), 0.7, dtype=torch.float64))
    assert (c[..., 2 * s : -2 * s, 2 * s : -2 * s] - 0.7).abs().max() < 1e-6


@pytest.mark.parametrize("s", [2, 3, 4])
def test_bicubic_filter_then_shuffle_is_official_transposed_conv(s):
    """The edge-SR-shaped forward (polyphase filters + pixel shuffle) is the official ConvTranspose2d, for any weight."""
    torch.manual_seed(s)
    model = edgesr.Bicubic(scale=s).double()
    with torch.no_grad():
        model.net.weight.normal_()
    x = torch.rand(1, 1, 9, 10, dtype=torch.float64)
    ref = F.conv_transpose2d(x, model.net.weight, stride=s, padding=model.padding, output_padding=model.output_padding)
    with torch.no_grad():
        y = model(x)
    assert ref.shape == y.shape
    assert (y - ref).abs().max().item() < 1e-12
    assert model.polyphase_filters().shape[0] == s * s
    # gradients reach the official parameter
    model(x).sum().backward()
    assert model.net.weight.grad is not None and model.net.weight.grad.abs().sum() > 0

