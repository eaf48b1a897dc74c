"""The real-world degradation (data.realworld): blur kernels against mmagic's own (golden), every op's sizes, value
ranges, per-frame drift and seeds, the whole pipeline's reproducibility, and its hooks in the datasets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from eval_clips import carphone, write_clip
from golden import case_dir

from vsrkit.data import realworld as rw
from vsrkit.data.realworld import (BlurConfig, JpegConfig, NoiseConfig, RealWorldConfig, ResizeConfig, VideoConfig,
                                   blur_params, clip_seed, degrade_clip, degrade_stream, filter2d, make_kernel,
                                   resize)

GOLDEN_FUNCTIONS = {"bivariate_gaussian": "gaussian", "bivariate_generalized_gaussian": "generalized",
                    "bivariate_plateau": "plateau", "random_circular_lowpass_kernel": "sinc"}


def frame(h: int = 48, w: int = 64, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, h, w, generator=g) * 255
    return x.round().to(torch.uint8) if dtype == torch.uint8 else x


def gt_clip(n: int = 3) -> np.ndarray:
    return np.stack(carphone(n, (24, 32, 64, 96)))


# --------------------------------------------------------------------------------------------------- kernels
def test_kernels_match_mmagic_golden():
    """Ten kernels made by mmagic's blur_kernels.py with fixed parameters, within 1e-6 (case.json's tolerance: its
    anisotropic covariance is float32)."""
    from safetensors.numpy import load_file

    d = case_dir("mmagic_blur_kernels")
    cases = json.loads((d / "case.json").read_text())["cases"]
    want = load_file(str(d / "kernels.safetensors"))
    assert len(cases) == 10 and set(want) == set(cases)
    seen = set()
    for name, c in cases.items():
        kind = GOLDEN_FUNCTIONS[c["function"]]
        seen.add((kind, c.get("is_isotropic")))
        if kind == "sinc":
            lo, hi = c["omega_range"]
            assert lo == hi
            k = rw.sinc_kernel(c["kernel_size"], lo, c["pad_to"])
        else:
            args = (c["kernel_size"], c["sig_x"], c.get("sig_y"), c.get("theta"))
            iso = c["is_isotropic"]
            k = (rw.gaussian_kernel(*args, isotropic=iso) if kind == "gaussian" else
                 getattr(rw, f"{kind}_kernel" if kind == "plateau" else "generalized_gaussian_kernel")(
                     *args, c["beta"], isotropic=iso))
        assert k.shape == want[name].shape, name
        err = np.abs(k - want[name]).max()
        assert err <= 1e-6, f"{name}: max abs error {err:.3g}"
    # every type, isotropic and anisotropic
    assert seen >= {("gaussian", True), ("gaussian", False), ("generalized", True), ("generalized", False),
                    ("plateau", True), ("plateau", False), ("sinc", None)}


@pytest.mark.parametrize("ktype", rw.KERNEL_TYPES)
def test_kernel_shapes_and_symmetry(ktype):
    p = rw.KernelParams(ktype, 13, 2.1, 0.8, 0.6, 1.7, 1.1)
    k = make_kernel(p)
    assert k.shape == (13, 13) and k.dtype == np.float64
    assert abs(k.sum() - 1) < 1e-12 and np.allclose(k, k[::-1, ::-1])  # point symmetric: correlation = convolution
    if "aniso" not in ktype:
        assert np.allclose(k, k.T)  # isotropic (sinc too)
    else:
        assert not np.allclose(k, k.T)


def test_blur_params_draws_once_and_drifts_within_steps():
    cfg = BlurConfig()
    for seed in range(5):
        ps = [p for _, p in zip(range(30), blur_params(cfg, np.random.default_rng(seed)))]
        assert len({(p.type, p.size) for p in ps}) == 1 and ps[0].size in cfg.kernel_sizes
        for key, lo_hi, step in (("sigma_x", cfg.sigma_x, cfg.sigma_x_step), ("sigma_y", cfg.sigma_y, cfg.sigma_y_step),
                                 ("rotation", cfg.rotation, cfg.rotation_step), ("omega", None, cfg.omega_step)):
            v = np.array([getattr(p, key) for p in ps])
            assert np.all(np.abs(np.diff(v)) <= step + 1e-12), key
            if lo_hi is not None:
                assert v.min() >= lo_hi[0] and v.max() <= lo_hi[1], key
            assert np.any(np.diff(v) != 0), key  # it does drift
        if ps[0].type.startswith(("generalized", "plateau")):  # mmagic's effective beta: between 1 and the drifting one
            b = np.array([p.beta for p in ps])
            span = cfg.beta_gaussian if ps[0].type.startswith("generalized") else cfg.beta_plateau
            assert b.min() >= min(span[0], 1) and b.max() <= max(span[1], 1)


def test_blur_params_type_frequencies_and_omega_rule():
    cfg = BlurConfig()
    n = 3000
    draws = [next(blur_params(cfg, np.random.default_rng(s))) for s in range(n)]
    counts = {t: sum(p.type == t for p in draws) / n for t in rw.KERNEL_TYPES}
    for t, prob in zip(cfg.kernel_types, cfg.kernel_probs):
        assert abs(counts[t] - prob) < 4 * math.sqrt(prob * (1 - prob) / n) + 1e-9, (t, counts[t], prob)
    sinc = [p for p in draws if p.type == "sinc"]
    assert all(p.omega >= (math.pi / 3 if p.size < 13 else math.pi / 5) - 1e-12 for p in sinc)
    assert min(p.omega for p in sinc if p.size >= 13) < math.pi / 3  # the wider range is used for big kernels


# -------------------------------------------------------------------------------------------------- filter2d
def reflect101(i: int, n: int) -> int:
    """cv2's borderInterpolate(BORDER_REFLECT_101), written as its loop."""
    if n == 1:
        return 0
    while i < 0 or i >= n:
        i = -i if i < 0 else 2 * n - 2 - i
    return i


def filter2d_reference(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    c, h, w = x.shape
    r = k.shape[0] // 2
    rows = [reflect101(i, h) for i in range(-r, h + r)]
    cols = [reflect101(j, w) for j in range(-r, w + r)]
    xp = x[:, rows][:, :, cols].astype(np.float64)
    out = np.zeros((c, h, w))
    for a in range(k.shape[0]):
        for b in range(k.shape[1]):
            out += k[a, b] * xp[:, a:a + h, b:b + w]
    return out


@pytest.mark.parametrize("hw", [(40, 52), (7, 5), (1, 9)])  # the last two are smaller than the kernel's reach
def test_filter2d_is_cv2_correlation_with_reflect101(hw):
    x = frame(*hw)
    k = np.random.default_rng(1).random((11, 11))
    k[0, 0] += 1  # not symmetric: correlation, not convolution
    got = filter2d(x, k).double().numpy()
    want = filter2d_reference(x.numpy(), k)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_filter2d_identity_constant_and_uint8():
    x = frame(20, 30, dtype=torch.uint8)
    delta = np.zeros((7, 7))
    delta[3, 3] = 1
    y = filter2d(x, delta)
    assert y.dtype == torch.uint8 and torch.equal(y, x)
    k = rw.gaussian_kernel(9, 1.5)
    assert torch.allclose(filter2d(torch.full((3, 10, 12), 77.0), k), torch.tensor(77.0), atol=1e-3)
    blurred = filter2d(x, k)
    assert blurred.dtype == torch.uint8
    assert torch.equal(blurred, filter2d(x.float(), k).round().clamp(0, 255).to(torch.uint8))


# ---------------------------------------------------------------------------------------------------- resize
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [(30, 40), (71, 99), (48, 64), (17, 101)])
def test_resize_bilinear_bicubic_match_torch(mode, size):
    """cv2's INTER_LINEAR/INTER_CUBIC and torch's interpolate (align_corners=False, no antialias) share half-pixel
    centres, a = -0.75 and clamped borders: an independent implementation of the same formulas."""
    x = frame(48, 64)
    got = resize(x, size, mode)
    want = F.interpolate(x[None], size=size, mode=mode, align_corners=False)[0]
    assert got.shape == (3, *size)
    assert (got - want).abs().max() <= 1e-4 * x.abs().max()


def test_resize_area_shrink_is_block_mean_and_keeps_mass():
    x = frame(48, 64)
    assert torch.allclose(resize(x, (16, 16), "area"), F.avg_pool2d(x[None], (3, 4))[0], rtol=1e-5, atol=1e-3)
    for size in ((31, 45), (7, 10), (48, 33)):  # fractional cells: each output is the mean over its cell
        y = resize(x, size, "area")
        mass_in, mass_out = x.double().sum((1, 2)), y.double().sum((1, 2)) * (48 / size[0]) * (64 / size[1])
        assert torch.allclose(mass_out, mass_in, rtol=1e-5), size
        assert y.min() >= x.min() - 1e-3 and y.max() <= x.max() + 1e-3


def test_resize_area_enlarge_is_cv2s_area_mode():
    """cv2 enlarges INTER_AREA with bilinear weights fx = (d+1) - (s+1)/scale, kept only past the cell edge: pixel
    replication at integer factors, a blend at the cell boundaries otherwise."""
    row = torch.tensor([0.0, 100.0, 200.0, 300.0]).view(1, 1, 4).expand(3, 2, 4)
    assert torch.equal(resize(row, (2, 8), "area")[0, 0], torch.tensor([0.0, 0, 100, 100, 200, 200, 300, 300]))
    assert torch.allclose(resize(row, (2, 6), "area")[0, 0], torch.tensor([0.0, 50, 100, 200, 250, 300]))


def test_resize_identity_uint8_and_bad_mode():
    x = frame(20, 30, dtype=torch.uint8)
    assert torch.equal(resize(x, (20, 30), "bicubic"), x)
    y = resize(x, (11, 17), "bicubic")
    assert y.dtype == torch.uint8 and y.shape == (3, 11, 17)
    assert torch.equal(y, resize(x.float(), (11, 17), "bicubic").round().clamp(0, 255).to(torch.uint8))
    with pytest.raises(ValueError, match="interpolation"):
        resize(x, (10, 10), "lanczos")


def test_resize_op_modes_drift_and_even_sizes():
    frames = [frame(100, 120, seed=i) for i in range(12)]
    for mode, probs in (("up", (1, 0, 0)), ("down", (0, 1, 0)), ("keep", (0, 0, 1))):
        cfg = ResizeConfig(mode_probs=probs)
        outs = list(rw.resize_op(frames, cfg, np.random.default_rng(3)))
        hs = np.array([o.shape[-2] for o in outs])
        ws = np.array([o.shape[-1] for o in outs])
        assert np.all(hs % 2 == 0) and np.all(ws % 2 == 0)
        assert hs.min() >= 2 * ((100 * cfg.scale[0]) // 2) and hs.max() <= 100 * cfg.scale[1]
        if mode == "up":
            assert hs[0] >= 100 and ws[0] >= 120
        elif mode == "down":
            assert hs[0] <= 100 and ws[0] <= 120
        else:
            assert (hs[0], ws[0]) == (100, 120)
        assert len(set(ws)) > 1  # the scale drifts
        # consecutive frames: the factor moves by at most `step` (sizes round down to even numbers)
        assert np.all(np.abs(np.diff(ws)) <= 120 * cfg.step + 2)
    fixed = list(rw.resize_op(frames[:3], ResizeConfig(), np.random.default_rng(0), target=(25, 30)))
    assert [tuple(o.shape) for o in fixed] == [(3, 25, 30)] * 3


# ----------------------------------------------------------------------------------------------------- noise
def test_gaussian_noise_level_grey_and_colour():
    x = torch.full((3, 200, 200), 128.0)
    for gray in (False, True):
        y = rw.gaussian_noise(x, 10.0, gray, np.random.default_rng(0))
        n = (y - x).numpy()
        assert y.dtype == torch.float32 and y.shape == x.shape
        assert abs(n.std() - 10) < 0.3 and abs(n.mean()) < 0.3
        assert np.array_equal(n[0], n[2]) == gray


def test_poisson_noise_follows_mmagic_scaling():
    # one distinct value: v = 1, noise Poisson(100) - 100 (std 10), times the scale
    x = torch.full((3, 200, 200), 100.0)
    y = rw.poisson_noise(x, 0.5, False, np.random.default_rng(0))
    n = (y - x).numpy()
    assert abs(n.std() - 5) < 0.2 and abs(n.mean()) < 0.2 and not np.array_equal(n[0], n[1])
    # 256 distinct values: v = 256, variance x / 256
    ramp = torch.arange(256.0).repeat(3, 256, 1)
    n = (rw.poisson_noise(ramp, 1.0, True, np.random.default_rng(1)) - ramp).numpy()
    assert np.array_equal(n[0], n[1])  # grey: one plane (from BT.601 luma, here the ramp itself)
    assert abs(n[0, :, 200:].var() / (ramp[0, 0, 200:].mean().item() / 256) - 1) < 0.1


def test_noise_op_drifts_and_reproduces():
    frames = [torch.full((3, 64, 64), 120.0)] * 20
    cfg = NoiseConfig(type_probs=(1, 0), gaussian_gray_prob=0.0)
    a = list(rw.noise_op(frames, cfg, np.random.default_rng(5)))
    b = list(rw.noise_op(frames, cfg, np.random.default_rng(5)))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    sig = np.array([(f - 120).std().item() for f in a])
    assert sig.min() >= cfg.gaussian_sigma[0] * 0.9 and sig.max() <= cfg.gaussian_sigma[1] * 1.1
    assert np.all(np.abs(np.diff(sig)) < 1.0)  # drift by <= 0.1 per frame (plus sampling error), not a redraw


# ------------------------------------------------------------------------------------------ JPEG and video ops
def test_jpeg_op_quantises_and_video_op_keeps_the_first_size():
    frames = [frame(40, 48, seed=i) * 0.9 + 10 for i in range(4)]
    out = list(rw.jpeg_op(frames, JpegConfig(), np.random.default_rng(0)))
    assert [o.dtype for o in out] == [torch.uint8] * 4 and all(o.shape == (3, 40, 48) for o in out)
    mixed = [frame(40, 48, dtype=torch.uint8)] + [frame(30, 36, seed=i, dtype=torch.uint8) for i in range(3)]
    out = list(rw.video_op(mixed, VideoConfig(), np.random.default_rng(0)))
    assert [tuple(o.shape) for o in out] == [(3, 40, 48)] * 4 and out[0].dtype == torch.float32
    assert all(o.min() >= 0 and o.max() <= 255 for o in out)


def test_skipped_ops_pass_frames_through():
    frames = [frame(20, 24, seed=i) for i in range(3)]
    rng = np.random.default_rng(0)
    for op, cfg in ((rw.blur_op, BlurConfig(prob=0.0)), (rw.noise_op, NoiseConfig(prob=0.0)),
                    (rw.jpeg_op, JpegConfig(prob=0.0)), (rw.video_op, VideoConfig(prob=0.0)),
                    (rw.resize_op, ResizeConfig(prob=0.0))):
        assert all(a is b for a, b in zip(op(frames, cfg, rng), frames))


def test_unsharp_mask_sharpens_edges_only():
    x = torch.zeros(3, 64, 64)
    x[:, :, 32:] = 200.0
    y = rw.unsharp_mask(x)
    assert y[0, 10, 31] < 0.5 and y[0, 10, 32] > 200  # overshoot on both sides of the edge, clipped at 0
    assert torch.allclose(y[:, :, :5], x[:, :, :5], atol=1e-3) and torch.allclose(y[:, :, -5:], x[:, :, -5:], atol=1e-3)
    flat = torch.full((3, 30, 30), 90.0)
    assert torch.allclose(rw.unsharp_mask(flat), flat, atol=1e-3)


# -------------------------------------------------------------------------------------------------- pipeline
def test_pipeline_sizes_range_and_seeds():
    gt = gt_clip()
    a = degrade_clip(gt, 4, (7, 3))
    assert a.shape == (3, 16, 24, 3) and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 255
    assert np.array_equal(a, degrade_clip(gt, 4, [7, 3]))
    assert not np.array_equal(a, degrade_clip(gt, 4, (7, 4)))
    assert rw.seed_sequence((7, "a")).entropy == rw.seed_sequence([7, "a"]).entropy != rw.seed_sequence(7).entropy
    # scale 2, sizes not multiples of the scale (floor), one-frame clips
    assert degrade_clip(gt[:1, :, :63], 2, 5).shape == (1, 32, 31, 3)


def test_stream_equals_clip_and_pulls_lazily():
    gt = gt_clip(4)
    pulled = []

    def source():
        for i, f in enumerate(gt):
            pulled.append(i)
            yield f

    stream = degrade_stream(source(), 4, 11)
    first = next(stream)
    assert len(pulled) < 4 or first is not None  # frames are pulled as needed (x264 may look ahead to the end)
    rest = list(stream)
    assert np.array_equal(np.stack([first, *rest]), degrade_clip(gt, 4, 11))


def test_the_two_orders_of_the_shuffled_group_both_happen(monkeypatch):
    """Only the second stage's shuffled group on: video compression sees the GT size when it runs first, the final
    size when the resize runs first; both happen over seeds, and shuffle=False always puts the video first."""
    seen = []
    real = rw.video_roundtrip

    def spy(frames, codec, bitrate):
        it = iter(frames)
        head = next(it)
        seen.append(head.shape[:2])
        return real([head, *it], codec, bitrate)

    monkeypatch.setattr(rw, "video_roundtrip", spy)
    off = dict(sharpen=rw.SharpenConfig(enabled=False), blur1=BlurConfig(prob=0), resize1=ResizeConfig(prob=0),
               noise1=NoiseConfig(prob=0), jpeg1=JpegConfig(prob=0), video1=VideoConfig(prob=0),
               blur2=BlurConfig(prob=0), resize2=ResizeConfig(prob=0), noise2=NoiseConfig(prob=0),
               jpeg2=JpegConfig(prob=0))
    gt = gt_clip(2)
    for seed in range(10):
        degrade_clip(gt, 4, seed, RealWorldConfig(**off))
    assert set(seen) == {(64, 96), (16, 24)}
    seen.clear()
    for seed in range(4):
        degrade_clip(gt, 4, seed, RealWorldConfig(**off, shuffle=False))
    assert set(seen) == {(64, 96)}


def test_bad_frames_name_the_frame():
    gt = gt_clip(3)
    with pytest.raises(ValueError, match="frame 2: size"):
        list(degrade_stream([gt[0], gt[1], gt[2][:, :64]], 4, 0))
    with pytest.raises(ValueError, match="frame 0: .*uint8"):
        list(degrade_stream([gt[0].astype(np.float32)], 4, 0))
    with pytest.raises(ValueError, match="smaller than the scale"):
        list(degrade_stream([gt[0][:3, :3]], 4, 0))
    with pytest.raises(ValueError, match="seed"):
        degrade_clip(gt, 4, -1)


def test_clip_seed_is_by_name():
    assert clip_seed(0, "calendar").entropy == clip_seed(0, "calendar").entropy
    assert clip_seed(0, "calendar").entropy != clip_seed(0, "city").entropy
    assert clip_seed(0, "calendar").entropy != clip_seed(1, "calendar").entropy


def test_config_choices_are_distributions():
    cfg = RealWorldConfig()
    for b in (cfg.blur1, cfg.blur2, cfg.final_sinc):
        assert abs(sum(b.kernel_probs) - 1) < 1e-9 and len(b.kernel_probs) == len(b.kernel_types)
    for r in (cfg.resize1, cfg.resize2):
        assert abs(sum(r.mode_probs) - 1) < 1e-9 and abs(sum(r.interpolation_probs) - 1) < 1e-9
    for v in (cfg.video1, cfg.video2):
        assert abs(sum(v.codec_probs) - 1) < 1e-9


# ---------------------------------------------------------------------------------------------- the datasets
def test_train_and_val_datasets_realworld(tmp_path):
    """Training: the GT crop degraded with the seed (sample seed, index), so a sample reproduces and another seed
    gives another degradation of the same crop; validation: the clip name's fixed seed."""
    from vsrkit.data.datasets import TrainDataset, ValDataset
    from vsrkit.train.config import DataCfg

    frames = carphone(3, (0, 0, 96, 128))
    write_clip(tmp_path / "gt" / "a", frames)
    cfg = DataCfg(kind="clips", root=str(tmp_path / "gt"), num_frame=3, gt_size=64, degradation="realworld")
    ds = TrainDataset(cfg)
    s1, s2 = ds[(0, 123)], ds[(0, 123)]
    assert s1["lq"].shape == (3, 3, 16, 16) and s1["gt"].shape == (3, 3, 64, 64)
    assert torch.equal(s1["lq"], s2["lq"]) and torch.equal(s1["gt"], s2["gt"])
    assert 0 <= s1["lq"].min() and s1["lq"].max() <= 1
    crop = (s1["gt"] * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert torch.allclose(s1["lq"] * 255, torch.from_numpy(degrade_clip(crop, 4, (123, 0))).permute(0, 3, 1, 2),
                          atol=1e-3)
    whole = TrainDataset(DataCfg(kind="clips", root=str(tmp_path / "gt"), num_frame=3, degradation="realworld"))
    w1, w2 = whole[(0, 5)], whole[(0, 6)]  # same frames and crop, another degradation
    assert torch.equal(w1["gt"], w2["gt"]) and not torch.equal(w1["lq"], w2["lq"])
    val = ValDataset(DataCfg(kind="clips", root=str(tmp_path / "gt"), degradation="realworld"))
    v = val[0]
    assert v["lq"].shape == (3, 3, 24, 32)
    want = degrade_clip(np.stack(frames), 4, clip_seed(0, "a"))
    assert torch.allclose(v["lq"] * 255, torch.from_numpy(want).permute(0, 3, 1, 2), atol=1e-3)


def test_config_accepts_realworld():
    from pathlib import Path

    from vsrkit.errors import VsrkitError
    from vsrkit.train.config import load_config

    tiny = Path(__file__).resolve().parents[2] / "configs" / "train" / "tiny_rlsp_clips.yml"
    assert load_config(tiny, ["data.degradation=realworld"]).data.degradation == "realworld"
    with pytest.raises(VsrkitError, match="data.degradation must be one of bi, bd, realworld"):
        load_config(tiny, ["data.degradation=real"])
