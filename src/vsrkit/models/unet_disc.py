"""The U-Net discriminator with spectral normalisation of Real-ESRGAN (Wang et al., ICCVW 2021), which RealBasicVSR
trains against (mmagic's ``UNetDiscriminatorWithSpectralNorm``; its state-dict keys: ``conv_0`` .. ``conv_9``,
spectral-normalised convolutions as ``conv_k.weight_orig``, ``conv_k.weight_u``, ``conv_k.weight_v``).

It gives a realness logit per pixel, not per image: three strided 4x4 convolutions go down to 1/8 of the size,
three bilinear x2 upsamplings with 3x3 convolutions come back (adding the features of the same size on the way down
when ``skip_connection``), then two 3x3 convolutions and a one-channel output. All convolutions but the first and
the last are spectral-normalised (Miyato et al., ICLR 2018), which keeps the discriminator Lipschitz and the GAN
training stable.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

__all__ = ["UNetDiscriminatorWithSpectralNorm"]


def _sn_conv(cin: int, cout: int, kernel: int, stride: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, kernel, stride, 1, bias=False))


class UNetDiscriminatorWithSpectralNorm(nn.Module):
    """Per-pixel realness logits ``[n, 1, h, w]`` of images ``[n, in_channels, h, w]`` (h, w multiples of 8).

    Args (mmagic's): ``in_channels``, ``mid_channels`` (64), ``skip_connection`` (True).
    """

    def __init__(self, in_channels: int = 3, mid_channels: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        m = mid_channels
        self.skip_connection = skip_connection
        self.conv_0 = nn.Conv2d(in_channels, m, 3, 1, 1)
        # down: 1/2, 1/4, 1/8
        self.conv_1 = _sn_conv(m, m * 2, 4, 2)
        self.conv_2 = _sn_conv(m * 2, m * 4, 4, 2)
        self.conv_3 = _sn_conv(m * 4, m * 8, 4, 2)
        # up: 1/4, 1/2, 1
        self.conv_4 = _sn_conv(m * 8, m * 4, 3, 1)
        self.conv_5 = _sn_conv(m * 4, m * 2, 3, 1)
        self.conv_6 = _sn_conv(m * 2, m, 3, 1)
        # head
        self.conv_7 = _sn_conv(m, m, 3, 1)
        self.conv_8 = _sn_conv(m, m, 3, 1)
        self.conv_9 = nn.Conv2d(m, 1, 3, 1, 1)

    @staticmethod
    def _act(x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, 0.2)

    def _up(self, x: torch.Tensor, conv: nn.Module, skip: torch.Tensor) -> torch.Tensor:
        x = self._act(conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)))
        return x + skip if self.skip_connection else x

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.dim() != 4 or img.shape[-1] % 8 or img.shape[-2] % 8:
            raise ValueError(f"the U-Net discriminator needs [n, c, h, w] with h and w multiples of 8, "
                             f"got {tuple(img.shape)}")
        f0 = self._act(self.conv_0(img))
        f1 = self._act(self.conv_1(f0))
        f2 = self._act(self.conv_2(f1))
        f3 = self._act(self.conv_3(f2))
        x = self._up(f3, self.conv_4, f2)
        x = self._up(x, self.conv_5, f1)
        x = self._up(x, self.conv_6, f0)
        x = self._act(self.conv_7(x))
        x = self._act(self.conv_8(x))
        return self.conv_9(x)
