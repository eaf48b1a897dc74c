"""The fast paths: channels-last end to end, precision auto, fp32 sampling under bf16 in whole models, exact
two-pass blocks, eSR's strips, threads, and the I/O threads."""

from __future__ import annotations

import collections
import threading
import time

import pytest
import torch
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import vsrkit
from vsrkit.errors import VsrkitError
from vsrkit.infer import make_config, upscale_tensor
from vsrkit.infer import runtime
from vsrkit.io.background import Prefetch, Writer
from vsrkit.models import edgesr
from vsrkit.models.basicvsr import BasicVSR, IconVSR
from vsrkit.models.basicvsrpp import BasicVSRPlusPlus
from vsrkit.models.edvr import EDVR
from vsrkit.models.realbasicvsr import RealBasicVSR
from vsrkit.models.rlsp import RLSP, RLSPReleased
from vsrkit.models.spec import ModelSpec, Temporal

from compare import assert_close_rel
from golden import assert_close, case_dir, load_case

CONVS = (torch.ops.aten.conv2d.default, torch.ops.aten.convolution.default, torch.ops.aten.mkldnn_convolution.default)


class LayoutSpy(TorchDispatchMode):
    """Counts 2-D convolutions whose input or output is not channels-last (a layout change between layers)."""

    def __init__(self):
        super().__init__()
        self.convs = 0
        self.flips: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in CONVS and args[0].dim() == 4:
            x, w = args[0], args[1]
            self.convs += 1
            # the deformable convolution's own 1x1 convolution over its sampled columns (called as
            # mkldnn_convolution) is channel-major by construction, and its result is made channels-last
            # again: not a change between layers
            internal = func is torch.ops.aten.mkldnn_convolution.default
            if x.shape[1] > 1 and x.shape[2] * x.shape[3] > 1 and not internal:
                for where, t in (("in", x), ("out", out)):
                    if not t.is_contiguous(memory_format=torch.channels_last):
                        self.flips[(where, tuple(w.shape))] += 1
        return out


def tiny_models():
    torch.manual_seed(0)
    yield "basicvsr", BasicVSR(8, 1), torch.rand(3, 3, 64, 64)
    yield "iconvsr", IconVSR(8, 1, keyframe_stride=2, temporal_padding=1), torch.rand(3, 3, 64, 64)
    yield "basicvsrpp", BasicVSRPlusPlus(8, 1), torch.rand(3, 3, 40, 40)
    yield "edvr", EDVR(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1), \
        torch.rand(4, 3, 32, 32)
    yield "rlsp", RLSP(layers=3, filters=8, state_dim=4), torch.rand(3, 3, 32, 32)
    yield "rlsp-released", RLSPReleased(layers=3, filters=8), torch.rand(3, 3, 32, 32)
    yield "esr-tr", edgesr.EdgeSRTR("eSR-TR_s2_K5_C4"), torch.rand(2, 1, 32, 32)
    # threshold 0: the three cleaning passes
    yield "realbasicvsr", RealBasicVSR(8, 1, 1, dynamic_refine_thres=0), torch.rand(3, 3, 64, 64)


@pytest.mark.parametrize("name,model,x", list(tiny_models()), ids=lambda v: v if isinstance(v, str) else "")
def test_channels_last_end_to_end_without_layout_changes(name, model, x):
    """On the fast path every convolution gets and gives channels-last tensors: no reorders between layers;
    and the result is the contiguous path's."""
    model.eval()
    want = upscale_tensor(model, x, make_config("cpu", channels_last=False, chunk=100))
    spy = LayoutSpy()
    with spy:
        got = upscale_tensor(model, x, make_config("cpu", channels_last=True, chunk=100))
    assert spy.convs > 0
    assert not spy.flips, f"{name}: convolutions outside channels-last: {dict(spy.flips)}"
    assert_close_rel(got, want)


@pytest.mark.parametrize("name,model,x", [m for m in tiny_models() if m[0] != "esr-tr"] , ids=lambda v: v if isinstance(v, str) else "")
def test_whole_models_sample_in_fp32_on_the_bf16_fast_path(name, model, x, grid_sample_dtypes):
    """grid_sample (flow warping, deformable sampling) never sees a bf16 tensor in a whole bf16 run."""
    seen = grid_sample_dtypes
    model.eval()
    y = upscale_tensor(model, x, make_config("cpu", precision="bf16", chunk=100))
    assert torch.isfinite(y).all()
    if not name.startswith("rlsp"):  # RLSP has no warping
        assert seen, f"{name}: grid_sample was not called"
    assert all(d == (torch.float32, torch.float32) for d in seen), (name, set(seen))


def test_vrt_samples_in_fp32_on_the_bf16_fast_path(grid_sample_dtypes):
    seen = grid_sample_dtypes
    meta, io, d = load_case("vrt_small_x4")
    model = vsrkit.load_model(weights=str(d / "weights.pth"))
    y = upscale_tensor(model, io["input"][0], make_config("cpu", precision="bf16", chunk=100))
    assert torch.isfinite(y).all() and seen
    assert all(d == (torch.float32, torch.float32) for d in seen), set(seen)


# ---- precision auto -------------------------------------------------------------------------------

def spec(loss):
    return ModelSpec(scale=2, temporal=Temporal("frame"), bf16_loss_db=loss)


@pytest.mark.parametrize("unit,speedup,loss,want,why", [
    ("amx_bf16", 3.0, 0.01, torch.bfloat16, "amx_bf16"),
    (None, 3.0, 0.01, None, "no native bf16"),
    ("avx512_bf16", 0.6, 0.01, None, "0.60x"),
    ("amx_bf16", 3.0, 0.2, None, "over the 0.05 dB budget"),
    ("amx_bf16", 3.0, None, None, "not been measured"),
])
def test_precision_auto_picks_bf16_only_where_native_faster_and_within_budget(monkeypatch, unit, speedup, loss, want, why):
    monkeypatch.setattr(runtime, "native_bf16_unit", lambda: unit)
    monkeypatch.setattr(runtime, "bf16_speedup", lambda: speedup)
    said = []
    cfg = runtime.resolve_precision(make_config("cpu", precision="auto"), spec(loss), said.append)
    assert cfg.autocast_dtype is want and not cfg.auto_precision
    assert len(said) == 1 and said[0].startswith(f"precision auto: {'bf16' if want else 'fp32'}") and why in said[0]


def test_explicit_precisions_are_kept_and_auto_is_resolved_by_the_engine(monkeypatch):
    monkeypatch.setattr(runtime, "native_bf16_unit", lambda: "amx_bf16")
    monkeypatch.setattr(runtime, "bf16_speedup", lambda: 3.0)
    assert runtime.resolve_precision(make_config("cpu", precision="fp32"), spec(0.0)).autocast_dtype is None
    assert runtime.resolve_precision(make_config("cpu", precision="bf16"), spec(None)).autocast_dtype is torch.bfloat16
    seen = []

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.spec = spec(0.01)

        def forward(self, x):
            seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
            return F.interpolate(x, scale_factor=2)

    upscale_tensor(Net(), torch.rand(2, 3, 8, 8), make_config("cpu", precision="auto"))
    assert seen == [torch.bfloat16]


def test_native_bf16_detection_reads_the_cpu_flags(monkeypatch):
    runtime.native_bf16_unit.cache_clear()
    monkeypatch.delenv("VSRKIT_CPU_BF16", raising=False)
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    assert runtime.native_bf16_unit() == "amx_bf16"
    runtime.native_bf16_unit.cache_clear()
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert runtime.native_bf16_unit() == "avx512_bf16"
    runtime.native_bf16_unit.cache_clear()
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert runtime.native_bf16_unit() is None
    runtime.native_bf16_unit.cache_clear()


def test_bf16_speed_probe_is_a_positive_ratio(monkeypatch):
    monkeypatch.delenv("VSRKIT_BF16_SPEEDUP", raising=False)
    assert 0.05 < runtime.bf16_speedup() < 50


def test_threads_option(monkeypatch):
    before = torch.get_num_threads()
    try:
        runtime.set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(VsrkitError, match="--threads"):
        runtime.set_threads(0)


def test_fp32_stays_exact_against_golden_data_on_the_fast_path():
    meta, io, d = load_case("basicsr_basicvsr")
    model = vsrkit.load_model(weights=str(d / "weights.pth"))
    cfg = make_config("cpu", precision="fp32", channels_last=True)
    assert cfg.autocast_dtype is None and cfg.channels_last
    assert_close(upscale_tensor(model, io["input"][0], cfg), io["output"][0])


# ---- two passes: exact through the blocks, channels-last --------------------------------------------

def test_two_pass_blocks_stay_exact_channels_last():
    torch.manual_seed(0)
    model = BasicVSR(8, 1).eval()
    x = torch.rand(5, 3, 64, 64)
    got = upscale_tensor(model, x, make_config("cpu", chunk=2))
    with torch.no_grad():
        assert_close_rel(got, model(x[None])[0])


# ---- eSR: candidates combined before the pixel shuffle, in strips -----------------------------------

def shuffle_first(model, x):
    """The official formulation: pixel shuffle, then the max / softmax over the C images at high resolution."""
    y = F.pixel_shuffle(model.filter(x), model.scale)
    if isinstance(model, edgesr.EdgeSRMAX):
        return y.amax(dim=1, keepdim=True)
    if isinstance(model, edgesr.EdgeSRTM):
        value, key = y.split(model.C, dim=1)
        return (value * torch.softmax(key, dim=1)).sum(dim=1, keepdim=True)
    value, query, key = y.split(model.C, dim=1)
    return (value * torch.softmax(query * key, dim=1)).sum(dim=1, keepdim=True)


@pytest.mark.parametrize("case", ["esr_tr_C4_K5_s2", "esr_tm_C4_K5_s2", "esr_max_C4_K5_s2"])
@pytest.mark.parametrize("strip_bytes", [1, 5000, 1 << 30])
def test_esr_combines_before_the_shuffle_in_strips_with_the_golden_output(case, strip_bytes, monkeypatch):
    monkeypatch.setattr(edgesr, "_STRIP_BYTES", strip_bytes)  # 1: one row per strip; 1 << 30: the whole frame
    meta, io, d = load_case(case)
    model = edgesr.build(meta["kwargs"]["model_id"]).eval()
    model.load_state_dict(torch.load(d / "weights.pth", weights_only=True))
    with torch.no_grad():
        got = model(io["input"])
        assert_close(got, io["output"])
        assert_close_rel(got, shuffle_first(model, io["input"]))


def test_esr_strips_match_the_official_formulation_at_x4_on_a_wide_frame(monkeypatch):
    monkeypatch.setattr(edgesr, "_STRIP_BYTES", 1 << 16)
    torch.manual_seed(0)
    model = edgesr.EdgeSRTR("eSR-TR_s4_K7_C16").eval()
    x = torch.rand(2, 1, 23, 41)
    with torch.no_grad():
        assert_close_rel(model(x), shuffle_first(model, x))


# ---- decoding and encoding threads --------------------------------------------------------------------

def test_prefetch_keeps_order_and_raises_the_readers_error_in_the_caller():
    assert list(Prefetch(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        raise VsrkitError("frame 1: broken")

    got = []
    with pytest.raises(VsrkitError, match="broken"):
        for v in Prefetch(broken()):
            got.append(v)
    assert got == [1]


def test_prefetch_reads_ahead_while_the_consumer_works_and_close_stops_it():
    read = []

    def source():
        for i in range(1000):
            read.append(i)
            yield i

    p = Prefetch(source(), depth=2)
    it = iter(p)
    assert next(it) == 0
    deadline = time.monotonic() + 30  # polled, not a fixed sleep: the machine may be busy
    while len(read) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(read) >= 3  # decoded ahead while "the model" was busy (not consuming)
    p.close()
    n = len(read)
    time.sleep(0.2)
    assert len(read) == n < 1000 and not p._thread.is_alive()


def test_writer_writes_in_order_in_its_own_thread_and_raises_its_error():
    out, threads = [], set()
    w = Writer(lambda v: (out.append(v), threads.add(threading.get_ident())), depth=2)
    for i in range(20):
        w.put(i)
    w.finish()
    assert out == list(range(20)) and threading.get_ident() not in threads

    def fail(v):
        raise OSError(f"disk full at {v}")

    w = Writer(fail)
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):
            w.put(i)
        w.finish()
    w.close()


def test_writer_drain_waits_for_the_queued_writes_and_keeps_the_thread():
    """The job pipeline drains the writer before it saves a resume state (the frames before it are written)."""
    out = []
    w = Writer(lambda v: (time.sleep(0.02), out.append(v)), depth=4)
    for i in range(4):
        w.put(i)
    w.drain()
    assert out == [0, 1, 2, 3]
    w.put(4)  # still running after a drain
    w.finish()
    assert out == [0, 1, 2, 3, 4]

    def fail(v):
        raise OSError(f"disk full at {v}")

    w = Writer(fail)
    w.put(0)
    with pytest.raises(OSError, match="disk full at 0"):
        w.drain()
    w.close()


# ---- inference mode, torch.compile --------------------------------------------------------------------

def test_the_engine_runs_models_under_inference_mode():
    seen = []

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.spec = ModelSpec(scale=2, temporal=Temporal("frame"))

        def forward(self, x):
            seen.append(torch.is_inference_mode_enabled())
            return F.interpolate(x, scale_factor=2)

    upscale_tensor(Net(), torch.rand(2, 3, 8, 8), make_config("cpu"))
    assert seen and all(seen)


def test_compile_compiles_the_parts_with_parameters_and_keeps_the_result():
    """--compile: every child with parameters goes through torch.compile (inductor, weights frozen); the
    frames are the eager ones."""
    torch.manual_seed(0)
    model = RLSP(layers=2, filters=4, state_dim=2).eval()
    x = torch.rand(2, 3, 16, 16)
    want = upscale_tensor(model, x, make_config("cpu"))
    compiled = []
    real = torch.nn.Module.compile

    def spy(self, *a, **k):
        compiled.append((type(self).__name__, k.get("options")))
        return real(self, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.nn.Module, "compile", spy)
        got = upscale_tensor(model, x, make_config("cpu", compile=True))
    assert compiled and all(o == {"freezing": True} for _, o in compiled)
    assert {n for n, _ in compiled} >= {"Conv2d"}
    assert getattr(model, "_vsrkit_compiled", False)
    assert_close_rel(got, want)
