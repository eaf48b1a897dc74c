"""`vsrkit report`: one offline HTML page, rendered in headless Chromium and looked at."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from eval_clips import carphone, write_clip

from vsrkit.cli.main import main
from vsrkit.eval.run import evaluate, write_json
from vsrkit.hub.loader import load_model

pytest.importorskip("matplotlib", reason="vsrkit report needs matplotlib (pip install 'vsrkit[report]')")

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]
BLUE, ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)  # the first two models' colours (tab10)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Eval results of two models on a real 2-clip dataset, and a bench result."""
    root = tmp_path_factory.mktemp("rep")
    frames = carphone(6)
    write_clip(root / "gt" / "a", frames[:4])
    write_clip(root / "gt" / "b", frames[4:])
    torch.manual_seed(0)
    paths = []
    for name, model in (("bicubic-x4", "bicubic-x4"), ("rlsp-7-48", load_model("rlsp-7-48"))):
        r = evaluate(model, root / "gt", degradation="bi", device="cpu", progress=False)
        paths.append(write_json(r, root / f"{name}.json"))
    from vsrkit.bench.run import run_bench

    paths.append(write_json(run_bench(["bicubic-x4"], [(16, 24)], ["cpu"], ["fp32"], warmup=1, repeat=2),
                            root / "bench.json"))
    return root, paths


def make_report(results, tmp_path):
    root, paths = results
    out = tmp_path / "report.html"
    res = CliRunner().invoke(main, ["report", *map(str, paths), "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_page_is_self_contained(results, tmp_path):
    text = make_report(results, tmp_path).read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", text)  # nothing loaded from outside
    assert "<script src" not in text and "<link" not in text
    assert text.count("<svg") == 3  # the scatter and one PSNR curve per clip
    # crops: bicubic, two models, ground truth (+ the same four as slider sources)
    assert text.count("class='crop'") == 4 and text.count("data:image/png;base64,") == 8
    assert "bicubic-x4" in text and "rlsp-7-48" in text


def test_pareto_front():
    from vsrkit.eval.report.plots import pareto_front

    # (ms per frame, PSNR): 1 is slower and worse than 0; 3 is dominated by 2
    pts = [(10.0, 30.0), (20.0, 29.0), (50.0, 32.0), (60.0, 31.5), (5.0, 25.0)]
    assert pareto_front(pts) == [4, 0, 2]


def test_not_a_result_file(results, tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"hello": 1}))
    res = CliRunner().invoke(main, ["report", str(bad), "-o", str(tmp_path / "r.html")])
    assert res.exit_code == 2 and str(bad) in res.output and "not a vsrkit eval or bench result" in res.output
    assert not (tmp_path / "r.html").exists()


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed (Debian package `chromium`; scripts/setup.sh installs it where apt is "
                "available): the report is not rendered")


def _run_chromium(exe, page, tmp_path, *extra):
    cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_rendered_page_shows_plots_and_images(results, tmp_path):
    exe = _chromium()
    page = make_report(results, tmp_path)
    dom = _run_chromium(exe, page, tmp_path, "--virtual-time-budget=5000", "--dump-dom").stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-ready="1"' in body and "data-error" not in body, body  # the script ran, without an error
    assert 'data-images="4/4"' in body  # every crop decoded
    shot = tmp_path / "shot.png"
    _run_chromium(exe, page, tmp_path, "--window-size=1280,2400", f"--screenshot={shot}")
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (2400, 1280)
    assert (img < 235).any(axis=2).mean() > 0.05  # not a blank page

    def count(colour):
        return int((np.abs(img - np.array(colour)).sum(axis=2) < 30).sum())

    assert count(BLUE) > 200 and count(ORANGE) > 200  # both models' points and curves are drawn
    # the crops: a band of the page with photo-like content (many distinct colours)
    rows = img.reshape(-1, 3)
    assert len(np.unique(rows[:, 0] * 65536 + rows[:, 1] * 256 + rows[:, 2])) > 2000
