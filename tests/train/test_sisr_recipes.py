"""The single-image recipes (FSRCNN, ESPCN, edge-SR): a folder of image folders (General100 + T91 layout), FSRCNN's
scaling augmentation, SGD with per-layer learning rates, the per-sample MSE, and configs whose every value says
where it comes from."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch

from compare import assert_close_rel
from golden import data_path
from media import write_png
from trainutil import CONFIGS
from vsrkit.data.datasets import TrainDataset, list_clips, shrink
from vsrkit.data.degrade import imresize
from vsrkit.errors import VsrkitError
from vsrkit.train.config import DataCfg, LossCfg, OptimCfg, from_dict, load_config
from vsrkit.train.losses import make_loss
from vsrkit.train.optim import make_optimizer

SISR_CONFIGS = ("espcn_x4.yml", "fsrcnn_x3.yml", "fsrcnn_x3_general100.yml", "fsrcnn_x4.yml", "esr_max_x4.yml", "esr_tm_x4.yml", "esr_tr_x4.yml", "esr_cnn_x4.yml")


def _image_sets(root, h=48, w=40):
    """General100/ and T91/ side by side, two images each (smooth, so that a shrink changes them little)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    for folder, names in (("General100", ["im_1.png", "im_2.png"]), ("T91", ["t1.png", "t2.png"])):
        for n in names:
            base = (np.sin(xx / 5.0 + rng.uniform(0, 6)) * np.cos(yy / 7.0) + 1) * 120
            arr = np.clip(base[..., None] + rng.uniform(0, 10, (1, 1, 3)), 0, 255).astype(np.uint8)
            write_png(root / folder / n, arr)
    return root


def test_image_folder_reads_general100_and_t91_side_by_side(tmp_path):
    root = _image_sets(tmp_path / "sets")
    cfg = DataCfg(kind="images", root=str(root), scale=4, gt_size=16, channels="y", hflip=True, rot=True)
    names = [c.name for c in list_clips(cfg)]
    assert names == ["General100/im_1.png", "General100/im_2.png", "T91/t1.png", "T91/t2.png"]
    ds = TrainDataset(cfg)
    s = ds[(3, 7)]
    assert s["lq"].shape == (1, 1, 4, 4) and s["gt"].shape == (1, 1, 16, 16)
    # a training image smaller than the crop is one line naming the file
    small = tmp_path / "small"
    write_png(small / "T91" / "tiny.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(VsrkitError, match="tiny.png"):
        TrainDataset(DataCfg(kind="images", root=str(small), scale=4, gt_size=16))[(0, 0)]


def test_downscale_augmentation_shrinks_the_ground_truth_first(tmp_path):
    root = _image_sets(tmp_path / "sets")
    img = list_clips(DataCfg(kind="images", root=str(root)))[0].gt.read(0, 1)
    want = imresize(torch.from_numpy(img).permute(0, 3, 1, 2).float(), scale=0.6).round().clamp(0, 255)
    assert np.array_equal(shrink(img, 0.6), want.to(torch.uint8).permute(0, 2, 3, 1).numpy())
    assert shrink(img, 0.6).shape == (1, 29, 24, 3)  # ceil(48 * 0.6) x ceil(40 * 0.6), as MATLAB

    # whole images (no crop): the ground truth is the shrunk image, mod-cropped to the scale
    cfg = DataCfg(kind="images", root=str(root), scale=4, downscale=[0.6], include=["General100/im_1.png"])
    gt = TrainDataset(cfg)[(0, 0)]["gt"]
    assert gt.shape == (1, 3, 28, 24)
    assert torch.equal(gt, torch.from_numpy(shrink(img, 0.6)[:, :28, :24]).permute(0, 3, 1, 2).float() / 255)
    # every factor of the list is drawn; 1.0 keeps the image as it is
    cfg = DataCfg(kind="images", root=str(root), scale=4, downscale=[1.0, 0.9, 0.8, 0.7, 0.6],
                  include=["General100/im_1.png"])
    ds = TrainDataset(cfg)
    heights = {ds[(0, seed)]["gt"].shape[2] for seed in range(40)}
    assert heights == {48, 44, 36, 32, 28}  # ceil(48 x (1, .9, .8, .7, .6)) = 48, 44, 39, 34, 29, mod-cropped to 4
    with pytest.raises(VsrkitError, match="downscale"):
        from_dict({"name": "x", "output": "x", "model": {"arch": "FSRCNN"}, "train": {"total_iter": 1, "batch_size": 1},
                   "optim": {"lr": 1e-3}, "data": {"kind": "images", "root": "x", "downscale": [1.5]}})


def test_real_set5_images_as_a_training_folder(tmp_path):
    set5 = data_path("images", "Set5")
    root = tmp_path / "sets"
    shutil.copytree(set5, root / "Set5")
    cfg = load_config(CONFIGS / "fsrcnn_x3.yml", [f"data.root={root}"]).data
    ds = TrainDataset(cfg)
    assert len(ds) == 5
    s = ds[(1, 3)]
    assert s["lq"].shape == (1, 1, cfg.gt_size // cfg.scale, cfg.gt_size // cfg.scale)
    assert s["gt"].shape == (1, 1, cfg.gt_size, cfg.gt_size)
    assert 0.0 <= float(s["gt"].min()) and float(s["gt"].max()) <= 1.0 and float(s["gt"].std()) > 0.01


def test_sgd_with_per_layer_learning_rates():
    from vsrkit.models.edgesr import FSRCNN

    torch.manual_seed(0)
    net = FSRCNN("FSRCNN_s4_D56_S12_M4")
    opt = make_optimizer(net, OptimCfg(lr=1e-3, type="sgd", lr_mul={"net.14.": 0.1}))
    assert isinstance(opt, torch.optim.SGD)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, pytest.approx(1e-4)]
    assert opt.param_groups[1]["names"] == ["net.14.weight", "net.14.bias"]  # the deconvolution, 10x slower
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    x = torch.rand(2, 1, 8, 8)
    net(x).square().mean().backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    opt.step()
    for n, p in net.named_parameters():
        lr = 1e-4 if n.startswith("net.14.") else 1e-3
        # one multiply-add per weight: a few eps of the weight's size (the steps here are 1e-10 to 1e-5, so a wrong
        # learning rate shows in net.14 and in the layers with the larger gradients)
        assert_close_rel(p.detach(), before[n] - lr * grads[n], 1e-6, floor=0, what=n)


def test_sample_reduction_is_the_per_image_sum_averaged_over_the_batch():
    pred, target = torch.rand(3, 1, 5, 6), torch.rand(3, 1, 5, 6)
    loss = make_loss(LossCfg(type="mse", reduction="sample"))(pred, target)
    torch.testing.assert_close(loss, ((pred - target) ** 2).sum() / 3)
    assert loss.item() == pytest.approx(30 * make_loss(LossCfg(type="mse"))(pred, target).item())


def test_fsrcnn_recipe_trains_two_sgd_steps(tmp_path):
    from vsrkit.train.loop import Trainer

    root = _image_sets(tmp_path / "sets")
    cfg = load_config(CONFIGS / "fsrcnn_x3.yml", [f"data.root={root}", f"output={tmp_path / 'run'}",
                                                  "data.gt_size=15", "data.downscale=[1.0, 0.9]",
                                                  "train.batch_size=2", "train.device=cpu"])
    assert cfg.optim.type == "sgd" and cfg.loss.reduction == "sample"
    trainer = Trainer(cfg)
    ds = TrainDataset(cfg.data)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    for it in range(2):
        batch = [ds[(i, 10 * it + i)] for i in range(2)]
        loss = trainer.train_step(torch.stack([b["lq"] for b in batch]), torch.stack([b["gt"] for b in batch]))
        assert torch.isfinite(loss)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [1e-3, pytest.approx(1e-4)]
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])]
    assert "net.0.weight" in changed and "net.14.weight" in changed
    # SGD's momentum buffers go through the checkpoint state: a restored trainer takes the same next step
    import json

    tensors, train = trainer.state()
    assert any(k.endswith("momentum_buffer") for k in tensors)
    again = Trainer(cfg)
    again.load_state({k: v.clone() for k, v in tensors.items()}, json.loads(json.dumps(train)), "state")
    batch = [ds[(i, 99 + i)] for i in range(2)]
    lq, gt = torch.stack([b["lq"] for b in batch]), torch.stack([b["gt"] for b in batch])
    trainer.train_step(lq, gt)
    again.train_step(lq, gt)
    assert all(torch.equal(p, q) for p, q in zip(trainer.model.parameters(), again.model.parameters()))


@pytest.mark.parametrize("name", SISR_CONFIGS)
def test_every_recipe_value_says_where_it_comes_from(name):
    """Each key line of the single-image recipes carries a comment: a paper section, the official repository, or
    'paper silent; vsrkit's choice'."""
    text = (CONFIGS / name).read_text()
    load_config(CONFIGS / name)
    bare = [line for line in text.splitlines()
            if re.match(r"^\s*[a-z_]+:\s*\S", line) and "#" not in line
            and not re.match(r"^\s*(name|output|arch):", line)]
    assert not bare, f"{name}: values without a source: {bare}"
    assert "vsrkit's choice" in text or "paper" in text
