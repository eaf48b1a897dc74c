"""One bicubic baseline: MATLAB bicubic (``data.degrade.bicubic_baseline``), for the demo, ``vsrkit eval`` (its
report crops) and the model cards alike."""

from __future__ import annotations

import numpy as np
import torch

from golden import load_case
from vsrkit import demo
from vsrkit.data import degrade
from vsrkit.eval import run
from vsrkit.eval.cards import MatlabBicubic
from vsrkit.infer.engine import upscale_frames
from vsrkit.infer.runtime import make_config


def test_the_baseline_is_matlab_bicubic():
    """The golden case's bicubic butterfly (MATLAB imresize x4 of the BI input, rounded as im2uint8)."""
    _, io, _ = load_case("degrade_bi_bd")
    lr, want = io["set5_butterfly_bi_x4"].numpy(), io["set5_butterfly_bicup_x4"].numpy()
    got = degrade.bicubic_baseline(lr, 4)
    assert got.shape == want.shape and got.dtype == np.uint8
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-4  # ties of float64 rounding only


def test_demo_eval_and_cards_use_the_one_baseline():
    lr = np.random.default_rng(0).integers(0, 256, (12, 17, 3), dtype=np.uint8)
    want = degrade.bicubic_baseline(lr, 4)
    assert demo.bicubic_baseline is degrade.bicubic_baseline  # the demo's "bicubic" number
    assert np.array_equal(run._bicubic(lr, 4), want)  # the report's bicubic crop
    cards = next(upscale_frames(MatlabBicubic(4), [lr], make_config("cpu")))  # the cards' "Bicubic" row
    diff = np.abs(cards.astype(int) - want.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float32 frames in the engine: ties only
    usual = torch.nn.functional.interpolate(torch.from_numpy(lr).permute(2, 0, 1)[None].float(), scale_factor=4,
                                            mode="bicubic", align_corners=False)
    assert np.abs(usual[0].round().clamp(0, 255).permute(1, 2, 0).numpy() - want).max() > 1  # not PyTorch's kernel
