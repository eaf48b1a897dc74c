"""``vsrkit report --video`` (issue 21): crops of a real clip with no ground truth, bicubic | a BI model | a real-world
model side by side with the slider; the crops are the models' own outputs of that frame, upscaled in context."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from click.testing import CliRunner
from eval_clips import carphone, write_clip

from vsrkit.cli.main import main
from vsrkit.data.degrade import bicubic_baseline
from vsrkit.infer import engine
from vsrkit.infer.runtime import make_config

pytest.importorskip("matplotlib", reason="vsrkit report needs matplotlib (pip install 'vsrkit[report]')")


def _png(b64: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    root = tmp_path_factory.mktemp("vid")
    return write_clip(root / "clip", carphone(8, (0, 0, 64, 80)))


def test_video_crops_are_each_models_frame(video, tmp_path):
    from vsrkit.eval.compare import video_crops
    from vsrkit.hub.loader import load_model

    got = video_crops(video, ["rlsp-7-48", "bicubic-x4"], frame=5, size=48, device="cpu")
    assert [n for n, _ in got["tiles"]] == ["Bicubic", "rlsp-7-48", "bicubic-x4"]
    assert got["frame"] == 5 and got["scale"] == 4
    top, left, s, _ = got["box"]
    box = (slice(top, top + s), slice(left, left + s))
    frames = carphone(8, (0, 0, 64, 80))
    assert np.array_equal(_png(got["tiles"][0][1]), bicubic_baseline(frames[5], 4)[box])
    whole = list(engine.upscale_frames(load_model("rlsp-7-48"), iter(frames), make_config("cpu"), np.uint8))
    assert np.array_equal(_png(got["tiles"][1][1]), whole[5][box])


def test_report_video_page(video, tmp_path):
    out = tmp_path / "page.html"
    res = CliRunner().invoke(main, ["report", "--video", str(video), "--models", "rlsp-7-48,bicubic-x4",
                                    "--device", "cpu", "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert text.count("class='crop'") == 3 and "no ground truth" in text
    assert re.findall(r"<figcaption>([^<]*)</figcaption>", text) == ["Bicubic", "rlsp-7-48", "bicubic-x4"]
    assert "class='slider'" in text


@pytest.mark.parametrize("args, says", [
    (["--frame", "99"], "no frame 99 (the video has 8 frames)"),
    (["--models", "rlsp-7-48,espcn-fast-x2"], "different scales: rlsp-7-48 x4, espcn-fast-x2 x2"),
    (["--crop-size", "2"], "--crop-size must be at least 8"),
])
def test_report_video_bad_input_is_one_line(video, tmp_path, args, says):
    res = CliRunner().invoke(main, ["report", "--video", str(video), "-o", str(tmp_path / "p.html"),
                                    "--models", "rlsp-7-48", *args])
    assert res.exit_code == 2 and says in res.output, res.output
    assert len(res.output.strip().splitlines()) <= 2 and "Traceback" not in res.output
    assert not (tmp_path / "p.html").exists()


def test_report_needs_results_or_video(tmp_path):
    res = CliRunner().invoke(main, ["report", "-o", str(tmp_path / "p.html")])
    assert res.exit_code == 2 and "--video CLIP" in res.output
    res = CliRunner().invoke(main, ["report", "--video", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "p.html")])
    assert res.exit_code == 2 and "no such video" in res.output
