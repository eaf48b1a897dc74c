"""`vsrkit degrade --mode realworld --seed N` and `vsrkit eval --degrade realworld --seed N`: reproducible for a
seed, equal to the library's stream, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from eval_clips import carphone, read_clip, write_clip

from vsrkit.cli.main import main
from vsrkit.data.realworld import clip_seed, degrade_clip


@pytest.fixture(scope="module")
def gt(tmp_path_factory):
    root = tmp_path_factory.mktemp("rw")
    frames = carphone(3, (24, 32, 64, 96))
    write_clip(root / "gt" / "clipA", frames)
    return root, np.stack(frames)


def run(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def test_degrade_realworld_reproduces_and_equals_the_library(gt, tmp_path):
    root, frames = gt
    src = root / "gt" / "clipA"
    outs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        res = run("degrade", src, "-o", tmp_path / name, "--mode", "realworld", "--seed", seed, "-q")
        assert res.exit_code == 0, res.output
        assert "realworld seed" in res.output
        outs.append(np.stack(read_clip(tmp_path / name)))
    assert outs[0].shape == (3, 16, 24, 3) and outs[0].dtype == np.uint8
    assert np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])
    assert np.array_equal(outs[0], np.rint(degrade_clip(frames, 4, 3)).astype(np.uint8))


@pytest.mark.parametrize("args, needle", [
    (("--seed", -1), "--seed must be a non-negative"),
    (("--scale", 200), "too small for --scale 200"),
])
def test_degrade_realworld_bad_options_are_one_line(gt, tmp_path, args, needle):
    root, _ = gt
    res = run("degrade", root / "gt" / "clipA", "-o", tmp_path / "o", "--mode", "realworld", *args, "-q")
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_eval_realworld_is_a_fixed_degraded_version(gt, tmp_path):
    root, frames = gt
    results = []
    for i, seed in enumerate((0, 0, 1)):
        out = tmp_path / f"r{i}.json"
        res = run("eval", "-m", "bicubic-x4", "--gt", root / "gt", "--degrade", "realworld", "--seed", seed, "-q",
                  "--json", out)
        assert res.exit_code == 0, res.output
        results.append(json.loads(out.read_text()))
    assert results[0]["dataset"]["degradation"] == "realworld(seed=0)"
    assert results[0]["overall"]["psnr"] == results[1]["overall"]["psnr"] != results[2]["overall"]["psnr"]
    # the LR it scores is the clip's stream under clip_seed(seed, name): the same as the library gives
    from vsrkit.eval.dataset import find_clips
    from vsrkit.eval.run import _realworld_lr

    clip = find_clips(root / "gt")[0]
    lr = np.stack(list(_realworld_lr(clip, 4, 0)))
    assert np.array_equal(lr, np.rint(degrade_clip(frames, 4, clip_seed(0, clip.name))).astype(np.uint8))


def test_eval_realworld_bad_seed_is_one_line(gt):
    root, _ = gt
    res = run("eval", "-m", "bicubic-x4", "--gt", root / "gt", "--degrade", "realworld", "--seed", -2, "-q")
    assert res.exit_code == 2 and "--seed must be a non-negative" in res.output and "Traceback" not in res.output
