"""Augmentations for paired LR/HR clips, aligned between the two: random crops, flips, 90-degree rotations and
temporal reversal (BasicSR's ``paired_random_crop`` and ``augment``), drawn from a given numpy Generator so that a
sample is the same whatever process or DataLoader worker makes it.

Arrays are ``T x H x W x C`` (uint8 or float); the LR array is ``scale`` times smaller than the HR one.
"""

from __future__ import annotations

import numpy as np

from vsrkit.errors import VsrkitError


def random_crop_box(lq_hw: tuple[int, int], lq_size: int, rng: np.random.Generator, what: str = "clip") -> tuple[int, int]:
    """Top-left corner (y, x) of a random ``lq_size`` square inside an LR frame of size ``lq_hw``."""
    h, w = lq_hw
    if h < lq_size or w < lq_size:
        raise VsrkitError(f"{what}: frames of {w}x{h} (LR) are smaller than the crop of {lq_size}x{lq_size} "
                          f"(gt_size / scale)")
    return int(rng.integers(0, h - lq_size + 1)), int(rng.integers(0, w - lq_size + 1))


def paired_random_crop(lq: np.ndarray, gt: np.ndarray, gt_size: int, scale: int, rng: np.random.Generator,
                       what: str = "clip") -> tuple[np.ndarray, np.ndarray]:
    """The same random region of LR (``gt_size / scale`` square) and HR (``gt_size`` square) frames."""
    if gt.shape[1] != lq.shape[1] * scale or gt.shape[2] != lq.shape[2] * scale:
        raise VsrkitError(f"{what}: ground truth {gt.shape[2]}x{gt.shape[1]} is not {scale}x the low-resolution "
                          f"{lq.shape[2]}x{lq.shape[1]}")
    s = gt_size // scale
    y, x = random_crop_box(lq.shape[1:3], s, rng, what)
    return lq[:, y:y + s, x:x + s], gt[:, y * scale:(y + s) * scale, x * scale:(x + s) * scale]


def draw_augment(rng: np.random.Generator, hflip: bool, rot: bool, reverse: bool) -> tuple[bool, bool, bool, bool]:
    """(hflip, vflip, transpose, reverse) flags, each with probability 1/2 where enabled (BasicSR ``augment``:
    ``use_rot`` gives vertical flips and transposes, i.e. all 8 flips/rotations with ``hflip``)."""
    return (bool(hflip and rng.random() < 0.5), bool(rot and rng.random() < 0.5),
            bool(rot and rng.random() < 0.5), bool(reverse and rng.random() < 0.5))


def apply_augment(x: np.ndarray, flags: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """The flips, transpose (a 90-degree rotation with a flip) and temporal reversal of ``flags`` on ``x[T, H, W, C]``."""
    hflip, vflip, transpose, reverse = flags
    if hflip:
        x = x[:, :, ::-1]
    if vflip:
        x = x[:, ::-1]
    if transpose:
        x = x.transpose(0, 2, 1, 3)
    if reverse:
        x = x[::-1]
    return np.ascontiguousarray(x)


def augment_pair(lq: np.ndarray, gt: np.ndarray, rng: np.random.Generator, hflip: bool = True, rot: bool = True,
                 reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One random draw of flips, rotations and reversal applied to LR and HR alike."""
    flags = draw_augment(rng, hflip, rot, reverse)
    return apply_augment(lq, flags), apply_augment(gt, flags)
