"""RealBasicVSR's two training recipes (mmagic's wogan and GAN configs): the configs load with mmagic's values, a
tiny RealBasicVSR trains on crops of a real clip degraded by the real-world pipeline, the cleaning loss compares
the cleaned LR clip with the area-shrunk (sharpened) ground truth, the discriminator learns, and VGG-19 has
torchvision's key names.

The perceptual loss here runs with RANDOM VGG-19 weights (``perceptual.vgg_weights: random``): the tests cannot
download torchvision's ImageNet file. Loading a file with torchvision's keys is tested with a file written here."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from trainutil import CONFIGS
from vsrkit.errors import VsrkitError
from vsrkit.train.config import load_config

CLIPS = Path(__file__).resolve().parents[3] / "shared" / "data" / "clips"
if not CLIPS.is_dir():
    CLIPS = Path("/work/shared/data/clips")

# torchvision's vgg19().features: the index of every Conv2d (conv1_1 .. conv5_4), written from its layer layout
TORCHVISION_VGG19_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)

TINY = ["model.init=null", "model.kwargs={mid_channels: 8, num_propagation_blocks: 1, num_cleaning_blocks: 1}",
        "val.every=0", "train.device=cpu", "train.batch_size=1", "train.num_workers=0",
        # two frames of a 136 x 136 crop (34 x 34 LR: SpyNet needs more than 32 pixels) of a real clip
        f"data={{kind: videos, root: {CLIPS}, include: [bikes.mp4], degradation: realworld, scale: 4, num_frame: 2,"
        " gt_size: 136, hflip: true, rot: true}"]
STAGE2_TINY = TINY + ["perceptual.vgg_weights=random", "gan.discriminator.mid_channels=8"]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _batch(cfg, seed: int = 3):
    from vsrkit.data.datasets import build_train_dataset

    item = build_train_dataset(cfg.data)[(0, seed)]
    return item["lq"][None], item["gt"][None]


def test_both_configs_load_with_mmagics_values():
    s1 = load_config(CONFIGS / "realbasicvsr_stage1.yml")
    assert s1.model.arch == "RealBasicVSR" and s1.model.kwargs["num_propagation_blocks"] == 20
    assert s1.data.degradation == "realworld" and s1.data.num_frame == 15 and s1.data.mirror
    assert (s1.loss.type, s1.loss.cleaning_weight, s1.loss.sharpened_gt) == ("l1", 1.0, True)
    assert s1.optim.lr == 1e-4 and s1.train.total_iter == 300_000 and s1.train.ema_decay == 0.999
    assert s1.perceptual is None and s1.gan is None
    s2 = load_config(CONFIGS / "realbasicvsr_stage2.yml")
    assert s2.optim.lr == 5e-5 and s2.train.total_iter == 150_000 and s2.train.ema_decay == 0.999
    assert s2.perceptual.layer_weights == {"2": 0.1, "7": 0.1, "16": 1.0, "25": 1.0, "34": 1.0}
    assert s2.perceptual.vgg_weights == "imagenet" and s2.perceptual.sharpened_gt
    g = s2.gan
    assert (g.arch, g.type, g.weight, g.lr, g.betas, g.sharpened_gt) == (
        "UNetDiscriminatorWithSpectralNorm", "vanilla", 5e-2, 1e-4, [0.9, 0.99], False)
    assert g.discriminator == {"in_channels": 3, "mid_channels": 64, "skip_connection": True}


def test_gan_sections_are_checked():
    with pytest.raises(VsrkitError, match="perceptual.layer_weights key '40' is not a VGG-19 features index"):
        load_config(CONFIGS / "realbasicvsr_stage2.yml", ["perceptual.layer_weights={'40': 1.0}"])
    with pytest.raises(VsrkitError, match="gan.type must be one of vanilla"):
        load_config(CONFIGS / "realbasicvsr_stage2.yml", ["gan.type=wgan"])
    with pytest.raises(VsrkitError, match="unknown key gan.lambda"):
        load_config(CONFIGS / "realbasicvsr_stage2.yml", ["gan.lambda=1"])


def test_vgg19_has_torchvisions_key_names():
    from vsrkit.models.vgg import VGG19_CONV_INDICES, VGG19Features

    assert VGG19_CONV_INDICES == TORCHVISION_VGG19_CONVS
    vgg = VGG19Features([2, 7, 16, 25, 34])
    want = {f"features.{i}.{p}" for i in TORCHVISION_VGG19_CONVS for p in ("weight", "bias")}
    assert set(vgg.state_dict()) == want
    assert not any(p.requires_grad for p in vgg.parameters())
    # only the layers up to the deepest one asked for are built
    assert set(VGG19Features([7]).state_dict()) == {f"features.{i}.{p}" for i in (0, 2, 5, 7) for p in ("weight", "bias")}


def test_vgg19_weights_load_from_a_torchvision_file_and_the_hub_entry(tmp_path, monkeypatch):
    from vsrkit.models.vgg import VGG19Features
    from vsrkit.train.losses import VGG19_WEIGHTS, load_vgg19_features

    assert VGG19_WEIGHTS.url == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
    assert VGG19_WEIGHTS.sha256 == "dcbb9e9d" and "BSD-3-Clause" in VGG19_WEIGHTS.licence
    # a file laid out as torchvision's (features + classifier), random values
    full = VGG19Features([34]).state_dict()
    sd = {k: torch.randn_like(v) for k, v in full.items()}
    sd["classifier.0.weight"] = torch.randn(4, 4)
    path = tmp_path / "vgg19.pth"
    torch.save(sd, path)
    vgg = load_vgg19_features(VGG19Features([2, 7, 16]), str(path))
    for k, v in vgg.state_dict().items():
        assert torch.equal(v, sd[k]), k
    # a file without a layer the loss needs is refused, naming it
    del sd["features.16.weight"]
    torch.save(sd, path)
    with pytest.raises(VsrkitError, match="features.16.weight"):
        load_vgg19_features(VGG19Features([16]), str(path))
    # imagenet, offline, nothing cached: one line naming the file and where it comes from
    monkeypatch.setenv("VSRKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VSRKIT_OFFLINE", "1")
    with pytest.raises(VsrkitError) as e:
        load_vgg19_features(VGG19Features([2]), "imagenet")
    assert "vgg19-dcbb9e9d.pth" in str(e.value) and "\n" not in str(e.value)


def test_cleaning_target_is_the_area_shrunk_gt():
    from vsrkit.train.losses import cleaning_target

    gt = torch.rand(2, 3, 3, 16, 24)
    small = cleaning_target(gt, 4)
    assert small.shape == (2, 3, 3, 4, 6)
    # area interpolation by an integer factor: the mean of each 4 x 4 cell
    cells = gt.reshape(2, 3, 3, 4, 4, 6, 4).mean(dim=(4, 6))
    assert torch.allclose(small, cells, rtol=1e-5, atol=1e-6 * float(gt.abs().max()))


def test_stage1_steps_on_a_real_clip_with_the_cleaning_loss():
    from vsrkit.train.losses import cleaning_target, sharpened
    from vsrkit.train.loop import Trainer

    cfg = load_config(CONFIGS / "realbasicvsr_stage1.yml", TINY)
    tr = Trainer(cfg)
    lq, gt = _batch(cfg)
    assert lq.shape == (1, 2, 3, 34, 34) and gt.shape == (1, 2, 3, 136, 136)
    with torch.no_grad():  # the cleaning loss the step should see, from the weights before it
        out, cleaned = tr.model(lq, return_lqs=True)
    sharp = sharpened(gt)
    want_clean = F.l1_loss(cleaned, cleaning_target(sharp, 4))
    want_pixel = F.l1_loss(out, sharp)
    loss = tr.train_step(lq, gt)
    got = tr.last_losses
    assert set(got) == {"pixel", "cleaning"}
    assert math.isclose(got["cleaning"], float(want_clean), rel_tol=1e-4)
    assert math.isclose(got["pixel"], float(want_pixel), rel_tol=1e-4)
    assert math.isclose(float(loss), got["pixel"] + got["cleaning"], rel_tol=1e-5)
    # the plain GT is not the target: the sharpened one differs from it on a real clip
    assert not math.isclose(float(F.l1_loss(out, gt)), float(want_pixel), rel_tol=1e-3)
    lq2, gt2 = _batch(cfg, seed=4)
    assert math.isfinite(float(tr.train_step(lq2, gt2)))
    assert tr.iteration == 2


def test_stage2_steps_train_generator_and_discriminator():
    from vsrkit.train.loop import Trainer

    cfg = load_config(CONFIGS / "realbasicvsr_stage2.yml", STAGE2_TINY)
    tr = Trainer(cfg)
    assert tr.ema is not None and tr.disc is not None
    assert any(k.endswith("weight_orig") for k in tr.disc.state_dict())  # spectral norm, mmagic's keys
    d0 = {k: v.clone() for k, v in tr.disc.state_dict().items()}
    g0 = {k: v.clone() for k, v in tr.model.state_dict().items()}
    e0 = {k: v.clone() for k, v in tr.ema.state_dict().items()}
    for seed in (3, 4):
        lq, gt = _batch(cfg, seed)
        loss = tr.train_step(lq, gt)
        assert math.isfinite(float(loss))
        got = tr.last_losses
        assert set(got) == {"pixel", "cleaning", "perceptual", "gan", "d_real", "d_fake"}
        assert all(math.isfinite(v) for v in got.values()), got
        assert got["perceptual"] > 0 and got["gan"] > 0
        assert math.isclose(float(loss), got["pixel"] + got["cleaning"] + got["perceptual"] + got["gan"], rel_tol=1e-5)
    params = dict(tr.disc.named_parameters())
    assert [n for n, p in params.items() if torch.equal(p, d0[n])] == []  # every discriminator weight learns
    assert any(not torch.equal(v, g0[k]) for k, v in tr.model.state_dict().items())
    assert any(not torch.equal(v, e0[k]) for k, v in tr.ema.state_dict().items())
    # a checkpoint holds the discriminator and its optimizer: a new trainer continues from them exactly
    tensors, train = tr.state()
    tr2 = Trainer(cfg)
    tr2.load_state(tensors, train, "memory")
    for k, v in tr.disc.state_dict().items():
        assert torch.equal(v, tr2.disc.state_dict()[k]), k
    s1, s2 = tr.d_optimizer.state_dict()["state"], tr2.d_optimizer.state_dict()["state"]
    assert s1.keys() == s2.keys() and all(torch.equal(s1[p]["exp_avg"], s2[p]["exp_avg"]) for p in s1)
