"""`vsrkit eval` on bad datasets and options: one line naming the file or option, exit code 2, nothing written."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from eval_clips import carphone, write_clip

from vsrkit.cli.main import main
from vsrkit.data.degrade import degrade


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    frames = carphone(3)
    write_clip(root / "gt" / "a", frames)
    write_clip(root / "lr" / "a", [degrade(f, "bi", 4) for f in frames])
    return root


def run(*args):
    return CliRunner().invoke(main, ["eval", "-m", "bicubic-x4", "-q", *map(str, args)])


def copy(good, tmp_path):
    shutil.copytree(good, tmp_path / "d")
    return tmp_path / "d"


def one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vsrkit: error: "), res.output
    for n in needles:
        assert n in lines[0], lines[0]
    assert "Traceback" not in res.output


def test_missing_lr_frame(good, tmp_path):
    d = copy(good, tmp_path)
    (d / "lr" / "a" / "00000001.png").unlink()
    one_line_error(run("--gt", d / "gt", "--lr", d / "lr", "--json", tmp_path / "r.json"),
                   "LR frame missing", "lr/a/00000001.png")
    assert not (tmp_path / "r.json").exists()


def test_missing_gt_frame(good, tmp_path):
    d = copy(good, tmp_path)
    shutil.copy(d / "lr" / "a" / "00000002.png", d / "lr" / "a" / "00000003.png")
    one_line_error(run("--gt", d / "gt", "--lr", d / "lr"), "GT frame missing", "gt/a/00000003.png")


def test_frames_with_other_names(good, tmp_path):
    d = copy(good, tmp_path)
    (d / "lr" / "a" / "00000002.png").rename(d / "lr" / "a" / "frame2.png")
    one_line_error(run("--gt", d / "gt", "--lr", d / "lr"), "LR frame missing", "lr/a/00000002.png")


def test_missing_lr_clip(good, tmp_path):
    d = copy(good, tmp_path)
    shutil.copytree(d / "gt" / "a", d / "gt" / "b")
    one_line_error(run("--gt", d / "gt", "--lr", d / "lr"), "LR clip missing", "lr/b")


def test_clips_of_unequal_length(good, tmp_path):
    d = copy(good, tmp_path)
    write_clip(d / "gt" / "b", carphone(3))
    write_clip(d / "lr" / "b", [degrade(f, "bi", 4) for f in carphone(2)])
    one_line_error(run("--gt", d / "gt", "--lr", d / "lr"), "unequal length", "gt/b", "lr/b", "00000002.png")


def test_mismatched_sizes(good, tmp_path):
    d = copy(good, tmp_path)
    write_clip(d / "lr" / "a", [degrade(f, "bi", 2) for f in carphone(3)])  # x2 frames for a x4 model
    one_line_error(run("--gt", d / "gt", "--lr", d / "lr"), "size mismatch", "gt/a/00000000.png", "lr/a/00000000.png")


def test_frame_of_another_size_inside_a_clip(good, tmp_path):
    d = copy(good, tmp_path)
    small = degrade(carphone(1)[0][:60, :92], "bi", 4)
    write_clip(d / "lr" / "a", [small], ["00000001.png"])
    one_line_error(run("--gt", d / "gt", "--lr", d / "lr"), "lr/a/00000001.png", "differs")


def test_gt_folder_without_frames(tmp_path):
    (tmp_path / "empty" / "x").mkdir(parents=True)
    one_line_error(run("--gt", tmp_path / "empty", "--degrade", "bi"), "holds no image frames")
    one_line_error(run("--gt", tmp_path / "nope", "--degrade", "bi"), "no such folder", "nope")


@pytest.mark.parametrize("args, needles", [
    (["--protocol", "udm10"], ["unknown protocol", "udm10"]),
    (["--protocol", "reds4", "--channel", "y"], ["reds4 scores RGB", "--channel y"]),
    (["--protocol", "vid4", "--crop", "4"], ["crop 0", "--crop 4"]),
    (["--channel", "yuv"], ["unknown --channel"]),
    (["--metric", "psnr,lpips"], ["unknown metric", "lpips"]),
    (["--degrade", "bi"], ["either --lr", "or --degrade"]),
    (["--degrade", "bx"], ["unknown --degrade"]),
])
def test_bad_options(good, args, needles):
    if args[0] != "--degrade":
        args = [*args, "--degrade", "bi"]
    else:
        args = [*args, "--lr", str(good / "lr")] if args[1] == "bi" else args
    one_line_error(run("--gt", good / "gt", *args), *needles)


def test_bd_needs_x4(good):
    one_line_error(CliRunner().invoke(main, ["eval", "-m", "bicubic-x2", "--gt", str(good / "gt"), "--degrade", "bd",
                                             "-q"]), "--degrade bd", "x4")


def test_image_set_with_an_extra_lr_image(tmp_path):
    img = carphone(1)[0]
    write_clip(tmp_path / "gt", [img], ["one.png"])
    write_clip(tmp_path / "lr", [degrade(img, "bi", 4)] * 2, ["one.png", "two.png"])
    one_line_error(run("--gt", tmp_path / "gt", "--lr", tmp_path / "lr"), "GT frame missing", "gt/two.png", "lr/two.png")


def test_gt_folder_with_images_and_clip_folders(good, tmp_path):
    d = copy(good, tmp_path)
    shutil.copy(d / "gt" / "a" / "00000000.png", d / "gt" / "stray.png")
    one_line_error(run("--gt", d / "gt", "--degrade", "bi"), "both images", "clip folders")
