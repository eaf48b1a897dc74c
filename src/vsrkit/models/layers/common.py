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
    to ``x``'s dtype (and memory format): low-precision sampling coordinates move pixels visibly.
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
    return out.to(dtype=dtype, memory_format=memory_format(x))


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether a 4-D tensor's channels are its innermost dimension (a channels-last tensor or a view of one)."""
    return x.dim() == 4 and x.shape[1] > 1 and x.stride(1) == 1


def memory_format(x: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a channels-last 4-D tensor, else ``torch.contiguous_format``."""
    return torch.channels_last if is_channels_last(x) else torch.contiguous_format


def channels_last_frames(x: torch.Tensor) -> torch.Tensor:
    """``x`` with every frame channels-last: ``(b, c, h, w)`` as ``torch.channels_last``, and a clip
    ``(b, t, c, h, w)`` stored as ``(b, t, h, w, c)``, so that ``x[:, i]`` and ``x.flatten(0, 1)`` are
    channels-last without a copy. Other ranks are returned as they are."""
    if x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    if x.dim() == 5:
        return x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    return x


def zeros_frame(like: torch.Tensor, channels: int) -> torch.Tensor:
    """Zeros ``(b, channels, h, w)`` with the dtype, device and memory format of the frame ``like``."""
    b, _, h, w = like.shape
    return like.new_zeros(b, channels, h, w).contiguous(memory_format=memory_format(like))


def frames_to_channels(x: torch.Tensor) -> torch.Tensor:
    """``(b, t, c, h, w)`` -> ``(b, t * c, h, w)``, channels-last if the frames are."""
    b, t, c, h, w = x.shape
    if is_channels_last(x[:, 0]):
        return x.permute(0, 3, 4, 1, 2).reshape(b, h, w, t * c).permute(0, 3, 1, 2)
    return x.reshape(b, t * c, h, w)


def stack_frames(frames: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack(frames, 1)`` for ``(b, c, h, w)`` frames, kept channels-last if they are
    (see ``channels_last_frames``)."""
    if is_channels_last(frames[0]):
        return torch.stack([f.permute(0, 2, 3, 1) for f in frames], 1).permute(0, 1, 4, 2, 3)
    return torch.stack(frames, 1)


class ResidualBlockNoBN(nn.Module):
    """conv-ReLU-conv plus identity, no batch norm (EDSR style)."""

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x + res_scale * conv2(relu(conv1(x))), accumulated into the fresh conv output: the same values, and an
        # out-of-place add of channels-last tensors costs about 7x an in-place one on the CPU (bench_speed.py)
        out = self.conv2(self.relu(self.conv1(x)))
        if self.res_scale != 1.0:
            out.mul_(self.res_scale)
        return out.add_(x)


def make_layer(block: type[nn.Module], num_blocks: int, **kwargs) -> nn.Sequential:
    """``num_blocks`` copies of ``block(**kwargs)`` in a Sequential."""
    return nn.Sequential(*(block(**kwargs) for _ in range(num_blocks)))


def pad_to_multiple(x: torch.Tensor, multiple: int = 1, min_size: int = 1) -> torch.Tensor:
    """Pad the last two dims (bottom, right) up to a multiple of ``multiple`` and at least ``min_size``.

    Reflect padding where the input is large enough for it (as BasicSR pads), else replicate.
    """
    h, w = x.shape[-2:]
    # (n + m - 1) // m rather than -(-n // m): traced for ONNX, integer division truncates towards zero
    th = max((h + multiple - 1) // multiple * multiple, min_size)
    tw = max((w + multiple - 1) // multiple * multiple, min_size)
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
