"""RealBasicVSR's real-world degradation: a second-order random pipeline that makes LR clips from GT clips.

The pipeline of mmagic's ``configs/real_basicvsr/realbasicvsr_wogan-c64b20-2x30x8_8xb2-lr1e-4-300k_reds.py``
(``train_pipeline``; the GAN config ``realbasicvsr_c64b20-1x30x8_8xb1-lr5e-5-150k_reds.py`` inherits it), with the
operations of ``mmagic/datasets/transforms/random_degradations.py``, ``blur_kernels.py`` and
``aug_pixel.py::UnsharpMasking``. Line numbers ``L..`` in :class:`RealWorldConfig` are the config's (mmagic
commit 1226eba). Written from their definitions; cv2 is replaced by torch (filtering, resizing), Pillow (JPEG)
and PyAV (video), see *Differences* below.

Order, on a clip of ``T`` GT frames (``H x W x 3`` uint8):

0. unsharp masking of the GT (51 x 51 Gaussian, sigma 8, weight 0.5, threshold 10): the LR is made from the
   sharpened GT, as the config copies ``gt_unsharp`` to ``img``;
1. first stage: blur, resize (up, down or keep), noise (Gaussian or Poisson, colour or grey), JPEG, video;
2. second stage: blur (probability 0.8), resize, noise, JPEG, then in a random order (``DegradationsWithShuffle``)
   video compression and the group [resize to ``H/scale x W/scale``, sinc blur (probability 0.8)];
3. clip to [0, 255]. The result is float32, not rounded (as mmagic feeds it to the network).

Parameters drift from frame to frame within a clip as mmagic's ``*_step`` parameters make them: each op draws
its parameters once per clip, and after every frame adds ``U(-step, step)`` and clips to the range. Kernel type
and size, interpolation, noise type and grey/colour, codec and bitrate are drawn once per clip. As in mmagic, the
generalized-Gaussian and plateau ``beta`` a kernel gets is drawn afresh for every frame between the drifting beta
and 1 (``BlurConfig.beta_towards_one``): ``RandomBlur`` passes ``[beta, beta]`` as the range to
``blur_kernels``'s random functions, which draw from ``U(range[0], 1)`` or ``U(1, range[1])``. Poisson noise is
mmagic's, on 0..255 values (``Poisson(x v) / v - x``), weaker than BasicSR's on [0, 1] values.

Values are 0..255 throughout. Where mmagic's arrays are uint8 (after JPEG; cv2's filter and resize keep uint8),
frames here are uint8 tensors too and the blur and resize results are rounded (half to even, as cv2's
``saturate_cast``) and clamped; elsewhere they are float32. Video decoding gives float32, as mmagic's
``astype(np.float32)``.

Randomness: everything is drawn from numpy ``Generator``s made from one seed (an int or a tuple of ints, e.g.
``(seed, index)``): one independent stream per op, so a clip is the same however the ops' generators are pulled.
Same seed, same input -> the same LR on the same machine (float rounding in convolutions may differ by an ULP
between CPUs, which can move a value across a uint8 rounding boundary at JPEG time).

Differences from mmagic (below a uint8 level, or only in which random values are drawn, except the last):

* random numbers come from numpy ``Generator``s (one per op), not the global ``np.random``/``random`` state: the
  distributions are the same, the draws are not;
* resize: cv2's formulas (half-pixel centres; bilinear; bicubic with a = -0.75 and replicated borders; area:
  exact cell overlaps when shrinking both axes, else cv2's "area-mode" bilinear weights), computed in float32;
  cv2's uint8 path uses 11-bit fixed-point weights, so on uint8 frames (only the second stage's shuffled
  resize when it runs before video compression) results may differ by one level;
* blur and unsharp masking: cv2.filter2D (correlation, BORDER_REFLECT_101) computed through the FFT in float32
  (cv2 uses a DFT for big kernels too, direct sums for small ones): equal up to float rounding (~1e-5 of 255);
* JPEG: libjpeg-turbo through Pillow instead of through OpenCV; same library, quality scaling, 4:2:0
  subsampling and DCT; RGB frames are encoded as if BGR, as mmagic's ``cv2.imencode`` does;
* video: the codec runs with one thread (mmagic: FFmpeg's default thread count), otherwise the same encoder
  settings (with one thread, the decoded frames equal those of mmagic's mp4 path bit for bit); x264's output
  depends on its thread count, so individual frames differ from a multi-threaded run, not the distribution; on
  AVX-512 CPUs x264 runs without its AVX-512 code (``io.codec_roundtrip.x264_options``: bit-exact, deterministic);
* sizes: the resize keeps at least 2 x 2 pixels (mmagic's cv2 call fails on an empty size), and an odd final
  size is padded to even for x264 and cropped back (mmagic only uses 256 x 256 crops at x4).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from vsrkit.data.degrade import imresize
from vsrkit.io.codec_roundtrip import VIDEO_CODECS, crf_roundtrip, jpeg_roundtrip, video_roundtrip

__all__ = [
    "KERNEL_TYPES", "INTERPOLATIONS", "BlurConfig", "ResizeConfig", "NoiseConfig", "JpegConfig", "VideoConfig",
    "SharpenConfig", "RealWorldConfig", "mesh_grid", "sigma_matrix", "gaussian_kernel", "generalized_gaussian_kernel",
    "plateau_kernel", "sinc_kernel", "KernelParams", "blur_params", "make_kernel", "kernel_stream", "filter2d",
    "resize", "gaussian_noise", "poisson_noise", "unsharp_mask", "blur_op", "resize_op", "noise_op", "jpeg_op",
    "video_op", "sharpen_op", "seed_sequence", "clip_seed", "degrade_stream", "degrade_clip", "PRESETS",
    "web_video_config", "web_bi_config", "preset_config",
]

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso", "sinc")
INTERPOLATIONS = ("bilinear", "area", "bicubic")
RESIZE_MODES = (*INTERPOLATIONS, "matlab")  # matlab: MATLAB imresize bicubic, antialiased (the BI degradation)
_PI = 3.1416  # the config writes pi so


# ----------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class BlurConfig:
    """``RandomBlur``: one kernel type and size per clip, parameters drifting per frame."""

    prob: float = 1.0  # L53 params has no prob in the first stage: RandomBlur's default 1 (second stage: L113)
    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)  # L54
    kernel_types: tuple[str, ...] = KERNEL_TYPES  # L55-58
    kernel_probs: tuple[float, ...] = (0.405, 0.225, 0.108, 0.027, 0.108, 0.027, 0.1)  # L59
    sigma_x: tuple[float, float] = (0.2, 3.0)  # L60
    sigma_y: tuple[float, float] = (0.2, 3.0)  # L61
    rotation: tuple[float, float] = (-_PI, _PI)  # L62 rotate_angle
    beta_gaussian: tuple[float, float] = (0.5, 4.0)  # L63
    beta_plateau: tuple[float, float] = (1.0, 2.0)  # L64
    # not in L53-70, so RandomBlur's fallback (Real-ESRGAN's rule): [pi/3, pi] below 13 taps, else [pi/5, pi]
    omega: tuple[float, float] | None = None
    sigma_x_step: float = 0.02  # L65
    sigma_y_step: float = 0.02  # L66
    rotation_step: float = 0.31416  # L67 rotate_angle_step
    beta_gaussian_step: float = 0.05  # L68
    beta_plateau_step: float = 0.1  # L69
    omega_step: float = 0.0628  # L70
    beta_towards_one: bool = True  # mmagic's effective beta: U(between the drifting beta and 1) per frame


@dataclass(frozen=True)
class ResizeConfig:
    """``RandomResize``: up, down or keep, one interpolation per clip, the scale drifting per frame."""

    prob: float = 1.0  # L75 params has no prob: RandomResize's default 1
    mode_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)  # L76 resize_mode_prob: up, down, keep
    scale: tuple[float, float] = (0.15, 1.5)  # L77 resize_scale
    interpolations: tuple[str, ...] = INTERPOLATIONS  # L78 resize_opt
    interpolation_probs: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)  # L79 resize_prob
    step: float = 0.015  # L80 resize_step
    even: bool = True  # L81 is_size_even


@dataclass(frozen=True)
class NoiseConfig:
    """``RandomNoise``: Gaussian or Poisson, colour or grey (one choice per clip), the level drifting per frame."""

    prob: float = 1.0  # L86 params has no prob: RandomNoise's default 1
    types: tuple[str, str] = ("gaussian", "poisson")  # L87 noise_type
    type_probs: tuple[float, float] = (0.5, 0.5)  # L88 noise_prob
    gaussian_sigma: tuple[float, float] = (1.0, 30.0)  # L89
    gaussian_gray_prob: float = 0.4  # L90
    poisson_scale: tuple[float, float] = (0.05, 3.0)  # L91
    poisson_gray_prob: float = 0.4  # L92
    gaussian_sigma_step: float = 0.1  # L93
    poisson_scale_step: float = 0.005  # L94


@dataclass(frozen=True)
class JpegConfig:
    """``RandomJPEGCompression``: an IJG quality drawn per clip, drifting per frame (rounded to an integer)."""

    prob: float = 1.0  # L99 params has no prob: RandomJPEGCompression's default 1
    quality: tuple[float, float] = (30.0, 95.0)  # L99 quality
    step: float = 3.0  # L99 quality_step


@dataclass(frozen=True)
class VideoConfig:
    """``RandomVideoCompression``: one codec and bitrate per clip, the clip encoded as a video at 1 frame/s."""

    prob: float = 1.0  # L104 params has no prob: RandomVideoCompression's default 1
    codecs: tuple[str, ...] = VIDEO_CODECS  # L105 codec
    codec_probs: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)  # L106 codec_prob
    bitrate: tuple[int, int] = (10_000, 100_000)  # L107 bitrate [1e4, 1e5], bits/s, both ends included
    # not in mmagic: libx264 at a constant rate factor drawn per clip from this range (crf_roundtrip, preset
    # medium) instead of a codec and a bitrate; quality per pixel, so a crop compresses as its whole frame would
    crf: tuple[float, float] | None = None


@dataclass(frozen=True)
class SharpenConfig:
    """``UnsharpMasking`` of the GT, whose result the config degrades (``CopyValues`` gt_unsharp -> img, L50)."""

    enabled: bool = True  # L43-49 UnsharpMasking, L50 CopyValues gt_unsharp -> img
    kernel_size: int = 51  # L46
    sigma: float = 0.0  # L47 (0: cv2.getGaussianKernel's rule, 0.3 * ((51 - 1) / 2 - 1) + 0.8 = 8)
    weight: float = 0.5  # L48
    threshold: float = 10.0  # L49


def _stage2_blur() -> BlurConfig:
    return BlurConfig(prob=0.8, sigma_x=(0.2, 1.5), sigma_y=(0.2, 1.5))  # L113, L120, L121; the rest as L114-130


def _final_sinc() -> BlurConfig:
    # L182-189: sinc only, omega [pi/3, pi], probability 0.8
    return BlurConfig(prob=0.8, kernel_types=("sinc",), kernel_probs=(1.0,), omega=(_PI / 3, _PI))


@dataclass(frozen=True)
class RealWorldConfig:
    """The whole pipeline; the defaults are mmagic's RealBasicVSR training config (line numbers ``L..``)."""

    sharpen: SharpenConfig = field(default_factory=SharpenConfig)  # L43-50
    blur1: BlurConfig = field(default_factory=BlurConfig)  # L51-73
    resize1: ResizeConfig = field(default_factory=ResizeConfig)  # L74-83
    noise1: NoiseConfig = field(default_factory=NoiseConfig)  # L85-96
    jpeg1: JpegConfig = field(default_factory=JpegConfig)  # L98-101
    video1: VideoConfig = field(default_factory=VideoConfig)  # L103-109
    blur2: BlurConfig = field(default_factory=_stage2_blur)  # L111-132
    resize2: ResizeConfig = field(  # L134-143: resize_mode_prob L136, resize_scale L137, resize_step L140
        default_factory=lambda: ResizeConfig(mode_probs=(0.3, 0.4, 0.3), scale=(0.3, 1.2), step=0.03))
    noise2: NoiseConfig = field(  # L145-156
        default_factory=lambda: NoiseConfig(gaussian_sigma=(1.0, 25.0), poisson_scale=(0.05, 2.5)))  # L149, L151
    jpeg2: JpegConfig = field(default_factory=JpegConfig)  # L158-161
    video2: VideoConfig = field(default_factory=VideoConfig)  # L166-172, shuffled with the group below
    final_interpolations: tuple[str, ...] = INTERPOLATIONS  # L178: resize to the GT size / scale (L177: 64 x 64 at 256)
    final_interpolation_probs: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)  # L179
    final_sinc: BlurConfig = field(default_factory=_final_sinc)  # L182-189
    shuffle: bool = True  # L163 DegradationsWithShuffle; False: video compression first
    video_last: bool = False  # not in mmagic: the second video compression always after the final resize


def web_video_config() -> RealWorldConfig:
    """The ``web`` preset (vsrkit's, not mmagic's): video as the web delivers it. A clean frame shrunk to 1/scale
    (MATLAB bicubic mostly, else area or cv2 bicubic), sometimes a mild blur before and mild noise, then H.264 at a
    constant rate factor of 18..38 (nine clips in ten); no second stage, no sharpened target. For models scored on
    BI + H.264, e.g. ``vsrkit eval --degrade bi --crf 30``."""
    off = dict(prob=0.0)
    return RealWorldConfig(
        sharpen=SharpenConfig(enabled=False),
        blur1=BlurConfig(prob=0.3, kernel_sizes=(7, 9, 11), kernel_types=("iso", "aniso"), kernel_probs=(0.6, 0.4),
                         sigma_x=(0.2, 1.2), sigma_y=(0.2, 1.2)),
        resize1=ResizeConfig(**off),
        noise1=NoiseConfig(prob=0.2, gaussian_sigma=(1.0, 5.0), poisson_scale=(0.05, 0.5)),
        jpeg1=JpegConfig(**off), video1=VideoConfig(**off),
        blur2=BlurConfig(**off), resize2=ResizeConfig(**off), noise2=NoiseConfig(**off), jpeg2=JpegConfig(**off),
        video2=VideoConfig(prob=0.9, crf=(18.0, 38.0)),
        final_interpolations=("matlab", "area", "bicubic"), final_interpolation_probs=(0.7, 0.15, 0.15),
        final_sinc=BlurConfig(prob=0.0, kernel_types=("sinc",), kernel_probs=(1.0,), omega=(_PI / 3, _PI)),
        video_last=True)


def web_bi_config() -> RealWorldConfig:
    """The ``web-bi`` preset: exactly the BI degradation (MATLAB bicubic, antialiased) then H.264 at a constant rate
    factor of 18..34 on the LR clip (nine clips in ten; the tenth clean BI): the distribution ``vsrkit eval
    --degrade bi --crf N`` scores, with no blur or noise, so a model keeps the detail that ``web`` teaches it to
    smooth away."""
    off = dict(prob=0.0)
    return replace(
        web_video_config(), blur1=BlurConfig(**off), noise1=NoiseConfig(**off),
        video2=VideoConfig(prob=0.9, crf=(18.0, 34.0)), final_interpolations=("matlab",),
        final_interpolation_probs=(1.0,))


# the pipeline's named settings
PRESETS = {"realbasicvsr": RealWorldConfig, "web": web_video_config, "web-bi": web_bi_config}


@lru_cache(maxsize=None)
def preset_config(name: str) -> RealWorldConfig:
    """The pipeline of a named preset: ``realbasicvsr`` (mmagic's training config, the default) or ``web``; made once
    (the configs are frozen), since datasets ask for it per sample."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown realworld preset {name!r}: use {', '.join(PRESETS)}") from None


# ---------------------------------------------------------------------------------------------- kernels
def mesh_grid(size: int) -> np.ndarray:
    """``(size, size, 2)`` float64 coordinates (x, y) centred on the middle tap of an odd ``size``."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    r = np.arange(size, dtype=np.float64) - (size // 2)
    x, y = np.meshgrid(r, r)
    return np.stack([x, y], axis=-1)


def sigma_matrix(sig_x: float, sig_y: float, theta: float) -> np.ndarray:
    """The covariance ``R diag(sig_x^2, sig_y^2) R^T`` of a Gaussian rotated by ``theta`` (radians).

    Built in float32 as mmagic builds it (``get_rotated_sigma_matrix``), so kernels agree with its to ~1e-7."""
    d = np.array([[sig_x ** 2, 0.0], [0.0, sig_y ** 2]], dtype=np.float32)
    c, s = math.cos(theta), math.sin(theta)
    r = np.array([[c, -s], [s, c]], dtype=np.float32)
    return r @ d @ r.T


def _quadratic_form(size: int, sig_x: float, sig_y: float | None, theta: float | None, isotropic: bool) -> np.ndarray:
    """``x^T Sigma^-1 x`` at every tap (float64)."""
    if isotropic:
        cov = np.array([[sig_x ** 2, 0.0], [0.0, sig_x ** 2]], dtype=np.float32)
    else:
        if sig_y is None or theta is None:
            raise ValueError("an anisotropic kernel needs sig_y and theta")
        cov = sigma_matrix(sig_x, sig_y, theta)
    inv = np.linalg.inv(cov)
    g = mesh_grid(size)
    return np.sum((g @ inv) * g, axis=-1)


def gaussian_kernel(size: int, sig_x: float, sig_y: float | None = None, theta: float | None = None,
                    isotropic: bool = True) -> np.ndarray:
    """Bivariate Gaussian ``exp(-q / 2)`` normalised to sum 1 (``q``: the quadratic form); isotropic uses
    ``sig_x`` only."""
    k = np.exp(-0.5 * _quadratic_form(size, sig_x, sig_y, theta, isotropic))
    return k / np.sum(k)


def generalized_gaussian_kernel(size: int, sig_x: float, sig_y: float | None = None, theta: float | None = None,
                                beta: float = 1.0, isotropic: bool = True) -> np.ndarray:
    """Generalized Gaussian ``exp(-q^beta / 2)`` normalised to sum 1 (Pascal et al. 2013; beta 1: Gaussian)."""
    k = np.exp(-0.5 * np.power(_quadratic_form(size, sig_x, sig_y, theta, isotropic), beta))
    return k / np.sum(k)


def plateau_kernel(size: int, sig_x: float, sig_y: float | None = None, theta: float | None = None,
                   beta: float = 1.0, isotropic: bool = True) -> np.ndarray:
    """Plateau-shaped ``1 / (1 + q^beta)`` normalised to sum 1."""
    k = 1.0 / (np.power(_quadratic_form(size, sig_x, sig_y, theta, isotropic), beta) + 1.0)
    return k / np.sum(k)


def sinc_kernel(size: int, omega: float, pad_to: int = 0) -> np.ndarray:
    """Circularly symmetric low-pass ``omega J1(omega r) / (2 pi r)`` (cut-off ``omega`` radians, pi: Nyquist),
    centre tap ``omega^2 / (4 pi)`` (its limit), normalised to sum 1, zero-padded to ``pad_to`` taps if larger."""
    from scipy.special import j1

    g = mesh_grid(size)
    r = np.hypot(g[..., 0], g[..., 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        k = omega * j1(omega * r) / (2.0 * np.pi * r)
    c = size // 2
    k[c, c] = omega ** 2 / (4.0 * np.pi)
    k = k / np.sum(k)
    if pad_to > size:
        p = (pad_to - size) // 2
        k = np.pad(k, ((p, p), (p, p)))
    return k


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def _drift(rng: np.random.Generator, value: float, step: float, lo_hi: tuple[float, float]) -> float:
    """One frame's drift: ``value + U(-step, step)`` clipped to the range (mmagic's update after every frame)."""
    return float(np.clip(value + rng.uniform(-step, step), lo_hi[0], lo_hi[1]))


def _choice(rng: np.random.Generator, options: tuple, probs: tuple[float, ...]):
    p = np.asarray(probs, dtype=np.float64)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


@dataclass(frozen=True)
class KernelParams:
    """One frame's blur kernel: its type, size and shape parameters (``beta`` is the effective one)."""

    type: str
    size: int
    sigma_x: float
    sigma_y: float
    rotation: float
    beta: float  # generalized Gaussian or plateau shape; unused by the others
    omega: float  # sinc cut-off; unused by the others


def blur_params(cfg: BlurConfig, rng: np.random.Generator) -> Iterator[KernelParams]:
    """Endless per-frame kernel parameters of one clip (mmagic's ``RandomBlur.get_kernel``): type and size drawn
    once; sigma_x, sigma_y, rotation, the two betas and omega drawn once, then drifting by ``U(-step, step)``
    per frame, clipped to their ranges."""
    ktype = _choice(rng, cfg.kernel_types, cfg.kernel_probs)
    if ktype not in KERNEL_TYPES:
        raise ValueError(f"unknown kernel type {ktype!r}: use {', '.join(KERNEL_TYPES)}")
    size = int(cfg.kernel_sizes[int(rng.integers(len(cfg.kernel_sizes)))])
    omega_range = cfg.omega or ((math.pi / 3, math.pi) if size < 13 else (math.pi / 5, math.pi))
    sx, sy = _uniform(rng, cfg.sigma_x), _uniform(rng, cfg.sigma_y)
    rot = _uniform(rng, cfg.rotation)
    bg, bp = _uniform(rng, cfg.beta_gaussian), _uniform(rng, cfg.beta_plateau)
    omega = _uniform(rng, omega_range)
    while True:
        beta = bg if ktype.startswith("generalized") else bp
        if cfg.beta_towards_one and ktype.startswith(("generalized", "plateau")):
            beta = beta + (1.0 - beta) * float(rng.random())
        yield KernelParams(ktype, size, sx, sy, rot, beta, omega)
        sx = _drift(rng, sx, cfg.sigma_x_step, cfg.sigma_x)
        sy = _drift(rng, sy, cfg.sigma_y_step, cfg.sigma_y)
        rot = _drift(rng, rot, cfg.rotation_step, cfg.rotation)
        bg = _drift(rng, bg, cfg.beta_gaussian_step, cfg.beta_gaussian)
        bp = _drift(rng, bp, cfg.beta_plateau_step, cfg.beta_plateau)
        omega = _drift(rng, omega, cfg.omega_step, omega_range)


def make_kernel(p: KernelParams) -> np.ndarray:
    """The float64 kernel of :class:`KernelParams` ('iso' types use ``sigma_x`` only)."""
    iso = not p.type.endswith("aniso") and p.type != "sinc"
    if p.type in ("iso", "aniso"):
        return gaussian_kernel(p.size, p.sigma_x, p.sigma_y, p.rotation, isotropic=iso)
    if p.type.startswith("generalized"):
        return generalized_gaussian_kernel(p.size, p.sigma_x, p.sigma_y, p.rotation, p.beta, isotropic=iso)
    if p.type.startswith("plateau"):
        return plateau_kernel(p.size, p.sigma_x, p.sigma_y, p.rotation, p.beta, isotropic=iso)
    if p.type == "sinc":
        return sinc_kernel(p.size, p.omega)
    raise ValueError(f"unknown kernel type {p.type!r}: use {', '.join(KERNEL_TYPES)}")


def kernel_stream(cfg: BlurConfig, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless float64 kernels for the frames of one clip (:func:`blur_params` made into kernels)."""
    return map(make_kernel, blur_params(cfg, rng))


# --------------------------------------------------------------------------------------- frame ops
# A frame is a (3, H, W) tensor of values 0..255: uint8 where mmagic's array is uint8, else float32.

def _requantize(out: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """cv2 keeps a uint8 input uint8: round half to even and saturate."""
    return out.round_().clamp_(0, 255).to(torch.uint8) if like.dtype == torch.uint8 else out


@lru_cache(maxsize=512)
def _reflect101(n: int, pad: int) -> torch.Tensor:
    """Source index of every position ``-pad .. n - 1 + pad`` under cv2's BORDER_REFLECT_101 (``gfedcb|abcdefgh|
    gfedcba``), repeated as often as a short side needs."""
    pos = np.arange(-pad, n + pad)
    if n == 1:
        return torch.zeros(len(pos), dtype=torch.int64)
    period = 2 * n - 2
    m = np.mod(pos, period)
    return torch.from_numpy(np.where(m < n, m, period - m).astype(np.int64))


def _pad101(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """(C, H, W) float tensor extended by ``ph`` rows and ``pw`` columns on each side, BORDER_REFLECT_101."""
    h, w = x.shape[-2:]
    if ph < h and pw < w:  # torch's 'reflect' is REFLECT_101; it needs pads shorter than the sides
        return F.pad(x.unsqueeze(0), (pw, pw, ph, ph), mode="reflect").squeeze(0)
    return x.index_select(-2, _reflect101(h, ph)).index_select(-1, _reflect101(w, pw))


@lru_cache(maxsize=256)
def _fft_size(n: int) -> int:
    """The least ``m >= n`` whose prime factors are 2, 3 and 5 (fast FFT lengths)."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def _correlate(x: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """``x`` (C, H, W) float32 correlated with an odd ``kernel`` centred on its middle tap, borders REFLECT_101:
    through the FFT (as cv2.filter2D for big kernels), in float32."""
    kh, kw = kernel.shape
    h, w = x.shape[-2:]
    xp = _pad101(x, kh // 2, kw // 2)
    size = (_fft_size(xp.shape[-2]), _fft_size(xp.shape[-1]))
    k = torch.zeros(size, dtype=torch.float32)
    k[:kh, :kw] = torch.from_numpy(np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float32))
    y = torch.fft.irfft2(torch.fft.rfft2(xp, s=size) * torch.fft.rfft2(k), s=size)
    return y[:, kh - 1:kh - 1 + h, kw - 1:kw - 1 + w]


def filter2d(frame: torch.Tensor, kernel: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``cv2.filter2D(frame, -1, kernel)``: correlation with an odd square kernel centred on its middle tap,
    borders reflected (BORDER_REFLECT_101), in float32; uint8 in, uint8 out."""
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
        raise ValueError(f"filter2d needs an odd square kernel, got {tuple(k.shape)}")
    return _requantize(_correlate(frame.float(), k), frame)


def _keys_cubic(d: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.75 (cv2's INTER_CUBIC)."""
    a = -0.75
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


@lru_cache(maxsize=1024)
def _resize_taps(n_in: int, n_out: int, mode: str, area_shrink: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """cv2.resize along one axis: ``(index, weight)`` of shape (n_out, taps); indices already clamped.

    ``area_shrink``: INTER_AREA with both axes shrinking (cv2's exact cell overlaps); INTER_AREA otherwise uses
    cv2's area-mode bilinear weights.
    """
    inv_scale = n_out / n_in
    scale = 1.0 / inv_scale
    dx = np.arange(n_out)
    if mode == "area" and area_shrink:
        rows: list[list[tuple[int, float]]] = []
        for d in dx:
            f1 = d * scale
            f2 = f1 + scale
            cell = min(scale, n_in - f1)
            s1, s2 = math.ceil(f1), math.floor(f2)
            s2 = min(s2, n_in - 1)
            s1 = min(s1, s2)
            taps = []
            if s1 - f1 > 1e-3:
                taps.append((s1 - 1, (s1 - f1) / cell))
            taps += [(s, 1.0 / cell) for s in range(s1, s2)]
            if f2 - s2 > 1e-3:
                taps.append((s2, min(min(f2 - s2, 1.0), cell) / cell))
            rows.append(taps)
        k = max(len(t) for t in rows)
        idx = np.zeros((n_out, k), dtype=np.int64)
        wt = np.zeros((n_out, k), dtype=np.float64)
        for d, taps in enumerate(rows):
            for j, (s, a) in enumerate(taps):
                idx[d, j], wt[d, j] = s, a
        return torch.from_numpy(idx), torch.from_numpy(wt.astype(np.float32))
    if mode == "area":  # cv2's emulation when enlarging: bilinear with area-mode fractions
        sx = np.floor(dx * scale).astype(np.int64)
        fx = ((dx + 1) - (sx + 1) * inv_scale).astype(np.float32)
        fx = np.where(fx <= 0, np.float32(0), fx - np.floor(fx)).astype(np.float32)
    else:
        f = ((dx + 0.5) * scale - 0.5).astype(np.float32)
        sx = np.floor(f).astype(np.int64)
        fx = (f - sx).astype(np.float32)
    if mode in ("bilinear", "area"):
        low, high = sx < 0, sx >= n_in - 1
        fx = np.where(low | high, np.float32(0), fx)
        sx = np.where(low, 0, np.where(high, n_in - 1, sx))
        idx = np.stack([sx, sx + 1], axis=1)
        wt = np.stack([1 - fx, fx], axis=1).astype(np.float32)
    elif mode == "bicubic":
        idx = sx[:, None] + np.arange(-1, 3)[None, :]
        wt = _keys_cubic(fx[:, None].astype(np.float64) - np.arange(-1, 3)[None, :]).astype(np.float32)
    else:
        raise ValueError(f"unknown interpolation {mode!r}: use {', '.join(INTERPOLATIONS)}")
    return torch.from_numpy(np.clip(idx, 0, n_in - 1)), torch.from_numpy(np.ascontiguousarray(wt))


def _apply_taps(x: torch.Tensor, dim: int, idx: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
    """Weighted sum of gathered rows (``dim`` = -2) or columns (``dim`` = -1) of a (C, H, W) float tensor."""
    n_out, k = idx.shape
    g = x.index_select(dim, idx.reshape(-1))
    if dim == -2:
        return (g.view(x.shape[0], n_out, k, x.shape[-1]) * wt.view(1, n_out, k, 1)).sum(2)
    return (g.view(x.shape[0], x.shape[1], n_out, k) * wt.view(1, 1, n_out, k)).sum(3)


def resize(frame: torch.Tensor, size: tuple[int, int], interpolation: str) -> torch.Tensor:
    """``cv2.resize(frame, (w, h), interpolation=...)`` of a (C, H, W) frame to ``size = (h, w)``:
    'bilinear' (INTER_LINEAR), 'bicubic' (INTER_CUBIC), 'area' (INTER_AREA); or 'matlab' (MATLAB ``imresize``
    bicubic, antialiased: the BI degradation, not in mmagic); float32, uint8 in -> uint8 out."""
    if interpolation not in RESIZE_MODES:
        raise ValueError(f"unknown interpolation {interpolation!r}: use {', '.join(RESIZE_MODES)}")
    h, w = frame.shape[-2:]
    oh, ow = int(size[0]), int(size[1])
    if oh < 1 or ow < 1:
        raise ValueError(f"resize to {ow}x{oh}: sizes must be positive")
    if (oh, ow) == (h, w):
        return frame.clone()
    if interpolation == "matlab":
        return _requantize(imresize(frame.float(), size=(oh, ow)), frame)
    shrink = oh <= h and ow <= w
    x = frame.float()
    x = _apply_taps(x, -2, *_resize_taps(h, oh, interpolation, shrink))
    x = _apply_taps(x, -1, *_resize_taps(w, ow, interpolation, shrink))
    return _requantize(x, frame)


def gaussian_noise(frame: torch.Tensor, sigma: float, gray: bool, rng: np.random.Generator) -> torch.Tensor:
    """``frame + sigma * N(0, 1)`` (float32), one noise plane shared by the channels when ``gray``."""
    c, h, w = frame.shape
    n = rng.standard_normal((1 if gray else c, h, w), dtype=np.float32) * np.float32(sigma)
    return frame.float() + torch.from_numpy(n)


def poisson_noise(frame: torch.Tensor, scale: float, gray: bool, rng: np.random.Generator) -> torch.Tensor:
    """mmagic's Poisson noise on 0..255 values: ``x`` = the frame (or its BT.601 luma when ``gray``) rounded and
    clipped, ``v = 2^ceil(log2(#distinct values of x))``, noise ``Poisson(x v) / v - x``, added times ``scale``."""
    x = frame.float()
    base = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None] if gray else x
    q = base.round().clamp_(0, 255).numpy().astype(np.float64)
    distinct = int(np.count_nonzero(np.bincount(q.astype(np.int64).ravel(), minlength=256)))
    vals = 2.0 ** math.ceil(math.log2(distinct))
    noise = (rng.poisson(q * vals) / vals - q).astype(np.float32)
    return x + torch.from_numpy(noise) * np.float32(scale)


def unsharp_mask(frame: torch.Tensor, cfg: SharpenConfig = SharpenConfig()) -> torch.Tensor:
    """mmagic's ``UnsharpMasking`` (float32): ``sharp = clip(x + weight (x - blur(x)), 0, 255)`` blended with
    ``x`` by the blurred mask of ``|x - blur(x)| > threshold``; ``blur``: cv2.getGaussianKernel(size, sigma)^2."""
    size = cfg.kernel_size
    if size % 2 == 0:
        raise ValueError(f"unsharp masking needs an odd kernel size, got {size}")
    sigma = cfg.sigma if cfg.sigma > 0 else 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r * r) / (2 * sigma * sigma))
    g = g / g.sum()
    kernel = np.outer(g, g)  # mmagic: np.matmul(kernel, kernel.T) of getGaussianKernel's column
    x = frame.float()
    residue = x - _correlate(x, kernel)
    mask = (residue.abs() > cfg.threshold).float()
    soft = _correlate(mask, kernel)
    sharp = (x + cfg.weight * residue).clamp_(0, 255)
    return soft * sharp + (1 - soft) * x


# ----------------------------------------------------------------------------------- clip-level ops
# Each op is a generator over the frames of one clip, with its own random stream; parameters are drawn when
# the first frame is pulled, and a skipped op (probability) passes frames through unchanged.

def blur_op(frames: Iterable[torch.Tensor], cfg: BlurConfig, rng: np.random.Generator) -> Iterator[torch.Tensor]:
    """``RandomBlur``: each frame filtered by its kernel of :func:`kernel_stream`."""
    if rng.random() > cfg.prob:
        yield from frames
        return
    kernels = kernel_stream(cfg, rng)
    for frame in frames:
        yield filter2d(frame, next(kernels))


def _scaled_size(h: int, w: int, factor: float, even: bool) -> tuple[int, int]:
    ho, wo = h * factor, w * factor
    if even:
        ho, wo = 2 * (ho // 2), 2 * (wo // 2)
    floor = 2 if even else 1
    return max(int(ho), floor), max(int(wo), floor)


def resize_op(frames: Iterable[torch.Tensor], cfg: ResizeConfig, rng: np.random.Generator,
              target: tuple[int, int] | None = None) -> Iterator[torch.Tensor]:
    """``RandomResize``: to ``target`` (h, w) if given, else by a factor drawn for the mode (up: U(1, max), down:
    U(min, 1), keep: 1) that drifts per frame; sizes from the first frame's."""
    if rng.random() > cfg.prob:
        yield from frames
        return
    interp = _choice(rng, cfg.interpolations, cfg.interpolation_probs)
    factor = 1.0
    if target is None:
        mode = _choice(rng, ("up", "down", "keep"), cfg.mode_probs)
        if mode == "up":
            factor = float(rng.uniform(1.0, cfg.scale[1]))
        elif mode == "down":
            factor = float(rng.uniform(cfg.scale[0], 1.0))
    base: tuple[int, int] | None = None
    for frame in frames:
        if base is None:
            base = (frame.shape[-2], frame.shape[-1])
        size = target if target is not None else _scaled_size(*base, factor, cfg.even)
        yield resize(frame, size, interp)
        if target is None and cfg.step:
            factor = _drift(rng, factor, cfg.step, cfg.scale)


def noise_op(frames: Iterable[torch.Tensor], cfg: NoiseConfig, rng: np.random.Generator) -> Iterator[torch.Tensor]:
    """``RandomNoise``: Gaussian (sigma) or Poisson (scale) noise, colour or grey, the level drifting."""
    if rng.random() > cfg.prob:
        yield from frames
        return
    kind = _choice(rng, cfg.types, cfg.type_probs)
    if kind == "gaussian":
        level, span, step = _uniform(rng, cfg.gaussian_sigma), cfg.gaussian_sigma, cfg.gaussian_sigma_step
        gray = bool(rng.random() < cfg.gaussian_gray_prob)
        add = gaussian_noise
    elif kind == "poisson":
        level, span, step = _uniform(rng, cfg.poisson_scale), cfg.poisson_scale, cfg.poisson_scale_step
        gray = bool(rng.random() < cfg.poisson_gray_prob)
        add = poisson_noise
    else:
        raise ValueError(f"unknown noise type {kind!r}: use gaussian or poisson")
    for frame in frames:
        yield add(frame, level, gray, rng)
        level = _drift(rng, level, step, span)


def _to_uint8(frame: torch.Tensor) -> torch.Tensor:
    """cv2's conversion of a float image to uint8 (imencode does it): round half to even, saturate."""
    return frame if frame.dtype == torch.uint8 else frame.round().clamp(0, 255).to(torch.uint8)


def _hwc(frame: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(frame.permute(1, 2, 0).numpy())


def jpeg_op(frames: Iterable[torch.Tensor], cfg: JpegConfig, rng: np.random.Generator) -> Iterator[torch.Tensor]:
    """``RandomJPEGCompression``: a JPEG round trip at a quality drawn per clip (rounded), drifting per frame;
    uint8 frames out. RGB frames are encoded as if BGR (mmagic's ``cv2.imencode`` on RGB arrays)."""
    if rng.random() > cfg.prob:
        yield from frames
        return
    lo, hi = cfg.quality
    quality = round(float(rng.uniform(lo, hi)))
    for frame in frames:
        out = jpeg_roundtrip(_hwc(_to_uint8(frame)), quality, swap_rb=True)
        yield torch.from_numpy(out).permute(2, 0, 1).contiguous()
        quality = round(float(np.clip(quality + rng.uniform(-cfg.step, cfg.step), lo, hi)))


def video_op(frames: Iterable[torch.Tensor], cfg: VideoConfig, rng: np.random.Generator) -> Iterator[torch.Tensor]:
    """``RandomVideoCompression``: the clip through a video codec at a bitrate drawn per clip; float32 frames out,
    all of the first frame's size."""
    if rng.random() > cfg.prob:
        yield from frames
        return
    if cfg.crf is not None:
        outs = crf_roundtrip((_hwc(_to_uint8(f)) for f in frames), _uniform(rng, cfg.crf))
    else:
        codec = _choice(rng, cfg.codecs, cfg.codec_probs)
        bitrate = int(rng.integers(int(cfg.bitrate[0]), int(cfg.bitrate[1]) + 1))
        outs = video_roundtrip((_hwc(_to_uint8(f)) for f in frames), codec, bitrate)
    for out in outs:
        yield torch.from_numpy(out).permute(2, 0, 1).float()


def sharpen_op(frames: Iterable[torch.Tensor], cfg: SharpenConfig) -> Iterator[torch.Tensor]:
    """Unsharp masking of every frame (float32 out), or the frames unchanged (uint8) when disabled."""
    for frame in frames:
        yield unsharp_mask(frame, cfg) if cfg.enabled else frame


# --------------------------------------------------------------------------------------------- pipeline
_OPS = ("blur1", "resize1", "noise1", "jpeg1", "video1", "blur2", "resize2", "noise2", "jpeg2", "order",
         "video2", "final_resize", "final_sinc")


def seed_sequence(seed: int | str | tuple | list | np.random.SeedSequence) -> np.random.SeedSequence:
    """A ``SeedSequence`` from an int, a string, or a tuple of them (e.g. ``(seed, index)``): strings are hashed
    (blake2b), so names give the same stream on every run and platform."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    parts = seed if isinstance(seed, (tuple, list)) else (seed,)
    ints: list[int] = []
    for p in parts:
        if isinstance(p, str):
            p = int.from_bytes(hashlib.blake2b(p.encode(), digest_size=8).digest(), "little")
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 0:
            raise ValueError(f"a realworld seed is a non-negative int, a string, or a tuple of them; got {p!r}")
        ints.append(int(p))
    return np.random.SeedSequence(ints)


def clip_seed(seed: int, name: str) -> np.random.SeedSequence:
    """The seed of a named clip in a fixed degraded dataset (``vsrkit eval --degrade realworld --seed N``, the
    validation set): the same LR for the same clip whatever else the dataset holds."""
    return seed_sequence((int(seed), "realworld-clip", name))


def _rgb8(frame: np.ndarray, i: int) -> torch.Tensor:
    a = np.asarray(frame)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"frame {i}: the realworld degradation needs H x W x 3 uint8 frames, got {a.shape} {a.dtype}")
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)


def _checked(frames: Iterable[np.ndarray], scale: int, first: list) -> Iterator[torch.Tensor]:
    for i, f in enumerate(frames):
        t = _rgb8(f, i)
        if not first:
            h, w = t.shape[-2:]
            if h < scale or w < scale:
                raise ValueError(f"frame 0: {w}x{h} is smaller than the scale {scale}")
            first.append((h, w))
        elif tuple(t.shape[-2:]) != first[0]:
            raise ValueError(f"frame {i}: size {t.shape[-1]}x{t.shape[-2]} differs from the first frame's "
                             f"({first[0][1]}x{first[0][0]})")
        yield t


def degrade_stream(frames: Iterable[np.ndarray], scale: int, seed, config: RealWorldConfig | None = None
                   ) -> Iterator[np.ndarray]:
    """The real-world LR version of a clip, frame by frame: ``H x W x 3`` uint8 frames in, ``H // scale x W //
    scale x 3`` float32 frames in [0, 255] out (not rounded), one per input frame, in order.

    ``seed``: see :func:`seed_sequence`. Frames are pulled lazily; memory holds the video encoders' look-ahead,
    not the clip. A bad frame raises ``ValueError`` naming it.
    """
    cfg = config or RealWorldConfig()
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"realworld scale must be a positive integer, got {scale!r}")
    rngs = {name: np.random.default_rng(s) for name, s in zip(_OPS, seed_sequence(seed).spawn(len(_OPS)))}
    source = iter(frames)
    try:
        head = next(source)
    except StopIteration:
        return
    first: list = []
    it: Iterator[torch.Tensor] = _checked(_chain(head, source), int(scale), first)
    h0, w0 = _rgb8(head, 0).shape[-2:]
    target = (h0 // scale, w0 // scale)
    it = sharpen_op(it, cfg.sharpen)
    it = blur_op(it, cfg.blur1, rngs["blur1"])
    it = resize_op(it, cfg.resize1, rngs["resize1"])
    it = noise_op(it, cfg.noise1, rngs["noise1"])
    it = jpeg_op(it, cfg.jpeg1, rngs["jpeg1"])
    it = video_op(it, cfg.video1, rngs["video1"])
    it = blur_op(it, cfg.blur2, rngs["blur2"])
    it = resize_op(it, cfg.resize2, rngs["resize2"])
    it = noise_op(it, cfg.noise2, rngs["noise2"])
    it = jpeg_op(it, cfg.jpeg2, rngs["jpeg2"])
    video_first = (not cfg.shuffle) or bool(rngs["order"].random() < 0.5)  # the two orders of two groups
    if cfg.video_last:
        video_first = False

    def final_group(x: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
        x = resize_op(x, ResizeConfig(interpolations=cfg.final_interpolations,
                                      interpolation_probs=cfg.final_interpolation_probs),
                      rngs["final_resize"], target=target)
        return blur_op(x, cfg.final_sinc, rngs["final_sinc"])

    if video_first:
        it = final_group(video_op(it, cfg.video2, rngs["video2"]))
    else:
        it = video_op(final_group(it), cfg.video2, rngs["video2"])
    for frame in it:
        yield np.ascontiguousarray(frame.float().clamp_(0, 255).permute(1, 2, 0).numpy())


def _chain(head, rest: Iterator) -> Iterator:
    yield head
    yield from rest


def degrade_clip(frames: np.ndarray, scale: int, seed, config: RealWorldConfig | None = None) -> np.ndarray:
    """:func:`degrade_stream` of a ``T x H x W x 3`` uint8 clip as one ``T x H//scale x W//scale x 3`` float32
    array in [0, 255]: usable in DataLoader workers."""
    a = np.asarray(frames)
    if a.ndim != 4:
        raise ValueError(f"degrade_clip needs a T x H x W x 3 uint8 clip, got shape {a.shape}")
    out = list(degrade_stream(a, scale, seed, config))
    return np.stack(out) if out else np.zeros((0, a.shape[1] // scale, a.shape[2] // scale, 3), np.float32)
