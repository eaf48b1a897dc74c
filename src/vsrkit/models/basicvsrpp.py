"""BasicVSR++ (Chan et al., "BasicVSR++: Improving Video Super-Resolution with Enhanced Propagation and
Alignment", CVPR 2022), compatible with mmagic's ``BasicVSRPlusPlusNet``.

Constructor arguments and parameter names are mmagic's, so the released checkpoints (mmagic's container
``{'state_dict': {'generator.<key>': ...}}``, unwrapped by ``vsrkit.hub.checkpoint``) load strictly.

The paper's two ideas, over per-frame features from a residual trunk:

- **second-order grid propagation**: four propagation branches in alternating directions (``backward_1``,
  ``forward_1``, ``backward_2``, ``forward_2``). Each branch sees the frame's own features and those of every
  earlier branch, and its recurrent state is aligned from the two previous time steps (``t -/+ 1`` and
  ``t -/+ 2``), not only the last;
- **flow-guided deformable alignment** (``SecondOrderDeformableAlignment``): SpyNet flow pre-aligns the
  propagated features; a small network then predicts deformable-convolution offsets as residues around that
  flow (at most ``max_residue_magnitude`` pixels, the paper's Eq. 6) and modulation masks, and a modulated
  deformable convolution (DCNv2) aligns the state of ``t -/+ 1`` (first 8 deform groups) and ``t -/+ 2``
  (last 8) together.

The features of the five streams are fused per frame and upsampled x4 by two pixel shuffles on top of a
bilinear x4 copy of the input frame. With ``is_low_res_input=False`` (the deblurring, denoising and
decompression models) two strided convolutions bring the frames to a quarter size first, flows are computed on
a bicubic quarter-size copy, and the output has the input's size, added to the input.

Time: the whole clip at once (``Temporal("sequence")``). The four branches alternate direction, so the two
resumable passes of BasicVSR (``Temporal("bidirectional")``) do not stream it exactly; the engine runs it
over overlapping temporal chunks, keeping each chunk's centre, in memory bounded by the chunk, not the video.
That is an approximation: a trained recurrent state remembers the whole clip, and chunks of 24 frames with
``CHUNK_OVERLAP`` = 12 frames of context on each side agreed with the whole clip to about 38 dB PSNR (worst frame
about 32 dB) for the trained BasicVSR, the nearest trained relative at hand (``benchmarks/bench_basicvsrpp_chunks.py``;
no trained BasicVSR++ weights were available to measure). ``--chunk`` at least the clip's length runs it
exactly as one sequence, as the published numbers were made.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from vsrkit.errors import VsrkitError
from vsrkit.models.basicvsr import ConvResidualBlocks
from vsrkit.models.family import Family, ModelEntry, Rule, WeightsSource, count_blocks
from vsrkit.models.layers.common import flow_warp, stack_frames, zeros_frame
from vsrkit.models.layers.dcn import ModulatedDeformConv2d, deform_conv2d
from vsrkit.models.layers.spynet import MMagicSpyNet
from vsrkit.models.spec import ModelSpec, Protocol, Temporal

__all__ = ["BasicVSRPlusPlus", "SecondOrderDeformableAlignment", "PixelShufflePack", "RELEASES"]

BRANCHES = ("backward_1", "forward_1", "backward_2", "forward_2")
DEFORM_GROUPS = 16
# mmagic asserts that the frames SpyNet sees are at least 64x64: the input itself at low resolution, a quarter
# of it otherwise (256x256 frames)
LR_MIN_SIZE = 64
# frames of context on each side of a temporal chunk: the module docstring and benchmarks/bench_basicvsrpp_chunks.py
CHUNK_OVERLAP = 12


class ResidualBlocksWithInputConv(ConvResidualBlocks):
    """A 3x3 convolution and LeakyReLU(0.1) to ``out_channels``, then ``num_blocks`` residual blocks
    (mmagic's ``ResidualBlocksWithInputConv``; keys ``main.0``, ``main.2.{i}.conv1/conv2``)."""

    def __init__(self, in_channels: int, out_channels: int = 64, num_blocks: int = 30):
        super().__init__(in_channels, out_channels, num_blocks)


class PixelShufflePack(nn.Module):
    """A convolution to ``scale_factor ** 2`` times the channels, then a pixel shuffle (key ``upsample_conv``)."""

    def __init__(self, in_channels: int, out_channels: int, scale_factor: int, upsample_kernel: int):
        super().__init__()
        self.scale_factor = scale_factor
        self.upsample_conv = nn.Conv2d(in_channels, out_channels * scale_factor * scale_factor, upsample_kernel,
                                       padding=(upsample_kernel - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.upsample_conv(x), self.scale_factor)


class SecondOrderDeformableAlignment(ModulatedDeformConv2d):
    """Flow-guided deformable alignment of the states of the two previous time steps.

    ``x``: the two states to align, ``[b, 2 * c, h, w]`` (``t -/+ 1`` then ``t -/+ 2``), not yet warped;
    ``extra_feat``: the conditions, ``[b, 3 * c, h, w]`` (the state of ``t -/+ 1`` warped by ``flow_1``, the
    current frame's features, the state of ``t -/+ 2`` warped by ``flow_2``); ``flow_1``/``flow_2``: the flows
    from ``t`` to those steps, ``[b, 2, h, w]`` (x, y).

    ``conv_offset`` predicts per deform group and kernel tap an offset residue (bounded by
    ``max_residue_magnitude`` with tanh) and a mask logit; the offsets are those residues plus the flow, as
    (dy, dx): the first half of the deform groups (sampling the first state) around ``flow_1``, the second half
    around ``flow_2``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        deform_groups: int = 1,
        bias: bool = True,
        max_residue_magnitude: float = 10,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         deformable_groups=deform_groups, bias=bias)
        self.max_residue_magnitude = max_residue_magnitude
        taps = self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset = nn.Sequential(
            nn.Conv2d(3 * out_channels + 4, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(out_channels, 3 * taps * deform_groups, 3, 1, 1),
        )
        with torch.no_grad():  # the official initialisation: no residue, masks 0.5
            self.conv_offset[-1].weight.zero_()
            self.conv_offset[-1].bias.zero_()

    def offset_mask(self, extra_feat: torch.Tensor, flow_1: torch.Tensor,
                    flow_2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(offset ``[b, 2 * dg * taps, h, w]`` in (dy, dx) pairs per group and tap, mask ``[b, dg * taps, h, w]``)."""
        out = self.conv_offset(torch.cat([extra_feat, flow_1.to(extra_feat.dtype), flow_2.to(extra_feat.dtype)], 1))
        o1, o2, mask = torch.chunk(out, 3, dim=1)
        # offsets in float32 also under autocast: the flow (up to tens of pixels) keeps its sub-pixel part
        with torch.autocast(device_type=out.device.type, enabled=False):
            residue = self.max_residue_magnitude * torch.tanh(torch.cat((o1, o2), dim=1).float())
            r1, r2 = torch.chunk(residue, 2, dim=1)
            pairs = r1.shape[1] // 2  # (dy, dx) pairs in each half
            # a flow is (x, y); the offsets are (dy, dx): flipped, and repeated for every group and tap
            offset = torch.cat([r1 + flow_1.float().flip(1).repeat(1, pairs, 1, 1),
                                r2 + flow_2.float().flip(1).repeat(1, pairs, 1, 1)], dim=1)
            mask = torch.sigmoid(mask.float())
        return offset, mask

    def forward(self, x: torch.Tensor, extra_feat: torch.Tensor, flow_1: torch.Tensor,  # type: ignore[override]
                flow_2: torch.Tensor) -> torch.Tensor:
        offset, mask = self.offset_mask(extra_feat, flow_1, flow_2)
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask)


class _Store:
    """Where propagated features wait: on the device, or in CPU memory for long clips on a GPU (mmagic's
    ``cpu_cache``: the same numbers, less device memory, slower)."""

    def __init__(self, device: torch.device, offload: bool):
        self.device, self.offload = device, offload

    def put(self, x: torch.Tensor) -> torch.Tensor:
        return x.cpu() if self.offload else x

    def get(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device) if self.offload else x


class BasicVSRPlusPlus(nn.Module):
    """BasicVSR++: second-order grid propagation with flow-guided deformable alignment.

    Args (mmagic's): ``mid_channels`` feature channels (64), ``num_blocks`` residual blocks per propagation
    branch (7), ``max_residue_magnitude`` bound of the offset residues in pixels (10), ``is_low_res_input``
    (True: x4 super-resolution; False: same-size restoration), ``spynet_pretrained`` optional SpyNet weights
    to load, ``cpu_cache_length`` clips longer than this keep their features in CPU memory when running on a
    GPU (100).

    Input ``[b, t, 3, h, w]`` RGB in [0, 1]; output ``[b, t, 3, 4h, 4w]`` (or ``[b, t, 3, h, w]``), not
    clamped. Frames must be at least 64x64 (256x256 for high-resolution input, whose sides must be multiples
    of 4); the engine pads smaller frames.
    """

    def __init__(
        self,
        mid_channels: int = 64,
        num_blocks: int = 7,
        max_residue_magnitude: float = 10,
        is_low_res_input: bool = True,
        spynet_pretrained: str | None = None,
        cpu_cache_length: int = 100,
    ):
        super().__init__()
        if mid_channels < 1 or (2 * mid_channels) % DEFORM_GROUPS:
            raise ValueError(f"BasicVSRPlusPlus: mid_channels {mid_channels} must be a multiple of "
                             f"{DEFORM_GROUPS // 2} ({DEFORM_GROUPS} deform groups over the two aligned states)")
        self.mid_channels = mid_channels
        self.is_low_res_input = is_low_res_input
        self.cpu_cache_length = cpu_cache_length
        self.spec = ModelSpec(
            scale=4 if is_low_res_input else 1,
            temporal=Temporal("sequence"),
            size_multiple=1 if is_low_res_input else 4,  # two stride-2 convolutions meet flows at a quarter size
            min_size=LR_MIN_SIZE if is_low_res_input else 4 * LR_MIN_SIZE,
            protocol=Protocol(clip_overlap=CHUNK_OVERLAP),
        )

        self.spynet = MMagicSpyNet(spynet_pretrained)

        if is_low_res_input:
            self.feat_extract = ResidualBlocksWithInputConv(3, mid_channels, 5)
        else:
            self.feat_extract = nn.Sequential(
                nn.Conv2d(3, mid_channels, 3, 2, 1),
                nn.LeakyReLU(negative_slope=0.1, inplace=True),
                nn.Conv2d(mid_channels, mid_channels, 3, 2, 1),
                nn.LeakyReLU(negative_slope=0.1, inplace=True),
                ResidualBlocksWithInputConv(mid_channels, mid_channels, 5),
            )

        self.deform_align = nn.ModuleDict()
        self.backbone = nn.ModuleDict()
        for i, branch in enumerate(BRANCHES):
            self.deform_align[branch] = SecondOrderDeformableAlignment(
                2 * mid_channels, mid_channels, 3, padding=1, deform_groups=DEFORM_GROUPS,
                max_residue_magnitude=max_residue_magnitude,
            )
            # the frame's features, every earlier branch's, and the aligned state
            self.backbone[branch] = ResidualBlocksWithInputConv((2 + i) * mid_channels, mid_channels, num_blocks)

        self.reconstruction = ResidualBlocksWithInputConv(5 * mid_channels, mid_channels, 5)
        self.upsample1 = PixelShufflePack(mid_channels, mid_channels, 2, upsample_kernel=3)
        self.upsample2 = PixelShufflePack(mid_channels, 64, 2, upsample_kernel=3)
        self.conv_hr = nn.Conv2d(64, 64, 3, 1, 1)
        self.conv_last = nn.Conv2d(64, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    # ---- optical flow

    @staticmethod
    def is_mirror_extended(x: torch.Tensor) -> bool:
        """Whether the clip is followed by itself reversed (frame i equals frame t - 1 - i): then the forward
        flows are the backward ones reversed and are not computed again."""
        t = x.shape[1]
        if torch.jit.is_tracing() or t % 2:
            return False
        return bool(torch.equal(x[:, : t // 2], x[:, t // 2:].flip(1)))

    def compute_flow(self, x: torch.Tensor, mirrored: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(flows_forward, flows_backward)`` of ``x[b, t, 3, h, w]``, each ``[b, t - 1, 2, h, w]``, float32.

        ``flows_backward[:, i]``: from frame i to frame i + 1 (the backward branches bring the state of i + 1 to
        i); ``flows_forward[:, i]``: from frame i + 1 to frame i. ``mirrored``: the clip is mirror-extended, so the
        forward flows are the backward ones reversed.
        """
        b, t, c, h, w = x.shape
        if t < 2:
            empty = x.new_zeros(b, 0, 2, h, w, dtype=torch.float32)
            return empty, empty
        earlier = x[:, :-1].reshape(-1, c, h, w)
        later = x[:, 1:].reshape(-1, c, h, w)
        backward = self.spynet(earlier, later).float().view(b, t - 1, 2, h, w)
        if mirrored:
            forward = backward.flip(1)
        else:
            forward = self.spynet(later, earlier).float().view(b, t - 1, 2, h, w)
        return forward, backward

    # ---- propagation

    def propagate(self, feats: dict[str, list[torch.Tensor]], flows: torch.Tensor, branch: str,
                  store: _Store) -> None:
        """Run one propagation branch over the clip; appends its features (in frame order) as ``feats[branch]``.

        At each frame the state of the previous step (``t -/+ 1`` in the branch's direction) and the one
        before (``t -/+ 2``) are aligned to the frame by ``deform_align[branch]``, guided by the flow to
        ``t -/+ 1`` and that flow composed with the next one; the residual trunk ``backbone[branch]`` then
        refines the aligned state from the frame's features and those of the earlier branches.
        """
        t = len(feats["spatial"])
        frames = range(t - 1, -1, -1) if branch.startswith("backward") else range(t)
        earlier = [k for k in feats if k not in ("spatial", branch)]
        out: list[torch.Tensor] = []
        align = self.deform_align[branch]
        state = None
        for step, idx in enumerate(frames):
            current = store.get(feats["spatial"][idx])
            if state is None:
                state = zeros_frame(current, self.mid_channels)
            if step > 0:
                # the flow from this frame to the previous step's: flows_backward[idx] (to idx + 1) going
                # backward, flows_forward[idx - 1] (to idx - 1) going forward
                flow_n1 = store.get(flows[:, idx if branch.startswith("backward") else idx - 1])
                cond_n1 = flow_warp(state, flow_n1.permute(0, 2, 3, 1))
                if step > 1:
                    feat_n2 = store.get(out[-2])
                    flow_n2 = store.get(flows[:, idx + 1 if branch.startswith("backward") else idx - 2])
                    # to the step before: this frame's flow, then the previous step's flow from where it lands
                    flow_n2 = flow_n1 + flow_warp(flow_n2, flow_n1.permute(0, 2, 3, 1))
                    cond_n2 = flow_warp(feat_n2, flow_n2.permute(0, 2, 3, 1))
                else:
                    feat_n2 = zeros_frame(state, self.mid_channels)
                    flow_n2 = torch.zeros_like(flow_n1)
                    cond_n2 = zeros_frame(state, self.mid_channels)
                cond = torch.cat([cond_n1, current, cond_n2], dim=1)
                state = align(torch.cat([state, feat_n2], dim=1), cond, flow_n1, flow_n2)
            inputs = [current] + [store.get(feats[k][idx]) for k in earlier] + [state]
            state = state + self.backbone[branch](torch.cat(inputs, dim=1))
            out.append(store.put(state))
        feats[branch] = out[::-1] if branch.startswith("backward") else out

    # ---- reconstruction

    def upsample(self, x: torch.Tensor, feats: dict[str, list[torch.Tensor]], store: _Store) -> torch.Tensor:
        """Fuse the five feature streams of each frame and upsample them, plus the frame (bilinear x4 of it at
        low resolution, the frame itself otherwise)."""
        outputs = []
        for i in range(x.shape[1]):
            hr = torch.cat([store.get(feats[k][i]) for k in feats], dim=1)
            hr = self.reconstruction(hr)
            hr = self.lrelu(self.upsample1(hr))
            hr = self.lrelu(self.upsample2(hr))
            hr = self.lrelu(self.conv_hr(hr))
            hr = self.conv_last(hr)
            if self.is_low_res_input:
                hr = hr + F.interpolate(x[:, i], scale_factor=4, mode="bilinear", align_corners=False)
            else:
                hr = hr + x[:, i]
            outputs.append(store.put(hr))
        return stack_frames(outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x[b, t, 3, h, w]`` -> ``[b, t, 3, 4h, 4w]`` (``[b, t, 3, h, w]`` for high-resolution input)."""
        if x.dim() != 5:
            raise ValueError(f"BasicVSRPlusPlus expects [b, t, c, h, w], got shape {tuple(x.shape)}")
        b, t, c, h, w = x.shape
        if not self.is_low_res_input and (h % 4 or w % 4):
            raise ValueError(f"BasicVSRPlusPlus (high-resolution input) needs sides that are multiples of 4, "
                             f"got {h}x{w}")
        store = _Store(x.device, x.is_cuda and t > self.cpu_cache_length)

        if self.is_low_res_input:
            lr = x
        else:
            lr = F.interpolate(x.flatten(0, 1), scale_factor=0.25, mode="bicubic")
            lr = lr.view(b, t, c, h // 4, w // 4)

        feats: dict[str, list[torch.Tensor]] = {}
        if store.offload:
            feats["spatial"] = [store.put(self.feat_extract(x[:, i])) for i in range(t)]
        else:
            spatial = self.feat_extract(x.flatten(0, 1))
            spatial = spatial.view(b, t, *spatial.shape[1:])
            feats["spatial"] = [spatial[:, i] for i in range(t)]

        flows_forward, flows_backward = self.compute_flow(lr, self.is_mirror_extended(x))
        flows_forward, flows_backward = store.put(flows_forward), store.put(flows_backward)
        for branch in BRANCHES:
            flows = flows_backward if branch.startswith("backward") else flows_forward
            self.propagate(feats, flows, branch, store)

        return self.upsample(x, feats, store)  # in CPU memory when offloaded, as mmagic returns it


# The released checkpoints, as data for the family table (mmagic's configs/basicvsr_pp metafile.yml and README; the
# deblurring and denoising models from the official repository ckkelvinchan/BasicVSR_PlusPlus, whose configs give
# their constructor arguments). ``sha256``: the 8-hex-digit prefix in the official file name. ``protocol``: the
# ``Protocol`` of the published numbers (mmagic tests each clip as one sequence: ``clip`` 100 covers REDS4's
# 100-frame clips and the shorter Vid4, UDM10 and Vimeo-90K-T ones). ``published``: the README's numbers.
# ``eval``: how they were scored, for the README's commands.

_URL = "https://download.openmmlab.com/mmediting/restorers/basicvsr_plusplus/"
_SR = {"mid_channels": 64, "num_blocks": 7, "is_low_res_input": True}
_NTIRE = {"mid_channels": 128, "num_blocks": 25}
_RESTORE = {"mid_channels": 64, "num_blocks": 15, "is_low_res_input": False}


def _release(file: str, kwargs: dict, summary: str, protocol: dict, published: dict, eval_: str, note: str = "") -> dict:
    return {
        "arch": "BasicVSRPlusPlus",
        "kwargs": dict(kwargs),
        "file": file,
        "url": _URL + file,
        "sha256": file.rsplit("-", 1)[1].removesuffix(".pth"),
        "licence": "Apache-2.0",
        "summary": summary,
        "protocol": protocol,
        "published": published,
        "eval": eval_,
        "note": note,
    }


RELEASES = {
    "basicvsrpp-reds4": _release(
        "basicvsr_plusplus_c64n7_8x1_600k_reds4_20210217-db622b2f.pth", _SR,
        "BasicVSR++ x4 trained on REDS (bicubic)",
        {"clip": 100},
        {"REDS4 BIx4 PSNR RGB": 32.3855, "REDS4 BIx4 SSIM RGB": 0.9069, "Vimeo-90K-T BIx4 PSNR Y": 36.4445,
         "Vid4 BIx4 PSNR Y": 27.7674, "UDM10 BDx4 PSNR Y": 34.6868, "Vimeo-90K-T BDx4 PSNR Y": 34.0372,
         "Vid4 BDx4 PSNR Y": 24.6209},
        "REDS4: RGB, crop 0, all 100 frames of clips 000 011 015 020, each clip one sequence (protocol reds4)",
    ),
    "basicvsrpp-vimeo-bi": _release(
        "basicvsr_plusplus_c64n7_8x1_300k_vimeo90k_bi_20210305-4ef437e2.pth", _SR,
        "BasicVSR++ x4 trained on Vimeo-90K, bicubic downsampling",
        {"clip": 100},
        {"REDS4 BIx4 PSNR RGB": 31.0126, "Vimeo-90K-T BIx4 PSNR Y": 37.7864, "Vid4 BIx4 PSNR Y": 27.7882,
         "Vid4 BIx4 SSIM Y": 0.8401, "UDM10 BDx4 PSNR Y": 33.1211, "Vimeo-90K-T BDx4 PSNR Y": 33.8972,
         "Vid4 BDx4 PSNR Y": 23.6086},
        "Vid4 BIx4: Y (BT.601), crop 0, every frame, each clip one sequence (protocol vid4)",
    ),
    "basicvsrpp-vimeo-bd": _release(
        "basicvsr_plusplus_c64n7_8x1_300k_vimeo90k_bd_20210305-ab315ab1.pth", _SR,
        "BasicVSR++ x4 trained on Vimeo-90K, blur + downsampling",
        {"clip": 100},
        {"REDS4 BIx4 PSNR RGB": 29.2041, "Vimeo-90K-T BIx4 PSNR Y": 34.7248, "Vid4 BIx4 PSNR Y": 26.4377,
         "UDM10 BDx4 PSNR Y": 40.7216, "Vimeo-90K-T BDx4 PSNR Y": 38.2054, "Vid4 BDx4 PSNR Y": 29.04,
         "Vid4 BDx4 SSIM Y": 0.8753},
        "Vid4 BDx4: Y (BT.601), crop 0, every frame, each clip one sequence (protocol vid4, --degradation bd)",
    ),
    "basicvsrpp-ntire-vsr": _release(
        "basicvsr_plusplus_c128n25_ntire_vsr_20210311-1ff35292.pth", dict(_NTIRE, is_low_res_input=True),
        "BasicVSR++ x4, NTIRE 2021 video super-resolution entry (128 features, 25 blocks, REDS)",
        {"clip": 100},
        {},
        "REDS official validation clips, RGB, crop 0, whole 100-frame clips",
        "no published numbers in mmagic; its test config mirrors each clip (the clip then itself reversed) and "
        "averages an 8-fold flip/transpose self-ensemble, which vsrkit does not do",
    ),
    "basicvsrpp-ntire-decompress-t1": _release(
        "basicvsr_plusplus_c128n25_ntire_decompress_track1_20210223-7b2eba02.pth",
        dict(_NTIRE, is_low_res_input=False),
        "BasicVSR++ compressed-video enhancement, NTIRE 2021 track 1 (fidelity, H.265 fixed QP)",
        {},
        {},
        "RGB, crop 0, every frame, each clip one sequence",
        "no published numbers in mmagic; its test config averages an 8-fold flip/transpose self-ensemble",
    ),
    "basicvsrpp-ntire-decompress-t2": _release(
        "basicvsr_plusplus_c128n25_ntire_decompress_track2_20210314-eeae05e6.pth",
        dict(_NTIRE, is_low_res_input=False),
        "BasicVSR++ compressed-video enhancement, NTIRE 2021 track 2 (perceptual, H.265 fixed QP)",
        {},
        {},
        "RGB, crop 0, every frame, each clip one sequence",
        "no published numbers in mmagic; its test config averages an 8-fold flip/transpose self-ensemble",
    ),
    "basicvsrpp-ntire-decompress-t3": _release(
        "basicvsr_plusplus_c128n25_ntire_decompress_track3_20210304-6daf4a40.pth",
        dict(_NTIRE, is_low_res_input=False),
        "BasicVSR++ compressed-video enhancement, NTIRE 2021 track 3 (fidelity, H.265 fixed bit rate)",
        {},
        {},
        "RGB, crop 0, every frame, each clip one sequence",
        "no published numbers in mmagic; its test config averages an 8-fold flip/transpose self-ensemble",
    ),
    "basicvsrpp-deblur-dvd": _release(
        "basicvsr_plusplus_deblur_dvd-ecd08b7f.pth", _RESTORE,
        "BasicVSR++ video deblurring trained on DVD (same-size output)",
        {},
        {},
        "DVD test set, RGB, crop 0, every frame, each clip one sequence",
        "not in mmagic's metafile: configs/basicvsr_plusplus_deblur_dvd.py of ckkelvinchan/BasicVSR_PlusPlus gives "
        "the arguments; the URL follows the other releases' place and is not confirmed by an official listing",
    ),
    "basicvsrpp-deblur-gopro": _release(
        "basicvsr_plusplus_deblur_gopro-3c5bb9b5.pth", _RESTORE,
        "BasicVSR++ video deblurring trained on GoPro (same-size output)",
        {},
        {},
        "GoPro test set, RGB, crop 0, every frame, each clip one sequence",
        "not in mmagic's metafile: configs/basicvsr_plusplus_deblur_gopro.py of ckkelvinchan/BasicVSR_PlusPlus "
        "gives the arguments; the URL follows the other releases' place and is not confirmed by an official listing",
    ),
    "basicvsrpp-denoise": _release(
        "basicvsr_plusplus_denoise-28f6920c.pth", _RESTORE,
        "BasicVSR++ video denoising, Gaussian noise sigma 0-50 on 0-255 (DAVIS; same-size output)",
        {},
        {},
        "Set8 / DAVIS test, sigma 50 in the official test config, RGB, crop 0, every frame, each clip one sequence",
        "not in mmagic's metafile: configs/basicvsr_plusplus_denoise.py of ckkelvinchan/BasicVSR_PlusPlus gives "
        "the arguments; the URL follows the other releases' place and is not confirmed by an official listing",
    ),
}


def detect_basicvsrpp(state_dict: Mapping[str, torch.Tensor], filename: str | None = None) -> tuple[str, dict] | None:
    """Recognise an mmagic BasicVSR++ checkpoint (after the container is unwrapped): ``mid_channels`` from the first
    propagation branch, ``num_blocks`` from its residual blocks, and the input: a low-resolution model extracts
    features with residual blocks (``feat_extract.main``), a same-size restoration model with two strided
    convolutions first (``feat_extract.0``, ``feat_extract.2``, ``feat_extract.4.main``)."""
    first = state_dict.get("backbone.backward_1.main.0.weight")
    if first is None or "deform_align.backward_1.conv_offset.0.weight" not in state_dict:
        return None
    mid = int(first.shape[0])
    if "feat_extract.main.0.weight" in state_dict:
        low_res = True
    elif "feat_extract.0.weight" in state_dict and "feat_extract.4.main.0.weight" in state_dict:
        low_res = False
    else:
        raise VsrkitError(f"{filename or 'checkpoint'}: a BasicVSR++ checkpoint whose feat_extract is neither the "
                          "low-resolution nor the strided variant")
    blocks = count_blocks(state_dict, "backbone.backward_1.main.2.")
    for branch in ("forward_1", "backward_2", "forward_2"):
        if count_blocks(state_dict, f"backbone.{branch}.main.2.") != blocks:
            raise VsrkitError(f"{filename or 'checkpoint'}: BasicVSR++ branch {branch} has another number of blocks "
                              f"than backward_1 ({blocks}): cannot tell num_blocks")
    return "BasicVSRPlusPlus", {"mid_channels": mid, "num_blocks": blocks, "is_low_res_input": low_res}


def _entry(name: str, r: dict) -> ModelEntry:
    clip = r["protocol"].get("clip")
    return ModelEntry(
        name,
        r["arch"],
        dict(r["kwargs"]),
        WeightsSource(filename=r["file"], sha256=r["sha256"], url=r["url"], licence=r["licence"]),
        summary=r["summary"] + (f"; {r['note']}" if r["note"] else ""),
        protocol=Protocol(clip=clip, clip_overlap=CHUNK_OVERLAP) if clip else None,
    )


ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry("basicvsrpp", "BasicVSRPlusPlus", {},
               summary="BasicVSR++ x4, mmagic's defaults (64 features, 7 blocks), random weights"),
    *(_entry(name, r) for name, r in RELEASES.items()),
)

FAMILY = Family(
    "basicvsrpp",
    ENTRIES,
    rules=(Rule(("backbone.backward_1.main.0.weight", "deform_align.backward_1.conv_offset.0.weight"),
                detect_basicvsrpp),),
    # mmagic's BasicVSR++ configs: SpyNet at 1/4 of the rate (paramwise_cfg spynet lr_mult 0.25) and frozen for the
    # first fix_iter iterations (how long: the recipe's freeze.until)
    training={"optim": {"lr_mul": {"spynet": 0.25}}, "freeze": {"keys": ["spynet"]}},
)
