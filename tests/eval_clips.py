"""Small evaluation datasets made from the real carphone clip (for tests/eval, tests/bench, tests/cli)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from golden import data_path

from vsrkit.io import VideoReader, VideoWriter


@lru_cache(maxsize=4)
def _decoded(n: int) -> tuple[np.ndarray, ...]:
    frames = []
    with VideoReader(data_path("clips", "carphone_pristine.mp4")) as r:
        for f in r:
            frames.append(f.image)
            if len(frames) == n:
                break
    return tuple(frames)


def carphone(n: int, box: tuple[int, int, int, int] = (24, 40, 64, 96)) -> list[np.ndarray]:
    """The first ``n`` frames of carphone (176x144), cut to ``box`` = (top, left, height, width)."""
    t, l, h, w = box
    return [np.ascontiguousarray(f[t:t + h, l:l + w]) for f in _decoded(n)]


def write_clip(folder: Path, frames: list[np.ndarray], names: list[str] | None = None) -> Path:
    """Frames as PNG files ``00000000.png ...`` (or ``names``) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if names is None:
        with VideoWriter(folder, width=frames[0].shape[1], height=frames[0].shape[0], overwrite=True) as w:
            for f in frames:
                w.write(f)
        return folder
    for f, name in zip(frames, names):
        tmp = folder / ("_" + name.replace(".", "_"))  # a folder, so not named like an image
        write_clip(tmp, [f])
        next(tmp.iterdir()).rename(folder / name)
        tmp.rmdir()
    return folder


def read_clip(folder: Path) -> list[np.ndarray]:
    with VideoReader(folder) as r:
        return [f.image for f in r]
