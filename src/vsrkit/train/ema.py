"""An exponential moving average of a network's weights (BasicSR's ``net_g_ema``)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """``ema = decay * ema + (1 - decay) * param`` for every named parameter after each step.

    Buffers are copied from the start and not averaged, as BasicSR's ``model_ema`` does. The averaged network is
    a frozen copy in eval mode (``self.module``).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        params = dict(model.named_parameters())
        for name, p in self.module.named_parameters():
            p.mul_(self.decay).add_(params[name].detach(), alpha=1 - self.decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(sd, strict=True)
