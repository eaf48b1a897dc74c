"""`vsrkit upscale` with BasicVSR++ on a real clip, end to end: the x4 model and the same-size restoration
variant (``is_low_res_input=False``, scale 1, frames under its 256-pixel minimum padded by the engine).

The checkpoints are tiny (8 features, 1 block, random weights) and saved as plain state dicts: the CLI
recognises the architecture and variant from the keys. Each run's PNG output is checked against the network
called directly on the same frames, padded by hand (reflect to the model's minimum, bottom and right) and
cropped back: what the pipeline reads, pads, chunks, crops and writes must be the network's output.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from golden import data_path
from media import run

from vsrkit.io import VideoReader, VideoWriter
from vsrkit.models.basicvsrpp import BasicVSRPlusPlus

FRAMES = 8
BOX = (32, 48, 64, 80)  # top, left, height, width of carphone (176x144): under the x1 model's 256-pixel minimum


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict[str, Path]:
    """The first 8 frames of the real carphone clip cut to 80x64: as an H.264 video and as lossless PNGs."""
    folder = tmp_path_factory.mktemp("bvpp_clip")
    t, l, h, w = BOX
    frames = []
    with VideoReader(data_path("clips", "carphone_pristine.mp4")) as r:
        for f in r:
            frames.append(np.ascontiguousarray(f.image[t:t + h, l:l + w, :3]))
            if len(frames) == FRAMES:
                break
    for out in (folder / "clip.mp4", folder / "png"):
        with VideoWriter(out, width=w, height=h, overwrite=True) as wr:
            for f in frames:
                wr.write(f)
    return {"mp4": folder / "clip.mp4", "png": folder / "png"}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bvpp_weights")
    out = {}
    torch.manual_seed(0)
    for name, low_res in (("x4", True), ("x1", False)):
        net = BasicVSRPlusPlus(mid_channels=8, num_blocks=1, is_low_res_input=low_res)
        with torch.no_grad():  # live offsets and masks: the official init zeroes the last offset convolution
            net.deform_align.apply(lambda m: isinstance(m, torch.nn.Conv2d) and m.weight.normal_(0, 0.05))
        torch.save(net.state_dict(), folder / f"bvpp_{name}.pth")
        out[name] = folder / f"bvpp_{name}.pth"
    return out


def read_frames(path: Path) -> list[np.ndarray]:
    with VideoReader(path) as r:
        return [f.image[..., :3] for f in r]


def direct(weights: Path, frames: list[np.ndarray], low_res: bool) -> np.ndarray:
    """The network on the whole clip at once, frames padded (reflect, bottom/right) to its minimum and cropped
    back, rounded to uint8: ``[t, H, W, 3]``."""
    net = BasicVSRPlusPlus(mid_channels=8, num_blocks=1, is_low_res_input=low_res)
    net.load_state_dict(torch.load(weights, weights_only=True))
    net.eval()
    x = torch.stack([torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in frames])[None]
    h, w = x.shape[-2:]
    side = 64 if low_res else 256
    x = F.pad(x[0], (0, max(side - w, 0), 0, max(side - h, 0)),
              mode="reflect" if side - h < h and side - w < w else "replicate")[None]
    with torch.no_grad():
        y = net(x)[0]
    s = 4 if low_res else 1
    y = y[..., : h * s, : w * s].clamp(0, 1)
    return (y * 255).round().byte().permute(0, 2, 3, 1).numpy()


def video_frames(path: Path) -> list[tuple[int, int]]:
    with av.open(str(path)) as c:
        return [(f.width, f.height) for f in c.decode(video=0)]


@pytest.mark.parametrize("variant,scale", [("x4", 4), ("x1", 1)])
def test_upscale_real_clip_end_to_end(clip, checkpoints, tmp_path, variant, scale):
    h, w = BOX[2:]
    # a real video in, a video out: every frame, at the model's scale (scale 1: the input's size)
    out = tmp_path / "out.mp4"
    code, text = run("upscale", clip["mp4"], "-o", out, "--weights", checkpoints[variant], "--precision", "fp32",
                     "--threads", "1", "-q")
    assert code == 0, text
    assert video_frames(out) == [(w * scale, h * scale)] * FRAMES
    # frames in, frames out (lossless): the pipeline's output is the network's
    out_png = tmp_path / "png"
    code, text = run("upscale", clip["png"], "-o", out_png, "--weights", checkpoints[variant], "--precision", "fp32",
                     "--threads", "1", "-q")
    assert code == 0, text
    got = np.stack(read_frames(out_png))
    frames = read_frames(clip["png"])
    want = direct(checkpoints[variant], frames, low_res=scale == 4)
    assert got.shape == want.shape == (FRAMES, h * scale, w * scale, 3)
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= 1, f"max difference {diff.max()} levels"  # rounding of channels-last sums
    # the random network really changes the frames (the test would not see a pass-through)
    assert np.abs(got[:, ::scale, ::scale].astype(int) - np.stack(frames)).mean() > 1


def test_models_lists_basicvsrpp_names():
    code, out = run("models")
    assert code == 0, out
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[1:] if line.startswith("basicvsrpp")}
    sr = ["basicvsrpp-reds4", "basicvsrpp-vimeo-bi", "basicvsrpp-vimeo-bd", "basicvsrpp-ntire-vsr"]
    restore = ["basicvsrpp-ntire-decompress-t1", "basicvsrpp-ntire-decompress-t2", "basicvsrpp-ntire-decompress-t3",
               "basicvsrpp-deblur-dvd", "basicvsrpp-deblur-gopro", "basicvsrpp-denoise"]
    # weights: "download", or "yes" where a cache already holds the file
    assert {n: r[0] for n, r in rows.items()} == {"basicvsrpp": "x4", **{n: "x4" for n in sr}, **{n: "x1" for n in restore}}
    assert rows["basicvsrpp"][1] == "random" and all(rows[n][1] in ("download", "yes") for n in sr + restore)
    code, detail = run("models", "basicvsrpp-vimeo-bd")
    assert code == 0 and "clips of 100, overlap 12" in detail and "basicvsr_plusplus_c64n7" in detail
