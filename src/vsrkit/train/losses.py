"""Losses of the training recipes: pixel losses (Charbonnier with each config's eps, L1, MSE), and for GAN training
(RealBasicVSR's second stage) the VGG-19 perceptual loss, the vanilla GAN loss and their targets."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from vsrkit.errors import VsrkitError
from vsrkit.hub.checkpoint import load_state_dict, load_strict
from vsrkit.models.family import WeightsSource
from vsrkit.models.unet_disc import UNetDiscriminatorWithSpectralNorm
from vsrkit.models.vgg import VGG19Features
from vsrkit.train.config import GanCfg, LossCfg, PerceptualCfg


class PixelLoss(nn.Module):
    """``weight * reduce(f(pred - target))`` on values scaled by ``value_range``.

    - ``charbonnier``: ``sqrt(d^2 + eps)``, eps added as it is (BasicSR's CharbonnierLoss, eps 1e-12; KAIR's
      squares its eps first: 1e-9 there is 1e-18 here);
    - ``l1``: ``|d|``; ``mse``: ``d^2``.

    ``reduction`` is ``mean`` (over every element), ``sum`` (BasicSR's EDVR recipes) or ``sample`` (summed over
    each sample, averaged over the batch: FSRCNN's ``1/n sum_i ||F(Y_i) - X_i||^2``).
    """

    def __init__(self, kind: str = "charbonnier", eps: float = 1e-12, reduction: str = "mean", weight: float = 1.0,
                 value_range: float = 1.0) -> None:
        super().__init__()
        if kind not in ("charbonnier", "l1", "mse") or reduction not in ("mean", "sum", "sample"):
            raise ValueError(f"unknown loss {kind!r} / reduction {reduction!r}")
        self.kind, self.eps, self.reduction, self.weight, self.value_range = kind, eps, reduction, weight, value_range

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"loss: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        if self.value_range != 1.0:
            pred, target = pred * self.value_range, target * self.value_range
        d = pred - target
        if self.kind == "charbonnier":
            e = torch.sqrt(d * d + self.eps)
        elif self.kind == "l1":
            e = d.abs()
        else:
            e = d * d
        if self.reduction == "mean":
            e = e.mean()
        elif self.reduction == "sum":
            e = e.sum()
        else:
            e = e.sum() / e.shape[0]
        return e * self.weight if self.weight != 1.0 else e


def make_loss(cfg: LossCfg) -> PixelLoss:
    """The loss a config asks for."""
    return PixelLoss(cfg.type, cfg.eps, cfg.reduction, cfg.weight, cfg.value_range)


# ------------------------------------------------------------------------------------------- GAN training
# RealBasicVSR's second stage (mmagic's RealESRGAN/RealBasicVSR models): a perceptual loss on VGG-19 features, an
# adversarial loss against a U-Net discriminator, and the unsharp-masked ground truth as a target.

# torchvision's published ImageNet VGG-19 (the file mmagic's PerceptualVGG loads through torchvision); its name
# carries the first 8 hex digits of its sha256, and the full hash is pinned at the first download
VGG19_WEIGHTS = WeightsSource(
    filename="vgg19-dcbb9e9d.pth",
    sha256="dcbb9e9d",
    url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    licence="BSD-3-Clause (torchvision)",
)


def load_vgg19_features(features: VGG19Features, weights: str = "imagenet") -> VGG19Features:
    """``features`` with the weights a config names: ``imagenet`` (torchvision's file, through the hub cache and
    checked against its sha256), ``random`` (left as initialised: tests), or a local file with ``features.N.*``
    keys. Loading is strict over the layers ``features`` holds; the file's deeper layers and classifier are left."""
    if weights == "random":
        return features
    if weights == "imagenet":
        from vsrkit.hub.download import resolve_weights

        path = resolve_weights("vgg19 (perceptual loss)", VGG19_WEIGHTS)
    else:
        path = Path(weights)
    sd = load_state_dict(path)
    own = features.state_dict()
    wanted = {k: v for k, v in sd.items() if k in own}
    load_strict(features, wanted, source=str(path), what="VGG-19 features")
    return features


class PerceptualLoss(nn.Module):
    """``weight * sum_l w_l * criterion(phi_l(pred), phi_l(target))`` over VGG-19 layers ``l`` (Johnson et al.,
    2016), as mmagic's PerceptualLoss with ``norm_img=False`` and no style term: inputs are RGB in [0, 1]."""

    def __init__(self, layer_weights: dict[str, float], weight: float = 1.0, criterion: str = "l1",
                 use_input_norm: bool = True, vgg_weights: str = "imagenet") -> None:
        super().__init__()
        self.layer_weights = {int(k): float(v) for k, v in layer_weights.items()}
        self.weight = weight
        self.criterion = nn.L1Loss() if criterion == "l1" else nn.MSELoss()
        self.vgg = load_vgg19_features(VGG19Features(list(self.layer_weights), use_input_norm), vgg_weights)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fp, ft = self.vgg(pred), self.vgg(target.detach())
        loss = sum(self.criterion(fp[k], ft[k]) * w for k, w in self.layer_weights.items())
        return loss * self.weight


class GANLoss(nn.Module):
    """The vanilla GAN loss (Goodfellow et al., 2014) on logits: binary cross-entropy with the real or fake label,
    averaged over every logit (the U-Net discriminator gives one per pixel). ``weight`` scales the generator's term
    only, as mmagic's GANLoss with ``is_disc``."""

    def __init__(self, weight: float = 1.0, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        self.weight, self.real_label, self.fake_label = weight, real_label, fake_label

    def forward(self, logits: torch.Tensor, target_is_real: bool, is_disc: bool) -> torch.Tensor:
        label = torch.full_like(logits, self.real_label if target_is_real else self.fake_label)
        loss = F.binary_cross_entropy_with_logits(logits, label)
        return loss if is_disc else loss * self.weight


def make_perceptual(cfg: PerceptualCfg) -> PerceptualLoss:
    """The perceptual loss a config's ``perceptual`` section asks for."""
    return PerceptualLoss(cfg.layer_weights, cfg.weight, cfg.criterion, cfg.use_input_norm, cfg.vgg_weights)


def make_discriminator(cfg: GanCfg) -> nn.Module:
    """The discriminator a config's ``gan`` section asks for."""
    if cfg.arch != "UNetDiscriminatorWithSpectralNorm":
        raise VsrkitError(f"config: gan.arch {cfg.arch!r} is not a known discriminator")
    try:
        return UNetDiscriminatorWithSpectralNorm(**cfg.discriminator)
    except TypeError as e:
        raise VsrkitError(f"config: gan.discriminator: {e}") from None


def cleaning_target(target: torch.Tensor, scale: int) -> torch.Tensor:
    """What RealBasicVSR's cleaned LR clip is compared with: the pixel target ``[..., c, H, W]`` shrunk by
    ``1/scale`` with area interpolation (mmagic: ``F.interpolate(gt, scale_factor=0.25, mode='area')``)."""
    lead, (c, h, w) = target.shape[:-3], target.shape[-3:]
    small = F.interpolate(target.reshape(-1, c, h, w), size=(h // scale, w // scale), mode="area")
    return small.reshape(*lead, c, h // scale, w // scale)


def sharpened(gt: torch.Tensor) -> torch.Tensor:
    """The unsharp-masked ground truth (``vsrkit.data.realworld.unsharp_mask``, the data pipeline's settings) of
    ``[..., c, H, W]`` values in [0, 1]: mmagic's ``gt_unsharp / 255``. Computed on the CPU, frame by frame."""
    from vsrkit.data.realworld import unsharp_mask

    flat = gt.detach().float().cpu().reshape(-1, *gt.shape[-3:])
    out = torch.stack([unsharp_mask(f * 255.0) for f in flat]) / 255.0
    return out.reshape(gt.shape).to(device=gt.device, dtype=gt.dtype)
