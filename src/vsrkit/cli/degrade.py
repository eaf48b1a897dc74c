"""``vsrkit degrade``: the BI, BD, RLSP or real-world low-resolution version of a video or a folder of frames."""

from __future__ import annotations

from pathlib import Path

import click

from vsrkit.errors import VsrkitError
from vsrkit.io import VideoReader, VideoWriter


# the smallest side of a degraded frame: below 8 pixels a frame is smaller than one JPEG/H.264 block (the realworld
# mode compresses it), than the 7x7 and 11x11 windows of SSIM (so `vsrkit eval` could not score it), and the
# bicubic kernel of a x`scale` reduction (4 x scale input pixels wide) blurs it into a few averages of the whole
MIN_SIDE = 8


@click.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Folder for PNG frames (exact), or a .mp4/.mkv/.mov video (H.264 crf 0, yuv444p).")
@click.option("--mode", default="bi", show_default=True,
              help="bi: MATLAB bicubic imresize; bd: Gaussian blur sigma 1.6 then subsampling (x4 only); "
              "rlsp: the RLSP authors' Vid4 recipe (Gaussian sigma 1.5 on float values, rounded to uint8, every "
              "scale-th pixel from 0: the recipe of their released Vid4 results). "
              "realworld: RealBasicVSR's random second-order pipeline (blur, resize, noise, JPEG, video; --seed).")
@click.option("--scale", type=int, default=4, show_default=True, help="Downscaling factor.")
@click.option("--max-frames", type=int, default=None, help="Stop after this many frames.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="realworld: the random seed (the same seed and input give the same output).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def degrade(input: Path, output: Path, mode: str, scale: int, max_frames: int | None, seed: int, overwrite: bool,
            quiet: bool) -> None:
    """Downscale INPUT (a video file or a folder of frames) with the BI, BD or RLSP degradation into OUTPUT.

    The results are the benchmarks' recipes to the last uint8 level (BI: MATLAB imresize bicubic with
    antialiasing; BD: BD_degradation.m of BasicVSR; RLSP: the recipe of the RLSP authors' released Vid4
    results, ``vsrkit.data.degrade_rlsp``). PNG frames keep them exactly. A video output is
    lossless H.264 in YUV 4:4:4, but the RGB -> YUV -> RGB conversion of 8-bit video changes pixel
    values by a level or two: write PNG frames for training or evaluation data.

    realworld: the whole input is one clip (parameters drift from frame to frame, one video compression), output
    size (W // scale) x (H // scale), rounded to uint8 at the end.
    """
    from tqdm import tqdm

    from vsrkit.data.degrade import BD_SCALE, MODES

    mode = mode.lower()
    if mode not in (*MODES, "rlsp", "realworld"):
        raise VsrkitError(f"unknown --mode {mode!r}: use bi, bd, rlsp or realworld")
    if seed < 0:
        raise VsrkitError(f"--seed must be a non-negative integer, got {seed}")
    if scale < 1:
        raise VsrkitError(f"--scale must be a positive integer, got {scale}")
    if mode == "bd" and scale != BD_SCALE:
        raise VsrkitError(f"--mode bd is defined for --scale {BD_SCALE} only (BD_degradation.m, sigma 1.6), got {scale}")
    if max_frames is not None and max_frames < 1:
        raise VsrkitError(f"--max-frames must be at least 1, got {max_frames}")
    with VideoReader(input) as reader:
        info = reader.info
        if mode == "rlsp" and info.bit_depth != 8:
            raise VsrkitError(f"{input}: --mode rlsp is defined on 8-bit frames (the authors' recipe), "
                              f"this input has {info.bit_depth} bits")
        if mode == "bd" and (info.width % scale or info.height % scale):
            raise VsrkitError(f"{input}: {info.width}x{info.height} is not divisible by {scale}, which BD "
                              f"x{scale} needs (crop it first)")
        if mode == "realworld" and (info.bit_depth != 8 or info.channels != 3):
            raise VsrkitError(f"{input}: --mode realworld is defined on 8-bit RGB frames, this input has "
                              f"{info.channels} channel(s) of {info.bit_depth} bits")
        if mode == "realworld":
            width, height = info.width // scale, info.height // scale
        else:
            width, height = -(-info.width // scale), -(-info.height // scale)
        if min(width, height) < MIN_SIDE:
            most = min(info.width, info.height) // MIN_SIDE
            raise VsrkitError(f"{input}: {info.width}x{info.height} is too small for --scale {scale}: the output would "
                              f"be {width}x{height}, less than {MIN_SIDE} pixels on a side (" +
                              (f"use --scale {most} or less)" if most else "the input itself is smaller)"))
        total = info.num_frames if max_frames is None else min(max_frames, info.num_frames or max_frames)
        with VideoWriter(output, width=width, height=height, source=info, crf=0, pix_fmt="yuv444p",
                         channels=info.channels, bit_depth=info.bit_depth, overwrite=overwrite) as writer:
            with tqdm(total=total, unit="frame", disable=quiet, leave=False) as bar:
                frames = (_realworld(reader, input, scale, seed, max_frames) if mode == "realworld"
                          else _per_frame(reader, input, mode, scale, max_frames))
                for small, pts in frames:
                    writer.write(small, pts)
                    bar.update(1)
            n = writer.frames_written
    what = f"realworld seed {seed}" if mode == "realworld" else mode.upper()
    click.echo(f"vsrkit: wrote {output}: {n} frames, {info.width}x{info.height} -> {width}x{height} "
               f"({what} x{scale})", err=True)


def _per_frame(reader, input: Path, mode: str, scale: int, max_frames: int | None):
    """(LR image, pts) of every frame, degraded alone (bi, bd, rlsp)."""
    from vsrkit.data.degrade import degrade as degrade_image

    for frame in reader:
        if max_frames is not None and frame.index >= max_frames:
            break
        try:
            small = degrade_image(frame.image, mode, scale)
        except ValueError as e:
            raise VsrkitError(f"{input}: frame {frame.index}: {e}") from None
        yield small, frame.pts


def _realworld(reader, input: Path, scale: int, seed: int, max_frames: int | None):
    """(LR image, pts) of every frame, the input streamed as one clip through ``data.realworld.degrade_stream``
    and rounded to uint8."""
    from collections import deque

    import numpy as np

    from vsrkit.data.realworld import degrade_stream

    pts: deque = deque()

    def images():
        for frame in reader:
            if max_frames is not None and frame.index >= max_frames:
                break
            pts.append(frame.pts)
            yield frame.image

    try:
        for small in degrade_stream(images(), scale, seed):
            yield np.rint(small).astype(np.uint8), pts.popleft()
    except ValueError as e:
        raise VsrkitError(f"{input}: {e}") from None
