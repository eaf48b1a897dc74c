"""PSNR and SSIM exactly as the VSR papers report them (BasicSR's ``calculate_psnr`` / ``calculate_ssim``).

Protocol knobs: the Y channel of MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, studio range 16..235) or all
channels, and ``crop_border`` pixels dropped on every side before anything else.

Colour order: vsrkit works in RGB, so ``order='rgb'`` is the default. BasicSR reads images with OpenCV
and its Y conversion assumes BGR arrays; pass ``order='bgr'`` for such arrays. Passing RGB arrays to
BasicSR (or BGR arrays here with the default) weighs red as blue and gives other numbers, e.g. 22.21 dB
instead of 22.10 dB for bicubic x4 butterfly (Set5).

Inputs are ``H x W`` or ``H x W x C`` arrays (uint8, or float on the 0..255 scale); torch CPU tensors in
that layout work too.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rgb_to_y", "psnr", "ssim", "psnr_float"]

# MATLAB rgb2ycbcr: Y = 16 + (65.481 R + 128.553 G + 24.966 B) with R, G, B in [0, 1]
_Y_WEIGHTS = {"rgb": np.array([65.481, 128.553, 24.966]), "bgr": np.array([24.966, 128.553, 65.481])}
_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2
_SSIM_SIZE, _SSIM_SIGMA = 11, 1.5


def _order(order: str) -> str:
    o = str(order).lower()
    if o not in _Y_WEIGHTS:
        raise ValueError(f"unknown channel order {order!r}; use 'rgb' or 'bgr'")
    return o


def rgb_to_y(image: np.ndarray, order: str = "rgb") -> np.ndarray:
    """Y of MATLAB ``rgb2ycbcr`` (BT.601 studio range, 16..235) of an ``H x W x 3`` image on the 0..255
    scale, as float64 ``H x W``.

    The arithmetic follows BasicSR's ``to_y_channel`` step by step (float32 input, float64 dot product,
    float32 result), so metrics agree with its published numbers to ~1e-12, not just to ~1e-6.
    """
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"rgb_to_y needs an H x W x 3 image, got shape {a.shape}")
    x = a.astype(np.float32) / 255.0
    y = ((np.dot(x, _Y_WEIGHTS[_order(order)]) + 16.0) / 255.0).astype(np.float32)
    return (y * 255.0).astype(np.float64)


def _prepare(a: np.ndarray, b: np.ndarray, crop_border: int, y_channel: bool, order: str,
             what: str) -> tuple[np.ndarray, np.ndarray]:
    """Both images cropped and converted as BasicSR does, as float64 ``H x W x C``."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"{what}: shapes differ {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"{what}: expected H x W or H x W x C images, got shape {a.shape}")
    order = _order(order)
    if crop_border < 0 or 2 * crop_border >= min(a.shape[:2]):
        raise ValueError(f"{what}: crop_border {crop_border} does not fit a {a.shape[1]}x{a.shape[0]} image")
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    if y_channel:
        if a.shape[2] == 3:
            return rgb_to_y(a, order)[:, :, None], rgb_to_y(b, order)[:, :, None]
        # BasicSR leaves other channel counts as they are, through float32
        a = (a.astype(np.float32) / 255.0) * 255.0
        b = (b.astype(np.float32) / 255.0) * 255.0
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, crop_border: int = 0, y_channel: bool = True, order: str = "rgb") -> float:
    """PSNR in dB of two images on the 0..255 scale: on Y (default) or all channels, ``crop_border``
    pixels dropped on each side; ``inf`` for identical images (BasicSR ``calculate_psnr``)."""
    x, y = _prepare(a, b, crop_border, y_channel, order, "psnr")
    mse = np.mean((x - y) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 * 255.0 / mse))


def _gaussian_window(size: int = _SSIM_SIZE, sigma: float = _SSIM_SIGMA) -> np.ndarray:
    """OpenCV ``getGaussianKernel(size, sigma)``: normalised 1-D Gaussian (float64)."""
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r * r) / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Correlation of ``x`` (H x W) with ``outer(g, g)``, valid region only (separable)."""
    k = len(g)
    h, w = x.shape[0] - k + 1, x.shape[1] - k + 1
    rows = sum(g[i] * x[i:i + h] for i in range(k))
    return sum(g[j] * rows[:, j:j + w] for j in range(k))


def _ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM map of one channel: Gaussian window 11, sigma 1.5, valid region, C1/C2 of K = 0.01, 0.03."""
    g = _gaussian_window()
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x = _filter_valid(x * x, g) - mu_xx
    var_y = _filter_valid(y * y, g) - mu_yy
    cov = _filter_valid(x * y, g) - mu_xy
    ssim_map = ((2 * mu_xy + _SSIM_C1) * (2 * cov + _SSIM_C2)) / ((mu_xx + mu_yy + _SSIM_C1) * (var_x + var_y + _SSIM_C2))
    return float(ssim_map.mean())


def ssim(a: np.ndarray, b: np.ndarray, crop_border: int = 0, y_channel: bool = True, order: str = "rgb") -> float:
    """SSIM of two images on the 0..255 scale (BasicSR ``calculate_ssim``): on Y (default) or each
    channel and averaged, ``crop_border`` pixels dropped on each side."""
    x, y = _prepare(a, b, crop_border, y_channel, order, "ssim")
    if min(x.shape[:2]) < _SSIM_SIZE:
        raise ValueError(f"ssim: needs at least {_SSIM_SIZE}x{_SSIM_SIZE} pixels after cropping, "
                         f"got {x.shape[1]}x{x.shape[0]}")
    return float(np.mean([_ssim_channel(x[:, :, c], y[:, :, c]) for c in range(x.shape[2])]))


def psnr_float(a, b) -> float:
    """PSNR in dB of two float arrays/tensors in [0, 1] (no colour conversion, no crop)."""
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(1.0 / mse))
