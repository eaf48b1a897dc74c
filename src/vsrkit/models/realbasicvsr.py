"""RealBasicVSR (Chan et al., "Investigating Tradeoffs in Real-World Video Super-Resolution", CVPR 2022),
compatible with mmagic's ``RealBasicVSRNet`` (``mmagic/models/editors/real_basicvsr``, Apache-2.0).

Parameter names are mmagic's state-dict keys (``image_cleaning.*``, ``basicvsr.backward_resblocks.*``,
``basicvsr.spynet.basic_module.{l}.basic_module.{i}.conv.*``, ``basicvsr.upsample1.upsample_conv.*`` ...), so the
released generators load strictly once the mmagic container is unwrapped (``generator_ema.`` when present).

Real-world degradations (noise, blur, compression) are exaggerated when they are propagated through time, so the
network first **cleans** every input frame and then runs **BasicVSR** on the cleaned clip:

- *image cleaning*: a residual network (a conv, ``num_cleaning_blocks`` residual blocks, a conv to RGB) whose
  output is added to each frame; it runs up to three times, and stops after a pass whose mean absolute residue
  over the whole clip (all frames, channels and pixels) is below ``dynamic_refine_thres / 255``;
- *BasicVSR* (mmagic's ``BasicVSRNet``, the same network as ``vsrkit.models.basicvsr.BasicVSR`` under mmagic's
  names): bidirectional propagation with SpyNet flow, fusion and x4 upsampling.

Streaming (``spec.passes``): how many times the frames are cleaned is decided over the whole clip, so the engine
first surveys the video (``Survey``: the summed |residue| of cleaning passes 1 and 2 over every frame), decides
once, and then streams BasicVSR exactly in two passes on frames cleaned that many times. The result is the
whole-clip ``forward`` at any block size: mmagic's inference runs the whole clip at once by default
(``--max-seq-len`` unset), and so the published numbers were made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from vsrkit.errors import VsrkitError
from vsrkit.models.family import Family, ModelEntry, Rule, WeightsSource, count_blocks
from vsrkit.models.basicvsr import SPYNET_MIN_SIZE, ConvResidualBlocks, _one_way_flows
from vsrkit.models.layers.common import flow_warp, stack_frames, zeros_frame
from vsrkit.models.layers.spynet import MMagicSpyNet
from vsrkit.models.spec import Block, ModelSpec, Survey, Temporal, TwoPass

SCALE = 4
MAX_CLEANING = 3  # cleaning passes at most (mmagic: "determined empirically")

# mmagic's name for a conv + LeakyReLU followed by residual blocks: the same module and keys (``main.*``) as BasicSR's
ResidualBlocksWithInputConv = ConvResidualBlocks


class PixelShufflePack(nn.Module):
    """A convolution to ``out_channels * scale_factor**2`` channels, then pixel shuffle (mmagic's; key
    ``upsample_conv``)."""

    def __init__(self, in_channels: int, out_channels: int, scale_factor: int, upsample_kernel: int):
        super().__init__()
        self.scale_factor = scale_factor
        self.upsample_conv = nn.Conv2d(in_channels, out_channels * scale_factor**2, upsample_kernel, 1,
                                       (upsample_kernel - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.upsample_conv(x), self.scale_factor)


class BasicVSRNet(nn.Module):
    """mmagic's BasicVSR: bidirectional flow-aligned propagation, x4 (RealBasicVSR's ``basicvsr`` part).

    Args (mmagic's): ``mid_channels`` (64), ``num_blocks`` residual blocks per propagation branch (30),
    ``spynet_pretrained`` a local SpyNet checkpoint. Input ``[b, n, 3, h, w]`` in [0, 1], output
    ``[b, n, 3, 4h, 4w]``. mmagic skips the forward flows of a mirror-extended clip (they equal the backward
    ones reversed); they are always computed here, with the same values.
    """

    def __init__(self, mid_channels: int = 64, num_blocks: int = 30, spynet_pretrained: str | None = None):
        super().__init__()
        self.mid_channels = mid_channels
        self.spynet = MMagicSpyNet(spynet_pretrained)
        self.backward_resblocks = ResidualBlocksWithInputConv(mid_channels + 3, mid_channels, num_blocks)
        self.forward_resblocks = ResidualBlocksWithInputConv(mid_channels + 3, mid_channels, num_blocks)
        self.fusion = nn.Conv2d(mid_channels * 2, mid_channels, 1, 1, 0, bias=True)
        self.upsample1 = PixelShufflePack(mid_channels, mid_channels, 2, upsample_kernel=3)
        self.upsample2 = PixelShufflePack(mid_channels, 64, 2, upsample_kernel=3)
        self.conv_hr = nn.Conv2d(64, 64, 3, 1, 1)
        self.conv_last = nn.Conv2d(64, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def reconstruct(self, fused: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        """Upsampling of one frame's fused features, on top of a bilinear x4 copy of its LR frame."""
        out = self.lrelu(self.upsample1(fused))
        out = self.lrelu(self.upsample2(out))
        out = self.lrelu(self.conv_hr(out))
        out = self.conv_last(out)
        return out.add_(F.interpolate(lr, scale_factor=SCALE, mode="bilinear", align_corners=False))

    def forward(self, lrs: torch.Tensor) -> torch.Tensor:
        if lrs.dim() != 5:
            raise ValueError(f"BasicVSRNet expects [b, n, c, h, w], got shape {tuple(lrs.shape)}")
        whole = Block(0, lrs.shape[1], lrs.shape[1])
        feats, _ = backward_propagation(self, lrs, None, whole)
        out, _ = forward_propagation(self, lrs, feats, None, whole)
        return out


class RealBasicVSR(nn.Module):
    """RealBasicVSR: image cleaning, then BasicVSR, x4 (mmagic's ``RealBasicVSRNet``).

    Args (mmagic's): ``mid_channels`` (64), ``num_propagation_blocks`` residual blocks per propagation branch
    (20), ``num_cleaning_blocks`` residual blocks of the cleaning module (20), ``dynamic_refine_thres``: cleaning
    stops after a pass whose mean |residue| is below this many 255ths (255, the training setting: in effect one
    pass; the released models are tested with 5 and 1.5, see ``RELEASES``), ``spynet_pretrained`` a local SpyNet
    checkpoint, ``is_fix_cleaning`` (the cleaning module is not trained), ``is_sequential_cleaning`` (frames are
    cleaned one at a time: less memory, the same result).

    Input ``[b, n, 3, h, w]`` RGB in [0, 1] (h, w over 32 for SpyNet; mmagic advises at least 64), output
    ``[b, n, 3, 4h, 4w]``, not clamped. The input is not modified.
    """

    def __init__(
        self,
        mid_channels: int = 64,
        num_propagation_blocks: int = 20,
        num_cleaning_blocks: int = 20,
        dynamic_refine_thres: float = 255,
        spynet_pretrained: str | None = None,
        is_fix_cleaning: bool = False,
        is_sequential_cleaning: bool = False,
    ):
        super().__init__()
        self.spec = ModelSpec(
            scale=SCALE,
            temporal=Temporal("bidirectional"),
            min_size=SPYNET_MIN_SIZE,
            passes=TwoPass(realbasicvsr_backward, realbasicvsr_forward, context=1, forward_cost=FORWARD_COST,
                           survey=Survey(measure_residues, decide_cleaning, cost=SURVEY_COST)),
        )
        self.dynamic_refine_thres = dynamic_refine_thres / 255.0
        self.is_sequential_cleaning = is_sequential_cleaning

        self.image_cleaning = nn.Sequential(
            ResidualBlocksWithInputConv(3, mid_channels, num_cleaning_blocks),
            nn.Conv2d(mid_channels, 3, 3, 1, 1, bias=True),
        )
        if is_fix_cleaning:
            self.image_cleaning.requires_grad_(False)

        self.basicvsr = BasicVSRNet(mid_channels, num_propagation_blocks, spynet_pretrained)
        self.basicvsr.spynet.requires_grad_(False)

    def clean_once(self, lqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One cleaning pass over a clip ``[b, n, c, h, w]``: (the cleaned clip, the residues)."""
        b, n, c, h, w = lqs.shape
        if self.is_sequential_cleaning:
            residues = stack_frames([self.image_cleaning(lqs[:, i]) for i in range(n)])
        else:
            residues = self.image_cleaning(lqs.flatten(0, 1)).view(b, n, c, h, w)
        return lqs + residues, residues

    def clean(self, lqs: torch.Tensor) -> torch.Tensor:
        """The cleaned clip: up to ``MAX_CLEANING`` passes, stopping after the first whose mean |residue| over the
        whole clip is below the threshold."""
        if torch.jit.is_tracing():  # an exported graph cannot stop early: all passes, the same one chosen
            cleaned, means = [], []
            for _ in range(MAX_CLEANING):
                lqs, residues = self.clean_once(lqs)
                cleaned.append(lqs)
                means.append(residues.float().abs().mean())
            out = cleaned[-1]
            for k in range(MAX_CLEANING - 2, -1, -1):
                out = torch.where(means[k] < self.dynamic_refine_thres, cleaned[k], out)
            return out
        for _ in range(MAX_CLEANING):
            lqs, residues = self.clean_once(lqs)
            if residues.float().abs().mean() < self.dynamic_refine_thres:
                break
        return lqs

    def forward(self, lqs: torch.Tensor, return_lqs: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The upscaled clip, and with ``return_lqs`` the cleaned LR clip that entered BasicVSR."""
        if lqs.dim() != 5:
            raise ValueError(f"RealBasicVSR expects [b, n, c, h, w], got shape {tuple(lqs.shape)}")
        lqs = self.clean(lqs)
        outputs = self.basicvsr(lqs)
        return (outputs, lqs) if return_lqs else outputs


# ---------------------------------------------------------------------------------------------
# BasicVSR's two propagation passes, resumable at any frame (``Block``: where the block sits in the video; the
# clip holds it with one frame of context on each side). ``BasicVSRNet.forward`` runs them over the whole clip.


def backward_propagation(net: BasicVSRNet, lqs: torch.Tensor, state: torch.Tensor | None,
                         block: Block) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward-time propagation over the block: its features ``[b, n, mid, h, w]`` and the feature of its first
    frame (the state for the block before). ``state``: the feature of the frame after the block (None at the end)."""
    o, n = block.offset, block.size
    seg = lqs[:, o : o + n + int(block.has_next)]  # the block and the frame after it
    flows = _one_way_flows(net.spynet, seg, backward=True)  # frame i -> i + 1
    feat = state if state is not None else zeros_frame(seg[:, 0], net.mid_channels)
    feats: list[torch.Tensor] = [feat] * n
    for i in range(n - 1, -1, -1):
        if i < seg.shape[1] - 1:
            feat = flow_warp(feat, flows[:, i].permute(0, 2, 3, 1))
        feat = net.backward_resblocks(torch.cat([seg[:, i], feat], dim=1))
        feats[i] = feat
    return stack_frames(feats), feat


def forward_propagation(net: BasicVSRNet, lqs: torch.Tensor, backward_feats: torch.Tensor, state: torch.Tensor | None,
                        block: Block) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward-time propagation over the block, fused with its backward features and upsampled: (outputs
    ``[b, n, 3, 4h, 4w]``, the feature of its last frame). ``state``: the feature of the frame before the block."""
    o, n = block.offset, block.size
    off = int(block.has_prev)
    seg = lqs[:, o - off : o + n]  # the frame before the block and the block
    flows = _one_way_flows(net.spynet, seg, backward=False)  # frame i + 1 -> i
    feat = state if state is not None else zeros_frame(seg[:, 0], net.mid_channels)
    outputs = []
    for i in range(n):
        k = i + off
        lr = seg[:, k]
        if k > 0:
            feat = flow_warp(feat, flows[:, k - 1].permute(0, 2, 3, 1))
        feat = net.forward_resblocks(torch.cat([lr, feat], dim=1))
        fused = net.lrelu(net.fusion(torch.cat([backward_feats[:, i], feat], dim=1)))
        outputs.append(net.reconstruct(fused, lr))
    return stack_frames(outputs), feat


# ---------------------------------------------------------------------------------------------
# Streaming adapters the engine uses (declared in the spec; tested equal to ``forward``). The survey measures the
# mean |residue| of cleaning passes 1 and 2 over the whole video (pass 3's is never needed: it is the last); the
# two passes then clean each frame of their block (and its context) that many times, one frame at a time, and run
# BasicVSR's propagation on the cleaned frames. The backward pass hands the cleaned frames on to the forward pass.

# Times over the backward pass's (which cleans its block and context), 64 channels, 20 + 20 blocks, CPU, blocks of 4
# frames at 96x96: forward 1.0 (one cleaning pass) to 0.37 (three); survey 0.78 to 0.31
FORWARD_COST = 0.7
SURVEY_COST = 0.5


def cleaning_passes(means: Sequence[float], thres: float) -> int:
    """How many cleaning passes run, from the whole clip's mean |residue| of passes 1 and 2 (mmagic's loop)."""
    for k, m in enumerate(means[: MAX_CLEANING - 1]):
        if m < thres:
            return k + 1
    return MAX_CLEANING


def measure_residues(model: RealBasicVSR, x: torch.Tensor, region: tuple[int, int, int, int]) -> torch.Tensor:
    """``Survey.measure``: [sum of |residue| of cleaning pass 1, the same of pass 2, values counted] over the frames
    of ``x[b, n, c, h, w]`` inside ``region`` (top, bottom, left, right), one frame at a time."""
    top, bottom, left, right = region
    sums = torch.zeros(3, dtype=torch.float64, device=x.device)
    with torch.no_grad():
        for i in range(x.shape[1]):
            frame = x[:, i]
            for k in range(MAX_CLEANING - 1):
                residue = model.image_cleaning(frame)
                sums[k] += residue[..., top:bottom, left:right].float().abs().sum().double()
                frame = frame + residue
    b, _, c = x.shape[:3]
    sums[2] = b * x.shape[1] * c * (bottom - top) * (right - left)
    return sums


def decide_cleaning(model: RealBasicVSR, sums: torch.Tensor) -> int:
    """``Survey.decide``: the number of cleaning passes, from ``measure_residues`` summed over the whole video."""
    count = float(sums[2])
    return cleaning_passes([float(s) / count for s in sums[: MAX_CLEANING - 1]], model.dynamic_refine_thres)


def clean_frames(model: RealBasicVSR, x: torch.Tensor, times: int) -> torch.Tensor:
    """Every frame of ``x[b, n, c, h, w]`` cleaned ``times`` times, one frame at a time."""
    frames = []
    for i in range(x.shape[1]):
        frame = x[:, i]
        for _ in range(times):
            frame = frame + model.image_cleaning(frame)
        frames.append(frame)
    return stack_frames(frames)


def _cleaning_of(model: RealBasicVSR, x: torch.Tensor, block: Block) -> int:
    """The block's cleaning count: the survey's, or decided from ``x`` itself when it holds the whole video."""
    if block.survey is not None:
        return int(block.survey)
    if block.first == 0 and x.shape[1] == block.total:
        whole = (0, x.shape[-2], 0, x.shape[-1])
        return decide_cleaning(model, measure_residues(model, x, whole))
    raise ValueError("RealBasicVSR's passes need the cleaning decision of the whole video (Block.survey), "
                     "made by the engine's survey (TwoPass.survey)")


def realbasicvsr_backward(model: RealBasicVSR, x: torch.Tensor, state: torch.Tensor | None,
                          block: Block) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``TwoPass.backward``: cleans the block and its context, then BasicVSR's backward propagation; returns
    ((backward features, cleaned frames), state)."""
    lqs = clean_frames(model, x, _cleaning_of(model, x, block))
    feats, state = backward_propagation(model.basicvsr, lqs, state, block)
    return (feats, lqs), state


def realbasicvsr_forward(model: RealBasicVSR, x: torch.Tensor, feats: tuple[torch.Tensor, torch.Tensor],
                         state: torch.Tensor | None, block: Block) -> tuple[torch.Tensor, torch.Tensor]:
    """``TwoPass.forward``: BasicVSR's forward propagation and upsampling on the frames the backward pass cleaned."""
    backward_feats, lqs = feats
    return forward_propagation(model.basicvsr, lqs, backward_feats, state, block)


# ---------------------------------------------------------------------------------------------
# The family: names, recognition, training defaults

_MMAGIC_URL = "https://download.openmmlab.com/mmediting/restorers/real_basicvsr/"
_RELEASED_ARCH = {"mid_channels": 64, "num_propagation_blocks": 20, "num_cleaning_blocks": 20}
_GAN_FILE = "realbasicvsr_c64b20_1x30x8_lr5e-5_150k_reds_20211104-52f77c2c.pth"
_WOGAN_FILE = "realbasicvsr_wogan_c64b20_2x30x8_lr1e-4_300k_reds_20211027-0e2ff207.pth"
_PROTOCOL = (
    "The whole clip at once, as mmagic's video inference runs it by default (--max-seq-len unset): the engine's "
    "survey and two passes give exactly that at any block size. No end padding (a bidirectional model sees every "
    "frame). The container holds generator., generator_ema. and discriminator. keys: generator_ema is used, as "
    "mmagic tests with it (is_use_ema=True). Threshold: the config's comment on dynamic_refine_thres (255 in "
    "training) names the test value. The authors' own inference repo (ckkelvinchan/RealBasicVSR, "
    "configs/realbasicvsr_x4.py) leaves it at 255 (one cleaning pass) with is_sequential_cleaning=True."
)

# name -> what a ``ModelEntry`` needs: class, official kwargs, weights (file, URL, sha256 prefix from the official
# file name: OpenMMLab's publish script names files <name>-<sha256[:8]>.pth), licence, summary, protocol notes
RELEASES: dict[str, dict[str, Any]] = {
    "realbasicvsr": {
        "arch": "RealBasicVSR",
        "kwargs": {},
        "filename": None,
        "url": None,
        "sha256": "",
        "licence": "",
        "summary": "RealBasicVSR x4 architecture (mmagic's defaults: 64 channels, 20 propagation and 20 cleaning "
                   "blocks, threshold 255), random weights",
        "protocol": "",
    },
    "realbasicvsr-x4": {
        "arch": "RealBasicVSR",
        "kwargs": {**_RELEASED_ARCH, "dynamic_refine_thres": 5},
        "filename": _GAN_FILE,
        "url": _MMAGIC_URL + _GAN_FILE,
        "sha256": "52f77c2c",
        "licence": "Apache-2.0 (mmagic)",
        "config": "configs/real_basicvsr/realbasicvsr_c64b20-1x30x8_8xb1-lr5e-5-150k_reds.py",
        "summary": "RealBasicVSR x4, real-world degradations on REDS, GAN + perceptual losses (the released default); "
                   "VideoLQ (Y, no reference): NRQM 6.0477, NIQE 3.7662, PI 3.8593, BRISQUE 29.030",
        "protocol": "dynamic_refine_thres=5 ('change to 5 for test'). " + _PROTOCOL,
    },
    "realbasicvsr-wogan-x4": {
        "arch": "RealBasicVSR",
        "kwargs": {**_RELEASED_ARCH, "dynamic_refine_thres": 1.5},
        "filename": _WOGAN_FILE,
        "url": _MMAGIC_URL + _WOGAN_FILE,
        "sha256": "0e2ff207",
        "licence": "Apache-2.0 (mmagic)",
        "config": "configs/real_basicvsr/realbasicvsr_wogan-c64b20-2x30x8_8xb2-lr1e-4-300k_reds.py",
        "summary": "RealBasicVSR x4 trained with L1 (pixel and cleaning) losses only, no GAN: the GAN model's "
                   "starting point; no published numbers",
        "protocol": "dynamic_refine_thres=1.5 ('change to 1.5 for test'). " + _PROTOCOL,
    },
}

# keys a RealBasicVSR state dict (unwrapped from mmagic's container) always has: ``Rule.needs``
DETECT_NEEDS = ("image_cleaning.0.main.0.weight", "image_cleaning.1.weight", "basicvsr.backward_resblocks.main.0.weight",
                "basicvsr.spynet.basic_module.0.basic_module.0.conv.weight")


def detect_realbasicvsr(state_dict: Mapping[str, torch.Tensor], filename: str | None = None) -> tuple[str, dict] | None:
    """Recognise a RealBasicVSR checkpoint: ("RealBasicVSR", kwargs) with the sizes read from its keys, None when it
    is not one, a VsrkitError naming the key when it is one whose sizes do not fit together. A released file (by
    its official name) gets its test threshold; any other keeps the constructor's (255: one cleaning pass, as the
    authors' inference script runs the released model)."""
    if not all(k in state_dict for k in DETECT_NEEDS):
        return None
    first = state_dict["image_cleaning.0.main.0.weight"]
    mid = int(first.shape[0])
    where = f"{filename}: " if filename else ""
    for key, shape in (("image_cleaning.0.main.0.weight", (mid, 3, 3, 3)), ("image_cleaning.1.weight", (3, mid, 3, 3)),
                       ("basicvsr.backward_resblocks.main.0.weight", (mid, mid + 3, 3, 3)),
                       ("basicvsr.forward_resblocks.main.0.weight", (mid, mid + 3, 3, 3))):
        if key not in state_dict:
            raise VsrkitError(f"{where}a RealBasicVSR checkpoint without {key!r}")
        if tuple(state_dict[key].shape) != shape:
            raise VsrkitError(f"{where}RealBasicVSR key {key!r} has shape {tuple(state_dict[key].shape)}, "
                              f"expected {shape} for {mid} channels")
    kwargs: dict[str, Any] = {
        "mid_channels": mid,
        "num_propagation_blocks": count_blocks(state_dict, "basicvsr.backward_resblocks.main.2."),
        "num_cleaning_blocks": count_blocks(state_dict, "image_cleaning.0.main.2."),
    }
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    for release in RELEASES.values():
        if release["filename"] and name == release["filename"] and all(kwargs[k] == v for k, v in _RELEASED_ARCH.items()):
            kwargs["dynamic_refine_thres"] = release["kwargs"]["dynamic_refine_thres"]
    return "RealBasicVSR", kwargs


ENTRIES: tuple[ModelEntry, ...] = tuple(
    ModelEntry(
        name,
        r["arch"],
        dict(r["kwargs"]),
        WeightsSource(filename=r["filename"], sha256=r["sha256"], url=r["url"], licence=r["licence"])
        if r["filename"] else None,
        summary=r["summary"],
    )
    for name, r in RELEASES.items()
)

FAMILY = Family(
    "realbasicvsr",
    ENTRIES,
    rules=(Rule(DETECT_NEEDS, detect_realbasicvsr),),
    # mmagic's RealBasicVSR configs train SpyNet with the rest at one rate and freeze nothing by default: no defaults
)
