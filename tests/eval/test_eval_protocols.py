"""`vsrkit eval` on real frames: the numbers equal a direct computation on what `vsrkit upscale` writes,
with each protocol's channel, crop, scored frames and averaging."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from eval_clips import carphone, read_clip, write_clip
from golden import load_case

from vsrkit.cli.main import main
from vsrkit.data.degrade import degrade
from vsrkit.eval import metrics as M
from vsrkit.eval.protocols import resolve_protocol
from vsrkit.eval.run import _bicubic, evaluate
from vsrkit.hub.loader import load_model
from vsrkit.infer.engine import upscale_frames
from vsrkit.infer.runtime import make_config
from vsrkit.pipeline import upscale_file


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """GT clips of unequal length (5 and 3 frames, 96x64) and their BI x4 LR frames as PNG folders."""
    root = tmp_path_factory.mktemp("ds")
    frames = carphone(8)
    clips = {"a": frames[:5], "b": frames[5:]}
    for name, fr in clips.items():
        write_clip(root / "gt" / name, fr)
        write_clip(root / "lr" / name, [degrade(f, "bi", 4) for f in fr])
    return root, clips


def upscaled(root, name, model="bicubic-x4"):
    """What `vsrkit upscale` writes for an LR clip folder, read back."""
    out = root / f"up-{model}-{name}"
    if not out.exists():
        upscale_file(root / "lr" / name, out, model=model, device="cpu", progress=False)
    return read_clip(out)


def test_cli_json_csv_equal_direct_computation(dataset, tmp_path):
    root, clips = dataset
    res = CliRunner().invoke(main, ["eval", "--model", "bicubic-x4", "--gt", str(root / "gt"), "--lr", str(root / "lr"),
                                    "--json", str(tmp_path / "r.json"), "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["schema"] == "vsrkit-eval/1" and r["protocol"]["channel"] == "y" and r["protocol"]["crop"] == 0
    assert [c["name"] for c in r["clips"]] == ["a", "b"] and [c["frames"] for c in r["clips"]] == [5, 3]
    per_clip = {}
    for name, gt in clips.items():
        out = upscaled(root, name)
        psnr = [M.psnr(o, g) for o, g in zip(out, gt)]
        ssim = [M.ssim(o, g) for o, g in zip(out, gt)]
        rows = [f for f in r["frames"] if f["clip"] == name]
        assert [f["psnr"] for f in rows] == pytest.approx(psnr, abs=1e-9)
        assert [f["ssim"] for f in rows] == pytest.approx(ssim, abs=1e-12)
        per_clip[name] = (np.mean(psnr), np.mean(ssim))
    assert [c["psnr"] for c in r["clips"]] == pytest.approx([per_clip["a"][0], per_clip["b"][0]], abs=1e-9)
    # averaged per clip, then over clips: not the mean over all 8 frames
    want = np.mean([per_clip["a"][0], per_clip["b"][0]])
    assert r["overall"]["psnr"] == pytest.approx(want, abs=1e-9)
    assert abs(r["overall"]["psnr"] - np.mean([f["psnr"] for f in r["frames"]])) > 1e-4
    assert r["overall"]["ssim"] == pytest.approx(np.mean([per_clip["a"][1], per_clip["b"][1]]), abs=1e-12)
    # the CSV beside the JSON holds the same per-frame values
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [row["file"] for row in rows] == [f["file"] for f in r["frames"]]
    assert [float(row["psnr"]) for row in rows] == pytest.approx([f["psnr"] for f in r["frames"]], abs=1e-9)
    assert "overall" in res.output and f"{want:.4f}" in res.output


def test_degrade_bi_equals_given_lr_frames(dataset):
    root, _ = dataset
    a = evaluate("bicubic-x4", root / "gt", root / "lr", device="cpu", progress=False)
    b = evaluate("bicubic-x4", root / "gt", degradation="bi", device="cpu", progress=False)
    assert b["overall"]["psnr"] == pytest.approx(a["overall"]["psnr"], abs=1e-12)
    assert b["dataset"]["degradation"] == "bi" and a["dataset"]["lr"] is not None


def test_rgb_and_crop(dataset):
    root, clips = dataset
    r = evaluate("bicubic-x4", root / "gt", root / "lr", protocol=resolve_protocol(None, "rgb", 4), device="cpu",
                 progress=False)
    out, gt = upscaled(root, "b"), clips["b"]
    want = np.mean([M.psnr(o, g, crop_border=4, y_channel=False) for o, g in zip(out, gt)])
    assert r["clips"][1]["psnr"] == pytest.approx(want, abs=1e-9)
    assert abs(want - np.mean([M.psnr(o, g, 0, False) for o, g in zip(out, gt)])) > 1e-3  # the crop matters
    assert abs(want - np.mean([M.psnr(o, g, 4, True) for o, g in zip(out, gt)])) > 1e-3  # and the channel


def test_vimeo_scores_the_centre_frame_only(tmp_path):
    frames = carphone(7, box=(40, 40, 32, 48))
    write_clip(tmp_path / "gt" / "00001" / "0001", frames, [f"im{i}.png" for i in range(1, 8)])
    write_clip(tmp_path / "gt" / "00001" / "0002", frames[::-1], [f"im{i}.png" for i in range(1, 8)])
    torch.manual_seed(0)
    rlsp = load_model("rlsp-7-48")  # random weights: one network for both runs
    r = evaluate(rlsp, tmp_path / "gt", degradation="bi", protocol=resolve_protocol("vimeo"), device="cpu",
                 progress=False)
    assert [c["name"] for c in r["clips"]] == ["00001/0001", "00001/0002"]
    scored = [(f["clip"], f["frame"], f["file"]) for f in r["frames"] if "psnr" in f]
    assert scored == [("00001/0001", 3, "im4.png"), ("00001/0002", 3, "im4.png")]
    for c in r["clips"]:
        assert c["scored"] == 1 and c["psnr"] == next(f["psnr"] for f in r["frames"] if f["clip"] == c["name"] and "psnr" in f)
    # the model saw all 7 frames: a recurrent model's centre output depends on the frames before it
    alone = evaluate(rlsp, tmp_path / "gt", degradation="bi", protocol=resolve_protocol(None), device="cpu",
                     progress=False)
    assert alone["frames"][3]["psnr"] == pytest.approx(r["clips"][0]["psnr"], abs=1e-12)


def test_vimeo_needs_septuplets(tmp_path):
    write_clip(tmp_path / "gt" / "s", carphone(6))
    res = CliRunner().invoke(main, ["eval", "-m", "bicubic-x4", "--gt", str(tmp_path / "gt"), "--degrade", "bi",
                                    "--protocol", "vimeo", "-q"])
    assert res.exit_code == 2 and "6 frames" in res.output and "7 frames" in res.output and "gt/s" in res.output


def test_reds4_scores_rgb_on_all_100_frames(tmp_path):
    frames = carphone(100, box=(40, 40, 32, 48))
    write_clip(tmp_path / "gt" / "000", frames)
    r = evaluate("bicubic-x4", tmp_path / "gt", degradation="bi", protocol=resolve_protocol("reds4"), device="cpu",
                 metrics=("psnr",), progress=False)
    assert r["protocol"]["channel"] == "rgb" and r["clips"][0]["scored"] == 100
    assert len([f for f in r["frames"] if "psnr" in f]) == 100
    model = load_model("bicubic-x4")
    out = list(upscale_frames(model, [degrade(f, "bi", 4) for f in frames], make_config("cpu"), np.uint8))
    want = [M.psnr(o, g, 0, y_channel=False) for o, g in zip(out, frames)]
    assert [f["psnr"] for f in r["frames"]] == pytest.approx(want, abs=1e-9)
    assert r["overall"]["psnr"] == pytest.approx(np.mean(want), abs=1e-9)
    assert abs(np.mean(want) - np.mean([M.psnr(o, g) for o, g in zip(out, frames)])) > 1e-3


def test_reds4_needs_100_frames(tmp_path):
    write_clip(tmp_path / "gt" / "011", carphone(99, box=(40, 40, 32, 48)))
    res = CliRunner().invoke(main, ["eval", "-m", "bicubic-x4", "--gt", str(tmp_path / "gt"), "--degrade", "bi",
                                    "--protocol", "REDS4", "-q"])
    assert res.exit_code == 2 and "99 frames" in res.output and "100 frames" in res.output


def test_image_set_every_image_alone(tmp_path):
    """A folder of images of different sizes is an image set; the crop's bicubic is MATLAB's (golden)."""
    _, io, _ = load_case("degrade_bi_bd")
    names = ["butterfly", "bird"]
    for n in names:
        write_clip(tmp_path / "gt", [io[f"set5_{n}_hr"].numpy()], [f"{n}.png"])
    r = evaluate("bicubic-x4", tmp_path / "gt", degradation="bi", protocol=resolve_protocol(None, None, 4),
                 device="cpu", metrics=("psnr",), progress=False)
    assert [c["name"] for c in r["clips"]] == ["bird", "butterfly"] and [c["frames"] for c in r["clips"]] == [1, 1]
    assert r["overall"]["psnr"] == pytest.approx(np.mean([c["psnr"] for c in r["clips"]]), abs=1e-12)
    # the report's bicubic row is MATLAB imresize x4 of the BI input, as the golden set5_butterfly_bicup_x4
    bic = _bicubic(io["set5_butterfly_bi_x4"].numpy(), 4)
    assert np.abs(bic.astype(int) - io["set5_butterfly_bicup_x4"].numpy()).max() <= 1
    assert M.psnr(bic, io["set5_butterfly_hr"].numpy(), 4) == pytest.approx(
        load_case("degrade_bi_bd")[0]["metrics"]["set5_butterfly"]["psnr_y_crop4"], abs=1e-4)


def test_cli_weights_alone_recognise_the_architecture(dataset, tmp_path):
    """`--weights FILE` without `--model`: the architecture comes from the file, as in `vsrkit upscale`."""
    from vsrkit.hub.checkpoint import save_safetensors_atomic

    root, _ = dataset
    torch.manual_seed(0)
    net = load_model("rlsp-7-48")
    ckpt = tmp_path / "mine.safetensors"
    save_safetensors_atomic(net.state_dict(), ckpt)
    base = ["eval", "--gt", str(root / "gt"), "--lr", str(root / "lr"), "--device", "cpu", "-q"]
    res = CliRunner().invoke(main, [*base, "--weights", str(ckpt), "--json", str(tmp_path / "w.json")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, [*base, "-m", "rlsp-7-48", "--weights", str(ckpt), "--json", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    by_file, by_name = (json.loads((tmp_path / f).read_text()) for f in ("w.json", "m.json"))
    assert by_file["overall"]["psnr"] == by_name["overall"]["psnr"]
    assert "mine.safetensors" in by_file["model"]["name"]
    res = CliRunner().invoke(main, base)
    assert res.exit_code == 2 and "--weights FILE" in res.output


def test_degrade_rlsp_equals_lr_frames_made_by_the_recipe(dataset, tmp_path):
    """`vsrkit eval --degrade rlsp` scores the LR frames of the RLSP authors' recipe (float Gaussian blur, sigma
    1.5, rint, clip, uint8, every 4th pixel from 0), written out here with scipy."""
    from scipy.ndimage import gaussian_filter

    root, clips = dataset
    for name, fr in clips.items():
        lrs = [np.clip(np.rint(gaussian_filter(f.astype(np.float64), [1.5, 1.5, 0])), 0, 255).astype(np.uint8)[0::4, 0::4]
               for f in fr]
        write_clip(tmp_path / "lr" / name, lrs)
    given = evaluate("bicubic-x4", root / "gt", tmp_path / "lr", device="cpu", progress=False)
    res = CliRunner().invoke(main, ["eval", "--model", "bicubic-x4", "--gt", str(root / "gt"), "--degrade", "rlsp",
                                    "--protocol", "vid4", "--json", str(tmp_path / "r.json"), "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["dataset"]["degradation"] == "rlsp" and r["protocol"]["name"] == "vid4"
    assert [f["psnr"] for f in r["frames"]] == pytest.approx([f["psnr"] for f in given["frames"]], abs=1e-9)
    assert r["overall"]["psnr"] == pytest.approx(given["overall"]["psnr"], abs=1e-9)
    bd = evaluate("bicubic-x4", root / "gt", degradation="bd", device="cpu", progress=False)
    assert abs(bd["overall"]["psnr"] - r["overall"]["psnr"]) > 0.1  # another recipe, another score
