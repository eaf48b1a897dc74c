"""It learns on real data: a short CPU training of a small RLSP on two sample clips beats bicubic (MATLAB imresize)
on a held-out clip, measured through the inference engine as validation does."""

from __future__ import annotations

import numpy as np

from golden import data_path
from trainutil import CONFIGS
from vsrkit.data.datasets import ValDataset
from vsrkit.data.degrade import imresize
from vsrkit.eval.metrics import psnr
from vsrkit.train.config import load_config
from vsrkit.train.loop import Trainer


def test_short_training_beats_bicubic_on_a_held_out_clip(tmp_path):
    clips = data_path("clips")
    cfg = load_config(CONFIGS / "tiny_rlsp_learn.yml", [f"output={tmp_path}", f"data.root={clips}",
                                                        f"val.data.root={clips}"])
    assert "carphone_pristine.mp4" not in cfg.data.include and cfg.val.data.include == ["carphone_pristine.mp4"]
    val = ValDataset(cfg.val.data)
    item = val[0]
    up = imresize(item["lq"].double(), scale=4).float()
    to8 = lambda x: (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()  # noqa: E731
    bicubic = float(np.mean([psnr(a, b, 0, False) for a, b in zip(to8(up), to8(item["gt"]))]))

    trainer = Trainer(cfg)
    before = trainer.validate(val)["psnr"]
    result = trainer.fit(say=lambda _m: None)
    assert result["psnr"] > before + 1.0, f"validation PSNR {before:.2f} -> {result['psnr']:.2f} dB"
    assert result["psnr"] > bicubic + 0.05, f"trained {result['psnr']:.3f} dB, bicubic {bicubic:.3f} dB"
