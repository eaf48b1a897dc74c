"""Pixel formats: the frames vsrkit reads and writes are ``H x W x C`` uint8/uint16 arrays (see ``reader``).

- :func:`layout`: the (channels, bit depth) a source pixel format is read as;
- :data:`ARRAY_FORMATS`: the FFmpeg format of each (channels, bit depth) array, :data:`PNG_FORMATS` the PNG one;
- :func:`to_array`: a decoded frame in that layout (YUV by its tagged matrix and range); :func:`is_yuv`;
- :func:`to_rgb8`: such an array as 8-bit RGB (training data).
"""

from __future__ import annotations

import sys

import av
import numpy as np

__all__ = ["ARRAY_FORMATS", "PNG_FORMATS", "is_yuv", "layout", "to_array", "to_rgb8"]

LITTLE_ENDIAN = sys.byteorder == "little"

ARRAY_FORMATS = {
    (1, 8): "gray", (1, 16): "gray16le" if LITTLE_ENDIAN else "gray16be",
    (3, 8): "rgb24", (3, 16): "rgb48le" if LITTLE_ENDIAN else "rgb48be",
    (4, 8): "rgba", (4, 16): "rgba64le" if LITTLE_ENDIAN else "rgba64be",
}
PNG_FORMATS = {(1, 8): "gray", (1, 16): "gray16be", (3, 8): "rgb24", (3, 16): "rgb48be",
               (4, 8): "rgba", (4, 16): "rgba64be"}


def layout(fmt: av.VideoFormat, frame: av.VideoFrame | None = None) -> tuple[int, int]:
    """(channels, bit_depth) the reader yields for a source pixel format (a palette's transparency is read from
    ``frame``)."""
    comps = list(fmt.components)
    alpha = any(c.is_alpha for c in comps)
    colour = [c for c in comps if not c.is_alpha]
    if fmt.has_palette:
        if frame is None:
            return 4, 8
        pal = np.frombuffer(bytes(frame.planes[1]), np.uint8)[: 256 * 4].reshape(-1, 4)
        # AVPALETTE entries are native-endian 0xAARRGGBB words: alpha is byte 3 on little-endian
        a = pal[:, 3] if LITTLE_ENDIAN else pal[:, 0]
        return (4 if (a != 255).any() else 3), 8
    bits = max((c.bits for c in comps), default=8)
    depth = 16 if bits > 8 and not fmt.is_bayer else 8
    if len(colour) == 1 and not fmt.is_rgb:
        return (4 if alpha else 1), depth
    return (4 if alpha else 3), depth


def is_yuv(fmt: av.VideoFormat) -> bool:
    """Whether a pixel format is Y'CbCr (converted by a colour matrix and range)."""
    comps = [c for c in fmt.components if not c.is_alpha]
    return not fmt.is_rgb and not fmt.has_palette and len(comps) == 3 and not fmt.name.startswith("xyz")


def to_array(frame: av.VideoFrame, channels: int, depth: int) -> np.ndarray:
    """Decoded frame -> H x W x C array in the reader's layout."""
    target = ARRAY_FORMATS[(channels, depth)]
    kw = {}
    if is_yuv(frame.format):
        cs = frame.colorspace
        if cs in (0, 2, 3) or cs > 10:  # rgb / unspecified / reserved: guess like players do
            cs = 1 if frame.height >= 720 else 5
        elif cs == 10:
            cs = 9
        kw = dict(src_colorspace=cs, dst_colorspace=cs,
                  src_color_range=frame.color_range if frame.color_range in (1, 2) else 1,
                  dst_color_range=2)
    if frame.format.name == target:
        arr = frame.to_ndarray()
    else:
        arr = frame.reformat(format=target, **kw).to_ndarray()
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr)


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """An ``H x W x 1/3/4`` uint8/uint16 frame as ``H x W x 3`` uint8 RGB, as FFmpeg converts it: grey repeated,
    alpha dropped, 16 bits to 8 by swscale (dithered)."""
    c = image.shape[2]
    if image.dtype == np.uint16:
        frame = av.VideoFrame.from_ndarray(image[:, :, 0] if c == 1 else np.ascontiguousarray(image),
                                           format=ARRAY_FORMATS[(c, 16)])
        return np.ascontiguousarray(frame.reformat(format="rgb24").to_ndarray())
    if c == 1:
        return np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])
