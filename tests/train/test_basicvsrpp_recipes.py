"""BasicVSR++ training: the official recipes load with every value sourced, and a tiny model's loss falls on crops
of a real clip with the recipe's mechanics (SpyNet group at lr x 0.25, SpyNet frozen first, Charbonnier)."""

from __future__ import annotations

import pytest
import torch

from golden import data_path
from trainutil import CONFIGS
from vsrkit.train.config import load_config

RECIPES = ["basicvsrpp_reds.yml", "basicvsrpp_vimeo.yml"]


@pytest.mark.parametrize("name", RECIPES)
def test_recipes_load_with_mmagics_values(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.model.arch == "BasicVSRPlusPlus"
    assert cfg.model.kwargs == {"mid_channels": 64, "num_blocks": 7, "is_low_res_input": True, "spynet_pretrained": None}
    assert (cfg.optim.lr, cfg.optim.betas, cfg.optim.lr_mul) == (1e-4, [0.9, 0.99], {"spynet": 0.25})
    assert cfg.loss.type == "charbonnier" and cfg.train.ema_decay == 0 and cfg.data.gt_size == 256
    assert cfg.scheduler.type == "cosine_restart" and cfg.scheduler.periods == [cfg.train.total_iter]
    if name == "basicvsrpp_reds.yml":
        assert (cfg.data.num_frame, cfg.train.batch_size, cfg.train.total_iter) == (30, 1, 600_000)
        assert cfg.freeze.keys == ["spynet"] and cfg.freeze.until == 5001  # mmagic fix_iter 5000: iterations 1..5000
        assert not cfg.val.y_channel
    else:
        assert (cfg.data.num_frame, cfg.data.mirror, cfg.train.batch_size, cfg.train.total_iter) == (-1, True, 2, 300_000)
        assert cfg.freeze.until == 0 and cfg.val.y_channel  # fix_iter -1: never frozen; Vid4 on Y


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_value_says_where_it_comes_from(name):
    lines = (CONFIGS / name).read_text().splitlines()
    keyed = [ln for ln in lines if ":" in ln and not ln.lstrip().startswith("#") and not ln.rstrip().endswith(":")]
    bare = [ln for ln in keyed if "#" not in ln and ln.split(":")[0].strip() not in ("name", "output", "degradation",
                                                                                         "split", "keys")]
    assert not bare, bare


def test_saved_kwargs_leave_out_the_pretrained_spynet_file():
    from vsrkit.train.loop import export_kwargs

    assert export_kwargs({"mid_channels": 8, "spynet_pretrained": "spynet.pth", "spynet_path": "x"}) == {"mid_channels": 8}


def test_loss_falls_on_crops_of_a_real_clip(tmp_path):
    from vsrkit.data.datasets import TrainDataset
    from vsrkit.train.loop import Trainer

    clips = data_path("clips")
    cfg = load_config(CONFIGS / "tiny_basicvsrpp_clips.yml", [
        f"data.root={clips}", "data.include=[carphone_pristine.mp4]", f"output={tmp_path}",
        "train.total_iter=8", "scheduler.periods=[8]"])
    torch.set_num_threads(1)
    trainer = Trainer(cfg)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [1e-3, 2.5e-4]
    ds = TrainDataset(cfg.data)
    batch = [ds[(0, seed)] for seed in (1, 2)]
    lq, gt = torch.stack([b["lq"] for b in batch]), torch.stack([b["gt"] for b in batch])
    assert lq.shape == (2, 3, 3, 34, 34) and gt.shape == (2, 3, 3, 136, 136)
    spynet = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "spynet" in n}
    losses = [trainer.train_step(lq, gt).item() for _ in range(8)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert min(losses[-3:]) < 0.92 * losses[0], losses
    # SpyNet was frozen in iteration 1 only, and trained after
    assert any(not torch.equal(p, spynet[n]) for n, p in trainer.model.named_parameters() if "spynet" in n)
