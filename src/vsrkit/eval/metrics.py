"""PSNR and SSIM as the VSR papers report them: on the Y channel of MATLAB's rgb2ycbcr, borders cropped."""

from __future__ import annotations

import numpy as np


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 RGB -> float64 Y in [16, 235] (MATLAB ``rgb2ycbcr``, BT.601 studio range)."""
    x = image.astype(np.float64) / 255.0
    return 16.0 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]


def psnr(a: np.ndarray, b: np.ndarray, crop_border: int = 0, y_channel: bool = True) -> float:
    """PSNR in dB between two uint8 images (on Y by default), ``crop_border`` pixels dropped on each side."""
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ {a.shape} vs {b.shape}")
    if y_channel and a.ndim == 3 and a.shape[2] == 3:
        a, b = rgb_to_y(a), rgb_to_y(b)
    else:
        a, b = a.astype(np.float64), b.astype(np.float64)
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def psnr_float(a, b) -> float:
    """PSNR in dB of two float arrays/tensors in [0, 1] (no colour conversion)."""
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(1.0 / mse))
