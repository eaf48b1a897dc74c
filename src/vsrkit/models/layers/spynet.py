"""SpyNet: spatial-pyramid optical flow (Ranjan & Black, CVPR 2017), as used by BasicVSR, IconVSR, VRT and
BasicVSR++.

Parameter names follow BasicSR (``basic_module.{level}.basic_module.{i}``, buffers ``mean``/``std``),
so official checkpoints load without conversion. ``MMagicSpyNet`` is the same network under mmagic's
names (each convolution an mmcv ``ConvModule``: ``basic_module.{level}.basic_module.{j}.conv``), as the
BasicVSR++ checkpoints store it.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from vsrkit.models.layers.common import flow_warp, load_official_weights, memory_format

LEVELS = 6


class BasicModule(nn.Module):
    """One pyramid level: five 7x7 convolutions that refine the flow from (ref, warped supp, flow)."""

    def __init__(self):
        super().__init__()
        chans = (8, 32, 64, 32, 16, 2)
        layers: list[nn.Module] = []
        for i in range(5):
            layers.append(nn.Conv2d(chans[i], chans[i + 1], 7, 1, 3))
            if i < 4:
                layers.append(nn.ReLU(inplace=False))
        self.basic_module = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basic_module(x)


class ConvModule(nn.Module):
    """mmcv's ``ConvModule`` without normalisation: a convolution (key ``conv``), then ReLU if ``relu``."""

    def __init__(self, in_channels: int, out_channels: int, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 7, 1, 3)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return F.relu(x) if self.relu else x


class MMagicBasicModule(nn.Module):
    """``BasicModule`` under mmagic's names: five ``ConvModule``s, ReLU after all but the last."""

    def __init__(self):
        super().__init__()
        chans = (8, 32, 64, 32, 16, 2)
        self.basic_module = nn.Sequential(*(ConvModule(chans[i], chans[i + 1], relu=i < 4) for i in range(5)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basic_module(x)


class SpyNet(nn.Module):
    """Coarse-to-fine flow over a six-level average-pooling pyramid; ImageNet-normalised input."""

    level_module: type[nn.Module] = BasicModule

    def __init__(self, load_path: str | None = None):
        super().__init__()
        self.basic_module = nn.ModuleList(self.level_module() for _ in range(LEVELS))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        if load_path:
            load_official_weights(self, load_path)

    def pyramid_flows(self, ref: torch.Tensor, supp: torch.Tensor) -> list[torch.Tensor]:
        """Flows (ref -> supp) at every pyramid level, coarsest first; sizes must be multiples of 32."""
        ref_levels = [(ref - self.mean) / self.std]
        supp_levels = [(supp - self.mean) / self.std]
        for _ in range(LEVELS - 1):
            ref_levels.insert(0, F.avg_pool2d(ref_levels[0], kernel_size=2, stride=2, count_include_pad=False))
            supp_levels.insert(0, F.avg_pool2d(supp_levels[0], kernel_size=2, stride=2, count_include_pad=False))
        b, _, h0, w0 = ref_levels[0].shape
        fmt = memory_format(ref_levels[-1])
        flow = ref_levels[0].new_zeros(b, 2, h0 // 2, w0 // 2).contiguous(memory_format=fmt)
        flows = []
        for level in range(LEVELS):
            up = F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True) * 2.0
            up = up.contiguous(memory_format=fmt)  # a 1x1 flow upsampled comes back channel-major
            if up.shape[2] != ref_levels[level].shape[2]:
                up = F.pad(up, [0, 0, 0, 1], mode="replicate")
            if up.shape[3] != ref_levels[level].shape[3]:
                up = F.pad(up, [0, 1, 0, 0], mode="replicate")
            warped = flow_warp(supp_levels[level], up.permute(0, 2, 3, 1), "bilinear", "border")
            flow = self.basic_module[level](torch.cat([ref_levels[level], warped, up], 1)) + up
            flows.append(flow)
        return flows

    def process(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        """The finest-level flow (BasicSR's ``SpyNet.process``)."""
        return self.pyramid_flows(ref, supp)[-1]

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        """Flow from ``ref`` to ``supp`` (both [n, 3, h, w] RGB in [0, 1]) at full size, [n, 2, h, w]."""
        if ref.shape != supp.shape:
            raise ValueError("SpyNet: ref and supp differ in shape")
        h, w = ref.shape[2:]
        h32, w32 = math.ceil(h / 32.0) * 32, math.ceil(w / 32.0) * 32
        ref = F.interpolate(ref, size=(h32, w32), mode="bilinear", align_corners=False)
        supp = F.interpolate(supp, size=(h32, w32), mode="bilinear", align_corners=False)
        flow = F.interpolate(self.process(ref, supp), size=(h, w), mode="bilinear", align_corners=False)
        flow[:, 0, :, :] *= float(w) / float(w32)
        flow[:, 1, :, :] *= float(h) / float(h32)
        return flow


class MMagicSpyNet(SpyNet):
    """SpyNet with mmagic's parameter names (``SPyNet`` of mmagic's ``basicvsr_net.py``): the same computation.
    Its coarsest level starts from a zero flow of size/32 where BasicSR upsamples a zero flow of size/64 to it: the
    same zeros, so the flows are the same.

    ``load_path``: a local SpyNet checkpoint to load strictly: a plain state dict or one inside ``state_dict`` /
    ``params``; mmagic's files may hold no ``mean``/``std`` (constants), which then keep their values here.
    """

    level_module = MMagicBasicModule

    def __init__(self, load_path: str | None = None):
        super().__init__(None)
        if load_path:
            if not isinstance(load_path, str):
                raise TypeError(f"SpyNet weights must be a file path or None, got {type(load_path).__name__}")
            if "://" in load_path:
                raise ValueError(f"SpyNet weights must be a local file here, not a URL: {load_path}")
            sd = torch.load(load_path, map_location="cpu", weights_only=True)
            for key in ("state_dict", "params"):
                sd = sd.get(key, sd)
            sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
            sd.setdefault("mean", self.mean)
            sd.setdefault("std", self.std)
            self.load_state_dict(sd, strict=True)
