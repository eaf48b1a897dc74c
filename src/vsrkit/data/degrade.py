"""The BI and BD degradations of the VSR benchmarks, made exactly as the published numbers were made.

BI (bicubic, any integer scale)
    MATLAB ``imresize(im2double(hr), 1/s, 'bicubic')`` (antialiased Keys cubic, a = -0.5, stretched by s;
    half-sample symmetric borders; height pass then width pass, no rounding in between), then MATLAB's
    ``im2uint8``: ``floor(255 * y + 0.5)`` clamped to 0..255. This is how BasicSR's
    ``generate_LR_Vimeo90K.m`` / ``generate_bicubic_img.m`` make the REDS, Vimeo-90K and Vid4 inputs.
    Output size ``ceil(h / s) x ceil(w / s)`` (``imresize``'s rule; use :func:`modcrop` first to keep LR
    and HR aligned as the recipe scripts do).

BD (blur-downsample, x4)
    ``BD_degradation.m`` of the BasicVSR/IconVSR release: ``fspecial('gaussian', 12, 1.6)`` (12 = ceil(3
    sigma) * 2 + 2, an even kernel that MATLAB centres on its 6th element), ``imfilter(..., 'replicate')``
    on the integer pixel values, rows/columns ``2:4:end-2`` (1-based) kept, so every LR pixel is centred
    on its 4 x 4 block; rounded half away from zero. Not BasicSR's ``duf_downsample`` (13 taps, reflect).

Both run in float64 on the CPU or the tensor's device, as separable tap sums (vectorised over pixels).
They agree with the golden data to the last uint8 level except, at most, ±1 where the exact value lies
within 5e-4 of a rounding boundary (float summation order decides those).

Entry points
    ``bi_downscale``, ``bd_downscale``, ``degrade``: numpy ``uint8`` (or ``uint16``) images, ``H x W``,
    ``H x W x C`` or ``T x H x W x C`` -> the same dtype and layout. Usable in DataLoader workers.
    ``bi_downscale_tensor``, ``bd_downscale_tensor``, ``degrade_tensor``: torch tensors ``(..., C, H, W)``;
    ``uint8`` in 0..255 -> ``uint8``, or floating point in [0, 1] -> the same dtype in [0, 1]
    (``quantize=True`` rounds to multiples of 1/255 exactly as the uint8 path does).
    ``imresize``: MATLAB bicubic resize of a float tensor, any range and scale (up or down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

__all__ = ["MODES", "BD_SIGMA", "imresize", "bd_kernel", "modcrop", "bi_downscale", "bd_downscale", "degrade",
           "bi_downscale_tensor", "bd_downscale_tensor", "degrade_tensor", "bicubic_upscale", "bicubic_baseline"]

MODES = ("bi", "bd")
BD_SIGMA = 1.6  # BD_degradation.m
BD_SCALE = 4  # the only scale BD_degradation.m is defined for (sigma 1.6 belongs to x4)


# ------------------------------------------------------------------------------------------ taps
@dataclass(frozen=True)
class _Taps:
    """How one axis is filtered: ``out[k] = sum_t weight[t][k] * padded[pos[t][k]]``.

    ``padded`` is the input extended by its border rule (``source`` lists, for each padded position,
    the input index it copies). When output ``k`` reads position ``start[t] + stride * k`` for every tap
    (integer scales, BD), the taps are strided slices; otherwise ``pos`` is gathered. A weight that is
    the same for every output is kept as a float.
    """

    source: torch.Tensor  # (n_padded,) int64 input index of each padded position
    start: tuple[int, ...]  # first padded position of each tap
    stride: int | None  # positions between outputs when regular, else None
    pos: torch.Tensor  # (taps, out) int64 padded positions (used when stride is None)
    weight: tuple[float | torch.Tensor, ...]  # per tap: a float, or an (out,) float64 tensor
    out_len: int


def _make_taps(raw: np.ndarray, w: np.ndarray, in_len: int, border: str) -> _Taps:
    """``raw`` (out, taps): 0-based input positions, possibly outside ``0..in_len-1``; ``w`` their
    weights. ``border``: 'symmetric' (half-sample mirror, edge repeated) or 'replicate'."""
    lo = int(raw.min())
    positions = np.arange(lo, int(raw.max()) + 1)
    if border == "symmetric":
        m = positions % (2 * in_len)
        source = np.where(m < in_len, m, 2 * in_len - 1 - m)
    else:
        source = np.clip(positions, 0, in_len - 1)
    pos = (raw - lo).T  # (taps, out)
    step = np.diff(pos, axis=1)
    stride = int(step[0, 0]) if pos.shape[1] > 1 else 1
    regular = stride > 0 and bool(np.all(step == stride))
    weight = tuple(float(wt[0]) if np.all(wt == wt[0]) else torch.from_numpy(np.ascontiguousarray(wt))
                   for wt in w.T)
    return _Taps(torch.from_numpy(source.astype(np.int64)), tuple(int(p) for p in pos[:, 0]),
                 stride if regular else None, torch.from_numpy(np.ascontiguousarray(pos, dtype=np.int64)),
                 weight, raw.shape[0])


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=256)
def _bicubic_taps(in_len: int, out_len: int, step: float, antialias: bool) -> _Taps:
    """MATLAB's bicubic imresize along one axis.

    ``step`` is the number of input pixels per output pixel (``s`` when shrinking by ``s``). Output pixel
    ``k`` (1-based) sits at input coordinate ``u = k * step + (1 - step) / 2``; when shrinking with
    antialiasing the kernel is stretched by ``step``. Weights are normalised per output pixel, indices
    outside ``1..in_len`` are mirrored (the edge pixel repeated), and taps whose weight is zero for every
    output pixel are dropped.
    """
    stretch = step if (antialias and step > 1) else 1.0
    width = 4.0 * stretch
    u = np.arange(1, out_len + 1, dtype=np.float64) * step + 0.5 * (1.0 - step)
    left = np.floor(u - width / 2)
    idx = left[:, None] + np.arange(int(math.ceil(width)) + 2, dtype=np.float64)[None, :]
    w = _cubic((u[:, None] - idx) / stretch) / stretch
    w /= w.sum(axis=1, keepdims=True)
    keep = np.any(w != 0, axis=0)
    return _make_taps(idx[:, keep].astype(np.int64) - 1, w[:, keep], in_len, "symmetric")


def bd_kernel(sigma: float = BD_SIGMA, size: int | None = None) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)`` as float64; ``size`` defaults to BD_degradation.m's
    ``ceil(3 * sigma) * 2 + 2`` (12 for sigma 1.6)."""
    if size is None:
        size = math.ceil(3 * sigma) * 2 + 2
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    x, y = np.meshgrid(r, r)
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(np.float64).eps * h.max()] = 0
    return h / h.sum()


def _gaussian_1d(sigma: float, size: int) -> np.ndarray:
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r * r) / (2 * sigma * sigma))
    return g / g.sum()  # outer(g, g) is bd_kernel(sigma, size) up to float rounding


@lru_cache(maxsize=256)
def _bd_taps(in_len: int, scale: int, sigma: float) -> _Taps:
    """BD along one axis: imfilter with the even Gaussian kernel (MATLAB centres it on element
    ``(size + 1) // 2``, 1-based), replicate borders, kept positions ``scale/2 : scale : end - scale/2``
    (1-based)."""
    size = math.ceil(3 * sigma) * 2 + 2
    g = _gaussian_1d(sigma, size)
    centre = (size + 1) // 2 - 1  # 0-based: 5 for 12 taps, so output row i reads rows i-5 .. i+6
    kept = np.arange(scale // 2 - 1, in_len - scale // 2, scale)  # 0-based rows 1, 5, 9, ..., H-3 for x4
    raw = kept[:, None] + np.arange(size)[None, :] - centre
    return _make_taps(raw, np.broadcast_to(g, raw.shape), in_len, "replicate")


def _tap_sum(x: torch.Tensor, dim: int, taps: _Taps) -> torch.Tensor:
    """Filter float64 ``x`` along ``dim`` with ``taps``."""
    dim %= x.ndim
    padded = x.index_select(dim, taps.source.to(x.device))
    shape = [1] * x.ndim
    shape[dim] = -1
    lead = (slice(None),) * dim
    out = None
    for t, start in enumerate(taps.start):
        if taps.stride is not None:
            sel = padded[lead + (slice(start, start + taps.stride * (taps.out_len - 1) + 1, taps.stride),)]
        else:
            sel = padded.index_select(dim, taps.pos[t].to(x.device))
        wt = taps.weight[t]
        if not isinstance(wt, float):
            wt = wt.to(x.device, x.dtype).view(shape)
        if out is None:
            out = sel * wt
        elif isinstance(wt, float):
            out.add_(sel, alpha=wt)
        else:
            out.addcmul_(sel, wt)
    return out


def _bi(x: torch.Tensor, hdim: int, wdim: int, scale: int) -> torch.Tensor:
    """BI resize of float64 ``x`` along (hdim, wdim), height first; no rounding."""
    h, w = x.shape[hdim], x.shape[wdim]
    x = _tap_sum(x, hdim, _bicubic_taps(h, -(-h // scale), float(scale), True))
    return _tap_sum(x, wdim, _bicubic_taps(w, -(-w // scale), float(scale), True))


def _bd(x: torch.Tensor, hdim: int, wdim: int, scale: int) -> torch.Tensor:
    """BD blur + subsample of float64 ``x`` (pixel values) along (hdim, wdim); no rounding."""
    x = _tap_sum(x, hdim, _bd_taps(x.shape[hdim], scale, BD_SIGMA))
    return _tap_sum(x, wdim, _bd_taps(x.shape[wdim], scale, BD_SIGMA))


# --------------------------------------------------------------------------------------- checks
def _check_scale(mode: str, scale: int, h: int, w: int) -> None:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"{mode.upper()} scale must be a positive integer, got {scale!r}")
    if mode == "bd":
        if scale != BD_SCALE:
            raise ValueError(f"BD is defined for x{BD_SCALE} only (sigma {BD_SIGMA}), got x{scale}")
        if h % scale or w % scale:
            raise ValueError(f"BD x{scale} needs a size divisible by {scale}, got {w}x{h} (crop it with modcrop)")


def _check_mode(mode: str) -> str:
    m = str(mode).lower()
    if m not in MODES:
        raise ValueError(f"unknown degradation {mode!r}; use 'bi' or 'bd'")
    return m


def _hw_dims(ndim: int) -> tuple[int, int]:
    """(height, width) axes of an ``H x W``, ``H x W x C`` or ``T x H x W x C`` numpy image."""
    if ndim == 2:
        return 0, 1
    if ndim in (3, 4):
        return ndim - 3, ndim - 2
    raise ValueError(f"expected an H x W, H x W x C or T x H x W x C image, got {ndim} dimensions")


def _max_value(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    raise TypeError(f"expected a uint8 or uint16 image, got {dtype}")


# ----------------------------------------------------------------------------------- public API
def imresize(x: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None,
             antialias: bool = True) -> torch.Tensor:
    """MATLAB ``imresize(x, scale, 'bicubic')`` of a float tensor ``(..., h, w)`` (any range, not clamped).

    Give ``scale`` (output ``ceil(h * scale) x ceil(w * scale)``) or ``size = (out_h, out_w)``.
    Antialiased when shrinking, like MATLAB. Computed in float64, returned in ``x``'s dtype.
    """
    if not torch.is_floating_point(x):
        raise TypeError(f"imresize needs a floating point tensor, got {x.dtype}")
    h, w = x.shape[-2:]
    if size is None:
        if scale is None:
            raise ValueError("imresize needs scale or size")
        if scale <= 0:
            raise ValueError(f"imresize scale must be positive, got {scale}")
        size = (int(math.ceil(h * scale)), int(math.ceil(w * scale)))
    sh = size[0] / h if scale is None else scale
    sw = size[1] / w if scale is None else scale
    y = _tap_sum(x.double(), -2, _bicubic_taps(h, size[0], 1.0 / sh, antialias))
    y = _tap_sum(y, -1, _bicubic_taps(w, size[1], 1.0 / sw, antialias))
    return y.to(x.dtype)


def bicubic_upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """The bicubic baseline, on tensors: MATLAB ``imresize(x, scale, 'bicubic')`` of a float tensor ``(..., h, w)``
    (any range, not clamped). Every "bicubic" that vsrkit reports (the demo, ``vsrkit eval`` and its report, the
    model cards) is this one, as the benchmarks' papers report it."""
    return imresize(x, scale=scale)


def bicubic_baseline(image: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline of an ``H x W x C`` uint8 image (:func:`bicubic_upscale` of it in [0, 1], rounded to
    uint8 as ``im2uint8`` does): ``scale`` times its size."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).double() / 255.0
    y = bicubic_upscale(x, scale).clamp(0, 1).mul(255.0).round()
    return y.permute(1, 2, 0).to(torch.uint8).numpy()


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``modcrop``: keep the top-left ``h - h % scale`` rows and ``w - w % scale`` columns of an
    ``H x W``, ``H x W x C`` or ``T x H x W x C`` array (a view)."""
    hd, wd = _hw_dims(img.ndim)
    h, w = img.shape[hd], img.shape[wd]
    sl = [slice(None)] * img.ndim
    sl[hd], sl[wd] = slice(0, h - h % scale), slice(0, w - w % scale)
    return img[tuple(sl)]


def bi_downscale(img: np.ndarray, scale: int = 4) -> np.ndarray:
    """BI: MATLAB bicubic ``1/scale`` of a uint8 (or uint16) image, rounded as ``im2uint8`` does.

    ``img`` is ``H x W``, ``H x W x C`` or ``T x H x W x C``; the result has the same dtype and layout,
    size ``ceil(h / scale) x ceil(w / scale)``.
    """
    img = np.asarray(img)
    peak = _max_value(img.dtype)
    hd, wd = _hw_dims(img.ndim)
    _check_scale("bi", scale, img.shape[hd], img.shape[wd])
    # resize(img / peak) * peak is resize(img): one pass less, equal up to ~1e-13 (far inside the near-tie band)
    y = _bi(torch.from_numpy(img).double(), hd, wd, int(scale))
    return torch.floor(y + 0.5).clamp_(0, peak).numpy().astype(img.dtype)


def bd_downscale(img: np.ndarray, scale: int = 4) -> np.ndarray:
    """BD: Gaussian blur (12 x 12, sigma 1.6, replicate borders) and x4 subsampling of a uint8 (or
    uint16) image, rounded half away from zero, as ``BD_degradation.m`` does.

    ``img`` is ``H x W``, ``H x W x C`` or ``T x H x W x C`` with ``H`` and ``W`` divisible by 4.
    """
    img = np.asarray(img)
    peak = _max_value(img.dtype)
    hd, wd = _hw_dims(img.ndim)
    _check_scale("bd", scale, img.shape[hd], img.shape[wd])
    y = _bd(torch.from_numpy(img).double(), hd, wd, int(scale))
    return torch.floor(y + 0.5).clamp_(0, peak).numpy().astype(img.dtype)


def degrade(img: np.ndarray, mode: str, scale: int = 4) -> np.ndarray:
    """``bi_downscale`` or ``bd_downscale`` (``mode`` 'bi' or 'bd') of a uint8/uint16 numpy image, or the RLSP
    authors' Vid4 degradation (``mode`` 'rlsp', uint8 only: ``degrade_rlsp.rlsp_gaussian_downscale``, a float
    blur)."""
    if str(mode).lower() == "rlsp":
        from vsrkit.data.degrade_rlsp import rlsp_gaussian_downscale

        return rlsp_gaussian_downscale(img, scale)
    return (bi_downscale if _check_mode(mode) == "bi" else bd_downscale)(img, scale)


def _tensor_in(x: torch.Tensor, what: str) -> None:
    if x.ndim < 2:
        raise ValueError(f"{what} needs a (..., C, H, W) tensor, got shape {tuple(x.shape)}")
    if x.dtype != torch.uint8 and not torch.is_floating_point(x):
        raise TypeError(f"{what} needs a uint8 or floating point tensor, got {x.dtype}")


def bi_downscale_tensor(x: torch.Tensor, scale: int = 4, quantize: bool = True) -> torch.Tensor:
    """BI of a tensor ``(..., H, W)``, e.g. ``(B, T, C, H, W)``, on its device.

    ``uint8`` (0..255) -> ``uint8``, identical to :func:`bi_downscale`. Floating point in [0, 1] -> the
    same dtype: with ``quantize`` rounded to ``k / 255`` and clamped as the uint8 path is (equal to it
    for inputs ``k / 255`` except ±1/255 at near-tie pixels), without it the raw bicubic values (which
    may overshoot [0, 1] slightly).
    """
    _tensor_in(x, "bi_downscale_tensor")
    _check_scale("bi", scale, x.shape[-2], x.shape[-1])
    if x.dtype == torch.uint8:
        return torch.floor(_bi(x.double(), -2, -1, int(scale)) + 0.5).clamp_(0, 255).to(torch.uint8)
    y = _bi(x.double(), -2, -1, int(scale))
    if quantize:
        y = torch.floor(y * 255.0 + 0.5).clamp_(0, 255) / 255.0
    return y.to(x.dtype)


def bd_downscale_tensor(x: torch.Tensor, scale: int = 4, quantize: bool = True) -> torch.Tensor:
    """BD x4 of a tensor ``(..., H, W)`` on its device; dtypes and ``quantize`` as in
    :func:`bi_downscale_tensor` (uint8 input gives exactly :func:`bd_downscale`)."""
    _tensor_in(x, "bd_downscale_tensor")
    _check_scale("bd", scale, x.shape[-2], x.shape[-1])
    if x.dtype == torch.uint8:
        return torch.floor(_bd(x.double(), -2, -1, int(scale)) + 0.5).clamp_(0, 255).to(torch.uint8)
    y = _bd(x.double() * 255.0, -2, -1, int(scale))
    if quantize:
        y = torch.floor(y + 0.5).clamp_(0, 255)
    return (y / 255.0).to(x.dtype)


def degrade_tensor(x: torch.Tensor, mode: str, scale: int = 4, quantize: bool = True) -> torch.Tensor:
    """``bi_downscale_tensor`` or ``bd_downscale_tensor`` (``mode`` 'bi' or 'bd')."""
    fn = bi_downscale_tensor if _check_mode(mode) == "bi" else bd_downscale_tensor
    return fn(x, scale, quantize)
