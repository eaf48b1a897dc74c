"""ONNX export of every family: onnxruntime's output within 1e-4 of PyTorch's (fp32), on the golden cases
where there is one; and exported files run through the same engine (``--backend onnxruntime``)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("onnx", reason="ONNX export tests need onnx (pip install 'vsrkit[onnx]')")
pytest.importorskip("onnxruntime", reason="ONNX export tests need onnxruntime (pip install 'vsrkit[onnx]')")

import vsrkit  # noqa: E402
from vsrkit.cli.main import main  # noqa: E402
from vsrkit.errors import VsrkitError  # noqa: E402
from vsrkit.export.onnx import OnnxModel, export_onnx  # noqa: E402
from vsrkit.infer import make_config, upscale_tensor  # noqa: E402
from vsrkit.hub.checkpoint import load_state_dict, load_strict  # noqa: E402
from vsrkit.models.basicvsr import IconVSR  # noqa: E402
from vsrkit.models.basicvsrpp import BasicVSRPlusPlus  # noqa: E402
from vsrkit.models.edgesr import build as build_esr  # noqa: E402
from vsrkit.models.vrt import VRT  # noqa: E402

from compare import assert_close_rel  # noqa: E402
from golden import assert_close, data_path, load_case  # noqa: E402


def golden_model(case: str):
    meta, io, d = load_case(case)
    if case.startswith("esr_"):
        model = build_esr(meta["kwargs"]["model_id"]).eval()
        model.load_state_dict(torch.load(d / "weights.pth", weights_only=True))
    else:
        model = vsrkit.load_model(weights=str(d / "weights.pth"))
    return model, io


def test_frame_model_exports_with_any_batch_and_size(tmp_path):
    model, io = golden_model("esr_tr_C4_K5_s2")
    meta = export_onnx(model, tmp_path / "esr.onnx")
    assert meta["max_abs_error"] <= 1e-4 and meta["size"] is None
    onnx_model = OnnxModel(tmp_path / "esr.onnx")
    assert onnx_model.spec == model.spec  # the contract survives the file
    assert_close(onnx_model(io["input"]), io["output"])  # the official output
    x = torch.rand(3, 1, 21, 50)
    with torch.no_grad():
        assert_close_rel(onnx_model(x), model(x))


def test_recurrent_model_exports_one_step_with_explicit_state_and_runs_in_the_engine(tmp_path):
    model, io = golden_model("rlsp_f64_s64")
    meta = export_onnx(model, tmp_path / "rlsp.onnx", size=16)
    assert meta["inputs"] == ["x", "state0", "state1"] and meta["outputs"] == ["y", "next_state0", "next_state1"]
    assert meta["max_abs_error"] <= 1e-4
    onnx_model = OnnxModel(tmp_path / "rlsp.onnx")
    # the engine carries the state from step to step: the whole golden sequence
    assert_close(upscale_tensor(onnx_model, io["input"][0], make_config("cpu")), io["output"][0])


@pytest.mark.parametrize("deform_op", [False, True], ids=["sampling-graph", "DeformConv"])
def test_deformable_window_model_exports_both_ways(tmp_path, deform_op):
    """EDVR with real (non-zero) offsets: the pure-PyTorch DCN as its sampling graph (opset 17) or as
    ONNX's DeformConv (opset 19); any frame size."""
    model, io = golden_model("edvr_small_dcn_offsets")
    path = tmp_path / "edvr.onnx"
    meta = export_onnx(model, path, deform_op=deform_op, check=False)
    import onnx

    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ("DeformConv" in ops) == deform_op and ("GridSample" in ops) != deform_op
    assert meta["deform_op"] == deform_op
    onnx_model = OnnxModel(path)
    assert_close(onnx_model(io["input"]), io["output"])
    x = torch.rand(1, 5, 3, 24, 40)
    with torch.no_grad():
        assert_close_rel(onnx_model(x), model(x))


def test_bidirectional_model_exports_a_fixed_clip_and_runs_as_clips_in_the_engine(tmp_path):
    model, io = golden_model("basicsr_basicvsr")
    meta = export_onnx(model, tmp_path / "basicvsr.onnx", size=64, frames=5, clip_overlap=1, check=False)
    assert meta["size"] == 64 and meta["frames"] == 5
    onnx_model = OnnxModel(tmp_path / "basicvsr.onnx")
    assert onnx_model.spec.temporal.kind == "sequence" and onnx_model.spec.protocol.clip == 5
    assert_close(onnx_model(io["input"]), io["output"])
    # through the engine: tiles of the exported size, clips of the exported length; the same schedule as
    # the PyTorch network given the same contract
    x = torch.rand(5, 3, 40, 70)
    cfg = make_config("cpu", tile=64, tile_overlap=8)
    model.spec = onnx_model.spec
    assert_close_rel(upscale_tensor(onnx_model, x, cfg), upscale_tensor(model, x, cfg))


def test_iconvsr_exports_with_its_keyframes(tmp_path):
    """Keyframes 0, 2 and the last frame (3): the refill at each, and the reflect padding to a multiple of 4."""
    torch.manual_seed(0)
    model = IconVSR(8, 1, keyframe_stride=2, temporal_padding=1).eval()
    meta = export_onnx(model, tmp_path / "iconvsr.onnx", size=42, frames=4, deform_op=True)
    assert meta["max_abs_error"] <= 1e-4


def test_vrt_exports_a_fixed_clip(tmp_path):
    meta, _, d = load_case("vrt_small_x4")
    kw = dict(meta["kwargs"], depths=[1] * 13, img_size=[2, 40, 40])  # the golden config, one block per stage
    torch.manual_seed(0)
    model = VRT(**kw).eval()
    out = export_onnx(model, tmp_path / "vrt.onnx", size=40, frames=2, deform_op=True)
    assert out["max_abs_error"] <= 1e-4


def test_basicvsrpp_exports_a_fixed_clip_with_live_offsets(tmp_path):
    """BasicVSR++ (the golden case with live offsets in every alignment module) as a clip model: onnxruntime gives
    mmagic's output; the clip overlap is capped to what a 5-frame clip allows."""
    meta, io, d = load_case("mmagic_basicvsrpp_dcn_offsets")
    model = BasicVSRPlusPlus(**meta["kwargs"]).eval()
    load_strict(model, load_state_dict(d / "weights.pth"), source=str(d))
    out = export_onnx(model, tmp_path / "basicvsrpp.onnx", size=64, frames=5)
    scale = float(io["output"].abs().max())
    assert out["max_abs_error"] <= 1e-5 * scale
    onnx_model = OnnxModel(tmp_path / "basicvsrpp.onnx")
    assert onnx_model.spec.protocol.clip == 5 and onnx_model.spec.protocol.clip_overlap == 2
    assert_close(onnx_model(io["input"]), io["output"], tol=1e-4 * scale)


def test_files_that_are_not_vsrkit_exports_are_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(g), str(tmp_path / "plain.onnx"))
    with pytest.raises(VsrkitError, match="not a vsrkit export"):
        OnnxModel(tmp_path / "plain.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(VsrkitError, match="not a readable ONNX model"):
        OnnxModel(tmp_path / "junk.onnx")


def test_export_then_upscale_with_onnxruntime_gives_the_torch_result(tmp_path):
    """`vsrkit export` then `vsrkit upscale --backend onnxruntime`: the same frames as the PyTorch backend."""
    from PIL import Image  # noqa: F401  (pillow comes with the test dependencies through scikit-image)

    meta, io, d = load_case("rlsp_f64_s64")
    src = data_path("clips", "carphone_pristine.mp4")
    runner = CliRunner()
    onnx_file = tmp_path / "rlsp.onnx"
    r = runner.invoke(main, ["export", "--weights", str(d / "weights.pth"), "-o", str(onnx_file)])
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and "max abs error" in r.output
    stored = json.loads(OnnxModel(onnx_file).session.get_modelmeta().custom_metadata_map["vsrkit"])
    assert stored["spec"]["temporal"]["kind"] == "recurrent"
    outs = {}
    for backend, weights in (("torch", d / "weights.pth"), ("onnxruntime", onnx_file)):
        out = tmp_path / backend
        r = runner.invoke(main, ["upscale", str(src), "-o", str(out), "--weights", str(weights), "--backend", backend,
                                 "--max-frames", "3", "--precision", "fp32", "-q"])
        assert r.exit_code == 0, r.output
        outs[backend] = [np.asarray(Image.open(p)).astype(int) for p in sorted(out.glob("*.png"))]
    assert len(outs["torch"]) == len(outs["onnxruntime"]) == 3
    for a, b in zip(outs["torch"], outs["onnxruntime"]):
        assert np.abs(a - b).max() <= 1  # float outputs within 1e-6 may round the other way


def test_export_refuses_to_overwrite_and_needs_a_model(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["export", "-o", str(tmp_path / "m.onnx")])
    assert r.exit_code == 2 and "give a model name" in r.output
    (tmp_path / "m.onnx").write_bytes(b"keep")
    r = runner.invoke(main, ["export", "esr-tr", "-o", str(tmp_path / "m.onnx")])
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert (tmp_path / "m.onnx").read_bytes() == b"keep"


def test_released_rlsp_exports_one_step_and_runs_in_the_engine(tmp_path):
    """The released RLSP (its hidden state and feedback as explicit inputs and outputs) through the engine:
    onnxruntime's frames are the PyTorch model's."""
    from vsrkit.models.rlsp import RLSPReleased

    torch.manual_seed(0)
    model = RLSPReleased(layers=3, filters=8).eval()
    meta = export_onnx(model, tmp_path / "rlsp_released.onnx", size=16)
    assert meta["inputs"] == ["x", "state0", "state1"] and meta["max_abs_error"] <= 1e-4
    x = torch.rand(4, 3, 24, 20)
    cfg = make_config("cpu")
    assert_close_rel(upscale_tensor(OnnxModel(tmp_path / "rlsp_released.onnx"), x, cfg), upscale_tensor(model, x, cfg))
