"""Training and validation datasets for video (and image) super-resolution.

Layouts (``DataCfg.kind``):

``reds``    ``root/train_sharp/<clip>/<frame>.png`` (BasicSR's layout: the 30 validation clips may sit there as
            240..269, or in ``root/val_sharp/000..029``), LR in ``lq_root`` or ``root/train_sharp_bicubic/X4`` (or
            ``root/train_sharp_bicubic``), else made on the fly. Splits as BasicVSR: ``test`` is REDS4 (000, 011, 015,
            020), ``val`` is REDSval4 (240, 241, 246, 257: BasicSR's ``meta_info_REDSofficial4_test_GT.txt``),
            ``train`` is every other clip.
``vimeo``   Vimeo-90K septuplets: ``root/sequences/<a>/<b>/im1..im7.png`` listed in ``root/sep_trainlist.txt``
            (``train``) or ``root/sep_testlist.txt`` (``val``/``test``); LR in ``lq_root/<a>/<b>/`` (BasicSR's BIx4/BDx4)
            or on the fly.
``clips``   a folder of clip folders (Vid4, UDM10: ``GT/<clip>/*.png``), LR in ``lq_root/<clip>/`` or on the fly.
``videos``  any folder of video files and/or frame folders; LR made on the fly by BI or BD.
``images``  every image under ``root`` (recursively: e.g. General100 and T91 side by side), one-frame samples,
            LR on the fly.

LR frames made on the fly use ``vsrkit.data.degrade`` on a region around the crop that is aligned to the scale and
wide enough for the kernels, so the result equals the crop of the whole degraded frame exactly. ``degradation:
realworld`` (``vsrkit.data.realworld``, RealBasicVSR's random pipeline) degrades the GT crop itself with a seed made
of the sample's seed and index (validation: of the clip's name), so a sample is reproducible too.

Training samples are drawn by ``(index, seed)`` pairs (see ``vsrkit.train.distributed.TrainSampler``): the seed
decides the window, crop and augmentations, so a sample is the same in any process or DataLoader worker and a
resumed run sees the data it would have seen. Frames are decoded in ``__getitem__``, i.e. in the workers.

A missing, empty or malformed dataset is a one-line ``VsrkitError`` naming the file or folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vsrkit.data.config import DataCfg
from vsrkit.data.degrade import degrade, imresize
from vsrkit.data.realworld import clip_seed, degrade_clip, preset_config
from vsrkit.data.transforms import apply_augment, draw_augment, paired_random_crop, random_crop_box
from vsrkit.errors import VsrkitError
from vsrkit.io.codec_roundtrip import crf_roundtrip
from vsrkit.io.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, list_images, natural_key
from vsrkit.io.pixfmt import to_rgb8
from vsrkit.io.probe import count_frames
from vsrkit.io.reader import VideoReader
from vsrkit.io.reader import read_image as io_read_image

REDS4 = ("000", "011", "015", "020")  # BasicSR val_partition REDS4: the test clips
REDSVAL4 = ("240", "241", "246", "257")  # BasicSR meta_info_REDSofficial4_test_GT.txt: the validation clips
MARGIN = 4  # LR pixels of context around an on-the-fly crop (BI x4 reaches 2, BD 1.5)

__all__ = ["REDS4", "REDSVAL4", "Clip", "ImageFrames", "VideoFrames", "read_image", "list_clips", "TrainDataset",
           "ValDataset", "build_train_dataset", "build_val_dataset"]


# --------------------------------------------------------------------------------------------- decoding

def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as ``H x W x 3`` uint8 RGB (read by ``vsrkit.io``; grey repeated, alpha dropped, 16 bits to
    8)."""
    return to_rgb8(io_read_image(path))


class ImageFrames:
    """The frames of a clip stored as image files."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, start: int, n: int) -> np.ndarray:
        frames = [read_image(p) for p in self.paths[start:start + n]]
        first = frames[0].shape
        for p, f in zip(self.paths[start:start + n], frames):
            if f.shape != first:
                raise VsrkitError(f"{p}: size {f.shape[1]}x{f.shape[0]} differs from {self.paths[start].name} "
                                  f"({first[1]}x{first[0]})")
        return np.stack(frames)

    def where(self) -> str:
        """The clip's folder, or the file itself for a one-image clip (``images`` datasets)."""
        if len(self.paths) == 1:
            return str(self.paths[0])
        return str(self.paths[0].parent) if self.paths else "?"


class VideoFrames:
    """The frames of a video file. A video of at most ``CACHE_BYTES`` decoded is decoded once per process (each
    DataLoader worker) and kept in memory; a larger one is decoded from the start up to the frames asked for
    (frame folders are the faster layout for large training sets)."""

    CACHE_BYTES = 512 << 20

    def __init__(self, path: Path, count: int | None = None) -> None:
        self.path = path
        self.count = count_frames(path) if count is None else count
        self._cache: np.ndarray | None = None

    def __len__(self) -> int:
        return self.count

    def __getstate__(self) -> dict[str, Any]:  # workers decode for themselves
        return {**self.__dict__, "_cache": None}

    def _decode(self, start: int, n: int) -> np.ndarray:
        out: list[np.ndarray] = []
        with VideoReader(self.path) as reader:
            for frame in reader:
                if frame.index >= start:
                    out.append(to_rgb8(frame.image))
                    if len(out) == n:
                        break
        if len(out) < n:
            raise VsrkitError(f"{self.path}: decoded {start + len(out)} frames, fewer than the {start + n} needed "
                              f"(damaged or shorter than its packets say)")
        return np.stack(out)

    def read(self, start: int, n: int) -> np.ndarray:
        if self._cache is None:
            first = self._decode(0, 1)
            if first.nbytes * self.count <= self.CACHE_BYTES:
                self._cache = self._decode(0, self.count)
            else:
                return self._decode(start, n)
        return self._cache[start:start + n]

    def where(self) -> str:
        return str(self.path)


@dataclass
class Clip:
    """A named clip: its ground-truth frames and, if stored, its low-resolution frames."""

    name: str
    gt: ImageFrames | VideoFrames
    lq: ImageFrames | VideoFrames | None = None

    def __len__(self) -> int:
        return len(self.gt)


# --------------------------------------------------------------------------------------------- layouts

def _need_dir(path: Path, what: str) -> Path:
    if not path.exists():
        raise VsrkitError(f"{what}: folder not found: {path}")
    if not path.is_dir():
        raise VsrkitError(f"{what}: not a folder: {path}")
    return path


def _frames_of(folder: Path) -> ImageFrames:
    files = list_images(folder)
    if not files:
        raise VsrkitError(f"{folder}: no frames ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return ImageFrames(files)


def _pair(name: str, gt_dir: Path, lq_dir: Path | None) -> Clip:
    gt = _frames_of(gt_dir)
    lq = None
    if lq_dir is not None:
        if not lq_dir.is_dir():
            raise VsrkitError(f"{lq_dir}: low-resolution folder of clip {name} not found")
        lq = _frames_of(lq_dir)
        if len(lq) != len(gt):
            raise VsrkitError(f"{lq_dir}: {len(lq)} frames, but the ground truth {gt_dir} has {len(gt)}")
    return Clip(name, gt, lq)


def _reds(cfg: DataCfg) -> list[Clip]:
    root = _need_dir(Path(cfg.root), "REDS")
    gt_root = root / "train_sharp"
    if not gt_root.is_dir():
        raise VsrkitError(f"REDS: {gt_root} not found (expected root/train_sharp/<clip>/<frame>.png)")
    folders = {p.name: p for p in gt_root.iterdir() if p.is_dir()}
    val_root = root / "val_sharp"
    if val_root.is_dir():  # the official val set beside: clips 000..029 are BasicSR's 240..269
        for p in val_root.iterdir():
            if p.is_dir() and p.name.isdigit():
                folders.setdefault(f"{int(p.name) + 240:03d}", p)
    if not folders:
        raise VsrkitError(f"REDS: {gt_root} holds no clip folders")
    def lr_root(prefix: str) -> Path | None:
        if cfg.lq_root:
            return _need_dir(Path(cfg.lq_root), "REDS low-resolution frames")
        found = [d for d in (root / f"{prefix}_bicubic" / "X4", root / f"{prefix}_bicubic") if d.is_dir()]
        return found[0] if found else None  # None: made on the fly

    if cfg.split == "test":
        names = list(REDS4)
    elif cfg.split == "val":
        names = list(REDSVAL4)
    else:
        names = sorted(n for n in folders if n not in REDS4 and n not in REDSVAL4)
    clips = []
    for name in _filter(names, cfg):
        if name not in folders:
            raise VsrkitError(f"REDS: clip {name} ({cfg.split} split) not found in {gt_root}")
        gt_dir = folders[name]
        official_val = gt_dir.parent == val_root
        lr = lr_root("val_sharp" if official_val and not cfg.lq_root else "train_sharp")
        lq_dir = None if lr is None else lr / (gt_dir.name if official_val and not cfg.lq_root else name)
        clips.append(_pair(name, gt_dir, lq_dir))
    return clips


def _vimeo(cfg: DataCfg) -> list[Clip]:
    root = _need_dir(Path(cfg.root), "Vimeo-90K")
    seq_root = root / "sequences"
    if not seq_root.is_dir():
        raise VsrkitError(f"Vimeo-90K: {seq_root} not found (expected root/sequences/<a>/<b>/im1.png)")
    listing = root / ("sep_trainlist.txt" if cfg.split == "train" else "sep_testlist.txt")
    if not listing.is_file():
        raise VsrkitError(f"Vimeo-90K: {listing} not found")
    lq_root = _need_dir(Path(cfg.lq_root), "Vimeo-90K low-resolution frames") if cfg.lq_root else None
    entries = []
    for n, line in enumerate(listing.read_text().splitlines(), start=1):
        entry = line.strip()
        if not entry:
            continue
        parts = entry.split("/")
        if len(parts) != 2 or not all(parts):
            raise VsrkitError(f"{listing}: line {n}: {entry!r} is not <folder>/<sequence>")
        entries.append((n, entry))
    clips = []
    keep = set(_filter([e for _, e in entries], cfg))
    for n, entry in entries:
        if entry not in keep:
            continue
        gt_dir = seq_root / entry
        if not gt_dir.is_dir():
            raise VsrkitError(f"{listing}: line {n}: {gt_dir} not found")
        clips.append(_pair(entry, gt_dir, None if lq_root is None else lq_root / entry))
    return clips


def _clip_folders(cfg: DataCfg) -> list[Clip]:
    root = _need_dir(Path(cfg.root), "clip folders")
    lq_root = _need_dir(Path(cfg.lq_root), "low-resolution clip folders") if cfg.lq_root else None
    names = sorted((p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=natural_key)
    if not names:
        raise VsrkitError(f"{root}: no clip folders (expected root/<clip>/<frame>.png, as Vid4/GT)")
    return [_pair(n, root / n, None if lq_root is None else lq_root / n) for n in _filter(names, cfg)]


def _videos(cfg: DataCfg) -> list[Clip]:
    root = _need_dir(Path(cfg.root), "videos")
    items = sorted((p for p in root.iterdir() if not p.name.startswith(".")), key=lambda p: natural_key(p.name))
    by_name = {}
    for p in items:
        if p.is_dir() and list_images(p):
            by_name[p.name] = p
        elif p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
            by_name[p.name] = p
    if not by_name:
        raise VsrkitError(f"{root}: no videos or frame folders")
    clips = []
    for name in _filter(list(by_name), cfg):
        p = by_name[name]
        frames = _frames_of(p) if p.is_dir() else VideoFrames(p)
        if len(frames) == 0:
            raise VsrkitError(f"{p}: no frames")
        clips.append(Clip(name, frames, None))
    return clips


def _images(cfg: DataCfg) -> list[Clip]:
    root = _need_dir(Path(cfg.root), "images")
    files = sorted((p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                    and not p.name.startswith(".")), key=lambda p: natural_key(str(p.relative_to(root))))
    if not files:
        raise VsrkitError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    named = {str(p.relative_to(root)): p for p in files}
    return [Clip(n, ImageFrames([named[n]]), None) for n in _filter(list(named), cfg)]


def _filter(names: list[str], cfg: DataCfg) -> list[str]:
    out = [n for n in names if (not cfg.include or n in cfg.include) and n not in cfg.exclude]
    missing = [n for n in cfg.include if n not in names]
    if missing:
        raise VsrkitError(f"{cfg.root}: include names {missing[0]!r}, which is not in the dataset")
    return out


_KINDS = {"reds": _reds, "vimeo": _vimeo, "clips": _clip_folders, "videos": _videos, "images": _images}


def list_clips(cfg: DataCfg) -> list[Clip]:
    """The clips of a dataset config, checked; a one-line error for a missing, empty or malformed dataset."""
    if cfg.kind not in _KINDS:
        raise VsrkitError(f"unknown dataset kind {cfg.kind!r} (use {', '.join(_KINDS)})")
    clips = _KINDS[cfg.kind](cfg)
    if not clips:
        raise VsrkitError(f"{cfg.root}: no clips left for split {cfg.split!r}"
                          + (f" (include {cfg.include}, exclude {cfg.exclude})" if cfg.include or cfg.exclude else ""))
    return clips


# --------------------------------------------------------------------------------------------- samples

def _to_tensor(x: np.ndarray, channels: str) -> torch.Tensor:
    """``T x H x W x 3`` uint8 -> ``(T, C, H, W)`` float32 in [0, 1]; Y is BT.601 full-range luma (as the engine)."""
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float().div_(255.0)
    if channels == "y":
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        t = (t * w).sum(1, keepdim=True)
    return t


def _modcrop(x: np.ndarray, scale: int) -> np.ndarray:
    h, w = x.shape[1:3]
    return x[:, : h - h % scale, : w - w % scale]


def shrink(x: np.ndarray, factor: float) -> np.ndarray:
    """``T x H x W x C`` uint8 frames shrunk by ``factor`` (<= 1) with MATLAB's bicubic ``imresize``, rounded to
    uint8 (output ``ceil(H * factor) x ceil(W * factor)``): FSRCNN's scaling augmentation."""
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float()
    y = imresize(t, scale=factor).round_().clamp_(0, 255).to(torch.uint8)
    return y.permute(0, 2, 3, 1).contiguous().numpy()


def degraded_crop(gt: np.ndarray, y: int, x: int, size: int, scale: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """LR crop ``[y:y+size, x:x+size]`` of ``degrade(gt)`` and the matching HR crop, degrading only a region around
    it (aligned to ``scale``, ``MARGIN`` LR pixels of context, clamped to the frame): equal to cropping the degraded
    whole frame."""
    hl, wl = gt.shape[1] // scale, gt.shape[2] // scale
    y0, x0 = max(y - MARGIN, 0), max(x - MARGIN, 0)
    y1, x1 = min(y + size + MARGIN, hl), min(x + size + MARGIN, wl)
    region = gt[:, y0 * scale:y1 * scale, x0 * scale:x1 * scale]
    lq = degrade(np.ascontiguousarray(region), mode, scale)
    lq = lq[:, y - y0:y - y0 + size, x - x0:x - x0 + size]
    return lq, gt[:, y * scale:(y + size) * scale, x * scale:(x + size) * scale]


class TrainDataset(Dataset):
    """Random training samples: ``num_frame`` consecutive frames of a clip, cropped and augmented alike in LR
    and HR. ``dataset[(index, seed)]`` -> ``{'lq': (T, C, h, w), 'gt': (T, C, H, W)}`` float32 in [0, 1]."""

    def __init__(self, cfg: DataCfg, clips: list[Clip] | None = None) -> None:
        self.cfg = cfg
        self.clips = list_clips(cfg) if clips is None else clips
        n = cfg.num_frame
        for c in self.clips:
            if n > 0 and len(c) < n:
                raise VsrkitError(f"{c.gt.where()}: {len(c)} frames, fewer than num_frame {n}")
            if cfg.downscale and c.lq is not None:
                raise VsrkitError(f"{c.lq.where()}: data.downscale needs LR frames made on the fly, "
                                  "not read from lq_root")

    def __len__(self) -> int:
        return len(self.clips)

    def __getstate__(self) -> dict[str, Any]:  # workers degrade for themselves
        return {**self.__dict__, "_lr_cache": {}}

    def _degraded_video(self, i: int, clip: Clip) -> np.ndarray | None:
        """The whole LR version of a video kept in memory (``VideoFrames`` cache), made once per process. Cropping
        it equals degrading the crop's region (``degraded_crop``), so samples do not depend on it."""
        if not isinstance(clip.gt, VideoFrames) or clip.gt._cache is None or self.cfg.degradation == "realworld":
            return None
        cache = self.__dict__.setdefault("_lr_cache", {})
        if i not in cache:
            frames = _modcrop(clip.gt._cache, self.cfg.scale)
            cache[i] = np.concatenate([degrade(np.ascontiguousarray(frames[j:j + 8]), self.cfg.degradation, self.cfg.scale)
                                       for j in range(0, len(frames), 8)])
        return cache[i]

    def __getitem__(self, item: tuple[int, int] | int) -> dict[str, Any]:
        idx, seed = item if isinstance(item, tuple) else (item, item)
        cfg = self.cfg
        rng = np.random.default_rng(seed)
        clip = self.clips[idx % len(self.clips)]
        n = len(clip) if cfg.num_frame == -1 else cfg.num_frame
        start = int(rng.integers(0, len(clip) - n + 1))
        s = cfg.scale
        gt = clip.gt.read(start, n)
        factor = float(rng.choice(cfg.downscale)) if cfg.downscale else 1.0
        if factor != 1.0:
            gt = shrink(gt, factor)
        gt = _modcrop(gt, s)
        what = f"{clip.gt.where()}"
        if clip.lq is not None:
            lq = clip.lq.read(start, n)
            if cfg.gt_size:
                lq, gt = paired_random_crop(lq, gt, cfg.gt_size, s, rng, what)
            elif gt.shape[1] != lq.shape[1] * s or gt.shape[2] != lq.shape[2] * s:
                raise VsrkitError(f"{clip.lq.where()}: low-resolution frames are not 1/{s} of the ground truth")
        else:
            hl, wl = gt.shape[1] // s, gt.shape[2] // s
            size = cfg.gt_size // s if cfg.gt_size else None
            whole = None if cfg.downscale else self._degraded_video(idx % len(self.clips), clip)
            if whole is not None:  # a video held in memory: its LR frames are made once, then cropped
                lq = whole[start:start + n]
                if size is not None:
                    lq, gt = paired_random_crop(lq, gt, cfg.gt_size, s, rng, what)
            elif cfg.degradation == "realworld":  # random per sample: the GT crop itself is degraded, as in mmagic
                if size is not None:
                    y, x = random_crop_box((hl, wl), size, rng, what)
                    gt = gt[:, y * s:(y + size) * s, x * s:(x + size) * s]
                lq = degrade_clip(gt, s, (seed, idx), preset_config(cfg.realworld))
            elif size is None:
                lq = degrade(np.ascontiguousarray(gt), cfg.degradation, s)
            else:
                y, x = random_crop_box((hl, wl), size, rng, what)
                lq, gt = degraded_crop(gt, y, x, size, s, cfg.degradation)
        flags = draw_augment(rng, cfg.hflip, cfg.rot, cfg.reverse)
        lq, gt = apply_augment(lq, flags), apply_augment(gt, flags)
        if cfg.mirror:
            lq, gt = np.concatenate([lq, lq[::-1]]), np.concatenate([gt, gt[::-1]])
        if cfg.pad_last:
            lq, gt = np.concatenate([lq, lq[-1:]]), np.concatenate([gt, gt[-1:]])
        return {"lq": _to_tensor(lq, cfg.channels), "gt": _to_tensor(gt, cfg.channels)}


class ValDataset(Dataset):
    """Whole clips for validation: ``dataset[i]`` -> ``{'name', 'lq': (T, C, h, w), 'gt': (T, C, H, W)}``; the
    ground truth is mod-cropped to the scale and LR frames not stored are made from it by BI or BD."""

    def __init__(self, cfg: DataCfg, clips: list[Clip] | None = None) -> None:
        self.cfg = cfg
        self.clips = list_clips(cfg) if clips is None else clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, Any]:
        cfg, clip = self.cfg, self.clips[i]
        n = len(clip) if not cfg.max_frames else min(cfg.max_frames, len(clip))
        gt = _modcrop(clip.gt.read(0, n), cfg.scale)
        if clip.lq is not None:
            lq = clip.lq.read(0, n)
            if gt.shape[1] != lq.shape[1] * cfg.scale or gt.shape[2] != lq.shape[2] * cfg.scale:
                raise VsrkitError(f"{clip.lq.where()}: low-resolution frames are not 1/{cfg.scale} of the ground truth")
        elif cfg.degradation == "realworld":  # a fixed degraded version: the clip's own seed
            lq = degrade_clip(gt, cfg.scale, clip_seed(0, clip.name), preset_config(cfg.realworld))
        else:
            lq = degrade(np.ascontiguousarray(gt), cfg.degradation, cfg.scale)
        if clip.lq is None and cfg.crf is not None:  # as web video: the LR clip through H.264 (vsrkit eval --crf)
            lq = np.stack(list(crf_roundtrip(iter(np.rint(lq).clip(0, 255).astype(np.uint8)), cfg.crf)))
        return {"name": clip.name, "lq": _to_tensor(lq, cfg.channels), "gt": _to_tensor(gt, cfg.channels)}


def build_train_dataset(cfg: DataCfg) -> TrainDataset:
    """The training dataset of a config."""
    return TrainDataset(cfg)


def build_val_dataset(cfg: DataCfg) -> ValDataset:
    """The validation dataset of a config."""
    return ValDataset(cfg)
