"""RLSP: Recurrent Latent Space Propagation (Fuoli, Gu, Timofte, ICCV-W 2019; official code dariofuoli/RLSP,
``pytorch/rlsp.py``).

Each frame goes through one cell: the previous, current and next LR frames, the previous HR output
shuffled down to LR resolution (feedback) and the hidden state are concatenated; ``layers`` 3x3 convs
with ReLU give ``in_channels*factor**2`` residual channels and ``state_dim`` new-state channels. The
output is ``shuffle_up(residual + current frame repeated factor**2 times)``: with the official
``shuffle_up`` channel order ``(fy, fx, c)`` (not ``nn.PixelShuffle``'s ``(c, fy, fx)``) the repeated
frame is a nearest-neighbour upsampling. At the ends the missing neighbour is the current frame
(``(0, 0, 1)`` and ``(T-2, T-1, T-1)``); the first frame gets zero feedback and a zero state.

Constructor arguments and the official ``pytorch/parameters.py`` keys:

=================  =====================  ==========================================
argument           official params key    default (official default)
=================  =====================  ==========================================
``layers``         ``'layers'``           7
``filters``        ``'filters'``          128
``state_dim``      ``'state dimension'``  128
``kernel_size``    ``'kernel size'``      3
``factor``         ``'factor'``           4
``in_channels``    (3 in the code)        3 (1 for the paper's Y-only models)
=================  =====================  ==========================================

``RLSP(params={'filters': 64, 'state dimension': 64})`` reads the official dict (other keys ignored);
keywords given explicitly win over ``params``. Ablation switches (paper, Table 1): ``neighbours=False``
feeds the current frame only, ``feedback=False`` drops the fed-back output, ``hidden_state=False`` drops
the state; the first conv's input channels shrink accordingly (``hidden_state=False`` is ``state_dim=0``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vsrkit.models.layers.common import zeros_frame
from vsrkit.models.spec import ModelSpec, Temporal

__all__ = ["RLSP", "shuffle_down", "shuffle_up"]

PARAM_KEYS = {
    "layers": "layers",
    "filters": "filters",
    "state dimension": "state_dim",
    "kernel size": "kernel_size",
    "factor": "factor",
}


def shuffle_down(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(b, c, fh, fw) -> (b, f*f*c, h, w), channel order (fy, fx, c) as the official RLSP code."""
    b, c, hh, ww = x.shape
    if hh % factor or ww % factor:
        raise ValueError(f"height and width must be multiples of {factor}")
    h, w = hh // factor, ww // factor
    return x.reshape(b, c, h, factor, w, factor).permute(0, 3, 5, 1, 2, 4).reshape(b, factor * factor * c, h, w)


def shuffle_up(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(b, f*f*c, h, w) -> (b, c, fh, fw), the inverse of :func:`shuffle_down`."""
    b, cc, h, w = x.shape
    if cc % (factor * factor):
        raise ValueError(f"channels must be a multiple of {factor * factor}")
    c = cc // (factor * factor)
    return x.reshape(b, factor, factor, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(b, c, h * factor, w * factor)


class RLSP(nn.Module):
    """RLSP video super-resolution (recurrent, 3 frames with 1 ahead; see the module docstring)."""

    def __init__(
        self,
        layers: int | None = None,
        filters: int | None = None,
        state_dim: int | None = None,
        kernel_size: int | None = None,
        factor: int | None = None,
        in_channels: int = 3,
        neighbours: bool = True,
        feedback: bool = True,
        hidden_state: bool = True,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        cfg = {"layers": 7, "filters": 128, "state_dim": 128, "kernel_size": 3, "factor": 4}
        for key, name in PARAM_KEYS.items():
            if params and key in params:
                cfg[name] = int(params[key])
        for name, val in (("layers", layers), ("filters", filters), ("state_dim", state_dim),
                          ("kernel_size", kernel_size), ("factor", factor)):
            if val is not None:
                cfg[name] = int(val)
        if not hidden_state:
            cfg["state_dim"] = 0
        if cfg["layers"] < 2 or cfg["filters"] < 1 or cfg["state_dim"] < 0 or cfg["factor"] < 1:
            raise ValueError(f"RLSP: bad configuration {cfg}")
        if cfg["kernel_size"] < 1 or cfg["kernel_size"] % 2 == 0:
            raise ValueError(f"RLSP: kernel size must be odd, got {cfg['kernel_size']}")
        if in_channels not in (1, 3):
            raise ValueError(f"RLSP: in_channels must be 1 (Y) or 3 (RGB), got {in_channels}")
        self.layers, self.filters, self.kernel_size = cfg["layers"], cfg["filters"], cfg["kernel_size"]
        self.factor, self.state_dim = cfg["factor"], cfg["state_dim"]
        self.in_channels = in_channels
        self.neighbours, self.feedback = bool(neighbours), bool(feedback)
        self.hidden_state = self.state_dim > 0

        self.scale = self.factor
        self.spec = ModelSpec(
            scale=self.factor,
            temporal=Temporal("recurrent", window=3, ahead=1) if self.neighbours else Temporal("recurrent"),
            channels=in_channels,
        )

        c, f2, k = in_channels, self.factor**2, self.kernel_size
        n_in = c * (3 if self.neighbours else 1) + (c * f2 if self.feedback else 0) + self.state_dim
        self.act = nn.ReLU()
        self.conv1 = nn.Conv2d(n_in, self.filters, k, padding=k // 2)
        self.conv_list = nn.ModuleList(
            [nn.Conv2d(self.filters, self.filters, k, padding=k // 2) for _ in range(self.layers - 2)]
        )
        self.conv_out = nn.Conv2d(self.filters, c * f2 + self.state_dim, k, padding=k // 2)

    def extra_repr(self) -> str:
        return (
            f"layers={self.layers}, filters={self.filters}, state_dim={self.state_dim}, factor={self.factor}, "
            f"in_channels={self.in_channels}, neighbours={self.neighbours}, feedback={self.feedback}"
        )

    def step(
        self, x: torch.Tensor, state: tuple[torch.Tensor, ...] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One frame: ``x[b, window, c, h, w]`` (t-1, t, t+1, or t alone without neighbours).

        ``state`` is None at the first frame, otherwise the tuple returned by the previous step: the previous
        output still shuffled down (``(b, c*f*f, h, w)``, if ``feedback``) and the hidden state (if any).
        """
        b, n, c, h, w = x.shape
        if n != self.spec.temporal.window or c != self.in_channels:
            raise ValueError(f"RLSP.step expects (b, {self.spec.temporal.window}, {self.in_channels}, h, w), got {tuple(x.shape)}")
        f2 = self.factor**2
        cur = x[:, self.spec.temporal.window - 1 - self.spec.temporal.ahead]
        if state is None:
            parts = []
            if self.feedback:
                parts.append(zeros_frame(cur, c * f2))
            if self.hidden_state:
                parts.append(zeros_frame(cur, self.state_dim))
            state = tuple(parts)
        inputs = list(x.unbind(1)) + list(state)
        y = self.act(self.conv1(torch.cat(inputs, dim=1)))
        for conv in self.conv_list:
            y = self.act(conv(y))
        y = self.conv_out(y)
        out_lr = y[:, : c * f2] + cur.repeat(1, f2, 1, 1)
        new_state: list[torch.Tensor] = []
        if self.feedback:
            new_state.append(out_lr)
        if self.hidden_state:
            new_state.append(self.act(y[:, c * f2 :]))
        return shuffle_up(out_lr, self.factor), tuple(new_state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x[b, T, c, h, w] -> [b, T, c, f*h, f*w]``, the official recurrence over the whole sequence."""
        T = x.shape[1]
        outs = []
        state = None
        for t in range(T):
            if self.neighbours:
                idx = [max(t - 1, 0), t, min(t + 1, T - 1)]
                window = x[:, idx]
            else:
                window = x[:, t : t + 1]
            y, state = self.step(window, state)
            outs.append(y)
        return torch.stack(outs, dim=1)
