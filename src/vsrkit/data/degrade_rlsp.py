"""The RLSP authors' degradation for Vid4 (official ``evaluate/super_resolve.py``).

A Gaussian blur of standard deviation 1.5 on each colour plane of the uint8 frame, then every
``scale``-th pixel starting at 0. It differs from the BasicVSR "BD" recipe (sigma 1.6, 13x13 kernel, in
float, sampled from pixel 2): the authors blur the uint8 frame with ``scipy.ndimage.gaussian_filter``,
which keeps the uint8 type and therefore truncates towards zero after each 1-D pass (rows, then
columns), and the kernel is scipy's (radius ``int(4 * sigma + 0.5)``, borders mirrored as 'reflect').
The result is on average about one grey level darker than a float blur would give; to reproduce the
authors' low-resolution frames exactly, scipy itself is used here (it *is* the protocol).
"""

from __future__ import annotations

import numpy as np

from vsrkit.errors import VsrkitError

RLSP_SIGMA = 1.5


def rlsp_gaussian_downscale(image_uint8: np.ndarray, scale: int = 4, sigma: float = RLSP_SIGMA) -> np.ndarray:
    """``gaussian_filter(image, [sigma, sigma, 0])[0::scale, 0::scale]`` on an H x W x C (or H x W) uint8 image."""
    from scipy.ndimage import gaussian_filter

    if image_uint8.dtype != np.uint8:
        raise VsrkitError(f"the RLSP degradation takes uint8 frames, got {image_uint8.dtype}")
    if image_uint8.ndim not in (2, 3):
        raise VsrkitError(f"the RLSP degradation takes H x W or H x W x C frames, got shape {image_uint8.shape}")
    sig = [sigma, sigma] + ([0.0] if image_uint8.ndim == 3 else [])
    blurred = gaussian_filter(image_uint8, sigma=sig)  # uint8 in, uint8 out: truncated after each pass
    return np.ascontiguousarray(blurred[0::scale, 0::scale])
