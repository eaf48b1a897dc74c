"""VRT: Video Restoration Transformer (Liang et al., 2022), video super-resolution configs.

A re-implementation written for vsrkit. Constructor arguments are the official ``VRT(...)`` arguments by the
same names and the parameter / buffer names are the official state-dict keys (``models/network_vrt.py`` of
JingyunLiang/VRT), so the released ``{'params': ...}`` checkpoints load strictly without conversion.

Architecture, in the order of ``forward``:

- SpyNet flows between neighbouring frames at four scales (1, 1/2, 1/4, 1/8), both directions; for
  ``pa_frames`` 4 and 6 the flows to t±2 and t±3 are composed from them by warping;
- the input frame plus its two neighbours, each warped to it by the rounded-down/up flow (four nearest
  samples), feed a 3D (1x3x3) convolution: 27 channels for RGB;
- stages 1-7 at scales 1, 1/2, 1/4, 1/8, 1/4, 1/2, 1 (pixel unshuffle / shuffle + LayerNorm + Linear):
  each a group of TMSA blocks with mutual attention between the two frames of a 2-frame window plus self
  attention, then a group of self-attention blocks with the full temporal window, then parallel warping
  (flow-guided deformable convolution of the backward and forward neighbours, fused by a GEGLU MLP);
- stage 8: a Linear to the wider embedding, then residual self-attention groups (the ``indep_reconsts``
  ones with a temporal window of 1);
- reconstruction: Conv3d + LeakyReLU, pixel-shuffle upsampling, Conv3d; plus the trilinear-resized input.

Windows are shifted in time and space on every other block (with the attention mask of Swin); windows are
zero-padded inside each block, so the size needs are: H, W multiples of 8 (three 2x downscales), H, W > 32
(SpyNet's six-level pyramid) and H/8, W/8 at least the spatial window (the mutual attention's fixed position
encoding covers a whole window): 64 px for the official configs (``min_size``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils import checkpoint as _ckpt

from vsrkit.errors import VsrkitError
from vsrkit.models.family import Family, ModelEntry, Rule, WeightsSource, count_blocks
from vsrkit.models.layers.common import flow_warp
from vsrkit.models.layers.dcn import ModulatedDeformConv2d, deform_conv2d
from vsrkit.models.layers.spynet import SpyNet
from vsrkit.models.spec import ModelSpec, Protocol, Temporal

__all__ = ["VRT"]

# ----------------------------------------------------------------------------------------------------------
# small helpers


def _use_checkpoint(flag: bool) -> bool:
    return flag and torch.is_grad_enabled()


def _run(fn, flag: bool, *args):
    """``fn(*args)``, through gradient checkpointing when ``flag`` and gradients are being recorded."""
    if _use_checkpoint(flag):
        return _ckpt.checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


class DropPath(nn.Module):
    """Stochastic depth per sample (training only)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return x / keep * torch.floor(keep + torch.rand(shape, dtype=x.dtype, device=x.device))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _Permute(nn.Module):
    """A parameter-free layout change inside an ``nn.Sequential`` (keeps the official module indices)."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.mode
        if m == "to_last":  # n c d h w -> n d h w c
            return x.permute(0, 2, 3, 4, 1)
        if m == "to_first":  # n d h w c -> n c d h w
            return x.permute(0, 4, 1, 2, 3)
        if m == "down":  # n c d (h 2) (w 2) -> n d h w (2w 2h c)
            n, c, d, hh, ww = x.shape
            x = x.reshape(n, c, d, hh // 2, 2, ww // 2, 2)  # n c d h sh w sw
            return x.permute(0, 2, 3, 5, 6, 4, 1).reshape(n, d, hh // 2, ww // 2, 4 * c)
        if m == "up":  # n (2w 2h c) d h w -> n d (h 2) (w 2) c
            n, c4, d, h, w = x.shape
            c = c4 // 4
            x = x.reshape(n, 2, 2, c, d, h, w)  # n sw sh c d h w
            return x.permute(0, 4, 5, 2, 6, 1, 3).reshape(n, d, 2 * h, 2 * w, c)
        if m == "swap12":
            return x.transpose(1, 2)
        raise ValueError(m)

    def extra_repr(self) -> str:
        return self.mode


class _PixelShuffle(nn.PixelShuffle):
    """``nn.PixelShuffle`` over the last three dims of a tensor of any rank (``(n, d, c, h, w)`` here), as 4-D
    calls: the same numbers, and it exports to ONNX (whose DepthToSpace is 4-D only)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-3]
        y = F.pixel_shuffle(x.reshape(-1, *x.shape[-3:]), self.upscale_factor)
        return y.reshape(*lead, *y.shape[-3:])


def _flow_warp_nearest4(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Warp ``x[n, c, h, w]`` by ``flow[n, h, w, 2]`` to the four integer neighbours of each target.

    Returns ``[n, 4c, h, w]``: (floor x, floor y), (floor x, ceil y), (ceil x, floor y), (ceil x, ceil y),
    each sampled nearest with zeros outside. Computed in float32 under autocast.
    """
    dtype = x.dtype
    _, _, h, w = x.shape
    with torch.autocast(device_type=x.device.type, enabled=False):
        gy, gx = torch.meshgrid(
            torch.arange(h, device=x.device, dtype=torch.float32),
            torch.arange(w, device=x.device, dtype=torch.float32),
            indexing="ij",
        )
        px = gx + flow[..., 0].float()
        py = gy + flow[..., 1].float()
        sx, sy = max(w - 1, 1), max(h - 1, 1)
        xf, xc = 2.0 * torch.floor(px) / sx - 1.0, 2.0 * torch.ceil(px) / sx - 1.0
        yf, yc = 2.0 * torch.floor(py) / sy - 1.0, 2.0 * torch.ceil(py) / sy - 1.0
        xin = x.float()
        outs = [
            F.grid_sample(xin, torch.stack(g, dim=3), mode="nearest", padding_mode="zeros", align_corners=True)
            for g in ((xf, yf), (xf, yc), (xc, yf), (xc, yc))
        ]
    return torch.cat(outs, 1).to(dtype)


# ----------------------------------------------------------------------------------------------------------
# windows


def _clip_window(size, window, shift=None):
    """Window (and shift) clipped to the input: a dimension no larger than its window is one whole window."""
    win = list(window)
    sh = list(shift) if shift is not None else None
    for i, s in enumerate(size):
        if s <= window[i]:
            win[i] = s
            if sh is not None:
                sh[i] = 0
    if sh is None:
        return tuple(win)
    return tuple(win), tuple(sh)


def window_partition(x: torch.Tensor, ws: Sequence[int]) -> torch.Tensor:
    """(B, D, H, W, C) -> (B * nW, wd * wh * ww, C), windows in (d, h, w) raster order."""
    b, d, h, w, c = x.shape
    x = x.view(b, d // ws[0], ws[0], h // ws[1], ws[1], w // ws[2], ws[2], c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, ws[0] * ws[1] * ws[2], c)


def window_reverse(windows: torch.Tensor, ws: Sequence[int], b: int, d: int, h: int, w: int) -> torch.Tensor:
    """Inverse of ``window_partition``: -> (B, D, H, W, C)."""
    x = windows.view(b, d // ws[0], h // ws[1], w // ws[2], ws[0], ws[1], ws[2], -1)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, -1)


def _region_ids(n: int, win: int, shift: int) -> torch.Tensor:
    """Which of the three shifted regions each padded coordinate falls in (one region when shift is 0)."""
    ids = torch.full((n,), 2, dtype=torch.float32)
    if shift > 0:
        ids[: n - shift] = 1
        ids[: n - win] = 0
    return ids


@lru_cache(maxsize=64)
def _attention_mask_cpu(dp: int, hp: int, wp: int, ws: tuple, ss: tuple) -> torch.Tensor:
    rd, rh, rw = (_region_ids(n, w, s) for n, w, s in zip((dp, hp, wp), ws, ss))
    label = (rd.view(-1, 1, 1) * 9 + rh.view(1, -1, 1) * 3 + rw.view(1, 1, -1)).view(1, dp, hp, wp, 1)
    lw = window_partition(label, ws).squeeze(-1)  # nW, N
    diff = lw.unsqueeze(1) - lw.unsqueeze(2)
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


def compute_mask(dp: int, hp: int, wp: int, ws, ss, device) -> torch.Tensor:
    """Shifted-window attention mask (nW, N, N): -100 between tokens from different regions, else 0."""
    return _attention_mask_cpu(dp, hp, wp, tuple(ws), tuple(ss)).to(device)


def relative_position_index(ws: Sequence[int]) -> torch.Tensor:
    """(N, N) int64 index into the relative position bias table for tokens of a (wd, wh, ww) window."""
    wd, wh, ww = ws
    d, h, w = torch.meshgrid(torch.arange(wd), torch.arange(wh), torch.arange(ww), indexing="ij")
    coords = torch.stack([d.flatten(), h.flatten(), w.flatten()])  # 3, N
    rel = coords[:, :, None] - coords[:, None, :]  # 3, N, N
    rd = rel[0] + (wd - 1)
    rh = rel[1] + (wh - 1)
    rw = rel[2] + (ww - 1)
    return (rd * (2 * wh - 1) * (2 * ww - 1) + rh * (2 * ww - 1) + rw).long()


def sine_position_encoding(hw: Sequence[int], num_feats: int, temperature: float = 10000.0) -> torch.Tensor:
    """(1, H*W, 2*num_feats) normalised 2D sine/cosine encoding (DETR style), y features first."""
    h, w = hw
    ones = torch.ones(1, h, w)
    y = ones.cumsum(1, dtype=torch.float32)
    x = ones.cumsum(2, dtype=torch.float32)
    eps, scale = 1e-6, 2 * math.pi
    y = y / (y[:, -1:, :] + eps) * scale
    x = x / (x[:, :, -1:] + eps) * scale
    k = torch.arange(num_feats, dtype=torch.float32)
    dim_t = temperature ** (2 * torch.div(k, 2, rounding_mode="floor") / num_feats)
    px = x[..., None] / dim_t
    py = y[..., None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=4).flatten(3)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=4).flatten(3)
    return torch.cat((py, px), dim=3).flatten(1, 2).contiguous()


# ----------------------------------------------------------------------------------------------------------
# transformer parts


class Mlp_GEGLU(nn.Module):  # noqa: N801 - official name
    """GEGLU feed-forward: fc2(gelu(fc11(x)) * fc12(x))."""

    def __init__(self, in_features: int, hidden_features: int | None = None, out_features: int | None = None):
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc11 = nn.Linear(in_features, hidden_features)
        self.fc12 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc11(x)) * self.fc12(x))


# windows per attention call: bounds the (windows, heads, N, N) mask/score tensors; results do not depend on it
ATTN_WINDOW_CHUNK = 64


class WindowAttention(nn.Module):
    """Window self attention with relative position bias, plus (``mut_attn``) mutual attention between the
    two frames of the window with a fixed sine position encoding; projection of [mutual, self] channels."""

    def __init__(self, dim, window_size, num_heads, qkv_bias=False, qk_scale=None, mut_attn=True):
        super().__init__()
        self.dim = dim
        self.window_size = tuple(window_size)
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.mut_attn = mut_attn
        wd, wh, ww = self.window_size
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * wd - 1) * (2 * wh - 1) * (2 * ww - 1), num_heads)
        )
        self.register_buffer("relative_position_index", relative_position_index(self.window_size))
        self.qkv_self = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(2 * dim if mut_attn else dim, dim)
        if mut_attn:
            self.register_buffer("position_bias", sine_position_encoding((wh, ww), dim // 2))
            self.qkv_mut = nn.Linear(dim, dim * 3, bias=qkv_bias)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def _qkv(self, linear: nn.Linear, x: torch.Tensor):
        b_, n, c = x.shape
        qkv = linear(x).reshape(b_, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]  # b_, heads, n, c/heads

    def attention(self, q, k, v, mask, relative: bool) -> torch.Tensor:
        """softmax((q*scale) k^T [+ bias] [+ mask]) v per window; -> (B_, N, C).

        Fused ``scaled_dot_product_attention`` over chunks of ``ATTN_WINDOW_CHUNK`` windows, so the score
        tensors never exceed one chunk. As the official code, a window smaller than the configured one uses
        the top-left corner of the index and of the mask.
        """
        b_, heads, n, hd = q.shape
        bias = None
        if relative:
            idx = self.relative_position_index[:n, :n].reshape(-1)
            bias = self.relative_position_bias_table[idx].reshape(n, n, -1).permute(2, 0, 1)  # heads, n, n
        chunk = max(1, ATTN_WINDOW_CHUNK)
        out = q.new_empty(b_, heads, n, hd)
        if mask is None:
            m = None if bias is None else bias.unsqueeze(0).to(q.dtype)
            for s in range(0, b_, chunk):
                e = min(b_, s + chunk)
                out[s:e] = F.scaled_dot_product_attention(q[s:e], k[s:e], v[s:e], attn_mask=m, scale=self.scale)
        else:
            nw = mask.shape[0]
            mask = mask[:, :n, :n]
            for w0 in range(0, nw, chunk):
                w1 = min(nw, w0 + chunk)
                c = w1 - w0
                m = mask[w0:w1].unsqueeze(1)
                m = (m + bias) if bias is not None else m.expand(c, heads, n, n)
                m = m.to(q.dtype).reshape(1, c * heads, n, n)
                for img in range(b_ // nw):
                    rows = slice(img * nw + w0, img * nw + w1)
                    o = F.scaled_dot_product_attention(
                        q[rows].reshape(1, c * heads, n, hd),
                        k[rows].reshape(1, c * heads, n, hd),
                        v[rows].reshape(1, c * heads, n, hd),
                        attn_mask=m,
                        scale=self.scale,
                    )
                    out[rows] = o.view(c, heads, n, hd)
        return out.transpose(1, 2).reshape(b_, n, heads * hd)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b_, n, c = x.shape
        q, k, v = self._qkv(self.qkv_self, x)
        x_out = self.attention(q, k, v, mask, relative=True)
        if self.mut_attn:
            q, k, v = self._qkv(self.qkv_mut, x + self.position_bias.repeat(1, 2, 1))
            (q1, q2), (k1, k2), (v1, v2) = q.chunk(2, dim=2), k.chunk(2, dim=2), v.chunk(2, dim=2)
            x1_aligned = self.attention(q2, k1, v1, mask, relative=False)  # frame 1 seen from frame 2
            x2_aligned = self.attention(q1, k2, v2, mask, relative=False)
            x_out = torch.cat([torch.cat([x1_aligned, x2_aligned], 1), x_out], 2)
        return self.proj(x_out)


class TMSA(nn.Module):
    """Temporal mutual self attention block: (shifted) window attention and a GEGLU MLP, pre-norm residual."""

    def __init__(
        self,
        dim,
        input_resolution,
        num_heads,
        window_size=(6, 8, 8),
        shift_size=(0, 0, 0),
        mut_attn=True,
        mlp_ratio=2.0,
        qkv_bias=True,
        qk_scale=None,
        drop_path=0.0,
        norm_layer=nn.LayerNorm,
        use_checkpoint_attn=False,
        use_checkpoint_ffn=False,
    ):
        super().__init__()
        self.dim = dim
        self.input_resolution = input_resolution
        self.window_size = tuple(window_size)
        self.shift_size = tuple(shift_size)
        self.use_checkpoint_attn = use_checkpoint_attn
        self.use_checkpoint_ffn = use_checkpoint_ffn
        for s, w in zip(self.shift_size, self.window_size):
            if not 0 <= s < w:
                raise ValueError(f"TMSA: shift {self.shift_size} must lie in [0, window {self.window_size})")
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(dim, self.window_size, num_heads, qkv_bias, qk_scale, mut_attn)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp_GEGLU(dim, int(dim * mlp_ratio))

    def forward_part1(self, x: torch.Tensor, mask_matrix: torch.Tensor | None) -> torch.Tensor:
        b, d, h, w, c = x.shape
        ws, ss = _clip_window((d, h, w), self.window_size, self.shift_size)
        x = self.norm1(x)
        pd, ph, pw = ((ws[i] - n % ws[i]) % ws[i] for i, n in enumerate((d, h, w)))
        if pd or ph or pw:
            x = F.pad(x, (0, 0, 0, pw, 0, ph, 0, pd))
        _, dp, hp, wp, _ = x.shape
        shifted = any(s > 0 for s in ss)
        if shifted:
            x = torch.roll(x, shifts=(-ss[0], -ss[1], -ss[2]), dims=(1, 2, 3))
        windows = self.attn(window_partition(x, ws), mask=mask_matrix if shifted else None)
        x = window_reverse(windows, ws, b, dp, hp, wp)
        if shifted:
            x = torch.roll(x, shifts=ss, dims=(1, 2, 3))
        if pd or ph or pw:
            x = x[:, :d, :h, :w, :]
        return self.drop_path(x)

    def forward_part2(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop_path(self.mlp(self.norm2(x)))

    def forward(self, x: torch.Tensor, mask_matrix: torch.Tensor | None) -> torch.Tensor:
        x = x + _run(self.forward_part1, self.use_checkpoint_attn, x, mask_matrix)
        x = x + _run(self.forward_part2, self.use_checkpoint_ffn, x)
        return x


class TMSAG(nn.Module):
    """A group of TMSA blocks; odd blocks are shifted by half a window. In/out (B, C, D, H, W)."""

    def __init__(
        self,
        dim,
        input_resolution,
        depth,
        num_heads,
        window_size=(6, 8, 8),
        shift_size=None,
        mut_attn=True,
        mlp_ratio=2.0,
        qkv_bias=False,
        qk_scale=None,
        drop_path=0.0,
        norm_layer=nn.LayerNorm,
        use_checkpoint_attn=False,
        use_checkpoint_ffn=False,
    ):
        super().__init__()
        self.input_resolution = input_resolution
        self.window_size = tuple(window_size)
        self.shift_size = tuple(i // 2 for i in window_size) if shift_size is None else tuple(shift_size)
        self.blocks = nn.ModuleList(
            TMSA(
                dim=dim,
                input_resolution=input_resolution,
                num_heads=num_heads,
                window_size=self.window_size,
                shift_size=(0, 0, 0) if i % 2 == 0 else self.shift_size,
                mut_attn=mut_attn,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                drop_path=drop_path[i] if isinstance(drop_path, (list, tuple)) else drop_path,
                norm_layer=norm_layer,
                use_checkpoint_attn=use_checkpoint_attn,
                use_checkpoint_ffn=use_checkpoint_ffn,
            )
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, d, h, w = x.shape
        ws, ss = _clip_window((d, h, w), self.window_size, self.shift_size)
        x = x.permute(0, 2, 3, 4, 1)
        mask = None
        if len(self.blocks) > 1 and any(s > 0 for s in ss):
            dp, hp, wp = (math.ceil(n / ws[i]) * ws[i] for i, n in enumerate((d, h, w)))
            mask = compute_mask(dp, hp, wp, ws, ss, x.device)
        for blk in self.blocks:
            x = blk(x, mask)
        return x.permute(0, 4, 1, 2, 3)


class RTMSA(nn.Module):
    """Residual TMSA group (stage 8): self attention only, then a Linear, plus the input."""

    def __init__(
        self,
        dim,
        input_resolution,
        depth,
        num_heads,
        window_size,
        mlp_ratio=2.0,
        qkv_bias=True,
        qk_scale=None,
        drop_path=0.0,
        norm_layer=nn.LayerNorm,
        use_checkpoint_attn=False,
        use_checkpoint_ffn=None,
    ):
        super().__init__()
        self.dim = dim
        self.input_resolution = input_resolution
        self.residual_group = TMSAG(
            dim=dim,
            input_resolution=input_resolution,
            depth=depth,
            num_heads=num_heads,
            window_size=window_size,
            mut_attn=False,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            drop_path=drop_path,
            norm_layer=norm_layer,
            use_checkpoint_attn=use_checkpoint_attn,
            use_checkpoint_ffn=bool(use_checkpoint_ffn),
        )
        self.linear = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.linear(self.residual_group(x).transpose(1, 4)).transpose(1, 4)


# ----------------------------------------------------------------------------------------------------------
# parallel warping


class DCNv2PackFlowGuided(ModulatedDeformConv2d):
    """Flow-guided deformable alignment (BasicVSR++ style) of ``pa_frames // 2`` neighbours at once.

    ``weight`` is (out, in, 3, 3) with ``in`` = one frame's channels; applied to the concatenation of
    ``pa_frames // 2`` neighbour features it acts as a grouped convolution with that many groups (as
    ``torchvision.ops.deform_conv2d`` infers groups from the weight). Offsets are the flows (as (dy, dx))
    plus ``max_residue_magnitude * tanh`` of a learned residual; masks are sigmoids.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, dilation=1, groups=1,
                 deformable_groups=1, bias=True, max_residue_magnitude=10, pa_frames=2):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         deformable_groups, bias)
        self.max_residue_magnitude = max_residue_magnitude
        self.pa_frames = pa_frames
        self.conv_offset = nn.Sequential(
            nn.Conv2d((1 + pa_frames // 2) * in_channels + pa_frames, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(out_channels, 3 * 9 * deformable_groups, 3, 1, 1),
        )
        self.init_weights()

    def init_weights(self) -> None:
        super().init_weights()
        if hasattr(self, "conv_offset"):  # the last offset layer starts at zero: offsets = the flows
            with torch.no_grad():
                self.conv_offset[-1].weight.zero_()
                self.conv_offset[-1].bias.zero_()

    def forward(self, x, x_flow_warpeds, x_current, flows):
        out = self.conv_offset(torch.cat(list(x_flow_warpeds) + [x_current] + list(flows), dim=1))
        o1, o2, mask = torch.chunk(out, 3, dim=1)
        offset = self.max_residue_magnitude * torch.tanh(torch.cat((o1, o2), dim=1))
        n_flows = max(1, self.pa_frames // 2)
        parts = torch.chunk(offset, n_flows, dim=1)
        offset = torch.cat(
            [p + f.flip(1).repeat(1, p.size(1) // 2, 1, 1) for p, f in zip(parts, flows[:n_flows])], dim=1
        )
        return deform_conv2d(
            x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, torch.sigmoid(mask)
        )


# ----------------------------------------------------------------------------------------------------------
# stages


class Stage(nn.Module):
    """Resize (none/down/up), mutual+self attention group, self attention group, parallel warping."""

    def __init__(
        self,
        in_dim,
        dim,
        input_resolution,
        depth,
        num_heads,
        window_size,
        mul_attn_ratio=0.75,
        mlp_ratio=2.0,
        qkv_bias=True,
        qk_scale=None,
        drop_path=0.0,
        norm_layer=nn.LayerNorm,
        pa_frames=2,
        deformable_groups=16,
        reshape=None,
        max_residue_magnitude=10,
        use_checkpoint_attn=False,
        use_checkpoint_ffn=False,
    ):
        super().__init__()
        self.pa_frames = pa_frames
        if reshape == "none":
            self.reshape = nn.Sequential(_Permute("to_last"), nn.LayerNorm(dim), _Permute("to_first"))
        elif reshape == "down":
            self.reshape = nn.Sequential(
                _Permute("down"), nn.LayerNorm(4 * in_dim), nn.Linear(4 * in_dim, dim), _Permute("to_first")
            )
        elif reshape == "up":
            self.reshape = nn.Sequential(
                _Permute("up"), nn.LayerNorm(in_dim // 4), nn.Linear(in_dim // 4, dim), _Permute("to_first")
            )
        else:
            raise ValueError(f"Stage: reshape must be none/down/up, not {reshape!r}")
        d1 = int(depth * mul_attn_ratio)
        common = dict(
            dim=dim,
            input_resolution=input_resolution,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            qk_scale=qk_scale,
            drop_path=drop_path,
            norm_layer=norm_layer,
            use_checkpoint_ffn=use_checkpoint_ffn,
        )
        self.residual_group1 = TMSAG(
            depth=d1,
            window_size=(2, window_size[1], window_size[2]),
            mut_attn=True,
            use_checkpoint_attn=use_checkpoint_attn,
            **common,
        )
        self.linear1 = nn.Linear(dim, dim)
        # the official code always checkpoints this group's attention (no effect without gradients)
        self.residual_group2 = TMSAG(
            depth=depth - d1, window_size=window_size, mut_attn=False, use_checkpoint_attn=True, **common
        )
        self.linear2 = nn.Linear(dim, dim)
        if pa_frames:
            self.pa_deform = DCNv2PackFlowGuided(
                dim,
                dim,
                3,
                padding=1,
                deformable_groups=deformable_groups,
                max_residue_magnitude=max_residue_magnitude,
                pa_frames=pa_frames,
            )
            self.pa_fuse = Mlp_GEGLU(dim * 3, dim * 3, dim)

    def forward(self, x, flows_backward, flows_forward):
        x = self.reshape(x)
        x = self.linear1(self.residual_group1(x).transpose(1, 4)).transpose(1, 4) + x
        x = self.linear2(self.residual_group2(x).transpose(1, 4)).transpose(1, 4) + x
        if self.pa_frames:
            x = x.transpose(1, 2)  # n d c h w
            x_backward, x_forward = self.parallel_warp(x, flows_backward, flows_forward)
            x = self.pa_fuse(torch.cat([x, x_backward, x_forward], 2).permute(0, 1, 3, 4, 2)).permute(0, 4, 1, 2, 3)
        return x

    def parallel_warp(self, x, flows_backward, flows_forward):
        """Align, for every frame t, the next ``k`` frames (backward) and the previous ``k`` (forward),
        k = pa_frames // 2, with the flows t->t±1..k; missing neighbours at the ends are zeros."""
        n = x.size(1)
        k = self.pa_frames // 2
        outs = []
        for direction, flows in ((1, flows_backward), (-1, flows_forward)):
            aligned = []
            for t in range(n):
                if not 0 <= t + direction < n:
                    aligned.append(torch.zeros_like(x[:, t]))
                    continue
                feats, warped, fl = [], [], []
                for j in range(1, k + 1):
                    src = t + direction * j
                    if 0 <= src < n:
                        # backward flows at level j-1 are indexed by t; forward ones by the later frame - j
                        f = flows[j - 1][:, t if direction == 1 else t - j]
                        feat = x[:, src]
                    else:
                        f = torch.zeros_like(flows[0][:, 0])
                        feat = torch.zeros_like(x[:, t])
                    feats.append(feat)
                    fl.append(f)
                    warped.append(flow_warp(feat, f.permute(0, 2, 3, 1), "bilinear"))
                aligned.append(self.pa_deform(torch.cat(feats, 1), warped, x[:, t], fl))
            outs.append(torch.stack(aligned, 1))
        return outs


# ----------------------------------------------------------------------------------------------------------
# the model


class VRT(nn.Module):
    """Video Restoration Transformer; ``forward(x[b, t, c, h, w]) -> [b, t, c, s*h, s*w]``.

    Arguments are those of the official ``VRT``. The clip length and overlap the engine runs it with are the
    protocol of a pretrained configuration (``ENTRIES`` at the end of this file), not arguments.
    """

    def __init__(
        self,
        upscale=4,
        in_chans=3,
        out_chans=3,
        img_size=(6, 64, 64),
        window_size=(6, 8, 8),
        depths=(8, 8, 8, 8, 8, 8, 8, 4, 4, 4, 4, 4, 4),
        indep_reconsts=(11, 12),
        embed_dims=(120, 120, 120, 120, 120, 120, 120, 180, 180, 180, 180, 180, 180),
        num_heads=(6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6),
        mul_attn_ratio=0.75,
        mlp_ratio=2.0,
        qkv_bias=True,
        qk_scale=None,
        drop_path_rate=0.2,
        norm_layer=nn.LayerNorm,
        spynet_path=None,
        pa_frames=2,
        deformable_groups=16,
        recal_all_flows=False,
        nonblind_denoising=False,
        use_checkpoint_attn=False,
        use_checkpoint_ffn=False,
        no_checkpoint_attn_blocks=(),
        no_checkpoint_ffn_blocks=(),
    ):
        super().__init__()
        if pa_frames not in (2, 4, 6):
            raise ValueError(
                f"VRT: pa_frames={pa_frames} is not supported (2, 4 or 6; 0 is the frame-interpolation variant)"
            )
        if upscale != 1 and (upscale & (upscale - 1)) and upscale != 3:
            raise ValueError(f"VRT: upscale {upscale} is not supported (1, 3 or a power of 2)")
        if len(depths) < 8 or len(embed_dims) != len(depths) or len(num_heads) != len(depths):
            raise ValueError("VRT: depths, embed_dims and num_heads need one entry per stage (at least 8)")
        self.in_chans = in_chans
        self.out_chans = out_chans
        self.upscale = upscale
        self.pa_frames = pa_frames
        self.recal_all_flows = recal_all_flows
        self.nonblind_denoising = nonblind_denoising
        self.window_size = tuple(window_size)
        img_size = tuple(img_size)

        # vsrkit model contract
        self.spec = ModelSpec(
            scale=int(upscale),
            temporal=Temporal("sequence"),
            channels=int(out_chans),
            size_multiple=8,  # three 2x pixel-unshuffles (windows are padded internally)
            # SpyNet needs h, w > 32; mutual attention needs the whole spatial window at the 1/8 stage
            min_size=max(33, 8 * int(window_size[1]), 8 * int(window_size[2])),
            min_frames=1 + pa_frames // 2,  # flows to t±pa_frames/2 are composed from t±1 flows
            # working memory per input pixel per frame of one call, for --max-memory. Measured peaks:
            # the small golden config (width 24) 15-19 KB, REDS 6f (width 180, bench_vrt_memory.py) 20-27 KB
            memory_per_pixel=int(20 * 1024 + 8 * 1024 * max(embed_dims) / 180),
            protocol=Protocol(clip_overlap=2),
        )

        conv_first_in = in_chans * (1 + 2 * 4) + (1 if nonblind_denoising else 0)
        self.conv_first = nn.Conv3d(conv_first_in, embed_dims[0], kernel_size=(1, 3, 3), padding=(0, 1, 1))
        self.spynet = SpyNet(spynet_path)

        total = sum(depths)
        dpr = [drop_path_rate * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
        ck_attn = [use_checkpoint_attn and i not in no_checkpoint_attn_blocks for i in range(len(depths))]
        ck_ffn = [use_checkpoint_ffn and i not in no_checkpoint_ffn_blocks for i in range(len(depths))]
        reshapes = ["none", "down", "down", "down", "up", "up", "up"]
        scales = [1, 2, 4, 8, 4, 2, 1]
        for i in range(7):
            setattr(
                self,
                f"stage{i + 1}",
                Stage(
                    in_dim=embed_dims[i - 1],
                    dim=embed_dims[i],
                    input_resolution=(img_size[0], img_size[1] // scales[i], img_size[2] // scales[i]),
                    depth=depths[i],
                    num_heads=num_heads[i],
                    mul_attn_ratio=mul_attn_ratio,
                    window_size=self.window_size,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    qk_scale=qk_scale,
                    drop_path=dpr[sum(depths[:i]) : sum(depths[: i + 1])],
                    norm_layer=norm_layer,
                    pa_frames=pa_frames,
                    deformable_groups=deformable_groups,
                    reshape=reshapes[i],
                    max_residue_magnitude=10 / scales[i],
                    use_checkpoint_attn=ck_attn[i],
                    use_checkpoint_ffn=ck_ffn[i],
                ),
            )
        self.stage8 = nn.ModuleList(
            [
                nn.Sequential(
                    _Permute("to_last"),
                    nn.LayerNorm(embed_dims[6]),
                    nn.Linear(embed_dims[6], embed_dims[7]),
                    _Permute("to_first"),
                )
            ]
        )
        for i in range(7, len(depths)):
            self.stage8.append(
                RTMSA(
                    dim=embed_dims[i],
                    input_resolution=img_size,
                    depth=depths[i],
                    num_heads=num_heads[i],
                    window_size=(1, window_size[1], window_size[2]) if i in indep_reconsts else self.window_size,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    qk_scale=qk_scale,
                    drop_path=dpr[sum(depths[:i]) : sum(depths[: i + 1])],
                    norm_layer=norm_layer,
                    use_checkpoint_attn=ck_attn[i],
                    use_checkpoint_ffn=ck_ffn[i],
                )
            )
        self.norm = norm_layer(embed_dims[-1])
        self.conv_after_body = nn.Linear(embed_dims[-1], embed_dims[0])

        if upscale == 1:
            self.conv_last = nn.Conv3d(embed_dims[0], out_chans, kernel_size=(1, 3, 3), padding=(0, 1, 1))
        else:
            nf = 64
            self.conv_before_upsample = nn.Sequential(
                nn.Conv3d(embed_dims[0], nf, kernel_size=(1, 3, 3), padding=(0, 1, 1)), nn.LeakyReLU(inplace=True)
            )
            self.upsample = self._make_upsample(upscale, nf)
            self.conv_last = nn.Conv3d(nf, out_chans, kernel_size=(1, 3, 3), padding=(0, 1, 1))

    @staticmethod
    def _make_upsample(scale: int, nf: int) -> nn.Sequential:
        """Conv3d(1x3x3) -> per-frame pixel shuffle -> LeakyReLU(0.1), repeated, then a Conv3d."""
        steps = [3] if scale == 3 else [2] * int(math.log2(scale))
        layers: list[nn.Module] = []
        for r in steps:
            layers += [
                nn.Conv3d(nf, r * r * nf, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
                _Permute("swap12"),
                _PixelShuffle(r),
                _Permute("swap12"),
                nn.LeakyReLU(negative_slope=0.1, inplace=True),
            ]
        layers.append(nn.Conv3d(nf, nf, kernel_size=(1, 3, 3), padding=(0, 1, 1)))
        return nn.Sequential(*layers)

    # -- flows -------------------------------------------------------------------------------------------

    def spynet_flows(self, ref: torch.Tensor, supp: torch.Tensor) -> list[torch.Tensor]:
        """SpyNet flows ref -> supp at scales 1, 1/2, 1/4, 1/8 of ``ref[n, 3, h, w]`` (finest first).

        As the official VRT SpyNet: the pair is resized to multiples of 32, and the flows of pyramid levels
        5, 4, 3, 2 are resized (bilinear) to (h, w) // 2^l and rescaled by the size ratio per axis.
        """
        h, w = ref.shape[2:]
        h32, w32 = math.ceil(h / 32.0) * 32, math.ceil(w / 32.0) * 32
        if h32 // 32 < 2 or w32 // 32 < 2:
            raise ValueError(f"VRT: frames of {h}x{w} are too small for SpyNet (height and width must be > 32)")
        ref = F.interpolate(ref, size=(h32, w32), mode="bilinear", align_corners=False)
        supp = F.interpolate(supp, size=(h32, w32), mode="bilinear", align_corners=False)
        pyramid = self.spynet.pyramid_flows(ref, supp)  # 6 levels, coarsest first
        out = []
        for level in (5, 4, 3, 2):
            s = 2 ** (5 - level)
            flow = F.interpolate(pyramid[level], size=(h // s, w // s), mode="bilinear", align_corners=False)
            flow = torch.stack(
                (flow[:, 0] * (float(w // s) / float(w32 // s)), flow[:, 1] * (float(h // s) / float(h32 // s))), 1
            )
            out.append(flow)
        return out

    def get_flow_2frames(self, x: torch.Tensor):
        """Flows between t and t+1 at four scales: backward (t -> t+1), forward (t+1 -> t); (b, t-1, 2, h', w')."""
        b, n, c, h, w = x.shape
        x_1 = x[:, :-1].reshape(-1, c, h, w)
        x_2 = x[:, 1:].reshape(-1, c, h, w)
        backward = [f.view(b, n - 1, 2, h // 2**i, w // 2**i) for i, f in enumerate(self.spynet_flows(x_1, x_2))]
        forward = [f.view(b, n - 1, 2, h // 2**i, w // 2**i) for i, f in enumerate(self.spynet_flows(x_2, x_1))]
        return backward, forward

    @staticmethod
    def _compose(f_near: torch.Tensor, f_far: torch.Tensor) -> torch.Tensor:
        """Flow a->c from a->b (f_near) and b->c (f_far): f_near + f_far warped by f_near."""
        return f_near + flow_warp(f_far, f_near.permute(0, 2, 3, 1))

    def get_flow_4frames(self, flows_forward, flows_backward):
        """Flows t -> t+2 (backward) and t -> t-2 (forward) composed from the one-step flows."""
        d = flows_forward[0].shape[1]
        back2 = [torch.stack([self._compose(f[:, i], f[:, i + 1]) for i in range(d - 1)], 1) for f in flows_backward]
        fwd2 = [torch.stack([self._compose(f[:, i], f[:, i - 1]) for i in range(1, d)], 1) for f in flows_forward]
        return back2, fwd2

    def get_flow_6frames(self, flows_forward, flows_backward, flows_forward2, flows_backward2):
        """Flows t -> t+3 and t -> t-3 from the two-step and one-step flows."""
        d = flows_forward2[0].shape[1]
        back3 = [
            torch.stack([self._compose(f2[:, i], f1[:, i + 2]) for i in range(d - 1)], 1)
            for f1, f2 in zip(flows_backward, flows_backward2)
        ]
        fwd3 = [
            torch.stack([self._compose(f2[:, i], f1[:, i - 1]) for i in range(1, d)], 1)
            for f1, f2 in zip(flows_forward, flows_forward2)
        ]
        return back3, fwd3

    def get_flows(self, x: torch.Tensor):
        """Lists of flows (backward, forward): 4 scales for t±1, then 4 for t±2 and 4 for t±3 as pa_frames."""
        fb, ff = self.get_flow_2frames(x)
        flows_backward, flows_forward = list(fb), list(ff)
        if self.pa_frames >= 4:
            fb2, ff2 = self.get_flow_4frames(ff, fb)
            flows_backward += fb2
            flows_forward += ff2
            if self.pa_frames == 6:
                fb3, ff3 = self.get_flow_6frames(ff, fb, ff2, fb2)
                flows_backward += fb3
                flows_forward += ff3
        return flows_backward, flows_forward

    @staticmethod
    def get_aligned_image_2frames(x, flows_backward, flows_forward):
        """Each frame's next (backward) and previous (forward) frame warped to it, four nearest samples each."""
        n = x.size(1)
        pad = torch.zeros_like(x[:, 0]).repeat(1, 4, 1, 1)
        back = [_flow_warp_nearest4(x[:, i + 1], flows_backward[:, i].permute(0, 2, 3, 1)) for i in range(n - 1)]
        fwd = [_flow_warp_nearest4(x[:, i - 1], flows_forward[:, i - 1].permute(0, 2, 3, 1)) for i in range(1, n)]
        return torch.stack(back + [pad], 1), torch.stack([pad] + fwd, 1)

    # -- body --------------------------------------------------------------------------------------------

    def forward_features(self, x, flows_backward, flows_forward):
        x1 = self.stage1(x, flows_backward[0::4], flows_forward[0::4])
        x2 = self.stage2(x1, flows_backward[1::4], flows_forward[1::4])
        x3 = self.stage3(x2, flows_backward[2::4], flows_forward[2::4])
        x4 = self.stage4(x3, flows_backward[3::4], flows_forward[3::4])
        x = self.stage5(x4, flows_backward[2::4], flows_forward[2::4])
        x = self.stage6(x + x3, flows_backward[1::4], flows_forward[1::4])
        x = self.stage7(x + x2, flows_backward[0::4], flows_forward[0::4])
        x = x + x1
        for layer in self.stage8:
            x = layer(x)
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"VRT expects (b, t, c, h, w), got shape {tuple(x.shape)}")
        if min(x.shape[-2:]) < self.spec.min_size:
            raise ValueError(
                f"VRT: frames of {x.shape[-2]}x{x.shape[-1]} are too small: height and width must be at least "
                f"{self.spec.min_size} (SpyNet needs > 32, mutual attention a full {self.window_size[1]}x"
                f"{self.window_size[2]} window at 1/8 scale)"
            )
        if x.size(1) < self.spec.min_frames:
            raise ValueError(f"VRT with pa_frames={self.pa_frames} needs at least {self.spec.min_frames} frames")
        if self.nonblind_denoising:
            x, noise_level_map = x[:, :, : self.in_chans], x[:, :, self.in_chans :]
        x_lq = x
        flows_backward, flows_forward = self.get_flows(x)
        x_backward, x_forward = self.get_aligned_image_2frames(x, flows_backward[0], flows_forward[0])
        x = torch.cat([x, x_backward, x_forward], 2)
        if self.nonblind_denoising:
            x = torch.cat([x, noise_level_map], 2)
        x = self.conv_first(x.transpose(1, 2))
        x = x + self.conv_after_body(self.forward_features(x, flows_backward, flows_forward).transpose(1, 4)).transpose(
            1, 4
        )
        if self.upscale == 1:
            return self.conv_last(x).transpose(1, 2) + x_lq
        x = self.conv_last(self.upsample(self.conv_before_upsample(x))).transpose(1, 2)
        _, _, c, h, w = x.shape
        return x + F.interpolate(x_lq, size=(c, h, w), mode="trilinear", align_corners=False)


# ==========================================================================================================
# The family: names, recognition, training defaults

_VRT_RELEASES = "https://github.com/JingyunLiang/VRT/releases/download/v0.0/"
_VRT_LICENCE = "CC BY-NC 4.0"

VRT_REDS = Protocol(clip=40, clip_overlap=2)  # VRT README: REDS models tested with --tile 40 (frames), overlap 2
VRT_VIMEO = Protocol(clip=32, clip_overlap=2)  # VRT README: Vimeo models on Vid4 with --tile 32
VRT_DEFAULT = Protocol(clip_overlap=2)

_BASE = dict(
    upscale=4,
    depths=[8, 8, 8, 8, 8, 8, 8, 4, 4, 4, 4, 4, 4],
    indep_reconsts=[11, 12],
    embed_dims=[120, 120, 120, 120, 120, 120, 120, 180, 180, 180, 180, 180, 180],
    num_heads=[6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6],
)

# official x4 video SR configs (main_test_vrt.py prepare_model_dataset), by release file name
OFFICIAL_CONFIGS: dict[str, dict] = {
    "001_VRT_videosr_bi_REDS_6frames": dict(_BASE, img_size=[6, 64, 64], window_size=[6, 8, 8], pa_frames=2,
                                            deformable_groups=12),
    "002_VRT_videosr_bi_REDS_16frames": dict(_BASE, img_size=[16, 64, 64], window_size=[8, 8, 8], pa_frames=6,
                                             deformable_groups=24),
    "003_VRT_videosr_bi_Vimeo_7frames": dict(_BASE, img_size=[8, 64, 64], window_size=[8, 8, 8], pa_frames=4,
                                             deformable_groups=16),
    "004_VRT_videosr_bd_Vimeo_7frames": dict(_BASE, img_size=[8, 64, 64], window_size=[8, 8, 8], pa_frames=4,
                                             deformable_groups=16),
}
# the protocol of the official test commands (README): REDS models --tile 40, Vimeo models on Vid4 --tile 32
OFFICIAL_PROTOCOL = {
    "001_VRT_videosr_bi_REDS_6frames": VRT_REDS,
    "002_VRT_videosr_bi_REDS_16frames": VRT_REDS,
    "003_VRT_videosr_bi_Vimeo_7frames": VRT_VIMEO,
    "004_VRT_videosr_bd_Vimeo_7frames": VRT_VIMEO,
}


def _entry(name: str, release: str, summary: str) -> ModelEntry:
    return ModelEntry(
        name=name,
        arch="VRT",
        kwargs=dict(OFFICIAL_CONFIGS[release]),
        # sha256 not published: empty; the first download is pinned in the cache and a later one that differs refused
        weights=WeightsSource(filename=f"{release}.pth", sha256="", url=f"{_VRT_RELEASES}{release}.pth",
                              licence=_VRT_LICENCE),
        summary=summary,
        protocol=OFFICIAL_PROTOCOL[release],
    )


ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry(name="vrt", arch="VRT", kwargs={}, summary="VRT x4, default hyper-parameters, random weights"),
    _entry("vrt-reds-6f", "001_VRT_videosr_bi_REDS_6frames", "VRT x4 trained on REDS (BI, 6-frame clips)"),
    _entry("vrt-reds-16f", "002_VRT_videosr_bi_REDS_16frames", "VRT x4 trained on REDS (BI, 16-frame clips)"),
    _entry("vrt-vimeo-bi-7f", "003_VRT_videosr_bi_Vimeo_7frames", "VRT x4 trained on Vimeo-90K (BI)"),
    _entry("vrt-vimeo-bd-7f", "004_VRT_videosr_bd_Vimeo_7frames", "VRT x4 trained on Vimeo-90K (BD, blur-down)"),
)


def default_protocol(arch: str, kwargs: dict) -> Protocol:
    """A VRT checkpoint by file: chunks that share 2 frames, as the official test clips do."""
    return VRT_DEFAULT


def _window_from_table(table_rows: int, tokens: int, wd: int | None = None) -> tuple[int, int, int] | None:
    """(wd, wh, ww) with wd*wh*ww == tokens and (2wd-1)(2wh-1)(2ww-1) == table_rows (square windows first)."""
    cands = []
    for d in [wd] if wd else range(1, tokens + 1):
        if tokens % d:
            continue
        hw = tokens // d
        for h in range(1, hw + 1):
            if hw % h == 0 and (2 * d - 1) * (2 * h - 1) * (2 * (hw // h) - 1) == table_rows:
                cands.append((d, h, hw // h))
    if not cands:
        return None
    cands.sort(key=lambda c: (c[1] != c[2], c))
    return cands[0]


def detect_vrt(state_dict: Mapping[str, torch.Tensor], filename: str | None = None) -> tuple[str, dict] | None:
    """Recognise a VRT checkpoint and read its constructor kwargs from key names and shapes."""
    sd = state_dict
    if not ("conv_first.weight" in sd and "stage1.residual_group1.blocks.0.attn.qkv_mut.weight" in sd and "stage8.0.1.weight" in sd):
        return None

    def shape(k: str) -> tuple[int, ...]:
        if k not in sd:
            raise VsrkitError(f"VRT checkpoint: key {k!r} is missing")
        return tuple(sd[k].shape)

    kw: dict = {}
    n8 = 0
    while f"stage8.{n8 + 1}.linear.weight" in sd:
        n8 += 1
    embed, heads, depths = [], [], []
    for i in range(7):
        p = f"stage{i + 1}"
        embed.append(shape(f"{p}.residual_group1.blocks.0.norm1.weight")[0])
        heads.append(shape(f"{p}.residual_group1.blocks.0.attn.relative_position_bias_table")[1])
        depths.append((count_blocks(sd, f"{p}.residual_group1.blocks."), count_blocks(sd, f"{p}.residual_group2.blocks.")))
    for j in range(1, n8 + 1):
        p = f"stage8.{j}.residual_group"
        embed.append(shape(f"{p}.blocks.0.norm1.weight")[0])
        heads.append(shape(f"{p}.blocks.0.attn.relative_position_bias_table")[1])
        depths.append((count_blocks(sd, f"{p}.blocks."), 0))
    kw["embed_dims"] = embed
    kw["num_heads"] = heads
    kw["depths"] = [a + b for a, b in depths]
    # mul_attn_ratio: int(depth * r) mutual blocks in every stage 1-7
    for r in (0.75, *sorted({a / (a + b) for a, b in depths[:7]})):
        if all(int((a + b) * r) == a for a, b in depths[:7]):
            if r != 0.75:
                kw["mul_attn_ratio"] = r
            break
    else:
        raise VsrkitError("VRT checkpoint: cannot tell mul_attn_ratio (mutual-attention blocks per stage differ)")

    # spatial window from the mutual-attention sine position encoding and table (temporal window 2)
    pb = shape("stage1.residual_group1.blocks.0.attn.position_bias")
    t1 = shape("stage1.residual_group1.blocks.0.attn.relative_position_bias_table")[0]
    w1 = _window_from_table(t1, 2 * pb[1], wd=2)
    if w1 is None:
        raise VsrkitError("VRT checkpoint: cannot tell window_size (mutual-attention table does not fit)")
    wh, ww = w1[1], w1[2]
    # temporal window from a full-window self-attention group
    wd = None
    indep = []
    full_groups = [f"stage{i + 1}.residual_group2" for i in range(7) if depths[i][1] > 0]
    for p in full_groups:
        tokens = shape(f"{p}.blocks.0.attn.relative_position_index")[0]
        if tokens % (wh * ww) == 0:
            wd = tokens // (wh * ww)
            break
    stage8_wd = []
    for j in range(1, n8 + 1):
        tokens = shape(f"stage8.{j}.residual_group.blocks.0.attn.relative_position_index")[0]
        stage8_wd.append(tokens // (wh * ww))
    if wd is None:
        others = [d for d in stage8_wd if d != 1]
        if others:
            wd = others[0]
        elif stage8_wd:
            wd = 1
        else:
            raise VsrkitError("VRT checkpoint: cannot tell window_size (no full-window attention block)")
    if wd != 1:
        indep = [7 + j for j, d in enumerate(stage8_wd) if d == 1]
    kw["window_size"] = [wd, wh, ww]
    kw["indep_reconsts"] = indep

    dim0 = embed[0]
    c_in = shape("stage1.pa_deform.conv_offset.0.weight")[1]
    pa = (c_in - dim0) / (dim0 / 2 + 1)
    if pa not in (2, 4, 6):
        raise VsrkitError(f"VRT checkpoint: cannot tell pa_frames (conv_offset takes {c_in} channels)")
    kw["pa_frames"] = int(pa)
    dg_out = shape("stage1.pa_deform.conv_offset.6.weight")[0]
    kw["deformable_groups"] = dg_out // 27
    fc = shape("stage1.residual_group1.blocks.0.mlp.fc11.weight")[0]
    if fc != 2 * dim0:
        kw["mlp_ratio"] = fc / dim0
    if "stage1.residual_group1.blocks.0.attn.qkv_self.bias" not in sd:
        kw["qkv_bias"] = False

    cf = shape("conv_first.weight")[1]
    if cf % 9 == 1:
        kw["nonblind_denoising"] = True
        kw["in_chans"] = (cf - 1) // 9
    else:
        kw["in_chans"] = cf // 9
    kw["out_chans"] = shape("conv_last.weight")[0]
    if "upsample.0.weight" in sd:
        nf = shape("upsample.0.weight")[1]
        convs = [k for k in sd if k.startswith("upsample.") and k.endswith(".weight")]
        if shape("upsample.0.weight")[0] == 9 * nf:
            kw["upscale"] = 3
        else:
            kw["upscale"] = 2 ** (len(convs) - 1)
    else:
        kw["upscale"] = 1

    # the official presets: img_size (no effect on the forward pass)
    plain = kw["in_chans"] == kw["out_chans"] == 3 and not {"mul_attn_ratio", "mlp_ratio", "qkv_bias", "nonblind_denoising"} & set(kw)
    for cfg in OFFICIAL_CONFIGS.values():
        if plain and all(kw.get(k) == v for k, v in cfg.items() if k != "img_size"):
            kw["img_size"] = cfg["img_size"]
            break
    return "VRT", kw


FAMILY = Family(
    "vrt",
    ENTRIES,
    rules=(Rule(("conv_first.weight", "stage1.residual_group1.blocks.0.attn.qkv_mut.weight"), detect_vrt),),
    default_protocol=default_protocol,
    # KAIR's VRT recipes: SpyNet and the deformable alignment learn at 1/8 of the rate (fix_lr_mul) and are the
    # modules frozen for the first iterations (fix_keys; how long: the recipe's freeze.until)
    training={"optim": {"lr_mul": {"spynet": 0.125, "deform": 0.125}}, "freeze": {"keys": ["spynet", "deform"]}},
)
