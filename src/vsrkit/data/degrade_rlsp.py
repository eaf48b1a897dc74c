"""The RLSP authors' Vid4 degradation: the recipe of their released Vid4 result frames.

A Gaussian blur of standard deviation 1.5 on each colour plane, computed on float values
(``scipy.ndimage.gaussian_filter``: radius ``int(4 * sigma + 0.5)``, borders mirrored as 'reflect'), rounded
to the nearest integer (``np.rint``), clipped to 0..255 and stored as uint8; then every ``scale``-th pixel
starting at 0. It differs from the BasicVSR "BD" recipe (sigma 1.6, 13x13 kernel, sampled from pixel 2).

The released RLSP 7-64 checkpoint run on frames made this way reproduces the authors' released Vid4 output
frames at 55-56 dB PSNR on Y; blurring the uint8 frame itself (as the official ``evaluate/super_resolve.py``
does: scipy then keeps the uint8 type and truncates after each 1-D pass, about one grey level darker) gives
47 dB. The golden case ``rlsp_tf_official`` holds LR frames made by that script, used as they are.
"""

from __future__ import annotations

import numpy as np

from vsrkit.errors import VsrkitError

RLSP_SIGMA = 1.5


def rlsp_gaussian_downscale(image_uint8: np.ndarray, scale: int = 4, sigma: float = RLSP_SIGMA) -> np.ndarray:
    """``uint8(clip(rint(gaussian_filter(float(image), [sigma, sigma, 0]))))[0::scale, 0::scale]`` on an
    H x W x C (or H x W) uint8 image."""
    from scipy.ndimage import gaussian_filter

    if image_uint8.dtype != np.uint8:
        raise VsrkitError(f"the RLSP degradation takes uint8 frames, got {image_uint8.dtype}")
    if image_uint8.ndim not in (2, 3):
        raise VsrkitError(f"the RLSP degradation takes H x W or H x W x C frames, got shape {image_uint8.shape}")
    if scale < 1:
        raise VsrkitError(f"the RLSP degradation takes a positive scale, got {scale}")
    sig = [sigma, sigma] + ([0.0] if image_uint8.ndim == 3 else [])
    blurred = gaussian_filter(image_uint8.astype(np.float64), sigma=sig)
    lr = np.clip(np.rint(blurred), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(lr[0::scale, 0::scale])
