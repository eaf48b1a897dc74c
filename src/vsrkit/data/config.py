"""A dataset as the training configuration names it (the ``data`` and ``val.data`` sections): ``DataCfg``.

It lives with the datasets that read it (``vsrkit.data.datasets``); ``vsrkit.train.config`` validates it with the
rest of a configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DataCfg"]


@dataclass
class DataCfg:
    """A dataset: where it is, which part, how samples are cut and augmented."""

    kind: str  # reds | vimeo | clips | videos | images (see vsrkit.data.datasets)
    root: str
    lq_root: str | None = None  # low-resolution frames beside the ground truth; None: the standard place or on the fly
    split: str = "train"  # reds: train (all but REDS4 and REDSval4), val (REDSval4), test (REDS4); vimeo: train/test lists
    degradation: str = "bi"  # bi | bd | realworld: how LR frames are made on the fly (vsrkit.data.degrade, .realworld)
    realworld: str = "realbasicvsr"  # degradation realworld: the pipeline's preset (realbasicvsr | web | web-bi)
    crf: float | None = None  # LR clips made on the fly then go through H.264 at this crf (validation as web video)
    scale: int = 4
    num_frame: int = 1  # frames per training sample; -1: the whole clip (Vimeo septuplets)
    gt_size: int = 0  # ground-truth crop size; 0: whole frames
    hflip: bool = False  # random horizontal flips
    rot: bool = False  # random vertical flips and 90-degree rotations (BasicSR use_rot)
    reverse: bool = False  # random temporal reversal
    mirror: bool = False  # the clip followed by itself reversed (BasicSR flip_sequence, Vimeo recurrent training)
    pad_last: bool = False  # the last frame repeated once (KAIR pad_sequence, VRT on Vimeo)
    channels: str = "rgb"  # rgb | y (BT.601 luma, as the engine feeds Y-only models)
    include: list[str] = field(default_factory=list)  # clip names to keep (empty: all)
    exclude: list[str] = field(default_factory=list)  # clip names to leave out
    max_frames: int = 0  # validation: frames per clip (0: all)
    # training: the ground truth is first shrunk by a factor drawn from this list (MATLAB bicubic; 1.0 keeps it):
    # FSRCNN's scaling augmentation [1.0, 0.9, 0.8, 0.7, 0.6]; empty: none
    downscale: list[float] = field(default_factory=list)
