"""Modulated deformable convolution (DCNv2) in pure PyTorch, with ``torchvision.ops.deform_conv2d`` semantics.

No compiled extension and no torchvision. The sampling is ``grid_sample`` over ``batch * deformable_groups``
with every kernel tap stacked along the height (bilinear, zeros outside), times the mask; the convolution
is then a 1x1 convolution / matmul of those columns with the reshaped weight. Two paths:

- inference (no gradient needed, not tracing): output rows in chunks whose columns (~16 MB) stay in cache,
  the sampling grid written in place, and oneDNN for the 1x1 convolution on CPU;
- differentiable / ONNX-traceable: all columns at once and one batched matmul (input, offset, mask,
  weight and bias all get gradients; exports with ``GridSample``, opset >= 16).

Layout (as torchvision and BasicSR):

- ``offset[b, 2 * dg * kh * kw, ho, wo]``: for deformable group ``g`` and kernel tap ``k = i * kw + j``,
  channel ``2 * (g * kh * kw + k)`` is the vertical shift ``dy`` and the next one the horizontal ``dx``;
- ``mask[b, dg * kh * kw, ho, wo]``: channel ``g * kh * kw + k``;
- the input channels are split into ``dg`` consecutive deformable groups, and independently into
  ``groups = in_channels // weight.shape[1]`` consecutive convolution groups.

Tap ``(i, j)`` of output pixel ``(y, x)`` samples the input at
``(y * stride - pad + i * dilation + dy, x * stride - pad + j * dilation + dx)`` bilinearly; corners outside
the image count as zero, so a position ``<= -1`` or ``>= size`` gives zero (torchvision's CPU/CUDA kernel).
That is exactly ``grid_sample(align_corners=True, padding_mode='zeros')`` on pixel coordinates.

Gradients follow torchvision's kernel too. Its offset gradient takes the bilinear cell at ``floor(p)``, so at
an integer position ``p`` it is the forward difference (value at ``p + 1`` minus value at ``p``, zero outside
the image: at ``-1`` it is the first pixel, at ``size - 1`` minus the last one), and with the official
zero-initialised ``conv_offset`` every sample is at an integer position. grid_sample's own gradient is the same
once it gets ``p`` back exactly from the normalised coordinate, which holds when the scale ``2 / (size - 1)`` is
a power of two: so the differentiable path (when not tracing) samples the input zero-padded at the bottom and
right to ``2**k + 1`` rows and columns (64 -> 65, 66 -> 129). The values are unchanged and the backward is still
grid_sample's, so the only extra work is that copy. (Non-integer positions: float32 normalised coordinates
resolve about ``size * 2**-25`` px, as before, so a position that close below an integer may take the next
cell.) The inference path keeps the unpadded input.

Under bf16/fp16 autocast the sampling (coordinates, ``grid_sample`` and the mask product) runs in float32;
the matmul with the weight then follows autocast like a convolution would.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.utils import _pair

from vsrkit.models.layers.common import memory_format

__all__ = ["deform_conv2d", "ModulatedDeformConv2d", "DCNv2Pack"]


# elements of one chunk of sampled columns in the no-grad path: 16 MB of float32 stays in a large L3. Smaller
# chunks are ~5% faster on an idle CPU (1 << 20: 95 ms vs 100 ms for 64 ch, 180x320, dg 8, one thread), but
# each chunk is a few parallel regions, and with more OpenMP threads than free cores every region waits for
# a descheduled thread: 36 chunks took 2.6 s there against 0.65 s for these 9 (two threads, both cores busy).
_CHUNK_ELEMS = 1 << 22

# differentiable path: sample a zero-padded input of 2**k + 1 rows/columns, for torchvision's offset gradient at
# integer positions (``_base_grid``). False gives the former grid (backward differences at some integer positions);
# kept for the benchmark and the test that shows the difference.
_EXACT_GRID = True


def _exact_size(n: int) -> int:
    """Smallest ``2**k + 1 >= max(n, 2)``: a size whose align_corners scale ``2 / (size - 1)`` is a power of two."""
    return (1 << max(0, n - 2).bit_length()) + 1


def _base_grid(
    x: torch.Tensor,
    kh: int,
    kw: int,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    ho: int,
    wo: int,
    exact: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float, float]:
    """(input, base_y[taps, ho, 1], base_x[taps, 1, wo], sy, sx) in grid_sample's normalised coordinates.

    A sample at pixel position ``p`` of the (possibly padded) input is at ``base + offset * s``.

    ``exact``: zero-pad the bottom and right of the input to ``2**k + 1`` rows and columns, so that ``s`` is a
    power of two and ``grid_sample`` gets integer pixel positions back exactly from the normalised ones. Its
    bilinear cell is then ``floor(p)`` there, as in torchvision's kernel, so the gradient with respect to the
    position is the forward difference (value at ``p + 1`` minus value at ``p``, zero outside the image).
    Without it, ``p`` comes back as ``p - tiny`` at some integer positions and the gradient there is the
    backward difference. The extra rows and columns are zeros, like grid_sample's own padding, so the
    sampled values do not change.
    """
    _, _, h, w = x.shape
    if exact:
        x = F.pad(x, (0, _exact_size(w) - w, 0, _exact_size(h) - h))
        h, w = x.shape[-2:]
    elif h == 1 or w == 1:
        # grid_sample cannot address a size-1 axis with align_corners=True (its scale is 0): pad with one
        # zero row/column on each side and shift the sampling positions by one.
        x = F.pad(x, (1, 1, 1, 1))
        padding = (padding[0] - 1, padding[1] - 1)
        h, w = h + 2, w + 2
    dev, dtype = x.device, x.dtype
    ys = torch.arange(ho, device=dev, dtype=dtype) * stride[0] - padding[0]
    xs = torch.arange(wo, device=dev, dtype=dtype) * stride[1] - padding[1]
    ty = torch.arange(kh, device=dev, dtype=dtype) * dilation[0]
    tx = torch.arange(kw, device=dev, dtype=dtype) * dilation[1]
    base_y = (ty.view(kh, 1, 1) + ys.view(1, 1, ho)).expand(kh, kw, ho).reshape(kh * kw, ho, 1)
    base_x = (tx.view(1, kw, 1) + xs.view(1, 1, wo)).expand(kh, kw, wo).reshape(kh * kw, 1, wo)
    # normalised coordinates for align_corners=True: -1 is pixel 0, +1 is pixel size-1
    sy, sx = 2.0 / (h - 1), 2.0 / (w - 1)
    return x, base_y * sy - 1.0, base_x * sx - 1.0, sy, sx


def _sample_columns(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor | None,
    kh: int,
    kw: int,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    ho: int,
    wo: int,
    exact: bool = True,
) -> torch.Tensor:
    """The modulated, deformed im2col: ``[b, c, kh * kw, ho * wo]`` (channel-major, then tap); differentiable.

    ``exact``: torchvision's offset gradient at integer positions (see ``_base_grid``).
    """
    b, c = x.shape[:2]
    taps = kh * kw
    dg = offset.shape[1] // (2 * taps)
    x, base_y, base_x, sy, sx = _base_grid(x, kh, kw, stride, padding, dilation, ho, wo, exact)
    h, w = x.shape[-2:]
    off = offset.view(b * dg, taps, 2, ho, wo)
    gy = torch.add(base_y, off[:, :, 0], alpha=sy)
    gx = torch.add(base_x, off[:, :, 1], alpha=sx)
    grid = torch.stack((gx, gy), dim=-1)
    cols = F.grid_sample(
        x.reshape(b * dg, c // dg, h, w),
        grid.view(b * dg, taps * ho, wo, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )  # [b*dg, c/dg, taps*ho, wo]
    cols = cols.view(b * dg, c // dg, taps, ho * wo)
    if mask is not None:
        cols = cols * mask.reshape(b * dg, 1, taps, ho * wo)
    return cols.view(b, c, taps, ho * wo)


def _deform_conv2d_nograd(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    mask: torch.Tensor | None,
    ho: int,
    wo: int,
) -> torch.Tensor:
    """Inference path: output rows in chunks whose sampled columns stay in cache, each one grid_sample,
    an in-place mask product and a 1x1 convolution (oneDNN on CPU) with the reshaped weight."""
    b, c = input.shape[:2]
    c_out, cpg, kh, kw = weight.shape
    taps = kh * kw
    dg = offset.shape[1] // (2 * taps)
    groups = c // cpg
    dev = input.device.type
    autocast_on = torch.is_autocast_enabled(dev)
    sample_dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=dev, enabled=False):
        x, base_y, base_x, sy, sx = _base_grid(input.to(sample_dtype), kh, kw, stride, padding, dilation, ho, wo)
        h, w = x.shape[-2:]
        xg = x.reshape(b * dg, c // dg, h, w)
        off = offset.to(sample_dtype).view(b * dg, taps, 2, ho, wo)
        m = None if mask is None else mask.to(sample_dtype).view(b * dg, 1, taps, ho, wo)
    rows = max(1, min(ho, _CHUNK_ELEMS // max(1, b * c * taps * wo)))
    grid = xg.new_empty(b * dg, taps, rows, wo, 2)
    w1 = weight.reshape(c_out, cpg * taps, 1, 1)
    col_dtype = sample_dtype if autocast_on else input.dtype
    use_onednn = (
        input.device.type == "cpu"
        and not autocast_on
        and col_dtype == torch.float32
        and weight.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
    )
    outs = []
    for r0 in range(0, ho, rows):
        r1 = min(ho, r0 + rows)
        r = r1 - r0
        with torch.autocast(device_type=dev, enabled=False):
            g = grid[:, :, :r]
            torch.add(base_x, off[:, :, 1, r0:r1], alpha=sx, out=g[..., 0])
            torch.add(base_y[:, r0:r1], off[:, :, 0, r0:r1], alpha=sy, out=g[..., 1])
            cols = F.grid_sample(
                xg, g.reshape(b * dg, taps * r, wo, 2), mode="bilinear", padding_mode="zeros", align_corners=True
            )
            if m is not None:
                cols.view(b * dg, c // dg, taps, r, wo).mul_(m[:, :, :, r0:r1])
            cols = cols.view(b, c * taps, r, wo).to(col_dtype)
        if use_onednn:
            # F.conv2d sends 1x1 convolutions to a slow GEMM path when single-threaded; oneDNN is ~2x faster
            outs.append(torch.ops.aten.mkldnn_convolution(cols, w1, bias, [0, 0], [1, 1], [1, 1], groups))
        else:
            outs.append(F.conv2d(cols, w1, bias, groups=groups))
    out = outs[0] if len(outs) == 1 else torch.cat(outs, 2)
    # the columns are sampled channel-major, so the 1x1 convolution's output is too; a channels-last input
    # gets a channels-last output (one copy of the output, 1/taps of the columns), so the next layer does not
    # change layouts
    return out.contiguous(memory_format=memory_format(input))


# set by ``onnx_deform_conv``: trace deform_conv2d as one ONNX ``DeformConv`` node (opset 19), which
# onnxruntime runs natively; otherwise it exports as its sampling graph (GridSample, any opset >= 16)
_ONNX_DEFORM_CONV = False


class onnx_deform_conv:  # noqa: N801 - used as a context manager, like torch's flags
    """``with onnx_deform_conv(): torch.onnx.export(...)``: deformable convolutions export as ``DeformConv``."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    def __enter__(self) -> None:
        global _ONNX_DEFORM_CONV
        self._before, _ONNX_DEFORM_CONV = _ONNX_DEFORM_CONV, self.enabled

    def __exit__(self, *exc) -> None:
        global _ONNX_DEFORM_CONV
        _ONNX_DEFORM_CONV = self._before


class _DeformConvOp(torch.autograd.Function):
    """``deform_conv2d`` as one traced node; ``symbolic`` writes ONNX's DeformConv (same layouts as ours)."""

    @staticmethod
    def forward(ctx, input, offset, weight, bias, mask, stride, padding, dilation):  # noqa: ARG004
        kh, kw = weight.shape[-2:]
        ho = (input.shape[2] + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        wo = (input.shape[3] + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        return _deform_conv2d_nograd(input, offset, weight, bias, stride, padding, dilation, mask, ho, wo)

    @staticmethod
    def symbolic(g, input, offset, weight, bias, mask, stride, padding, dilation):
        from torch.onnx import symbolic_helper as sh

        # channel counts are static (only the batch and spatial sizes may be dynamic)
        c_out, c_per_group, kh, kw = sh._get_tensor_sizes(weight)
        groups = sh._get_tensor_sizes(input)[1] // c_per_group
        dg = sh._get_tensor_sizes(offset)[1] // (2 * kh * kw)
        if sh._is_none(bias):
            bias = g.op("Constant", value_t=torch.zeros(c_out))
        args = [input, weight, offset, bias] + ([] if sh._is_none(mask) else [mask])
        return g.op(
            "DeformConv", *args, kernel_shape_i=[kh, kw], strides_i=list(stride), dilations_i=list(dilation),
            pads_i=[padding[0], padding[1], padding[0], padding[1]], group_i=groups, offset_group_i=dg,
        )


def _check_shapes(input, offset, weight, mask, dg, ho, wo) -> None:
    b, c = input.shape[:2]
    c_out, c_per_group, kh, kw = weight.shape
    taps = kh * kw
    if c_per_group == 0 or c % c_per_group:
        raise ValueError(f"deform_conv2d: weight takes {c_per_group} channels per group, input has {c}")
    groups = c // c_per_group
    if c_out % groups:
        raise ValueError(f"deform_conv2d: {c_out} output channels are not divisible by {groups} groups")
    if offset.shape[1] % (2 * taps) or dg == 0:
        raise ValueError(f"deform_conv2d: offset has {offset.shape[1]} channels, not a multiple of 2*{taps}")
    if c % dg:
        raise ValueError(f"deform_conv2d: {c} input channels are not divisible by {dg} deformable groups")
    if tuple(offset.shape) != (b, 2 * dg * taps, ho, wo):
        raise ValueError(f"deform_conv2d: offset shape {tuple(offset.shape)} != {(b, 2 * dg * taps, ho, wo)}")
    if mask is not None and tuple(mask.shape) != (b, dg * taps, ho, wo):
        raise ValueError(f"deform_conv2d: mask shape {tuple(mask.shape)} != {(b, dg * taps, ho, wo)}")
    if ho <= 0 or wo <= 0:
        raise ValueError(f"deform_conv2d: empty output {ho}x{wo}")


def deform_conv2d(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Deformable convolution v1 (``mask=None``) or v2 (modulated), as ``torchvision.ops.deform_conv2d``.

    Args:
        input: ``[b, c_in, h, w]``.
        offset: ``[b, 2 * dg * kh * kw, ho, wo]``, (dy, dx) pairs per deformable group, then per tap.
        weight: ``[c_out, c_in // groups, kh, kw]``.
        bias: ``[c_out]`` or None.
        mask: ``[b, dg * kh * kw, ho, wo]`` or None (all ones).

    Returns:
        ``[b, c_out, ho, wo]`` with ``ho = (h + 2 * pad - dilation * (kh - 1) - 1) // stride + 1``.
    """
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    b, c, h, w = input.shape
    c_out, c_per_group, kh, kw = weight.shape
    taps = kh * kw
    groups = c // c_per_group if c_per_group else 0
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    dg = offset.shape[1] // (2 * taps)
    if not torch.jit.is_tracing():  # shapes are tensors while tracing for ONNX export
        _check_shapes(input, offset, weight, mask, dg, ho, wo)
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (input, offset, mask, weight, bias)
    )
    if not needs_grad and not torch.jit.is_tracing():
        return _deform_conv2d_nograd(input, offset, weight, bias, stride, padding, dilation, mask, ho, wo)
    if _ONNX_DEFORM_CONV and torch.jit.is_tracing():
        # traced as the standard ONNX DeformConv (opset 19) instead of the sampling graph
        return _DeformConvOp.apply(input, offset, weight, bias, mask, stride, padding, dilation)
    # differentiable (and ONNX-traceable) path: all columns at once, one batched matmul
    # sampling in float32 (float64 stays float64), also under autocast
    sample_dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=input.device.type, enabled=False):
        cols = _sample_columns(
            input.to(sample_dtype),
            offset.to(sample_dtype),
            None if mask is None else mask.to(sample_dtype),
            kh, kw, stride, padding, dilation, ho, wo,
            exact=_EXACT_GRID and not torch.jit.is_tracing(),  # the exported graph keeps the input's size
        )
    if not torch.is_autocast_enabled(input.device.type):
        cols = cols.to(input.dtype)
    # [b, groups, c/groups * taps, L] x [groups, c_out/groups, c/groups * taps] -> [b, groups, c_out/groups, L]
    cols = cols.view(b, groups, c_per_group * taps, ho * wo)
    wmat = weight.reshape(groups, c_out // groups, c_per_group * taps)
    out = torch.matmul(wmat.unsqueeze(0), cols).view(b, c_out, ho, wo)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1).to(out.dtype)
    return out


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 layer with BasicSR's parameters (``weight``, ``bias``) and initialisation; offset/mask are inputs."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        deformable_groups: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"channels {in_channels}->{out_channels} are not divisible by groups {groups}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.deformable_groups = deformable_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.init_weights()

    def init_weights(self) -> None:
        # BasicSR ModulatedDeformConv.init_weights: U(-1/sqrt(n), 1/sqrt(n)), n = in_channels * kh * kw
        stdv = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        with torch.no_grad():
            self.weight.uniform_(-stdv, stdv)
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
            f"deformable_groups={self.deformable_groups}"
        )


class DCNv2Pack(ModulatedDeformConv2d):
    """Deformable alignment (BasicSR ``DCNv2Pack``): offsets and masks come from a second feature map.

    ``conv_offset`` (zero-initialised) maps ``feat[b, in_channels, h, w]`` to ``3 * dg * kh * kw`` channels,
    split in three equal chunks ``o1, o2, m``: ``offset = cat(o1, o2)`` in the (dy, dx)-interleaved layout
    above and ``mask = sigmoid(m)``. Parameter names are BasicSR's: ``weight``, ``bias``,
    ``conv_offset.weight``, ``conv_offset.bias``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conv_offset = nn.Conv2d(
            self.in_channels,
            self.deformable_groups * 3 * self.kernel_size[0] * self.kernel_size[1],
            kernel_size=self.kernel_size,
            stride=_pair(self.stride),
            padding=_pair(self.padding),
            dilation=_pair(self.dilation),
            bias=True,
        )
        self.init_weights()

    def init_weights(self) -> None:
        super().init_weights()
        if hasattr(self, "conv_offset"):
            with torch.no_grad():
                self.conv_offset.weight.zero_()
                self.conv_offset.bias.zero_()

    def offset_mask(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(offset, mask) that ``forward`` uses for the conditioning features ``feat``."""
        # conv_offset computed as its three chunks (o1, o2, mask logits): the same numbers as chunking its
        # output, without one tensor of 3 * dg * kh * kw channels (on CPU, oneDNN and the allocator prefer these)
        conv = self.conv_offset
        n = conv.out_channels // 3
        o1, o2, m = (
            F.conv2d(feat, conv.weight[i * n : (i + 1) * n], conv.bias[i * n : (i + 1) * n], conv.stride, conv.padding,
                     conv.dilation)
            for i in range(3)
        )
        return torch.cat((o1, o2), dim=1), m.sigmoid_()  # m is a fresh conv output

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        offset, mask = self.offset_mask(feat)
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask)
