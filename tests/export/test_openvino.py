"""The OpenVINO backend (``vsrkit.export.openvino``): every family through the same engine within the tolerance
the onnxruntime backend meets (1e-4 against PyTorch or the golden output, fp32); BasicVSR's exact two-pass
streaming; the on-disk cache (hit the second time, a damaged entry rebuilt); deterministic int8 calibration;
the precision budgets; and a one-line error without the package."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import vsrkit
from vsrkit.cli.main import main
from vsrkit.errors import VsrkitError
from vsrkit.infer import make_config, upscale_tensor
from vsrkit.models.edgesr import build as build_esr

from golden import assert_close, data_path, load_case

HAVE_OV = importlib.util.find_spec("openvino") is not None and importlib.util.find_spec("nncf") is not None
needs_ov = pytest.mark.skipif(not HAVE_OV, reason="OpenVINO tests need openvino and nncf (pip install 'vsrkit[openvino]')")


def golden_model(case: str):
    meta, io, d = load_case(case)
    if case.startswith("esr_"):
        model = build_esr(meta["kwargs"]["model_id"]).eval()
        model.load_state_dict(torch.load(d / "weights.pth", weights_only=True))
    else:
        model = vsrkit.load_model(weights=str(d / "weights.pth"))
    return model, io


def ov(model, tmp_path, **kw):
    from vsrkit.export.openvino import OpenVinoModel

    return OpenVinoModel(model, cache=kw.pop("cache", tmp_path / "ov"), **kw)


def engine_config(**kw):
    return make_config("cpu", channels_last=False, **kw)


@needs_ov
def test_frame_model_takes_any_batch_and_size(tmp_path):
    model, io = golden_model("esr_tr_C4_K5_s2")
    m = ov(model, tmp_path)
    assert m.spec == model.spec  # the contract is the network's
    assert_close(m(io["input"]), io["output"])
    x = torch.rand(3, 1, 21, 50)
    with torch.no_grad():
        assert_close(m(x), model(x))


@needs_ov
def test_window_model_with_deformable_alignment(tmp_path):
    """EDVR with real (non-zero) offsets; the sliding fast path is the engine's per-window schedule here."""
    model, io = golden_model("edvr_small_dcn_offsets")
    m = ov(model, tmp_path)
    assert m.spec.sliding is None and m.spec.temporal == model.spec.temporal
    assert_close(m(io["input"]), io["output"])
    x = torch.rand(2, 5, 3, 24, 40)
    with torch.no_grad():
        assert_close(m(x), model(x))


@needs_ov
def test_recurrent_model_carries_its_state_through_the_engine(tmp_path):
    model, io = golden_model("rlsp_f64_s64")
    m = ov(model, tmp_path)
    assert_close(upscale_tensor(m, io["input"][0], engine_config()), io["output"][0])


@needs_ov
@pytest.mark.parametrize("chunk", [2, 24], ids=["blocks-of-2", "one-block"])
def test_basicvsr_streams_its_two_passes_exactly(tmp_path, chunk):
    """Five frames in blocks of 2 (a first, a middle and a short last block: the steps at the video's ends
    stand in zeros for the missing state) or one block: the golden (whole-clip, official) output."""
    model, io = golden_model("basicsr_basicvsr")
    m = ov(model, tmp_path)
    assert m.spec.temporal.kind == "bidirectional" and m.spec.passes is not None
    assert_close(upscale_tensor(m, io["input"][0], engine_config(chunk=chunk)), io["output"][0])
    # per frame: the alignment (f32) and the body of each direction, converted once per frame size
    assert {"align-backward-64x64", "body-backward-64x64", "align-forward-64x64", "body-forward-64x64"} <= set(m.parts)


@needs_ov
def test_bf16_alignment_samples_in_f32_as_autocast_does(tmp_path):
    """BasicVSR in bf16 (and int8): SpyNet's level CNNs on OpenVINO in bf16, the sampling in PyTorch f32
    (``SplitAlign``): the warped state is as close to fp32 as PyTorch's bf16 autocast gets. The whole alignment as
    one bf16 graph is further (1.5x on these frames, 9x on a 320x180 real frame: sampling coordinates in bf16); in
    fp32 it stays one f32 graph."""
    from vsrkit.export.openvino import Part, SplitAlign, _Align

    model, io = golden_model("basicsr_basicvsr")
    x = io["input"][0][:2][None]
    with torch.inference_mode():
        state = model.backward_trunk(torch.cat([x[:, 1], torch.zeros(1, model.num_feat, *x.shape[-2:])], 1))
        ref = _Align(model, True)(x, state)
        with torch.autocast("cpu", torch.bfloat16):
            auto = _Align(model, True)(x, state).float()
    m = ov(model, tmp_path, precision="bf16")
    align = m.graph(x, "align-backward")
    assert isinstance(align, SplitAlign) and [p.name for p in align.levels] == [f"spynet-level{i}" for i in range(6)]
    got = align(x, state)[0]
    err, auto_err = float((got - ref).abs().mean()), float((auto - ref).abs().mean())
    assert err <= 1.25 * auto_err + 1e-6 * float(ref.abs().mean()), (err, auto_err)  # one bf16 graph: 1.5x
    assert isinstance(ov(model, tmp_path).graph(x, "align-backward"), Part)


@needs_ov
@pytest.mark.slow  # a minute or two: seven graphs, SpyNet and EDVR among them
def test_iconvsr_streams_its_two_passes_exactly(tmp_path):
    """Keyframes (every 2nd frame and the last) refill both branches from EDVR windows mirrored at the video's
    ends; blocks of 2 frames: the PyTorch network's two-pass result."""
    from vsrkit.models.basicvsr import IconVSR

    torch.manual_seed(0)
    model = IconVSR(8, 1, keyframe_stride=2, temporal_padding=1).eval()
    m = ov(model, tmp_path)
    assert m.stepwise == "iconvsr" and m.spec.temporal.kind == "bidirectional"
    x = torch.rand(5, 3, 40, 44)
    cfg = engine_config(chunk=2)
    assert_close(upscale_tensor(m, x, cfg), upscale_tensor(model, x, make_config("cpu", chunk=2)))


@needs_ov
@pytest.mark.slow  # about a minute: BasicVSR traced on a whole clip
def test_fixed_clip_models_run_in_tiles_like_their_onnx_export(tmp_path):
    """The path of sequence models (VRT) and of bidirectional ones without stepwise passes: a fixed clip of a fixed
    square size, tiled by the engine (BasicVSR here, made to take it)."""
    model, io = golden_model("basicsr_basicvsr")
    m = ov(model, tmp_path, size=64, frames=5, clip_overlap=1, stepwise=False)
    assert m.spec.temporal.kind == "sequence" and m.spec.protocol.clip == 5 and m.size == 64
    assert_close(m(io["input"]), io["output"])
    x = torch.rand(5, 3, 40, 70)
    cfg = engine_config(tile=64, tile_overlap=8)
    model.spec = m.spec  # the same contract: the same schedule of clips and tiles
    assert_close(upscale_tensor(m, x, cfg), upscale_tensor(model, x, cfg))


@needs_ov
def test_the_cache_is_hit_the_second_time(tmp_path):
    model, io = golden_model("rlsp_f64_s64")
    x = io["input"][0][:3]
    first = ov(model, tmp_path)
    y1 = upscale_tensor(first, x, engine_config())
    assert (first.stats.converted, first.stats.loaded) == (1, 0)
    second = ov(model, tmp_path)
    y2 = upscale_tensor(second, x, engine_config())
    assert (second.stats.converted, second.stats.loaded) == (0, 1)
    assert second.stats.compiled_from_cache == 1  # OpenVINO's compiled blob too
    assert torch.equal(y1, y2)
    # other weights are another entry
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    third = ov(model, tmp_path)
    upscale_tensor(third, x, engine_config())
    assert third.stats.converted == 1


@needs_ov
@pytest.mark.parametrize("damage", ["model.bin", "model.xml", "meta.json", "compiled"])
def test_a_damaged_cache_entry_is_rebuilt(tmp_path, damage):
    model, io = golden_model("esr_tr_C4_K5_s2")
    ov(model, tmp_path)(io["input"])
    cache = tmp_path / "ov"
    if damage == "compiled":
        targets = list((cache / "compiled").glob("*.blob"))
    else:
        targets = [p / damage for p in cache.iterdir() if p.name.startswith("forward-")]
    assert targets
    for p in targets:
        p.chmod(0o644)  # OpenVINO writes its blobs read-only
        data = bytearray(p.read_bytes())
        if damage == "model.bin":  # the same size, other weights (the f32 constants doubled): only its sha256 tells
            import re

            xml = (p.parent / "model.xml").read_text()
            found = re.findall(r'element_type="f32" shape="[^"]*" offset="(\d+)" size="(\d+)"', xml)
            assert found
            for offset, size in found:
                a = np.frombuffer(bytes(data[int(offset):int(offset) + int(size)]), dtype=np.float32) * 2
                data[int(offset):int(offset) + int(size)] = a.tobytes()
        else:  # cut short
            data = data[: len(data) // 2]
        p.write_bytes(bytes(data))
    said = []
    m = ov(model, tmp_path, say=said.append)
    assert_close(m(io["input"]), io["output"])
    if damage == "compiled":
        assert m.stats.loaded == 1 and m.stats.compiled_from_cache == 0  # OpenVINO recompiles by itself
    else:
        assert (m.stats.rebuilt, m.stats.converted) == (1, 1) and "damaged" in said[0]
        again = ov(model, tmp_path)
        again(io["input"])
        assert (again.stats.loaded, again.stats.converted) == (1, 0)


@needs_ov
def test_int8_calibration_is_deterministic_for_a_seed(tmp_path):
    from vsrkit.export.openvino import calibration_frames

    clip = data_path("clips", "carphone_pristine.mp4")
    frames = calibration_frames(clip, 3, frames=6, seed=3)
    assert torch.equal(frames, calibration_frames(clip, 3, frames=6, seed=3))
    assert not torch.equal(frames, calibration_frames(clip, 3, frames=6, seed=4))
    model, io = golden_model("rlsp_f64_s64")
    x = io["input"][0]
    outs = []
    for _ in range(2):
        m = ov(model, tmp_path, cache=None, precision="int8", calibration=frames, seed=3)
        outs.append(upscale_tensor(m, x, engine_config()))
        assert m.stats.quantized == 1
    assert torch.equal(outs[0], outs[1])
    ref = io["output"][0]
    mse = float(((outs[0] - ref) ** 2).mean())
    assert 0 < mse and 10 * np.log10(1 / mse) > 35  # quantised: not the fp32 result, but close to it
    # the quantised model is cached (keyed by the calibration frames and seed)
    cached = ov(model, tmp_path, precision="int8", calibration=frames, seed=3)
    upscale_tensor(cached, x, engine_config())
    again = ov(model, tmp_path, precision="int8", calibration=frames, seed=3)
    assert torch.equal(upscale_tensor(again, x, engine_config()), outs[0])
    assert (again.stats.quantized, again.stats.converted) == (0, 0)


@needs_ov
def test_bf16_is_close_to_fp32(tmp_path):
    model, io = golden_model("rlsp_f64_s64")
    x = io["input"][0][:3]
    y = upscale_tensor(ov(model, tmp_path, precision="bf16"), x, engine_config())
    ref = io["output"][0][:3]
    assert float((y - ref).abs().max()) <= 0.05 * float(ref.abs().max())


@needs_ov
def test_precision_budgets(monkeypatch):
    from vsrkit.export.openvino import choose_precision
    from vsrkit.models.spec import ModelSpec, Temporal

    def spec(bf16=None, int8=None):
        return ModelSpec(scale=2, temporal=Temporal("frame"), ov_bf16_loss_db=bf16, int8_loss_db=int8)

    said = []
    with pytest.raises(VsrkitError, match=r"m: int8 costs 0.30 dB .* over the 0.1 dB budget.*--force-precision"):
        choose_precision("int8", spec(int8=0.3), "m")
    assert choose_precision("int8", spec(int8=0.3), "m", force=True) == "int8"
    assert choose_precision("int8", spec(int8=0.05), "m") == "int8"
    with pytest.raises(VsrkitError, match="bf16 costs 0.20 dB"):
        choose_precision("bf16", spec(bf16=0.2), "m")
    monkeypatch.setenv("VSRKIT_CPU_BF16", "amx_bf16")
    monkeypatch.setenv("VSRKIT_OV_BF16_SPEEDUP", "3")
    from vsrkit.infer.runtime import native_bf16_unit

    native_bf16_unit.cache_clear()
    try:
        assert choose_precision("auto", spec(bf16=0.01), say=said.append) == "bf16"
        assert choose_precision("auto", spec(bf16=0.2), say=said.append) == "fp32" and "over the 0.05 dB" in said[-1]
        assert choose_precision("auto", spec(), say=said.append) == "fp32" and "not been measured" in said[-1]
        monkeypatch.setenv("VSRKIT_OV_BF16_SPEEDUP", "1.05")
        assert choose_precision("auto", spec(bf16=0.01), say=said.append) == "fp32" and "1.05x" in said[-1]
        monkeypatch.setenv("VSRKIT_CPU_BF16", "none")
        native_bf16_unit.cache_clear()
        assert choose_precision("auto", spec(bf16=0.01), say=said.append) == "fp32" and "no native bf16" in said[-1]
    finally:
        native_bf16_unit.cache_clear()


@needs_ov
def test_upscale_with_openvino_gives_the_torch_frames(tmp_path, monkeypatch):
    """`vsrkit upscale --backend openvino` (fp32): the PyTorch backend's PNG frames; the second run reads the cache."""
    from PIL import Image

    monkeypatch.setenv("VSRKIT_CACHE", str(tmp_path / "cache"))
    _, _, d = load_case("rlsp_f64_s64")
    src = data_path("clips", "carphone_pristine.mp4")
    runner = CliRunner()
    outs = {}
    for backend in ("torch", "openvino", "openvino"):
        out = tmp_path / backend
        r = runner.invoke(main, ["upscale", str(src), "-o", str(out), "--weights", str(d / "weights.pth"),
                                 "--backend", backend, "--max-frames", "3", "--precision", "fp32", "-q", "--overwrite"])
        assert r.exit_code == 0, r.output
        outs[backend] = [np.asarray(Image.open(p)).astype(int) for p in sorted(out.glob("*.png"))]
    assert len(outs["torch"]) == len(outs["openvino"]) == 3
    for a, b in zip(outs["torch"], outs["openvino"]):
        assert np.abs(a - b).max() <= 1  # float outputs within 1e-6 may round the other way
    assert len(list((tmp_path / "cache" / "openvino").glob("step-*"))) == 1
    r = runner.invoke(main, ["upscale", str(src), "-o", str(tmp_path / "x"), "--weights", str(d / "weights.pth"),
                             "--precision", "int8", "-q"])
    assert r.exit_code == 2 and "--backend openvino only" in r.output


def test_without_openvino_the_backend_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import raises ImportError
    from vsrkit.export.openvino import OpenVinoModel

    with pytest.raises(VsrkitError, match=r"needs the openvino package \(pip install 'vsrkit\[openvino\]'\)"):
        OpenVinoModel(build_esr("eSR-TR_s2_K5_C4"))
    src = data_path("clips", "carphone_pristine.mp4")
    r = CliRunner().invoke(main, ["upscale", str(src), "-o", str(tmp_path / "o"), "-m", "esr-tr-x2", "--backend", "openvino",
                                  "--max-frames", "1", "-q"])
    assert r.exit_code == 2 and "vsrkit[openvino]" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


@needs_ov
def test_bench_compares_backends_in_one_table(tmp_path, monkeypatch):
    """`vsrkit bench --backend all`: a row per backend and precision, OpenVINO fp32 on PyTorch fp32's pixels."""
    monkeypatch.setenv("VSRKIT_CACHE", str(tmp_path / "cache"))
    r = CliRunner().invoke(main, ["bench", "-m", "esr-tr-x2", "--backend", "torch,openvino", "--size", "40x32",
                                  "--frames", "2", "--repeat", "1", "--json", str(tmp_path / "b.json")])
    assert r.exit_code == 0, r.output
    import json

    table = json.loads((tmp_path / "b.json").read_text())["tables"][0]
    rows = {(row["backend"], row["precision"]): row for row in table["rows"]}
    assert set(rows) == {("torch", "fp32"), ("torch", "bf16"), ("openvino", "fp32"), ("openvino", "bf16"), ("openvino", "int8")}
    ov32 = rows[("openvino", "fp32")]
    assert ov32["fps"] > 0 and ov32["peak_rss_mib"] > 0 and ov32["db_vs_fp32"] > 80
    assert "openvino" in r.output and "ms/frame" in r.output and "CPU:" in r.output
    r = CliRunner().invoke(main, ["bench", "-m", "esr-tr-x2", "--backend", "tensorrt"])
    assert r.exit_code == 2 and "unknown backend 'tensorrt'" in r.output


@needs_ov
def test_eval_with_openvino_scores_as_torch(tmp_path, monkeypatch):
    """`vsrkit eval --backend openvino` (fp32) gives PyTorch's PSNR; int8 without calibration frames is a one-line error."""
    import json

    from eval_clips import carphone, write_clip

    monkeypatch.setenv("VSRKIT_CACHE", str(tmp_path / "cache"))
    write_clip(tmp_path / "gt" / "a", carphone(3))
    _, _, d = load_case("rlsp_f64_s64")
    psnr = {}
    for backend in ("torch", "openvino"):
        r = CliRunner().invoke(main, ["eval", "--weights", str(d / "weights.pth"), "--gt", str(tmp_path / "gt"),
                                      "--degrade", "bi", "--backend", backend, "-q", "--json", str(tmp_path / f"{backend}.json")])
        assert r.exit_code == 0, r.output
        psnr[backend] = json.loads((tmp_path / f"{backend}.json").read_text())["overall"]["psnr"]
    assert abs(psnr["torch"] - psnr["openvino"]) < 1e-3
    r = CliRunner().invoke(main, ["eval", "--weights", str(d / "weights.pth"), "--gt", str(tmp_path / "gt"), "--degrade", "bi",
                                  "--backend", "openvino", "--precision", "int8", "-q"])
    assert r.exit_code == 2 and "--calibrate" in r.output and len(r.output.strip().splitlines()) == 1
