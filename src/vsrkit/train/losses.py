"""Pixel losses of the video SR recipes: Charbonnier (with each config's eps), L1 and MSE."""

from __future__ import annotations

import torch
from torch import nn

from vsrkit.train.config import LossCfg


class PixelLoss(nn.Module):
    """``weight * reduce(f(pred - target))`` on values scaled by ``value_range``.

    - ``charbonnier``: ``sqrt(d^2 + eps)``, eps added as it is (BasicSR's CharbonnierLoss, eps 1e-12; KAIR's
      squares its eps first: 1e-9 there is 1e-18 here);
    - ``l1``: ``|d|``; ``mse``: ``d^2``.

    ``reduction`` is ``mean`` (over every element) or ``sum`` (BasicSR's EDVR recipes).
    """

    def __init__(self, kind: str = "charbonnier", eps: float = 1e-12, reduction: str = "mean", weight: float = 1.0,
                 value_range: float = 1.0) -> None:
        super().__init__()
        if kind not in ("charbonnier", "l1", "mse") or reduction not in ("mean", "sum"):
            raise ValueError(f"unknown loss {kind!r} / reduction {reduction!r}")
        self.kind, self.eps, self.reduction, self.weight, self.value_range = kind, eps, reduction, weight, value_range

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"loss: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        if self.value_range != 1.0:
            pred, target = pred * self.value_range, target * self.value_range
        d = pred - target
        if self.kind == "charbonnier":
            e = torch.sqrt(d * d + self.eps)
        elif self.kind == "l1":
            e = d.abs()
        else:
            e = d * d
        e = e.mean() if self.reduction == "mean" else e.sum()
        return e * self.weight if self.weight != 1.0 else e


def make_loss(cfg: LossCfg) -> PixelLoss:
    """The loss a config asks for."""
    return PixelLoss(cfg.type, cfg.eps, cfg.reduction, cfg.weight, cfg.value_range)
