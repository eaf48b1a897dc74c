"""``vsrkit upscale`` reads the input's compression (bits per pixel, from the container) and, for a heavily
compressed video upscaled by a model trained on clean frames, says one line naming the real-world models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from media import reencode, write_png
from vsrkit.hub.advice import LOW_BITS_PER_PIXEL, compression_hint, real_world_models, trained_on_real_degradations
from vsrkit.io.probe import bits_per_pixel, probe

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips" / "carphone_pristine.mp4"
if not CLIP.is_file():
    CLIP = Path("/work/shared/data/clips/carphone_pristine.mp4")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """carphone (176 x 144, 29.97 fps, a clean source) at a web bitrate and at near-lossless quality."""
    d = tmp_path_factory.mktemp("bpp")
    low = reencode(CLIP, d / "low.mp4", n=12, bit_rate=40_000)
    high = reencode(CLIP, d / "high.mp4", n=12, crf=8)
    return low, high


def test_bits_per_pixel_from_the_container(clips, tmp_path):
    low, high = clips
    lo, hi = probe(low), probe(high)
    assert lo.bit_rate and hi.bit_rate
    assert bits_per_pixel(lo) == pytest.approx(lo.bit_rate / (176 * 144 * float(lo.fps)))
    assert bits_per_pixel(lo) < LOW_BITS_PER_PIXEL < 1.0 < bits_per_pixel(hi)
    # an image folder has no bit rate, and no hint
    write_png(tmp_path / "f" / "0001.png", np.zeros((8, 8, 3), np.uint8))
    folder = probe(tmp_path / "f")
    assert folder.bit_rate is None and bits_per_pixel(folder) is None
    assert compression_hint(folder, "rlsp-fast-x4") is None


def test_which_models_count_as_real_world():
    real = real_world_models()
    assert {"realbasicvsr-x4", "realbasicvsr-wogan-x4", "basicvsrpp-ntire-decompress-t1"} <= set(real)
    assert trained_on_real_degradations("basicvsr-reds4") is False
    assert trained_on_real_degradations("rlsp-fast-x4") is False
    assert trained_on_real_degradations("basicvsrpp-ntire-vsr") is False  # NTIRE's clean VSR track
    assert trained_on_real_degradations("no-such-model") is None


def test_hint_only_for_compressed_input_and_clean_models(clips):
    low, high = clips
    lo, hi = probe(low), probe(high)
    hint = compression_hint(lo, "rlsp-fast-x4")
    assert hint is not None and "\n" not in hint and "realbasicvsr-x4" in hint and "basicvsrpp-ntire-decompress-t1" in hint
    assert compression_hint(hi, "rlsp-fast-x4") is None
    assert compression_hint(lo, "realbasicvsr-x4") is None
    assert compression_hint(lo, "basicvsrpp-ntire-decompress-t2") is None
    assert compression_hint(lo, None) is None  # weights without a name: their training data is unknown


@pytest.mark.parametrize("which,expect", [("low", True), ("high", False)])
def test_upscale_says_it_once(clips, tmp_path, which, expect):
    from vsrkit.pipeline import upscale_file

    src = clips[0] if which == "low" else clips[1]
    said: list[str] = []
    upscale_file(src, tmp_path / "out.mp4", model="rlsp-fast-x4", device="cpu", max_frames=2, progress=False,
                 say=said.append)
    hits = [s for s in said if "bits per pixel" in s]
    assert len(hits) == (1 if expect else 0), said
