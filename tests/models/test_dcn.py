"""deform_conv2d against a direct transcription of torchvision's kernel semantics, conv2d, gradcheck, ONNX."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from vsrkit.models.layers.dcn import DCNv2Pack, ModulatedDeformConv2d, deform_conv2d


def _bilinear(img: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """torchvision's bilinear_interpolate for one position over all channels of img[c, h, w]."""
    c, h, w = img.shape
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return img.new_zeros(c)
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    out = img.new_zeros(c)
    for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            if 0 <= yy < h and 0 <= xx < w:
                out = out + wy * wx * img[:, yy, xx]
    return out


def reference_deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask):
    """Slow loop over batch, output pixels, deformable groups and taps (float64)."""
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    b, c, h, w = x.shape
    c_out, cpg, kh, kw = weight.shape
    groups = c // cpg
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    dg = offset.shape[1] // (2 * kh * kw)
    cdg = c // dg
    cols = x.new_zeros(b, c, kh, kw, ho, wo)
    for n in range(b):
        for g in range(dg):
            img = x[n, g * cdg:(g + 1) * cdg]
            for i in range(kh):
                for j in range(kw):
                    k = i * kw + j
                    for oy in range(ho):
                        for ox in range(wo):
                            dy = offset[n, 2 * (g * kh * kw + k), oy, ox].item()
                            dx = offset[n, 2 * (g * kh * kw + k) + 1, oy, ox].item()
                            m = 1.0 if mask is None else mask[n, g * kh * kw + k, oy, ox].item()
                            v = _bilinear(img, oy * sh - ph + i * dh + dy, ox * sw - pw + j * dw + dx)
                            cols[n, g * cdg:(g + 1) * cdg, i, j, oy, ox] = m * v
    out = x.new_zeros(b, c_out, ho, wo)
    opg = c_out // groups
    for gr in range(groups):
        wg = weight[gr * opg:(gr + 1) * opg]  # [opg, cpg, kh, kw]
        cg = cols[:, gr * cpg:(gr + 1) * cpg]  # [b, cpg, kh, kw, ho, wo]
        out[:, gr * opg:(gr + 1) * opg] = torch.einsum("ocij,bcijyx->boyx", wg, cg)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


# (c_in, c_out, k, stride, padding, dilation, dg, groups, h, w)
CASES = [
    (4, 6, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1, 6, 7),
    (4, 4, (3, 3), (1, 1), (1, 1), (1, 1), 2, 1, 5, 5),
    (6, 4, (3, 2), (2, 1), (1, 0), (1, 2), 3, 2, 7, 6),
    (4, 4, (1, 1), (1, 1), (0, 0), (1, 1), 4, 4, 4, 5),
    (4, 2, (2, 3), (1, 2), (2, 1), (2, 1), 2, 2, 5, 6),
    (2, 3, (3, 3), (1, 1), (1, 1), (1, 1), 1, 1, 1, 4),  # a size-1 axis
]


def _random_case(case, seed, scale=3.0, dtype=torch.float64):
    cin, cout, k, s, p, d, dg, groups, h, w = case
    g = torch.Generator().manual_seed(seed)
    kh, kw = k
    ho = (h + 2 * p[0] - d[0] * (kh - 1) - 1) // s[0] + 1
    wo = (w + 2 * p[1] - d[1] * (kw - 1) - 1) // s[1] + 1
    x = torch.randn(2, cin, h, w, generator=g, dtype=dtype)
    offset = torch.randn(2, 2 * dg * kh * kw, ho, wo, generator=g, dtype=dtype) * scale
    offset[0, 0, 0, 0] = 50.0  # far outside
    offset[1, 1, -1, -1] = -40.0
    mask = torch.rand(2, dg * kh * kw, ho, wo, generator=g, dtype=dtype)
    weight = torch.randn(cout, cin // groups, kh, kw, generator=g, dtype=dtype)
    bias = torch.randn(cout, generator=g, dtype=dtype)
    return x, offset, mask, weight, bias, s, p, d


@pytest.mark.parametrize("case", CASES)
def test_matches_reference_loop(case):
    x, offset, mask, weight, bias, s, p, d = _random_case(case, seed=hash(case) % 1000)
    ref = reference_deform_conv2d(x, offset, weight, bias, s, p, d, mask)
    out = deform_conv2d(x, offset, weight, bias, s, p, d, mask)
    assert out.dtype == torch.float64
    assert (out - ref).abs().max().item() < 1e-10
    # v1 (no mask) and no bias
    ref1 = reference_deform_conv2d(x, offset, weight, None, s, p, d, None)
    out1 = deform_conv2d(x, offset, weight, None, s, p, d, None)
    assert (out1 - ref1).abs().max().item() < 1e-10


def test_integer_and_boundary_positions():
    # positions exactly on pixels, on -1 and on size: torchvision's cut-offs
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    offset = torch.randint(-6, 7, (1, 18, 4, 5)).double()
    offset[0, 0] = -1.0  # tap (0,0) row -> exactly -1 rel. shift
    mask = torch.rand(1, 9, 4, 5, dtype=torch.float64)
    ref = reference_deform_conv2d(x, offset, weight, None, (1, 1), (1, 1), (1, 1), mask)
    out = deform_conv2d(x, offset, weight, None, 1, 1, 1, mask)
    assert (out - ref).abs().max().item() < 1e-10


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 1, 1, 1), (2, 2, 2, 2), (1, 0, 1, 4)])
def test_zero_offset_is_conv2d(stride, padding, dilation, groups):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 11, 9)
    weight = torch.randn(4, 8 // groups, 3, 3)
    bias = torch.randn(4)
    conv = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    ho, wo = conv.shape[-2:]
    offset = torch.zeros(2, 2 * 2 * 9, ho, wo)
    mask = torch.ones(2, 2 * 9, ho, wo)
    out = deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask)
    assert (out - conv).abs().max().item() < 1e-4
    out_v1 = deform_conv2d(x, offset, weight, bias, stride, padding, dilation)
    assert (out_v1 - conv).abs().max().item() < 1e-4


def test_gradcheck():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    # non-integer offsets (grid_sample's gradient is one-sided at integer positions)
    offset = (torch.rand(1, 2 * 2 * 9, 4, 5, generator=g, dtype=torch.float64) * 3 - 1.5 + 0.123)
    offset = offset.requires_grad_(True)
    mask = torch.rand(1, 2 * 9, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)

    def f(x, offset, mask, weight, bias):
        return deform_conv2d(x, offset, weight, bias, 1, 1, 1, mask)

    assert torch.autograd.gradcheck(f, (x, offset, mask, weight, bias), eps=1e-6, atol=1e-5)


def test_bf16_autocast_samples_in_float32():
    torch.manual_seed(0)
    x = torch.randn(1, 8, 12, 12)
    offset = torch.randn(1, 2 * 2 * 9, 12, 12) * 2
    mask = torch.rand(1, 2 * 9, 12, 12)
    weight = torch.randn(8, 8, 3, 3) * 0.1
    ref = deform_conv2d(x, offset, weight, None, 1, 1, 1, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = deform_conv2d(x, offset, weight, None, 1, 1, 1, mask)
    assert out.dtype == torch.bfloat16
    # only the matmul is bf16: error of a bf16 GEMM, not of shifted sampling positions
    assert (out.float() - ref).abs().max().item() < 0.1


def test_dcnv2pack_layout_and_init():
    torch.manual_seed(0)
    m = DCNv2Pack(8, 6, 3, padding=1, deformable_groups=2)
    keys = set(m.state_dict())
    assert keys == {"weight", "bias", "conv_offset.weight", "conv_offset.bias"}
    assert m.conv_offset.weight.shape == (2 * 3 * 9, 8, 3, 3)
    assert m.conv_offset.weight.abs().sum() == 0 and m.conv_offset.bias.abs().sum() == 0
    assert m.bias.abs().sum() == 0 and m.weight.abs().max() <= 1 / math.sqrt(8 * 9)
    x, feat = torch.randn(2, 8, 7, 6), torch.randn(2, 8, 7, 6)
    torch.nn.init.normal_(m.conv_offset.weight, std=0.3)
    torch.nn.init.normal_(m.conv_offset.bias)
    out = m(x, feat)
    raw = m.conv_offset(feat)
    n = 2 * 9
    offset = torch.cat((raw[:, :n], raw[:, n:2 * n]), 1)
    mask = torch.sigmoid(raw[:, 2 * n:])
    expect = deform_conv2d(x, offset, m.weight, m.bias, 1, 1, 1, mask)
    assert torch.equal(out, expect)
    plain = ModulatedDeformConv2d(8, 6, 3, padding=1, deformable_groups=2)
    assert set(plain.state_dict()) == {"weight", "bias"}


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_onnx_export_matches_onnxruntime(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    m = DCNv2Pack(8, 8, 3, padding=1, deformable_groups=2).eval()
    torch.nn.init.normal_(m.conv_offset.weight, std=0.2)
    torch.nn.init.normal_(m.conv_offset.bias)
    x, feat = torch.rand(1, 8, 10, 12), torch.rand(1, 8, 10, 12)
    path = tmp_path / "dcn.onnx"
    # torch 2.13 defaults to the dynamo exporter, which needs onnxscript; the TorchScript one does not
    torch.onnx.export(m, (x, feat), str(path), opset_version=17, dynamo=False, input_names=["x", "feat"])
    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": x.numpy(), "feat": feat.numpy()})
    with torch.no_grad():
        expect = m(x, feat)
    assert (torch.from_numpy(got) - expect).abs().max().item() <= 1e-4


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("chunk", [1, 1 << 20])
def test_float32_inference_path_chunks(case, chunk, monkeypatch):
    # the no-grad path samples output rows in chunks and uses a oneDNN 1x1 convolution
    from vsrkit.models.layers import dcn

    monkeypatch.setattr(dcn, "_CHUNK_ELEMS", chunk)  # 1: one output row per chunk
    x, offset, mask, weight, bias, s, p, d = _random_case(case, seed=7)
    ref = deform_conv2d(x, offset, weight, bias, s, p, d, mask)  # float64
    with torch.no_grad():
        out = deform_conv2d(x.float(), offset.float(), weight.float(), bias.float(), s, p, d, mask.float())
    assert out.dtype == torch.float32
    assert (out.double() - ref).abs().max().item() < 1e-4 * max(1.0, ref.abs().max().item())
    # the differentiable path gives the same
    xg = x.float().requires_grad_(True)
    out_grad = deform_conv2d(xg, offset.float(), weight.float(), bias.float(), s, p, d, mask.float())
    assert (out_grad.detach() - out).abs().max().item() < 1e-4 * max(1.0, ref.abs().max().item())
