"""Building blocks shared by several model families (BasicSR-compatible parameter names)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def flow_warp(
    x: torch.Tensor,
    flow: torch.Tensor,
    interp_mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool = True,
) -> torch.Tensor:
    """Warp ``x[n, c, h, w]`` by optical flow ``flow[n, h, w, 2]`` (pixels, channel 0 = x).

    Sampling always runs in float32, also under bf16/fp16 autocast, and the result is cast back
    to ``x``'s dtype: low-precision sampling coordinates move pixels visibly.
    """
    if x.shape[-2:] != flow.shape[1:3]:
        raise ValueError(f"flow_warp: feature size {tuple(x.shape[-2:])} != flow size {tuple(flow.shape[1:3])}")
    dtype = x.dtype
    _, _, h, w = x.shape
    with torch.autocast(device_type=x.device.type, enabled=False):
        flow = flow.float()
        grid_y, grid_x = torch.meshgrid(
            torch.arange(h, device=x.device, dtype=torch.float32),
            torch.arange(w, device=x.device, dtype=torch.float32),
            indexing="ij",
        )
        vx = 2.0 * (grid_x + flow[..., 0]) / max(w - 1, 1) - 1.0
        vy = 2.0 * (grid_y + flow[..., 1]) / max(h - 1, 1) - 1.0
        grid = torch.stack((vx, vy), dim=3)
        out = F.grid_sample(x.float(), grid, mode=interp_mode, padding_mode=padding_mode, align_corners=align_corners)
    return out.to(dtype)


class ResidualBlockNoBN(nn.Module):
    """conv-ReLU-conv plus identity, no batch norm (EDSR style)."""

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


def make_layer(block: type[nn.Module], num_blocks: int, **kwargs) -> nn.Sequential:
    """``num_blocks`` copies of ``block(**kwargs)`` in a Sequential."""
    return nn.Sequential(*(block(**kwargs) for _ in range(num_blocks)))


def pad_to_multiple(x: torch.Tensor, multiple: int = 1, min_size: int = 1) -> torch.Tensor:
    """Pad the last two dims (bottom, right) up to a multiple of ``multiple`` and at least ``min_size``.

    Reflect padding where the input is large enough for it (as BasicSR pads), else replicate.
    """
    h, w = x.shape[-2:]
    th = max(-(-h // multiple) * multiple, min_size)
    tw = max(-(-w // multiple) * multiple, min_size)
    if th == h and tw == w:
        return x
    shape = x.shape
    mode = "reflect" if (th - h < h and tw - w < w) else "replicate"
    flat = F.pad(x.reshape(-1, *shape[-3:]), (0, tw - w, 0, th - h), mode=mode)
    return flat.reshape(*shape[:-2], th, tw)


def load_official_weights(module: nn.Module, path: str) -> None:
    """The official ``load_path`` constructor argument (SpyNet, IconVSR's EDVR extractor): a BasicSR
    ``{'params': ...}`` file or a plain state dict, read with ``weights_only=True`` and loaded strictly."""
    sd = torch.load(path, map_location="cpu", weights_only=True)
    module.load_state_dict(sd.get("params", sd), strict=True)
