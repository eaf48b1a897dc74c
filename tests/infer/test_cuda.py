"""The CUDA path: fp16/bf16 autocast, channels-last and the memory-budget tiling, on a GPU.

Every test here needs CUDA; without it (CI, this CPU machine) they skip with that reason.
"""

from __future__ import annotations

import pytest
import torch

import vsrkit
from vsrkit.infer import make_config, plan_tile, upscale_tensor
from vsrkit.infer.runtime import resolve_precision
from vsrkit.models.basicvsr import BasicVSR
from vsrkit.models.rlsp import RLSP

from golden import assert_close, load_case

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU path is tested on a GPU only")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a.float() - b.float()) ** 2).mean()))


def test_fp32_on_cuda_matches_the_golden_output():
    meta, io, d = load_case("basicsr_basicvsr")
    model = vsrkit.load_model(weights=str(d / "weights.pth"))
    y = upscale_tensor(model, io["input"][0], make_config("cuda", precision="fp32"))
    assert_close(y, io["output"][0], tol=1e-3)  # TF32 may be on for convolutions


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("channels_last", [True, False])
def test_low_precision_and_layouts_on_cuda_stay_close_to_fp32(precision, channels_last):
    meta, io, d = load_case("basicsr_basicvsr")
    model = vsrkit.load_model(weights=str(d / "weights.pth"))
    x = io["input"][0]
    ref = upscale_tensor(model, x, make_config("cpu", precision="fp32"))
    y = upscale_tensor(model, x, make_config("cuda", precision=precision, channels_last=channels_last))
    assert torch.isfinite(y).all()
    assert psnr(y, ref) > (40 if precision == "fp16" else 35)


def test_grid_sample_is_fp32_on_cuda_under_fp16(grid_sample_dtypes):
    seen = grid_sample_dtypes
    torch.manual_seed(0)
    upscale_tensor(BasicVSR(8, 1), torch.rand(3, 3, 64, 64), make_config("cuda", precision="fp16"))
    assert seen and all(s == (torch.float32, torch.float32) for s in seen)


def test_precision_auto_picks_a_low_precision_on_cuda_for_a_measured_model():
    model = RLSP(layers=3, filters=8, state_dim=4)
    said = []
    cfg = resolve_precision(make_config("cuda", precision="auto"), model.spec, said.append)
    want = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    assert cfg.autocast_dtype is want and "precision auto" in said[0]


def test_memory_budget_tiling_keeps_the_cuda_peak_under_the_budget():
    meta, io, d = load_case("vrt_small_x4")
    model = vsrkit.load_model(weights=str(d / "weights.pth"))
    cfg = make_config("cuda", chunk=4, chunk_overlap=1)
    budget = 1.0 * 2**30
    h, w = 144, 176
    tile = plan_tile(model, cfg, budget, h, w, 6)
    assert 0 < tile < max(h, w)
    cfg = make_config("cuda", tile=tile, chunk=4, chunk_overlap=1)
    torch.cuda.reset_peak_memory_stats()
    y = upscale_tensor(model, torch.rand(6, 3, h, w), cfg)
    assert y.shape == (6, 3, 4 * h, 4 * w)
    assert torch.cuda.max_memory_allocated() < budget
