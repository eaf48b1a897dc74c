"""Evaluation datasets on disk: a folder of clips of ground-truth frames, and the low-resolution frames.

``--gt DIR`` holds one folder of frames per clip (``GT/calendar/*.png``), at any depth (Vimeo-90K-T's
``sequences/00001/0266/im*.png``: the clip is ``00001/0266``). A folder that holds images itself, and no
clip folders, is an image set (Set5, Set14): every image is scored alone, as a one-frame clip.

``--lr DIR`` mirrors ``--gt``: the same clip folders and frame names (the extension may differ). Every
mismatch is a :class:`VsrkitError` naming the file: a missing clip or frame on either side, clips of
unequal length, frames of another size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vsrkit.errors import VsrkitError
from vsrkit.io import VideoReader
from vsrkit.io.files import list_images, natural_key

__all__ = ["Clip", "find_clips", "read_frame", "as_rgb8"]


@dataclass(frozen=True)
class Clip:
    """One clip: its name (path under the GT folder, or an image's stem) and its frame files in order."""

    name: str
    gt: tuple[Path, ...]
    lr: tuple[Path, ...] | None  # None: the LR frames are made by a degradation

    def __len__(self) -> int:
        return len(self.gt)


def _clip_folders(root: Path) -> list[Path]:
    """Folders under ``root`` (not ``root`` itself) that hold image files, in natural order."""
    found = []
    for dirpath, dirnames, _files in os.walk(root):
        dirnames.sort(key=natural_key)
        d = Path(dirpath)
        if d != root and list_images(d):
            found.append(d)
    return sorted(found, key=lambda p: tuple(natural_key(part) for part in p.relative_to(root).parts))


def _by_stem(files: list[Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise VsrkitError(f"{f}: two frames named {f.stem!r} ({out[f.stem].name} and {f.name})")
        out[f.stem] = f
    return out


def _pair(name: str, gt: list[Path], lr_dir: Path, lr_files: list[Path] | None = None) -> tuple[Path, ...]:
    """The LR file of every GT frame, by name; errors name the first missing frame on either side."""
    lr_files = list_images(lr_dir) if lr_files is None else lr_files
    lr = _by_stem(lr_files)
    gt_stems = _by_stem(gt)
    for f in gt:
        if f.stem not in lr:
            raise VsrkitError(f"LR frame missing: {lr_dir / f.name} (for GT {f})")
    for stem, f in lr.items():
        if stem not in gt_stems:
            raise VsrkitError(f"GT frame missing: {gt[0].parent / f.name} (for LR {f})")
    if len(lr_files) != len(gt):  # pragma: no cover - equal stem sets give equal lengths
        raise VsrkitError(f"clips of unequal length: {name}: GT {len(gt)} frames, LR {len(lr_files)}")
    return tuple(lr[f.stem] for f in gt)


def find_clips(gt: str | os.PathLike, lr: str | os.PathLike | None = None) -> list[Clip]:
    """The clips of a dataset, GT frames paired with LR frames by name when ``lr`` is given."""
    gt_root = Path(gt)
    if not gt_root.is_dir():
        raise VsrkitError(f"{gt_root}: no such folder (--gt needs a folder of clip folders or of images)")
    lr_root = None if lr is None else Path(lr)
    if lr_root is not None and not lr_root.is_dir():
        raise VsrkitError(f"{lr_root}: no such folder (--lr)")
    folders = _clip_folders(gt_root)
    images = list_images(gt_root)
    if images and folders:
        raise VsrkitError(f"{gt_root}: holds both images ({images[0].name}) and clip folders ({folders[0].name}); "
                          "give a folder of clip folders, or a folder of images")
    clips: list[Clip] = []
    if images:  # an image set: every image is a one-frame clip
        lr_files = None if lr_root is None else list_images(lr_root)
        pairs = None if lr_root is None else _pair(gt_root.name, images, lr_root, lr_files)
        for i, f in enumerate(images):
            clips.append(Clip(f.stem, (f,), None if pairs is None else (pairs[i],)))
        return clips
    if not folders:
        raise VsrkitError(f"{gt_root}: holds no image frames (.png, .jpg, .bmp, .tif) in it or in clip folders")
    for d in folders:
        name = d.relative_to(gt_root).as_posix()
        frames = list_images(d)
        pairs = None
        if lr_root is not None:
            lr_dir = lr_root / name
            if not lr_dir.is_dir() or not list_images(lr_dir):
                raise VsrkitError(f"LR clip missing: {lr_dir} (for GT {d})")
            lr_files = list_images(lr_dir)
            if len(lr_files) != len(frames):
                lr_longer = len(lr_files) > len(frames)
                longer, shorter = (lr_files, frames) if lr_longer else (frames, lr_files)
                extra = next((f for f in longer if f.stem not in {g.stem for g in shorter}), longer[-1])
                missing = f"GT frame missing: {d / extra.name}" if lr_longer else f"LR frame missing: {lr_dir / extra.name}"
                raise VsrkitError(f"clips of unequal length: GT {d} has {len(frames)} frames, LR {lr_dir} has "
                                  f"{len(lr_files)} ({missing})")
            pairs = _pair(name, frames, lr_dir, lr_files)
        clips.append(Clip(name, tuple(frames), pairs))
    if lr_root is not None:
        known = {c.name for c in clips}
        for d in _clip_folders(lr_root):
            name = d.relative_to(lr_root).as_posix()
            if name not in known:
                raise VsrkitError(f"GT clip missing: {gt_root / name} (for LR {d})")
    return clips


def read_frame(path: Path) -> np.ndarray:
    """One image file as ``H x W x C`` uint8/uint16, read by the same reader as ``vsrkit upscale``."""
    with VideoReader(path) as r:
        for frame in r:
            return frame.image
    raise VsrkitError(f"{path}: holds no picture")  # pragma: no cover - VideoReader raises first


def as_rgb8(image: np.ndarray, path: Path | str) -> np.ndarray:
    """``H x W x 3`` uint8 for scoring: grey repeated to RGB (as OpenCV's IMREAD_COLOR), alpha dropped."""
    if image.dtype != np.uint8:
        raise VsrkitError(f"{path}: {image.dtype} frames are not supported by eval (8-bit frames only)")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])
