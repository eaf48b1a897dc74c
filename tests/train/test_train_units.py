"""Pieces of the trainer: losses, parameter groups and freezing, EMA, mixed precision steps."""

from __future__ import annotations

import pytest
import torch

from vsrkit.train.config import from_dict
from vsrkit.train.ema import EMA
from vsrkit.train.losses import PixelLoss
from vsrkit.train.loop import Trainer
from vsrkit.train.optim import Freezer, param_groups
from vsrkit.train.config import FreezeCfg


def test_losses():
    a, b = torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.0, 0.25, 0.0])
    assert PixelLoss("charbonnier", eps=1e-12)(a, b).item() == pytest.approx((1e-6 + 0.25 + 1.0) / 3, rel=1e-6)
    assert PixelLoss("charbonnier", eps=1e-2, reduction="sum")(a, b).item() == pytest.approx(
        0.1 + (0.0625 + 1e-2) ** 0.5 + (1 + 1e-2) ** 0.5, rel=1e-6)
    assert PixelLoss("l1")(a, b).item() == pytest.approx(1.25 / 3)
    assert PixelLoss("mse", value_range=255)(a, b).item() == pytest.approx((0.0625 + 1) * 255**2 / 3, rel=1e-6)


def test_groups_and_freezing():
    from vsrkit.models.basicvsr import IconVSR

    m = IconVSR(num_feat=4, num_block=1)
    groups = param_groups(m, 1e-3, {"spynet": 0.125, "edvr": 1.0})
    assert [g["lr"] for g in groups] == [1e-3, 1.25e-4]
    assert all("spynet" in n for n in groups[1]["names"]) and any("edvr" in n for n in groups[0]["names"])
    f = Freezer(FreezeCfg(keys=["spynet", "edvr"], until=3))
    for it, frozen in ((1, True), (2, True), (3, False), (7, False)):
        f.apply(m, it)
        assert all(p.requires_grad != frozen for n, p in m.named_parameters() if "spynet" in n or "edvr" in n)
        assert all(p.requires_grad for n, p in m.named_parameters() if "spynet" not in n and "edvr" not in n)
    only = Freezer(FreezeCfg(keys=["fusion"], until=2, train_only=True))
    only.apply(m, 1)
    assert {n for n, p in m.named_parameters() if p.requires_grad} == {n for n, _ in m.named_parameters() if "fusion" in n}


def test_ema_averages_parameters_only():
    lin = torch.nn.Linear(2, 2)
    ema = EMA(lin, 0.9)
    w0 = lin.weight.detach().clone()
    with torch.no_grad():
        lin.weight.add_(1.0)
    ema.update(lin)
    assert torch.allclose(ema.module.weight, w0 + 0.1)


def _tiny(arch, kwargs, precision, channels_last=False, device="cpu", grad_clip=1.0):
    return Trainer(from_dict({"name": "t", "output": "/tmp/unused", "model": {"arch": arch, "kwargs": kwargs},
                              "train": {"total_iter": 2, "batch_size": 1, "precision": precision, "device": device,
                                        "channels_last": channels_last, "grad_clip": grad_clip},
                              "optim": {"lr": 1e-3}}))


@pytest.mark.parametrize("precision,channels_last", [("fp32", False), ("bf16", False), ("bf16", True)])
def test_mixed_precision_steps(precision, channels_last):
    torch.manual_seed(0)
    t = _tiny("RLSP", {"layers": 3, "filters": 8, "state_dim": 4}, precision, channels_last)
    lq, gt = torch.rand(1, 3, 3, 12, 12), torch.rand(1, 3, 3, 48, 48)
    losses = [t.train_step(lq, gt).item() for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in t.model.parameters())  # master weights stay fp32


def test_bf16_basicvsr_step_warps_in_float32(grid_sample_dtypes):
    dtypes = grid_sample_dtypes
    torch.manual_seed(0)
    t = _tiny("BasicVSR", {"num_feat": 4, "num_block": 1}, "bf16")
    loss = t.train_step(torch.rand(1, 2, 3, 34, 34), torch.rand(1, 2, 3, 136, 136))
    assert torch.isfinite(loss) and dtypes and all(d == (torch.float32, torch.float32) for d in dtypes)


def test_fp16_needs_a_gpu():
    from vsrkit.errors import VsrkitError

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is here: fp16 is allowed (test_gpu_mixed_precision_steps covers it)")
    with pytest.raises(VsrkitError, match="fp16 needs a GPU"):
        _tiny("RLSP", {"layers": 3, "filters": 8, "state_dim": 4}, "fp16")


def test_gradient_clipping_bounds_the_norm():
    torch.manual_seed(0)
    t = _tiny("RLSP", {"layers": 3, "filters": 8, "state_dim": 4}, "fp32", grad_clip=1e-3)
    t.train_step(torch.rand(1, 3, 3, 12, 12), torch.rand(1, 3, 3, 48, 48))
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in t.model.parameters() if p.grad is not None]))
    assert norm.item() == pytest.approx(1e-3, rel=1e-3)  # clipped (the unclipped norm is far above 1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="GPU mixed precision (fp16 with a GradScaler, bf16 autocast) needs a CUDA GPU; none here "
                           "(CPU bf16 is tested above)")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_gpu_mixed_precision_steps(precision):
    torch.manual_seed(0)
    t = _tiny("RLSP", {"layers": 3, "filters": 8, "state_dim": 4}, precision, device="cuda")
    assert (t.scaler is not None) == (precision == "fp16")
    lq, gt = torch.rand(1, 3, 3, 12, 12), torch.rand(1, 3, 3, 48, 48)
    losses = [t.train_step(lq, gt).item() for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 and p.is_cuda for p in t.model.parameters())
