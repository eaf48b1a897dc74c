"""Degradations of the VSR protocols.

``bi_downscale``: MATLAB ``imresize(x, 1/s, 'bicubic')`` with its antialiasing kernel and symmetric
borders (the "BI" degradation of REDS, Vimeo-90K and Vid4 benchmarks), on float tensors.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _cubic(x: torch.Tensor) -> torch.Tensor:
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def _resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> torch.Tensor:
    """(out_len, in_len) weights of MATLAB's bicubic imresize along one axis."""
    width = 4.0
    kernel_scale = scale if (antialias and scale < 1) else 1.0
    if kernel_scale < 1:
        width = width / kernel_scale
    i = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = i / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    w = kernel_scale * _cubic((u[:, None] - idx) * kernel_scale)
    w = w / w.sum(1, keepdim=True)
    # symmetric borders: 1..n, n..1 repeated
    mirror = torch.cat([torch.arange(in_len), torch.arange(in_len - 1, -1, -1)])
    src = mirror[((idx - 1).long()) % (2 * in_len)]
    m = torch.zeros(out_len, in_len, dtype=torch.float64)
    m.scatter_add_(1, src, w)
    return m


def imresize(x: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
    """MATLAB-compatible bicubic resize of ``x[..., h, w]`` (float, any range); antialiased when shrinking."""
    h, w = x.shape[-2:]
    if size is None:
        if scale is None:
            raise ValueError("imresize needs scale or size")
        size = (int(math.ceil(h * scale)), int(math.ceil(w * scale)))
    sh = size[0] / h if scale is None else scale
    sw = size[1] / w if scale is None else scale
    mh = _resize_matrix(h, size[0], sh).to(x.device, torch.float64)
    mw = _resize_matrix(w, size[1], sw).to(x.device, torch.float64)
    y = torch.einsum("oh,...hw,pw->...op", mh, x.double(), mw)
    return y.to(x.dtype)


def bi_downscale(image: np.ndarray, scale: int = 4) -> np.ndarray:
    """The BI degradation of a uint8 H x W x C image: MATLAB bicubic 1/scale, rounded to uint8."""
    t = torch.from_numpy(image).permute(2, 0, 1).double()
    y = imresize(t, 1 / scale)
    return y.round().clamp(0, 255).permute(1, 2, 0).numpy().astype(np.uint8)
