"""EDVR: Video Restoration with Enhanced Deformable Convolutional Networks (Wang et al., CVPRW 2019).

A window model: ``num_frame`` low-resolution frames in, the centre frame out at x4 (or, with ``hr_in``,
HR-sized blurry frames in and the restored centre frame out at x1). Parameter names are BasicSR's
(``basicsr/archs/edvr_arch.py``), so BasicSR checkpoints (``{'params': ...}``, including the released
``EDVR_*_official-*.pth`` files, which BasicSR converted to these names) load strictly. Checkpoints of the
original xinntao/EDVR code (``pcd_align.L3_offset_conv1``, ``tsa_fusion.tAtt_1``, ``recon_trunk``...) are
renamed by :func:`convert_state_dict`.

Stages, named as in the paper and the official code: per-frame feature extraction (``conv_first`` or
``predeblur`` + ``conv_1x1``, ``feature_extraction``) and a three-level pyramid (``conv_l2_*``,
``conv_l3_*``); ``pcd_align`` (Pyramid, Cascading and Deformable alignment of every frame to the centre
frame); ``fusion`` (TSA: temporal and spatial attention, or a 1x1 convolution without TSA);
``reconstruction``; x4 pixel-shuffle upsampling; plus the bilinearly upsampled centre frame.

Frames beyond the ends of a video: BasicSR tests every released EDVR SR model (REDS4, Vid4, Vimeo-90K)
with ``padding: reflection_circle`` (``generate_frame_indices``), and the deblurring models (those with
``with_predeblur``) with ``padding: replicate``; ``end_padding=None`` picks the same.

``forward_sliding`` runs a whole run of windows: each frame's features, pyramid and frame-only halves of
the PCD offset convolutions are computed once and reused by every window (the official code recomputes
them for each of the ``num_frame`` windows a frame appears in).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from vsrkit.errors import VsrkitError
from vsrkit.models.family import Family, ModelEntry, Rule, WeightsSource, count_blocks, gdrive_url
from vsrkit.models.layers.common import ResidualBlockNoBN, frames_to_channels, make_layer, stack_frames
from vsrkit.models.layers.dcn import DCNv2Pack
from vsrkit.models.spec import ModelSpec, Protocol, Temporal

__all__ = ["EDVR", "PCDAlignment", "TSAFusion", "PredeblurModule", "forward_sliding", "upsample_in_strips"]


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1, inplace=True)


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class PCDAlignment(nn.Module):
    """Pyramid, Cascading and Deformable alignment of neighbour features to reference features.

    Pyramid levels ``l3`` (1/4 size) to ``l1`` (full size): offset features from
    ``cat(neighbour, reference)`` refined with the x2-upsampled (and doubled) offsets of the coarser level,
    a ``DCNv2Pack`` on the neighbour, merged with the upsampled coarser aligned features (``feat_conv``);
    then one cascading deformable convolution (``cas_*``) against the full-size reference.
    """

    def __init__(self, num_feat: int = 64, deformable_groups: int = 8):
        super().__init__()
        self.offset_conv1 = nn.ModuleDict()
        self.offset_conv2 = nn.ModuleDict()
        self.offset_conv3 = nn.ModuleDict()
        self.dcn_pack = nn.ModuleDict()
        self.feat_conv = nn.ModuleDict()
        for i in range(3, 0, -1):
            level = f"l{i}"
            self.offset_conv1[level] = nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1)
            if i == 3:
                self.offset_conv2[level] = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            else:
                self.offset_conv2[level] = nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1)
                self.offset_conv3[level] = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.dcn_pack[level] = DCNv2Pack(num_feat, num_feat, 3, padding=1, deformable_groups=deformable_groups)
            if i < 3:
                self.feat_conv[level] = nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1)
        self.cas_offset_conv1 = nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1)
        self.cas_offset_conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.cas_dcnpack = DCNv2Pack(num_feat, num_feat, 3, padding=1, deformable_groups=deformable_groups)
        self.num_feat = num_feat

    def forward(self, nbr_feat_l: list[torch.Tensor], ref_feat_l: list[torch.Tensor]) -> torch.Tensor:
        """Align ``nbr_feat_l`` = [L1, L2, L3] features ``[b, c, h, w]`` to ``ref_feat_l``; returns ``[b, c, h, w]``."""
        pre = [self.offset_conv1[f"l{i}"](torch.cat([nbr_feat_l[i - 1], ref_feat_l[i - 1]], 1)) for i in (1, 2, 3)]
        return self.align(nbr_feat_l, pre, ref_feat_l[0])

    # --- the same computation split into per-frame and per-pair parts (forward_sliding) ---
    def _half(self, conv: nn.Conv2d, x: torch.Tensor, second: bool) -> torch.Tensor:
        c = self.num_feat
        w = conv.weight[:, c:] if second else conv.weight[:, :c]
        return F.conv2d(x, w, conv.bias if second else None, 1, 1)

    def nbr_terms(self, feat_l: list[torch.Tensor]) -> list[torch.Tensor]:
        """Neighbour halves of ``offset_conv1`` per level. ``offset_conv1`` is linear in ``cat(nbr, ref)``,
        so it equals nbr_terms(nbr) + ref_terms(ref): each frame's parts are computed once (forward_sliding)."""
        return [self._half(self.offset_conv1[f"l{i}"], feat_l[i - 1], False) for i in (1, 2, 3)]

    def ref_terms(self, feat_l: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Reference halves (with bias) of ``offset_conv1`` per level, and of ``cas_offset_conv1`` on L1."""
        ref = [self._half(self.offset_conv1[f"l{i}"], feat_l[i - 1], True) for i in (1, 2, 3)]
        return ref, self._half(self.cas_offset_conv1, feat_l[0], True)

    def align(
        self,
        nbr_feat_l: list[torch.Tensor],
        offset_pre_l: list[torch.Tensor],
        ref_l1: torch.Tensor,
        cas_ref: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """PCD from the pre-activation ``offset_conv1`` outputs of each level (L1, L2, L3).

        ``cas_ref``: the reference half (with bias) of ``cas_offset_conv1`` applied to ``ref_l1``, if precomputed.
        """
        upsampled_offset = upsampled_feat = None
        feat = None
        for i in (3, 2, 1):
            level = f"l{i}"
            offset = _lrelu(offset_pre_l[i - 1])
            if i == 3:
                offset = _lrelu(self.offset_conv2[level](offset))
            else:
                offset = _lrelu(self.offset_conv2[level](torch.cat([offset, upsampled_offset], 1)))
                offset = _lrelu(self.offset_conv3[level](offset))
            feat = self.dcn_pack[level](nbr_feat_l[i - 1], offset)
            if i < 3:
                feat = self.feat_conv[level](torch.cat([feat, upsampled_feat], 1))
            if i > 1:
                feat = _lrelu(feat)
                # x2 upsampling of the offsets doubles their magnitude
                upsampled_offset = _up2(offset) * 2
                upsampled_feat = _up2(feat)
        # cascading
        if cas_ref is None:
            offset = self.cas_offset_conv1(torch.cat([feat, ref_l1], 1))
        else:
            offset = self._half(self.cas_offset_conv1, feat, False).add_(cas_ref)
        offset = _lrelu(self.cas_offset_conv2(_lrelu(offset)))
        return _lrelu(self.cas_dcnpack(feat, offset))


class TSAFusion(nn.Module):
    """Temporal and Spatial Attention fusion of ``[b, t, c, h, w]`` aligned features into ``[b, c, h, w]``."""

    def __init__(self, num_feat: int = 64, num_frame: int = 5, center_frame_idx: int = 2):
        super().__init__()
        self.center_frame_idx = center_frame_idx
        # temporal attention
        self.temporal_attn1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.temporal_attn2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.feat_fusion = nn.Conv2d(num_frame * num_feat, num_feat, 1, 1)
        # spatial attention
        self.max_pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.avg_pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.spatial_attn1 = nn.Conv2d(num_frame * num_feat, num_feat, 1)
        self.spatial_attn2 = nn.Conv2d(num_feat * 2, num_feat, 1)
        self.spatial_attn3 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.spatial_attn4 = nn.Conv2d(num_feat, num_feat, 1)
        self.spatial_attn5 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.spatial_attn_l1 = nn.Conv2d(num_feat, num_feat, 1)
        self.spatial_attn_l2 = nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1)
        self.spatial_attn_l3 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.spatial_attn_add1 = nn.Conv2d(num_feat, num_feat, 1)
        self.spatial_attn_add2 = nn.Conv2d(num_feat, num_feat, 1)

    def forward(self, aligned_feat: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = aligned_feat.shape
        # temporal attention: per-pixel correlation of each frame's embedding with the centre frame's
        embedding_ref = self.temporal_attn1(aligned_feat[:, self.center_frame_idx])
        embedding = self.temporal_attn2(aligned_feat.reshape(-1, c, h, w)).view(b, t, -1, h, w)
        corr_prob = torch.sigmoid((embedding * embedding_ref.unsqueeze(1)).sum(2))  # [b, t, h, w]
        aligned_feat = frames_to_channels(aligned_feat * corr_prob.unsqueeze(2))

        feat = _lrelu(self.feat_fusion(aligned_feat))

        # spatial attention, with a two-level pyramid
        attn = _lrelu(self.spatial_attn1(aligned_feat))
        attn = _lrelu(self.spatial_attn2(torch.cat([self.max_pool(attn), self.avg_pool(attn)], 1)))
        attn_level = _lrelu(self.spatial_attn_l1(attn))
        attn_level = _lrelu(self.spatial_attn_l2(torch.cat([self.max_pool(attn_level), self.avg_pool(attn_level)], 1)))
        attn_level = _up2(_lrelu(self.spatial_attn_l3(attn_level)))
        attn = _lrelu(self.spatial_attn3(attn)) + attn_level
        attn = _lrelu(self.spatial_attn4(attn))
        attn = self.spatial_attn5(_up2(attn))
        attn_add = self.spatial_attn_add2(_lrelu(self.spatial_attn_add1(attn)))
        attn = torch.sigmoid(attn)
        # x2: after initialisation attn * 2 is close to 1
        return (feat * attn).mul_(2).add_(attn_add)  # in place on the fresh product: the same values, faster


class PredeblurModule(nn.Module):
    """Pre-deblurring of each frame (EDVR's deblurring models); with ``hr_in`` two stride-2 convs first reduce x4."""

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, hr_in: bool = False):
        super().__init__()
        self.hr_in = hr_in
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        if hr_in:
            self.stride_conv_hr1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
            self.stride_conv_hr2 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.stride_conv_l2 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.stride_conv_l3 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.resblock_l3 = ResidualBlockNoBN(num_feat=num_feat)
        self.resblock_l2_1 = ResidualBlockNoBN(num_feat=num_feat)
        self.resblock_l2_2 = ResidualBlockNoBN(num_feat=num_feat)
        self.resblock_l1 = nn.ModuleList([ResidualBlockNoBN(num_feat=num_feat) for _ in range(5)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat_l1 = _lrelu(self.conv_first(x))
        if self.hr_in:
            feat_l1 = _lrelu(self.stride_conv_hr1(feat_l1))
            feat_l1 = _lrelu(self.stride_conv_hr2(feat_l1))
        feat_l2 = _lrelu(self.stride_conv_l2(feat_l1))
        feat_l3 = _lrelu(self.stride_conv_l3(feat_l2))
        feat_l3 = _up2(self.resblock_l3(feat_l3))
        feat_l2 = self.resblock_l2_1(feat_l2).add_(feat_l3)
        feat_l2 = _up2(self.resblock_l2_2(feat_l2))
        for i in range(2):
            feat_l1 = self.resblock_l1[i](feat_l1)
        feat_l1 = feat_l1 + feat_l2
        for i in range(2, 5):
            feat_l1 = self.resblock_l1[i](feat_l1)
        return feat_l1


class EDVR(nn.Module):
    """EDVR with BasicSR's constructor arguments and parameter names (a window model: the output is frame
    ``center_frame_idx`` of the window)."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_frame: int = 5,
        deformable_groups: int = 8,
        num_extract_block: int = 5,
        num_reconstruct_block: int = 10,
        center_frame_idx: int | None = None,
        hr_in: bool = False,
        with_predeblur: bool = False,
        with_tsa: bool = True,
    ):
        super().__init__()
        if hr_in and not with_predeblur:
            # BasicSR builds it but fails at run time (features are not reduced to the LR size)
            raise ValueError("EDVR: hr_in=True needs with_predeblur=True (its stride-2 convs reduce the HR input)")
        self.center_frame_idx = num_frame // 2 if center_frame_idx is None else center_frame_idx
        if not 0 <= self.center_frame_idx < num_frame:
            raise ValueError(f"EDVR: center_frame_idx {center_frame_idx} is outside 0..{num_frame - 1}")
        self.num_frame = num_frame
        self.hr_in = hr_in
        self.with_predeblur = with_predeblur
        self.with_tsa = with_tsa

        # vsrkit model contract
        self.spec = ModelSpec(
            scale=1 if hr_in else 4,
            temporal=Temporal("window", window=num_frame, ahead=num_frame - 1 - self.center_frame_idx),
            channels=num_in_ch,
            size_multiple=16 if hr_in else 4,
            sliding=forward_sliding,
        )

        # per-frame feature extraction
        if with_predeblur:
            self.predeblur = PredeblurModule(num_in_ch=num_in_ch, num_feat=num_feat, hr_in=hr_in)
            self.conv_1x1 = nn.Conv2d(num_feat, num_feat, 1, 1)
        else:
            self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.feature_extraction = make_layer(ResidualBlockNoBN, num_extract_block, num_feat=num_feat)
        self.conv_l2_1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.conv_l2_2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_l3_1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.conv_l3_2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

        # alignment and fusion
        self.pcd_align = PCDAlignment(num_feat=num_feat, deformable_groups=deformable_groups)
        if with_tsa:
            self.fusion = TSAFusion(num_feat=num_feat, num_frame=num_frame, center_frame_idx=self.center_frame_idx)
        else:
            self.fusion = nn.Conv2d(num_frame * num_feat, num_feat, 1, 1)

        # reconstruction and x4 upsampling
        self.reconstruction = make_layer(ResidualBlockNoBN, num_reconstruct_block, num_feat=num_feat)
        self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
        self.upconv2 = nn.Conv2d(num_feat, 64 * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.conv_hr = nn.Conv2d(64, 64, 3, 1, 1)
        self.conv_last = nn.Conv2d(64, 3, 3, 1, 1)  # 3 whatever num_out_ch is, as in BasicSR

    # --- stages ---
    def _check_size(self, h: int, w: int) -> None:
        m = self.spec.size_multiple
        if h % m or w % m:
            raise ValueError(f"EDVR: height and width must be multiples of {m}, got {h}x{w}")

    def extract_features(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Pyramid features [L1, L2, L3] of frames ``[n, c, h, w]`` (L1 at 1/4 of h, w with ``hr_in``)."""
        if self.with_predeblur:
            feat_l1 = self.conv_1x1(self.predeblur(frames))
        else:
            feat_l1 = _lrelu(self.conv_first(frames))
        feat_l1 = self.feature_extraction(feat_l1)
        feat_l2 = _lrelu(self.conv_l2_2(_lrelu(self.conv_l2_1(feat_l1))))
        feat_l3 = _lrelu(self.conv_l3_2(_lrelu(self.conv_l3_1(feat_l2))))
        return [feat_l1, feat_l2, feat_l3]

    def fuse(self, aligned_feat: torch.Tensor) -> torch.Tensor:
        """``fusion`` of ``[b, t, c, h, w]`` aligned features."""
        if self.with_tsa:
            return self.fusion(aligned_feat)
        return self.fusion(frames_to_channels(aligned_feat))

    def upsample(self, feat: torch.Tensor, x_center: torch.Tensor) -> torch.Tensor:
        """Reconstruction trunk, x4 pixel-shuffle upsampling and the centre-frame base."""
        return self.upsample_tail(self.reconstruction(feat)).add_(self.base(x_center))

    def upsample_tail(self, out: torch.Tensor) -> torch.Tensor:
        """upconv1 -> shuffle -> upconv2 -> shuffle -> conv_hr -> conv_last."""
        out = _lrelu(self.pixel_shuffle(self.upconv1(out)))
        out = _lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = _lrelu(self.conv_hr(out))
        return self.conv_last(out)

    def base(self, x_center: torch.Tensor) -> torch.Tensor:
        """The image the reconstruction is added to: the centre frame, bilinearly x4 unless ``hr_in``."""
        if self.hr_in:
            return x_center
        return F.interpolate(x_center, scale_factor=4, mode="bilinear", align_corners=False)

    def align_window(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """PCD-align every frame of ``feats`` (levels ``[b, t, c, h_l, w_l]``) to the centre; ``[b, t, c, h, w]``.

        One neighbour at a time, as the official code.
        """
        ci = self.center_frame_idx
        ref = [f[:, ci] for f in feats]
        return stack_frames([self.pcd_align([f[:, i] for f in feats], ref) for i in range(feats[0].shape[1])])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x[b, num_frame, c, h, w]`` -> the centre frame ``[b, c, scale*h, scale*w]``."""
        b, t, c, h, w = x.shape
        if t != self.num_frame:
            raise ValueError(f"EDVR: expected {self.num_frame} frames, got {t}")
        self._check_size(h, w)
        x_center = x[:, self.center_frame_idx].contiguous()
        feats = self.extract_features(x.reshape(b * t, c, h, w))
        feats = [f.view(b, t, *f.shape[1:]) for f in feats]
        aligned = self.align_window(feats)
        return self.upsample(self.fuse(aligned), x_center)


# ----------------------------------------------------------------------------------------------------------
# Streaming adapters the engine uses (declared in ``EDVR.spec``); tested equal to ``EDVR.forward``.


def upsample_in_strips(model: EDVR, feat: torch.Tensor, x_center: torch.Tensor, budget: int = 4 << 20) -> torch.Tensor:
    """``model.upsample`` in horizontal strips with a halo of 2 LR rows (the tail's receptive field is
    1 + 1/2 + 1/4 + 1/4): the same numbers, while no HR tensor grows past about ``budget`` elements, the
    size that the allocator recycles."""
    out = model.reconstruction(feat)
    b, _, h, w = out.shape
    rows = max(8, budget // max(1, b * 64 * 16 * w))
    if rows >= h:
        return model.upsample_tail(out).add_(model.base(x_center))
    halo, strips = 2, []
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        a, z = max(0, r0 - halo), min(h, r1 + halo)
        y = model.upsample_tail(out[:, :, a:z])
        strips.append(y[:, :, 4 * (r0 - a) : 4 * (r0 - a) + 4 * (r1 - r0)])
    return torch.cat(strips, 2).add_(model.base(x_center))


def forward_sliding(model: EDVR, x: torch.Tensor, frame_chunk: int | None = None) -> torch.Tensor:
    """All windows of ``x[b, T + num_frame - 1, c, h, w]`` -> ``[b, T, c, scale*h, scale*w]``.

    Window ``k`` is frames ``k .. k + num_frame - 1``; the result equals ``forward`` on each window
    (to float rounding). Per-frame work (features, pyramid, the frame-only halves of
    ``pcd_align.offset_conv1`` and ``cas_offset_conv1``) is done once per frame, ``frame_chunk`` frames
    at a time (default 1: on CPU small tensors are faster, big ones cost page faults at each allocation).
    """
    b, n, c, h, w = x.shape
    nf, ci = model.num_frame, model.center_frame_idx
    if n < nf:
        raise ValueError(f"forward_sliding: need at least {nf} frames, got {n}")
    model._check_size(h, w)
    chunk = frame_chunk or 1
    centres = range(ci, n - nf + 1 + ci)
    # per frame j: pyramid features, neighbour terms of offset_conv1 and, for frames that are a window's
    # centre, the reference terms of offset_conv1 and cas_offset_conv1 (kept per frame: no big concatenations)
    feat: list[list[torch.Tensor]] = []
    nbr_t: list[list[torch.Tensor]] = []
    ref_t: dict[int, tuple[list[torch.Tensor], torch.Tensor]] = {}
    pcd = model.pcd_align
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        fl = model.extract_features(x[:, s:e].reshape(b * (e - s), c, h, w))
        nb = pcd.nbr_terms(fl)
        for j in range(s, e):
            def pick(t: torch.Tensor, j: int = j) -> torch.Tensor:
                return t.view(b, e - s, *t.shape[1:])[:, j - s]

            feat.append([pick(f) for f in fl])
            nbr_t.append([pick(f) for f in nb])
            if j in centres:
                rf, cs = pcd.ref_terms(feat[j])
                ref_t[j] = (rf, cs)
        del fl, nb

    outs = []
    for k in range(n - nf + 1):
        r = k + ci  # the reference (centre) frame of this window
        rf, cs = ref_t[r]
        # one pair at a time: full-size tensors of batch b stay small enough for the allocator to recycle
        aligned = stack_frames(
            [
                pcd.align(feat[k + i], [nbr_t[k + i][lvl] + rf[lvl] for lvl in range(3)], None, cs)
                for i in range(nf)
            ]
        )
        outs.append(upsample_in_strips(model, model.fuse(aligned), x[:, r]))
        ref_t.pop(r)
    return stack_frames(outs)


# ==========================================================================================================
# The family: names, recognition, training defaults

# the protocols of the published numbers (BasicSR options/test/EDVR/*.yml)
REDS_EDVR = Protocol(end_padding="reflection_circle")  # test_EDVR_*_REDS.yml
REPLICATE = Protocol(end_padding="replicate")  # Vimeo-style tests, deblurring tests

_EDVR_LICENCE = "Apache-2.0 (XPixelGroup/BasicSR, xinntao/EDVR)"


def _edvr_weights(filename: str, gdrive_id: str) -> WeightsSource:
    prefix = filename.rsplit("-", 1)[1].split(".")[0]  # BasicSR names files <name>-<sha256[:8]>.pth
    return WeightsSource(filename=filename, sha256=prefix, url=gdrive_url(gdrive_id), licence=_EDVR_LICENCE)


_M = dict(num_feat=64, num_frame=5, deformable_groups=8, num_extract_block=5, num_reconstruct_block=10)
_L = dict(num_feat=128, num_frame=5, deformable_groups=8, num_extract_block=5, num_reconstruct_block=40)

# file names and Google Drive ids: BasicSR scripts/download_pretrained_models.py ('EDVR');
# configurations: BasicSR options/test/EDVR/*.yml
ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry("edvr", "EDVR", {}, summary="EDVR, BasicSR defaults (= EDVR-M), random weights"),
    ModelEntry("edvr-m", "EDVR", dict(_M, with_tsa=True), summary="EDVR-M: 64 features, 5 frames, TSA"),
    ModelEntry("edvr-l", "EDVR", dict(_L, with_tsa=True), summary="EDVR-L: 128 features, 40 reconstruction blocks"),
    ModelEntry(
        "edvr-m-reds", "EDVR", dict(_M, with_tsa=True),
        _edvr_weights("EDVR_M_x4_SR_REDS_official-32075921.pth", "1dd6aFj-5w2v08VJTq5mS9OFsD-wALYD6"),
        summary="EDVR-M x4, REDS (bicubic)",
        protocol=REDS_EDVR,
    ),
    ModelEntry(
        "edvr-m-notsa-reds", "EDVR", dict(_M, with_tsa=False),
        _edvr_weights("EDVR_M_woTSA_x4_SR_REDS_official-1edf645c.pth", "1C_WdN-NyNj-P7SOB5xIVuHl4EBOwd-Ny"),
        summary="EDVR-M without TSA x4, REDS (bicubic)",
        protocol=REDS_EDVR,
    ),
    ModelEntry(
        "edvr-l-reds", "EDVR", dict(_L, with_tsa=True),
        _edvr_weights("EDVR_L_x4_SR_REDS_official-9f5f5039.pth", "127KXEjlCwfoPC1aXyDkluNwr9elwyHNb"),
        summary="EDVR-L x4, REDS (bicubic)",
        protocol=REDS_EDVR,
    ),
    ModelEntry(
        "edvr-l-vimeo", "EDVR", dict(_L, num_frame=7, with_tsa=True),
        _edvr_weights("EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth", "1aVR3lkX6ItCphNLcT7F5bbbC484h4Qqy"),
        summary="EDVR-L x4, Vimeo-90K (bicubic), 7 frames",
        protocol=REDS_EDVR,
    ),
    ModelEntry(
        "edvr-l-reds-srblur", "EDVR", dict(_L, with_tsa=True, with_predeblur=True),
        _edvr_weights("EDVR_L_x4_SRblur_REDS_official-983d7b8e.pth", "1GZz_87ybR8eAAY3X2HWwI3L6ny7-5Yvl"),
        summary="EDVR-L x4 of blurred low-resolution frames, REDS",
        protocol=REPLICATE,
    ),
    ModelEntry(
        "edvr-l-reds-deblur", "EDVR", dict(_L, with_tsa=True, with_predeblur=True, hr_in=True),
        _edvr_weights("EDVR_L_deblur_REDS_official-ca46bd8c.pth", "1_ma2tgHscZtkIY2tEJkVdU-UP8bnqBRE"),
        summary="EDVR-L video deblurring (x1), REDS",
        protocol=REPLICATE,
    ),
    ModelEntry(
        "edvr-l-reds-deblurcomp", "EDVR", dict(_L, with_tsa=True, with_predeblur=True, hr_in=True),
        _edvr_weights("EDVR_L_deblurcomp_REDS_official-0e988e5c.pth", "1fEoSeLFnHSBbIs95Au2W197p8e4ws4DW"),
        summary="EDVR-L deblurring of compressed video (x1), REDS",
        protocol=REPLICATE,
    ),
)


def default_protocol(arch: str, kwargs: dict[str, Any]) -> Protocol:
    """An EDVR checkpoint by file is run as the released models of its kind were tested: the SR models with
    ``reflection_circle``, the deblurring ones (``with_predeblur``) with ``replicate``."""
    return REPLICATE if kwargs.get("with_predeblur") else REDS_EDVR


def _is_original_format(sd: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(("pcd_align.L1_", "tsa_fusion.", "recon_trunk.")) for k in sd)


# original xinntao/EDVR name -> BasicSR name, the first pattern that matches
_ORIGINAL_NAMES: tuple[tuple[str, str], ...] = (
    (r"^pre_deblur\.conv_first_1\.", "predeblur.conv_first."),
    (r"^pre_deblur\.conv_first_2\.", "predeblur.stride_conv_hr1."),
    (r"^pre_deblur\.conv_first_3\.", "predeblur.stride_conv_hr2."),
    (r"^pre_deblur\.conv_first\.", "predeblur.conv_first."),
    (r"^pre_deblur\.deblur_L2_conv\.", "predeblur.stride_conv_l2."),
    (r"^pre_deblur\.deblur_L3_conv\.", "predeblur.stride_conv_l3."),
    (r"^pre_deblur\.RB_L3_1\.", "predeblur.resblock_l3."),
    (r"^pre_deblur\.RB_L2_(\d)\.", r"predeblur.resblock_l2_\1."),
    (r"^fea_L([23])_conv(\d)\.", r"conv_l\1_\2."),
    (r"^pcd_align\.L(\d)_dcnpack\.conv_offset_mask\.", r"pcd_align.dcn_pack.l\1.conv_offset."),
    (r"^pcd_align\.L(\d)_dcnpack\.", r"pcd_align.dcn_pack.l\1."),
    (r"^pcd_align\.L(\d)_offset_conv(\d)\.", r"pcd_align.offset_conv\2.l\1."),
    (r"^pcd_align\.L(\d)_fea_conv\.", r"pcd_align.feat_conv.l\1."),
    (r"^pcd_align\.cas_dcnpack\.conv_offset_mask\.", "pcd_align.cas_dcnpack.conv_offset."),
    (r"^tsa_fusion\.tAtt_1\.", "fusion.temporal_attn2."),
    (r"^tsa_fusion\.tAtt_2\.", "fusion.temporal_attn1."),
    (r"^tsa_fusion\.fea_fusion\.", "fusion.feat_fusion."),
    (r"^tsa_fusion\.sAtt_add_(\d)\.", r"fusion.spatial_attn_add\1."),
    (r"^tsa_fusion\.sAtt_L(\d)\.", r"fusion.spatial_attn_l\1."),
    (r"^tsa_fusion\.sAtt_(\d)\.", r"fusion.spatial_attn\1."),
    (r"^tsa_fusion\.", "fusion."),
    (r"^recon_trunk\.", "reconstruction."),
    (r"^HRconv\.", "conv_hr."),
)


def convert_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a checkpoint of the original xinntao/EDVR code to BasicSR names (others pass unchanged).

    The mapping is the inverse of BasicSR's ``scripts/model_conversion/convert_models.py:convert_edvr``
    (note the swap there: ``tAtt_1`` is ``temporal_attn2`` and ``tAtt_2`` is ``temporal_attn1``).
    """
    if not _is_original_format(sd):
        return dict(sd)
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        m = re.match(r"^pre_deblur\.RB_L1_(\d)\.(.*)$", k)
        if m:
            out[f"predeblur.resblock_l1.{int(m.group(1)) - 1}.{m.group(2)}"] = v
            continue
        new = k
        for pat, rep in _ORIGINAL_NAMES:
            if re.match(pat, k):
                new = re.sub(pat, rep, k)
                break
        out[new] = v
    return out


def detect_edvr(state_dict: Mapping[str, torch.Tensor], filename: str | None = None) -> tuple[str, dict] | None:
    """``("EDVR", kwargs)`` for an EDVR checkpoint (BasicSR or original names), else ``None``.

    IconVSR checkpoints (EDVR modules under ``edvr.`` beside BasicVSR trunks) and BasicSR's
    ``EDVR_*_pretrained_for_IconVSR`` feature extractors (no reconstruction part) are not EDVR models.
    """
    sd = convert_state_dict(state_dict)
    need = (
        "pcd_align.cas_dcnpack.weight",
        "pcd_align.dcn_pack.l1.conv_offset.weight",
        "upconv1.weight",
        "conv_last.weight",
    )
    if not all(k in sd for k in need):
        return None
    num_feat = sd["conv_l2_1.weight"].shape[0] if "conv_l2_1.weight" in sd else sd["upconv1.weight"].shape[1]
    off_out, _, kh, kw = sd["pcd_align.dcn_pack.l1.conv_offset.weight"].shape
    if off_out % (3 * kh * kw):
        raise VsrkitError(f"EDVR checkpoint: cannot tell deformable_groups from conv_offset with {off_out} channels")
    with_tsa = "fusion.temporal_attn1.weight" in sd
    fusion_in = sd["fusion.feat_fusion.weight" if with_tsa else "fusion.weight"].shape[1]
    if fusion_in % num_feat:
        raise VsrkitError(f"EDVR checkpoint: cannot tell num_frame from a fusion of {fusion_in} input channels")
    with_predeblur = "predeblur.conv_first.weight" in sd
    first = sd["predeblur.conv_first.weight" if with_predeblur else "conv_first.weight"]
    kwargs = dict(
        num_in_ch=first.shape[1],
        num_out_ch=3,  # unused by BasicSR's EDVR (conv_last always has 3 outputs)
        num_feat=num_feat,
        num_frame=fusion_in // num_feat,
        deformable_groups=off_out // (3 * kh * kw),
        num_extract_block=count_blocks(sd, "feature_extraction."),
        num_reconstruct_block=count_blocks(sd, "reconstruction."),
        hr_in="predeblur.stride_conv_hr1.weight" in sd,
        with_predeblur=with_predeblur,
        with_tsa=with_tsa,
    )
    return "EDVR", kwargs


FAMILY = Family(
    "edvr",
    ENTRIES,
    rules=(Rule(("pcd_align.cas_dcnpack.weight",), detect_edvr),),  # both namings have this key
    convert=convert_state_dict,
    default_protocol=default_protocol,
)
