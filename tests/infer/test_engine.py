"""The engine's schedules on toy models whose right answer is known exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from compare import assert_close_rel
from vsrkit.errors import VsrkitError
from vsrkit.infer import EngineConfig, make_config, upscale_frames, upscale_tensor
from vsrkit.infer.colour import image_to_item, item_to_image, rgb_to_ycbcr, ycbcr_to_rgb
from vsrkit.models.spec import pad_index
from vsrkit.infer.runtime import select_precision
from vsrkit.models.spec import Block, ModelSpec, Protocol, Temporal, TwoPass


def up(x: torch.Tensor, s: int = 2) -> torch.Tensor:
    return F.interpolate(x, scale_factor=s, mode="nearest")


class FrameNet(nn.Module):
    """3x3 box blur then nearest x2: a local model with a receptive field of 1 pixel."""

    def __init__(self):
        super().__init__()
        self.spec = ModelSpec(scale=2, temporal=Temporal("frame"))

    def forward(self, x):
        return up(F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1))


class WindowNet(nn.Module):
    """Weighted sum of a 5-frame window (weights 1..5), nearest x2."""

    def __init__(self, padding="reflection"):
        super().__init__()
        self.spec = ModelSpec(scale=2, temporal=Temporal("window", window=5, ahead=2), size_multiple=4,
                              protocol=Protocol(end_padding=padding))

    def forward(self, x):
        w = torch.arange(1, 6, dtype=x.dtype).view(1, 5, 1, 1, 1)
        return up((x * w).sum(1) / 15)


class RecurrentNet(nn.Module):
    """Running mean of all frames so far plus the next frame (one frame ahead)."""

    def __init__(self):
        super().__init__()
        self.spec = ModelSpec(scale=2, temporal=Temporal("recurrent", window=3, ahead=1))

    def step(self, x, state):
        total, n = state if state is not None else (torch.zeros_like(x[:, 1]), 0)
        total = total + x[:, 1]
        return up(total / (n + 1) + 0.1 * x[:, 2]), (total, n + 1)

    def forward(self, x):
        T = x.shape[1]
        state, outs = None, []
        for t in range(T):
            idx = [max(t - 1, 0), t, min(t + 1, T - 1)]
            y, state = self.step(x[:, idx], state)
            outs.append(y)
        return torch.stack(outs, 1)


class SequenceNet(nn.Module):
    """Each output is its frame plus a decaying sum over the two neighbours on each side."""

    def __init__(self, clip=None):
        super().__init__()
        self.spec = ModelSpec(scale=2, temporal=Temporal("sequence"), protocol=Protocol(clip=clip))
        self.seen_lengths: list[int] = []

    def forward(self, x):
        self.seen_lengths.append(x.shape[1])
        T = x.shape[1]
        outs = []
        for t in range(T):
            acc = x[:, t].clone()
            for d in (1, 2):
                for j in (t - d, t + d):
                    if 0 <= j < T:
                        acc = acc + 0.5**d * x[:, j]
            outs.append(up(acc))
        return torch.stack(outs, 1)


def frames(T=23, h=20, w=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, 3, h, w, generator=g)


def cfg(**kw) -> EngineConfig:
    return make_config("cpu", **kw)


@pytest.mark.parametrize("mode", ["replicate", "reflection", "reflection_circle"])
def test_window_schedule_matches_direct_windows(mode):
    x = frames()
    net = WindowNet(mode)
    got = upscale_tensor(net, x, cfg())
    T = x.shape[0]
    want = torch.stack([
        net(x[[pad_index(i, t, T, 2, mode) for i in range(t - 2, t + 3)]][None])[0] for t in range(T)
    ])
    assert_close_rel(got, want)


def test_recurrent_schedule_carries_state_over_the_whole_video():
    x = frames()
    net = RecurrentNet()
    got = upscale_tensor(net, x, cfg())
    want = net(x[None])[0]
    assert_close_rel(got, want)


@pytest.mark.parametrize("chunk,overlap", [(4, 2), (5, 3), (30, 2), (1, 2)])
def test_sequence_chunks_keep_only_centres(chunk, overlap):
    x = frames()
    net = SequenceNet()
    got = upscale_tensor(net, x, cfg(chunk=chunk, chunk_overlap=overlap))
    want = net(x[None])[0]
    assert_close_rel(got, want)
    assert max(net.seen_lengths[:-1]) <= chunk + 2 * overlap


@pytest.mark.parametrize("clip,overlap", [(6, 2), (7, 2), (16, 4)])
def test_fixed_clip_models_always_see_full_clips(clip, overlap):
    x = frames(T=23)
    net = SequenceNet(clip=clip)
    got = upscale_tensor(net, x, cfg(chunk_overlap=overlap))
    assert set(net.seen_lengths[1:]) == {clip}
    assert_close_rel(got, net(x[None])[0])


def test_tiles_blend_to_the_untiled_result_for_a_local_model():
    x = frames(T=3, h=50, w=70)
    net = FrameNet()
    whole = upscale_tensor(net, x, cfg())
    tiled = upscale_tensor(net, x, cfg(tile=24, tile_overlap=4))
    assert_close_rel(whole, tiled)


def test_recurrent_model_keeps_one_state_per_tile():
    x = frames(T=9, h=40, w=44)
    net = RecurrentNet()
    whole = upscale_tensor(net, x, cfg())
    tiled = upscale_tensor(net, x, cfg(tile=20, tile_overlap=4))
    assert_close_rel(whole, tiled)


def test_padding_to_the_size_multiple_is_cropped_back():
    x = frames(T=6, h=21, w=30)  # WindowNet asks for multiples of 4
    net = WindowNet("replicate")
    y = upscale_tensor(net, x, cfg())
    assert y.shape == (6, 3, 42, 60)
    # WindowNet mixes no pixels, so the cropped output equals the model on the unpadded frames
    want = torch.stack([net(x[[min(max(i, 0), 5) for i in range(t - 2, t + 3)]][None])[0] for t in range(6)])
    assert_close_rel(y, want)


def test_stream_of_uint8_frames_round_trips_sizes_and_counts():
    imgs = [(np.random.default_rng(i).random((16, 24, 3)) * 255).astype(np.uint8) for i in range(7)]
    outs = list(upscale_frames(SequenceNet(), imgs, cfg(chunk=3, chunk_overlap=1)))
    assert len(outs) == 7 and all(o.shape == (32, 48, 3) and o.dtype == np.uint8 for o in outs)


def test_grey_alpha_and_16bit_frames():
    rng = np.random.default_rng(0)
    grey = (rng.random((10, 12, 1)) * 255).astype(np.uint8)
    rgba16 = (rng.random((10, 12, 4)) * 65535).astype(np.uint16)
    (g_out,) = list(upscale_frames(FrameNet(), [grey], cfg()))
    assert g_out.shape == (20, 24, 1) and g_out.dtype == np.uint8
    (a_out,) = list(upscale_frames(FrameNet(), [rgba16], cfg()))
    assert a_out.shape == (20, 24, 4) and a_out.dtype == np.uint16
    # alpha is upscaled bicubically, not by the model: a constant alpha stays constant
    rgba16[..., 3] = 40000
    (a_out,) = list(upscale_frames(FrameNet(), [rgba16], cfg()))
    assert np.all(a_out[..., 3] == 40000)


def test_y_only_models_get_luma_and_chroma_is_bicubic():
    class YIdentity(FrameNet):
        def __init__(self):
            super().__init__()
            self.spec = dataclasses.replace(self.spec, channels=1)

        def forward(self, x):
            assert x.shape[1] == 1
            return F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)

    img = (np.random.default_rng(1).random((12, 16, 3)) * 255).astype(np.uint8)
    (y_out,) = list(upscale_frames(YIdentity(), [img], cfg()))
    t = torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255
    want = F.interpolate(t, scale_factor=2, mode="bicubic", align_corners=False)[0].clamp(0, 1)
    want = (want * 255).round().permute(1, 2, 0).numpy()
    assert np.abs(y_out.astype(float) - want).max() <= 2  # only rounding through YCbCr


def test_ycbcr_round_trip():
    x = torch.rand(3, 8, 8)
    assert_close_rel(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, 1e-5)  # two 3x3 matrices


def test_fp16_on_cpu_becomes_bf16_and_says_so():
    said = []
    assert select_precision("fp16", torch.device("cpu"), said.append) is torch.bfloat16
    assert said and "bf16" in said[0]
    with pytest.raises(VsrkitError):
        select_precision("fp8", torch.device("cpu"))


class ConvNet(FrameNet):
    """FrameNet's box blur as a convolution (which autocast runs in bf16), recording the dtype it computed in."""

    def __init__(self):
        super().__init__()
        self.blur = nn.Conv2d(3, 3, 3, groups=3, bias=False)
        nn.init.constant_(self.blur.weight, 1 / 9)
        self.dtypes: list[torch.dtype] = []

    def forward(self, x):
        y = self.blur(F.pad(x, (1, 1, 1, 1), mode="replicate"))
        self.dtypes.append(y.dtype)
        return up(y)


def test_bf16_runs_on_cpu():
    """--precision bf16 really computes in bf16 (the convolution's output is bf16, and its rounding shows), and
    the result stays within bf16's 2**-8 of the fp32 one."""
    x = frames(T=4, h=16, w=16)
    net32, net16 = ConvNet(), ConvNet()
    y32 = upscale_tensor(net32, x, cfg())
    y16 = upscale_tensor(net16, x, make_config("cpu", precision="bf16"))
    assert set(net32.dtypes) == {torch.float32} and set(net16.dtypes) == {torch.bfloat16}
    assert y16.dtype == torch.float32 and y16.shape == y32.shape
    err = (y32 - y16).abs().max().item()
    assert 1e-4 < err < 0.02, err  # bf16 rounding of values in [0, 1]: above float32's, below 2**-8 + a margin


def test_bad_options_are_one_line_errors():
    with pytest.raises(VsrkitError, match="--tile"):
        make_config("cpu", tile=20, tile_overlap=16)
    with pytest.raises(VsrkitError, match="device"):
        make_config("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(VsrkitError, match="CUDA"):
            make_config("cuda")


def test_item_helpers_reject_float_images():
    with pytest.raises(VsrkitError):
        image_to_item(np.zeros((4, 4, 3), np.float32), 3)
    item = image_to_item(np.zeros((4, 4, 3), np.uint8), 3)
    assert item_to_image(item, torch.ones(3, 8, 8), 3, np.uint8).max() == 255


class TwoPassNet(SequenceNet):
    """A bidirectional recurrence with long memory, with the resumable two passes of BasicVSR."""

    def backward_pass(self, x, state, block):
        o, n = block.offset, block.size
        seg = x[:, o : o + n + int(block.has_next)]
        feat = state if state is not None else torch.zeros_like(seg[:, 0])
        feats = [None] * n
        for i in range(n - 1, -1, -1):
            if i < seg.shape[1] - 1:
                feat = 0.9 * feat + 0.05 * seg[:, i + 1]
            feat = feat + seg[:, i]
            feats[i] = feat
        return torch.stack(feats, 1), feat

    def forward_pass(self, x, feats, state, block):
        o, n = block.offset, block.size
        off = int(block.has_prev)
        seg = x[:, o - off : o + n]
        feat = state if state is not None else torch.zeros_like(seg[:, 0])
        outs = []
        for i in range(n):
            k = i + off
            if k > 0:
                feat = 0.8 * feat + 0.1 * seg[:, k - 1]
            feat = feat + seg[:, k]
            outs.append(up(feat + 0.5 * feats[:, i]))
        return torch.stack(outs, 1), feat

    def __init__(self):
        super().__init__()
        self.spec = ModelSpec(scale=2, temporal=Temporal("bidirectional"),
                              passes=TwoPass(TwoPassNet.backward_pass, TwoPassNet.forward_pass))

    def forward(self, x):
        whole = Block(0, x.shape[1], x.shape[1])
        return self.forward_pass(x, self.backward_pass(x, None, whole)[0], None, whole)[0]


@pytest.mark.parametrize("chunk,tile", [(1, 0), (4, 0), (7, 0), (100, 0), (5, 16)])
def test_two_pass_streaming_is_exact(chunk, tile):
    x = frames(T=23, h=24, w=30)
    net = TwoPassNet()
    want = net(x[None])[0]
    got = upscale_tensor(net, x, cfg(chunk=chunk, tile=tile, tile_overlap=4))
    # blocks give exactly the whole-sequence result; the model is local in space, so tiles do too
    assert_close_rel(got, want)


def test_window_models_use_sliding_runs_between_padded_ends():
    calls = []

    def sliding(model, x):
        calls.append(x.shape[1])
        return torch.stack([model(x[:, j:j + 5]) for j in range(x.shape[1] - 4)], 1)

    x = frames(T=20)
    net = WindowNet("reflection_circle")
    net.spec = dataclasses.replace(net.spec, sliding=sliding)
    got = upscale_tensor(net, x, cfg())
    want = torch.stack([net(x[[pad_index(i, t, 20, 2, "reflection_circle") for i in range(t - 2, t + 3)]][None])[0]
                        for t in range(20)])
    assert_close_rel(got, want)
    assert max(calls) > 5  # interior windows ran as one contiguous sequence


def test_off_centre_window():
    class Ahead(WindowNet):
        def __init__(self):
            super().__init__("replicate")
            self.spec = dataclasses.replace(self.spec, temporal=Temporal("window", window=5, ahead=1))

    x = frames(T=10)
    net = Ahead()
    got = upscale_tensor(net, x, cfg())
    want = torch.stack([net(x[[min(max(i, 0), 9) for i in range(t - 3, t + 2)]][None])[0] for t in range(10)])
    assert_close_rel(got, want)


def test_short_videos_are_padded_to_the_models_minimum_frames():
    net = SequenceNet()
    net.spec = dataclasses.replace(net.spec, min_frames=4)
    got = upscale_tensor(net, frames(T=2), cfg())
    assert got.shape[0] == 2 and net.seen_lengths == [4]


def test_flow_warp_and_deformable_sampling_stay_fp32_under_bf16_autocast(grid_sample_dtypes):
    """Inside a bf16 model the features are bf16: sampling must still run in fp32 (bf16 grid_sample on CPU
    returns wrong values), so grid_sample is never called with a bf16 tensor, and the result is the fp32
    sampling of the same features."""
    from vsrkit.models.layers.common import flow_warp
    from vsrkit.models.layers.dcn import deform_conv2d

    seen = grid_sample_dtypes
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(1, 4, 16, 16, generator=g) * 8).bfloat16()  # bf16 features, as a bf16 conv makes them
    flow = torch.rand(1, 16, 16, 2, generator=g) * 3 - 1.5
    ref = flow_warp(x.float(), flow)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = flow_warp(x, flow)
    assert low.dtype == torch.bfloat16
    assert torch.equal(low, ref.bfloat16())  # fp32 sampling, rounded once to bf16

    w = torch.rand(4, 4, 3, 3, generator=g)
    off = torch.rand(1, 18, 16, 16, generator=g) * 4 - 2
    mask = torch.rand(1, 9, 16, 16, generator=g)
    ref = deform_conv2d(x.float(), off, w, padding=1, mask=mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = deform_conv2d(x, off.bfloat16(), w, padding=1, mask=mask.bfloat16())
    # sampling is fp32; only the final convolution may run in bf16
    assert (low.float() - ref).abs().max() < 0.05 * ref.abs().max()
    assert seen and all(d == (torch.float32, torch.float32) for d in seen), seen


# BasicSR's generate_frame_indices(crt_idx, 10, 5, padding), written out by hand for both ends of a 10-frame video
BASICSR_INDICES = {
    "replicate": {0: [0, 0, 0, 1, 2], 1: [0, 0, 1, 2, 3], 8: [6, 7, 8, 9, 9], 9: [7, 8, 9, 9, 9]},
    "reflection": {0: [2, 1, 0, 1, 2], 1: [1, 0, 1, 2, 3], 8: [6, 7, 8, 9, 8], 9: [7, 8, 9, 8, 7]},
    "reflection_circle": {0: [4, 3, 0, 1, 2], 1: [4, 0, 1, 2, 3], 8: [6, 7, 8, 9, 5], 9: [7, 8, 9, 6, 5]},
}


class IndexWindowNet(nn.Module):
    """Records which frames each window holds (frame k is filled with the value k / 100)."""

    def __init__(self, padding: str, ahead: int = 2):
        super().__init__()
        self.spec = ModelSpec(scale=1, temporal=Temporal("window", window=5, ahead=ahead),
                              protocol=Protocol(end_padding=padding))
        self.windows: list[list[int]] = []

    def forward(self, x):
        self.windows.append([round(v * 100) for v in x[0, :, 0, 0, 0].tolist()])
        return x[:, 4 - self.spec.temporal.ahead]


@pytest.mark.parametrize("mode", sorted(BASICSR_INDICES))
def test_window_models_receive_basicsr_frame_indices_at_both_ends(mode):
    x = torch.arange(10).float().view(10, 1, 1, 1).expand(10, 3, 4, 4) / 100
    net = IndexWindowNet(mode)
    upscale_tensor(net, x, cfg())
    assert len(net.windows) == 10
    for t, want in BASICSR_INDICES[mode].items():
        assert net.windows[t] == want, (mode, t)
    assert net.windows[5] == [3, 4, 5, 6, 7]


def test_window_whose_output_is_its_last_frame_is_not_shifted():
    """EDVR(center_frame_idx=num_frame-1): ahead 0, output t comes from the window t-4 .. t (it used to be t+2)."""
    x = torch.arange(10).float().view(10, 1, 1, 1).expand(10, 3, 4, 4) / 100
    net = IndexWindowNet("replicate", ahead=0)
    y = upscale_tensor(net, x, cfg())
    assert torch.allclose(y[:, 0, 0, 0] * 100, torch.arange(10).float())
    assert net.windows[0] == [0, 0, 0, 0, 0] and net.windows[9] == [5, 6, 7, 8, 9]
