"""Colour and dtype conversion at the engine's edges: uint8/uint16 images <-> model tensors.

RGB models get RGB; Y-only models get the luma (BT.601 full range) and the chroma is upscaled
bicubically; grey input is run as R=G=B and written as grey; an alpha channel is upscaled bicubically
and reattached; 16-bit input keeps its full value. This is the only place where frames become tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from vsrkit.errors import VsrkitError



@dataclass
class Item:
    """One input frame as the model sees it, plus what is needed to rebuild the output image."""

    x: torch.Tensor  # (c, h, w) float32 in [0, 1]: RGB or Y
    side: torch.Tensor | None  # (k, h, w) channels upscaled bicubically: CbCr and/or alpha
    grey: bool
    alpha: bool
    payload: Any


_RGB2YCC = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=torch.float32
)
_YCC2RGB = torch.tensor([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]], dtype=torch.float32)


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """(3, h, w) RGB in [0, 1] -> YCbCr, BT.601 full range (JPEG), chroma centred on 0.5."""
    ycc = torch.einsum("ij,jhw->ihw", _RGB2YCC.to(rgb), rgb)
    ycc[1:] += 0.5
    return ycc


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """Inverse of ``rgb_to_ycbcr``."""
    ycc = ycc.clone()
    ycc[1:] -= 0.5
    return torch.einsum("ij,jhw->ihw", _YCC2RGB.to(ycc), ycc)


def image_to_item(image: np.ndarray, model_channels: int, payload: Any = None) -> Item:
    """uint8/uint16 H x W x C (C = 1, 3 or 4) -> the model's input and the side channels."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.dtype == np.uint8:
        scale = 255.0
    elif image.dtype == np.uint16:
        scale = 65535.0
    else:
        raise VsrkitError(f"unsupported frame dtype {image.dtype} (expected uint8 or uint16)")
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(scale)
    c = t.shape[0]
    grey, alpha = c in (1, 2), c in (2, 4)
    colour = t[:1] if grey else t[:3]
    side = [t[-1:]] if alpha else []
    if model_channels == 1:
        if grey:
            x = colour
        else:
            ycc = rgb_to_ycbcr(colour)
            x = ycc[:1]
            side.insert(0, ycc[1:])
    else:
        x = colour.expand(3, -1, -1).contiguous() if grey else colour
    return Item(x=x, side=torch.cat(side) if side else None, grey=grey, alpha=alpha, payload=payload)


def item_to_image(item: Item, y: torch.Tensor, model_channels: int, dtype: np.dtype) -> np.ndarray:
    """Model output (c, sh, sw) + the item's side channels -> H x W x C image of ``dtype``."""
    y = y.float()
    sh, sw = y.shape[-2:]
    side = None
    if item.side is not None:
        side = F.interpolate(item.side[None], size=(sh, sw), mode="bicubic", align_corners=False)[0]
    if model_channels == 1:
        if item.grey:
            colour = y
        else:
            colour = ycbcr_to_rgb(torch.cat([y, side[:2]]))
    else:
        colour = (y * _RGB2YCC[0].view(3, 1, 1).to(y)).sum(0, keepdim=True) if item.grey else y
    parts = [colour]
    if item.alpha:
        parts.append(side[-1:])
    out = torch.cat(parts).clamp_(0, 1)
    scale = 65535.0 if dtype == np.uint16 else 255.0
    return out.mul_(scale).round_().permute(1, 2, 0).to(torch.int32).numpy().astype(dtype)
