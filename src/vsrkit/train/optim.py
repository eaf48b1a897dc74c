"""Adam with per-module learning rates, cosine annealing with restarts, and modules frozen for the first
iterations, as BasicSR's video recipes do them."""

from __future__ import annotations

import bisect
import math
from typing import Any

import torch
from torch import nn

from vsrkit.train.config import FreezeCfg, OptimCfg, SchedulerCfg


def param_groups(model: nn.Module, lr: float, lr_mul: dict[str, float]) -> list[dict[str, Any]]:
    """Adam parameter groups: first every parameter whose name contains no ``lr_mul`` key (at ``lr``), then one
    group per distinct multiplier (at ``lr * mul``), in the order of the keys. Multipliers of 1 make no group of
    their own. This is BasicSR's ``flow_lr_mul`` (``{'spynet': 0.125}``) and KAIR's ``fix_lr_mul``."""
    muls = {k: float(v) for k, v in lr_mul.items() if float(v) != 1.0}
    order: list[float] = []
    for v in muls.values():
        if v not in order:
            order.append(v)
    groups: dict[float | None, list[nn.Parameter]] = {None: []}
    for v in order:
        groups[v] = []
    names: dict[float | None, list[str]] = {k: [] for k in groups}
    for name, p in model.named_parameters():
        mul = next((v for k, v in muls.items() if k in name), None)
        groups[mul].append(p)
        names[mul].append(name)
    out = [{"params": groups[None], "lr": lr, "names": names[None]}]
    for v in order:
        if groups[v]:
            out.append({"params": groups[v], "lr": lr * v, "names": names[v]})
    return [g for g in out if g["params"]]


def make_optimizer(model: nn.Module, cfg: OptimCfg) -> torch.optim.Adam:
    """``torch.optim.Adam`` over ``param_groups``; each group keeps the names of its parameters (``names``)."""
    groups = param_groups(model, cfg.lr, cfg.lr_mul)
    return torch.optim.Adam(groups, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), eps=cfg.eps,
                            weight_decay=cfg.weight_decay)


class CosineRestart:
    """BasicSR's ``CosineAnnealingRestartLR`` as a closed form of the scheduler epoch.

    ``lr = eta_min + w_i * 0.5 * (base_lr - eta_min) * (1 + cos(pi * (epoch - start_i) / period_i))`` where ``i``
    is the first period with ``epoch <= cumulative_period_i`` (the epoch that ends a period still belongs to it and
    gives ``eta_min``). ``eta_min`` is not scaled by the group's multiplier. Training iteration ``n`` uses epoch
    ``n - 1``. Past the last period the official code raises; here the rate stays at ``eta_min``.
    ``periods=[]`` is a constant rate.
    """

    def __init__(self, base_lrs: list[float], periods: list[int] | None = None,
                 restart_weights: list[float] | None = None, eta_min: float = 0.0) -> None:
        self.base_lrs = [float(x) for x in base_lrs]
        self.periods = [int(p) for p in (periods or [])]
        self.restart_weights = [float(w) for w in (restart_weights or [1.0] * len(self.periods))]
        if len(self.periods) != len(self.restart_weights):
            raise ValueError("periods and restart_weights must have the same length")
        self.eta_min = float(eta_min)
        self.cumulative = []
        total = 0
        for p in self.periods:
            total += p
            self.cumulative.append(total)
        self.last_epoch = 0

    def lrs(self, epoch: int) -> list[float]:
        """Every group's rate at scheduler epoch ``epoch`` (>= 0)."""
        if not self.periods:
            return list(self.base_lrs)
        idx = bisect.bisect_left(self.cumulative, epoch)
        if idx >= len(self.periods):
            return [self.eta_min for _ in self.base_lrs]
        weight = self.restart_weights[idx]
        start = 0 if idx == 0 else self.cumulative[idx - 1]
        period = self.periods[idx]
        return [self.eta_min + weight * 0.5 * (base - self.eta_min) * (1 + math.cos(math.pi * ((epoch - start) / period)))
                for base in self.base_lrs]

    def state_dict(self) -> dict[str, Any]:
        return {"base_lrs": self.base_lrs, "periods": self.periods, "restart_weights": self.restart_weights,
                "eta_min": self.eta_min, "last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__init__(state["base_lrs"], state["periods"], state["restart_weights"], state["eta_min"])
        self.last_epoch = int(state["last_epoch"])


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: SchedulerCfg) -> CosineRestart:
    """The schedule of a config over the optimizer's initial group rates."""
    base = [g["lr"] for g in optimizer.param_groups]
    if cfg.type == "constant":
        return CosineRestart(base)
    return CosineRestart(base, cfg.periods, cfg.restart_weights, cfg.eta_min)


class Freezer:
    """Which parameters train at an iteration: BasicSR's ``fix_flow`` and EDVR's ``tsa_iter``.

    The official code freezes at iteration 1 and unfreezes everything at iteration ``until`` itself, before that
    iteration's step: modules are frozen in iterations ``1 .. until - 1``. ``train_only=False`` freezes the
    parameters whose name contains a key (``[spynet, edvr]``); ``train_only=True`` trains only those (``[fusion]``).
    Frozen parameters get no gradient, so Adam keeps no state for them until they train.
    """

    def __init__(self, cfg: FreezeCfg) -> None:
        self.keys = list(cfg.keys)
        self.until = int(cfg.until)
        self.train_only = bool(cfg.train_only)

    def frozen(self, iteration: int) -> bool:
        return bool(self.keys) and self.until > 1 and 1 <= iteration < self.until

    def trainable(self, name: str, iteration: int) -> bool:
        if not self.frozen(iteration):
            return True
        match = any(k in name for k in self.keys)
        return match if self.train_only else not match

    def apply(self, model: nn.Module, iteration: int) -> bool:
        """Set ``requires_grad`` for iteration ``iteration``; True if any parameter changed."""
        changed = False
        for name, p in model.named_parameters():
            want = self.trainable(name, iteration)
            if p.requires_grad != want:
                p.requires_grad_(want)
                changed = True
        return changed
