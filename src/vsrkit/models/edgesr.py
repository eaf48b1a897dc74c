"""edge-SR (eSR-MAX, eSR-TM, eSR-TR, eSR-CNN), ESPCN, FSRCNN and bicubic as a learned filter.

Re-implementation of the models of Navarrete Michelini et al., *edge-SR: Super-Resolution For The Masses*
(WACV 2022; official code pnavarre/eSR ``models.py``). All of them are single-image models on one channel:
the engine runs them on luma (Y) and upscales chroma bicubically.

Every class takes the official constructor argument, the model id string that the released
``model-files/<id>.model`` are named after, or the same hyper-parameters as keywords:

=========  ==================================  =========================================
class      model id (official token order)      keywords
=========  ==================================  =========================================
EdgeSRMAX  ``eSR-MAX_s2_K7_C8``                 ``scale, K, C``
EdgeSRTM   ``eSR-TM_s2_K7_C16``                 ``scale, K, C``
EdgeSRTR   ``eSR-TR_s2_K7_C16``                 ``scale, K, C``
EdgeSRCNN  ``eSR-CNN_s2_C8_D3_S6``              ``scale, C, D, S``
ESPCN      ``ESPCN_s2_D64_S32``                 ``scale, D, S``
FSRCNN     ``FSRCNN_s2_D56_S12_M4``             ``scale, D, S, M``
Bicubic    ``Bicubic_s2``                       ``scale``
=========  ==================================  =========================================

``s`` is the scale, ``K`` the filter size, ``C`` the number of filter "channels" (the paper's C, not the
image channels), ``D``/``S`` the widths of the first two layers and ``M`` FSRCNN's number of mapping
layers. Parameter names are the official state-dict keys, so the released plain state dicts load strictly.

Differences from the official code, none of which affect a released model:

- ``eSR-CNN`` with ``D0`` crashes in the official code (it builds ``Conv2d(0, S)``); here it is the evident
  intent, a 3x3 ``Conv2d(1, S)`` in place of the first two layers (keys ``filter.0``, ``filter.2``).
- FSRCNN accepts any ``M >= 1`` (officially only 1 and 4).
- ``Bicubic_s<n>_PS`` (the official pixel-shuffle variant, which returns 2n-2 pixels) is refused.
  :class:`Bicubic` keeps the official transposed-convolution weight ``net.weight`` (so ``Bicubic_s2.model``
  loads) but computes it the edge-SR way: ``s*s`` polyphase filters, then a pixel shuffle.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vsrkit.errors import VsrkitError
from vsrkit.models.family import Family, ModelEntry, Rule, bundled_weights, check_fits
from vsrkit.models.spec import ModelSpec, Temporal

__all__ = [
    "EdgeSRMAX",
    "EdgeSRTM",
    "EdgeSRTR",
    "EdgeSRCNN",
    "ESPCN",
    "FSRCNN",
    "Bicubic",
    "parse_model_id",
    "bicubic_kernel",
]

# model id prefix -> (class name, hyper-parameter letters in the official order)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "eSR-MAX": ("EdgeSRMAX", ("s", "K", "C")),
    "eSR-TM": ("EdgeSRTM", ("s", "K", "C")),
    "eSR-TR": ("EdgeSRTR", ("s", "K", "C")),
    "eSR-CNN": ("EdgeSRCNN", ("s", "C", "D", "S")),
    "ESPCN": ("ESPCN", ("s", "D", "S")),
    "FSRCNN": ("FSRCNN", ("s", "D", "S", "M")),
    "Bicubic": ("Bicubic", ("s",)),
}
_TOKEN = re.compile(r"^([A-Za-z])(\d+)$")


def _example(kind: str) -> str:
    return {
        "eSR-MAX": "eSR-MAX_s2_K7_C8",
        "eSR-TM": "eSR-TM_s2_K7_C16",
        "eSR-TR": "eSR-TR_s2_K7_C16",
        "eSR-CNN": "eSR-CNN_s2_C8_D3_S6",
        "ESPCN": "ESPCN_s2_D64_S32",
        "FSRCNN": "FSRCNN_s2_D56_S12_M4",
        "Bicubic": "Bicubic_s2",
    }[kind]


def kind_of(model_id: str) -> str | None:
    """The model kind a model id / file stem starts with (case-insensitive), or None."""
    head = model_id.split("_", 1)[0].lower()
    for kind in KINDS:
        if head == kind.lower():
            return kind
    return None


def parse_model_id(model_id: str) -> tuple[str, dict[str, int]]:
    """``'eSR-TR_s2_K5_C4'`` -> ``('eSR-TR', {'s': 2, 'K': 5, 'C': 4})``.

    The kind is matched case-insensitively; the hyper-parameter letters are case-sensitive (``s`` is the
    scale, ``S`` a layer width) and may come in any order, each exactly once, as in the official parser.
    """
    kind = kind_of(model_id)
    if kind is None:
        raise ValueError(
            f"{model_id!r} is not an edge-SR model id: it must start with one of "
            + ", ".join(k + "_" for k in KINDS)
        )
    letters = KINDS[kind][1]
    fmt = _example(kind)
    tokens = model_id.split("_")[1:]
    values: dict[str, int] = {}
    for tok in tokens:
        m = _TOKEN.match(tok)
        if not m or m.group(1) not in letters or m.group(1) in values:
            raise ValueError(
                f"cannot parse edge-SR model id {model_id!r}: unexpected part {tok!r}; "
                f"a {kind} id looks like {fmt!r} ({', '.join(letters)})"
            )
        values[m.group(1)] = int(m.group(2))
    missing = [c for c in letters if c not in values]
    if missing:
        raise ValueError(
            f"cannot parse edge-SR model id {model_id!r}: {', '.join(missing)} missing; "
            f"a {kind} id looks like {fmt!r}"
        )
    _check(kind, values, model_id)
    return kind, values


def _check(kind: str, v: dict[str, int], what: str) -> None:
    def bad(msg: str) -> ValueError:
        return ValueError(f"edge-SR model {what!r}: {msg}")

    if v["s"] < 2:
        raise bad(f"scale s must be 2 or more, got {v['s']}")
    if "K" in v and (v["K"] < 1 or v["K"] % 2 == 0):
        raise bad(f"filter size K must be odd and positive, got {v['K']}")
    if "C" in v and v["C"] < 1:
        raise bad(f"C must be at least 1, got {v['C']}")
    if "S" in v and v["S"] < 1:
        raise bad(f"S must be at least 1, got {v['S']}")
    if "D" in v and v["D"] < 0:
        raise bad(f"D must be 0 or more, got {v['D']}")
    if kind == "FSRCNN" and (v["D"] < 1 or v["M"] < 1):
        raise bad("FSRCNN needs D >= 1 and M >= 1")


def make_id(kind: str, v: dict[str, int]) -> str:
    return "_".join([kind] + [f"{c}{v[c]}" for c in KINDS[kind][1]])


def _resolve(kind: str, model_id: str | None, scale: int | None, **hp: int | None) -> tuple[str, dict[str, int]]:
    """Model id and hyper-parameters from either the id string or keywords (keywords override the id)."""
    if model_id is not None:
        got_kind, v = parse_model_id(model_id)
        if got_kind != kind:
            raise ValueError(f"model id {model_id!r} is a {got_kind} model, not {kind}")
    else:
        v = {}
    if scale is not None:
        v["s"] = int(scale)
    for k, val in hp.items():
        if val is not None:
            v[k] = int(val)
    missing = [c for c in KINDS[kind][1] if c not in v]
    if missing:
        raise ValueError(
            f"{KINDS[kind][0]} needs a model_id like {_example(kind)!r} or the keywords "
            + ", ".join("scale" if c == "s" else c for c in missing)
        )
    mid = make_id(kind, v)
    _check(kind, v, mid)
    return mid, v


class _Base(nn.Module):
    """Common declarations: one channel, frame model."""

    def _declare(self, model_id: str, v: dict[str, int]) -> None:
        self.model_id = model_id
        self.hparams = dict(v)
        self.scale = v["s"]
        self.spec = ModelSpec(scale=self.scale, temporal=Temporal("frame"), channels=1)

    def extra_repr(self) -> str:
        return f"model_id={self.model_id!r}"


def _esr_filter(scale: int, K: int, C: int, mult: int) -> nn.Conv2d:
    """The eSR single-layer filter bank: ``mult*s*s*C`` KxK filters, official init."""
    conv = nn.Conv2d(1, mult * scale * scale * C, K, padding=(K - 1) // 2, bias=False)
    nn.init.xavier_normal_(conv.weight, gain=1.0)
    with torch.no_grad():
        conv.weight[:, 0, K // 2, K // 2] = 1.0
    return conv


def _candidates(y: torch.Tensor, parts: int, C: int, scale: int) -> torch.Tensor:
    """The filter bank's output ``(b, parts * C * s * s, h, w)`` seen as ``(parts, b, C, s * s, h, w)``.

    ``pixel_shuffle(y)`` would make image ``k`` of the ``parts * C`` candidate images from channels
    ``k * s * s ...``; every model here combines the C candidates pixel by pixel (a max, or a softmax over C),
    which does not depend on where a pixel lands, so they are combined before the shuffle, on ``s * s``
    times smaller tensors, and only the result is shuffled (the same numbers, several times faster)."""
    b, _, h, w = y.shape
    return y.view(b, parts, C, scale * scale, h, w).unbind(1)


def _attend(value: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``sum_C(value * softmax_C(logits))`` over dim 1 of ``(b, C, s * s, h, w)``; ``(b, s * s, h, w)``."""
    return (value * torch.softmax(logits, dim=1)).sum(dim=1)


# bytes of filter-bank output per strip in ``_filter_in_strips``: small enough to stay in a core's cache
# (measured at 180x320, eSR-TR x4 K7 C16, one thread: strips of 4-8 rows 0.18x the time of the whole frame)
_STRIP_BYTES = 4 << 20


def _filter_in_strips(x: torch.Tensor, conv: nn.Conv2d, combine: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``combine(conv(x))`` computed a few rows at a time, so that the wide filter-bank output (hundreds of
    channels) never leaves the cache: the input is zero-padded at the top and bottom as the convolution
    would, and each strip is convolved with its ``K // 2`` rows of context. The same numbers as the whole
    frame at once (one layer, so the context is exact)."""
    b, _, h, w = x.shape
    p = conv.padding[0]
    rows = max(1, _STRIP_BYTES // max(1, b * conv.out_channels * w * x.element_size()))
    if rows >= h or torch.jit.is_tracing():
        return combine(conv(x))
    xp = F.pad(x, (0, 0, p, p))
    strips = [
        combine(F.conv2d(xp[:, :, r0 : min(h, r0 + rows) + 2 * p], conv.weight, conv.bias, padding=(0, conv.padding[1])))
        for r0 in range(0, h, rows)
    ]
    return torch.cat(strips, 2)


class EdgeSRMAX(_Base):
    """eSR-MAX: ``s*s*C`` KxK filters, pixel shuffle to C candidate images, max over them."""

    def __init__(self, model_id: str | None = None, *, scale: int | None = None, K: int | None = None,
                 C: int | None = None) -> None:
        super().__init__()
        mid, v = _resolve("eSR-MAX", model_id, scale, K=K, C=C)
        self._declare(mid, v)
        self.C, self.K = v["C"], v["K"]
        self.filter = _esr_filter(self.scale, self.K, self.C, 1)
        self.pixel_shuffle = nn.PixelShuffle(self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the max over the C candidates taken before the pixel shuffle, at low resolution: the same numbers
        def combine(y: torch.Tensor) -> torch.Tensor:
            return _candidates(y, 1, self.C, self.scale)[0].amax(dim=1)

        return F.pixel_shuffle(_filter_in_strips(x, self.filter, combine), self.scale)


class EdgeSRTM(_Base):
    """eSR-TM (template matching): C value and C key images, ``sum(value * softmax(key))``."""

    def __init__(self, model_id: str | None = None, *, scale: int | None = None, K: int | None = None,
                 C: int | None = None) -> None:
        super().__init__()
        mid, v = _resolve("eSR-TM", model_id, scale, K=K, C=C)
        self._declare(mid, v)
        self.C, self.K = v["C"], v["K"]
        self.filter = _esr_filter(self.scale, self.K, self.C, 2)
        self.pixel_shuffle = nn.PixelShuffle(self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def combine(y: torch.Tensor) -> torch.Tensor:
            value, key = _candidates(y, 2, self.C, self.scale)
            return _attend(value, key)

        return F.pixel_shuffle(_filter_in_strips(x, self.filter, combine), self.scale)


class EdgeSRTR(_Base):
    """eSR-TR (transformer): value, query and key images, ``sum(value * softmax(query * key))``."""

    def __init__(self, model_id: str | None = None, *, scale: int | None = None, K: int | None = None,
                 C: int | None = None) -> None:
        super().__init__()
        mid, v = _resolve("eSR-TR", model_id, scale, K=K, C=C)
        self._declare(mid, v)
        self.C, self.K = v["C"], v["K"]
        self.filter = _esr_filter(self.scale, self.K, self.C, 3)
        self.pixel_shuffle = nn.PixelShuffle(self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def combine(y: torch.Tensor) -> torch.Tensor:
            value, query, key = _candidates(y, 3, self.C, self.scale)
            return _attend(value, query * key)

        return F.pixel_shuffle(_filter_in_strips(x, self.filter, combine), self.scale)


class EdgeSRCNN(_Base):
    """eSR-CNN: a small CNN (5x5 D, 3x3 S, tanh) predicts the TM-style value/key images."""

    def __init__(self, model_id: str | None = None, *, scale: int | None = None, C: int | None = None,
                 D: int | None = None, S: int | None = None) -> None:
        super().__init__()
        mid, v = _resolve("eSR-CNN", model_id, scale, C=C, D=D, S=S)
        self._declare(mid, v)
        s, self.C, self.D, self.S = self.scale, v["C"], v["D"], v["S"]
        last = nn.Conv2d(self.S, 2 * s * s * self.C, 3, padding=1, bias=False)
        if self.D == 0:
            first = [nn.Conv2d(1, self.S, 3, padding=1), nn.Tanh()]
            centres = [(first[0], 1)]
        else:
            first = [nn.Conv2d(1, self.D, 5, padding=2), nn.Tanh(), nn.Conv2d(self.D, self.S, 3, padding=1), nn.Tanh()]
            centres = [(first[0], 2), (first[2], 1)]
        self.filter = nn.Sequential(*first, last, nn.PixelShuffle(s))
        with torch.no_grad():
            for conv, c in centres + [(last, 1)]:
                nn.init.xavier_normal_(conv.weight, gain=1.0)
                conv.weight[:, 0, c, c] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, key = _candidates(self.filter[:-1](x), 2, self.C, self.scale)  # filter[-1] is the pixel shuffle
        return F.pixel_shuffle(_attend(value, key * key), self.scale)


class ESPCN(_Base):
    """ESPCN as in the edge-SR benchmark: 5x5 D, 3x3 S, tanh, 3x3 to ``s*s``, pixel shuffle, sigmoid."""

    def __init__(self, model_id: str | None = None, *, scale: int | None = None, D: int | None = None,
                 S: int | None = None) -> None:
        super().__init__()
        mid, v = _resolve("ESPCN", model_id, scale, D=D, S=S)
        self._declare(mid, v)
        s, self.D, self.S = self.scale, v["D"], v["S"]
        if self.D == 0:
            head = [nn.Conv2d(1, self.S, 3, padding=1), nn.Tanh()]
        else:
            head = [nn.Conv2d(1, self.D, 5, padding=2), nn.Tanh(), nn.Conv2d(self.D, self.S, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*head, nn.Conv2d(self.S, s * s, 3, padding=1), nn.PixelShuffle(s), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FSRCNN(_Base):
    """FSRCNN(D, S, M) with PReLU and a 9x9 transposed convolution, as in the edge-SR benchmark."""

    def __init__(self, model_id: str | None = None, *, scale: int | None = None, D: int | None = None,
                 S: int | None = None, M: int | None = None) -> None:
        super().__init__()
        mid, v = _resolve("FSRCNN", model_id, scale, D=D, S=S, M=M)
        self._declare(mid, v)
        s, self.D, self.S, self.M = self.scale, v["D"], v["S"], v["M"]
        layers: list[nn.Module] = [nn.Conv2d(1, self.D, 5, padding=2), nn.PReLU(), nn.Conv2d(self.D, self.S, 1), nn.PReLU()]
        for _ in range(self.M):
            layers += [nn.Conv2d(self.S, self.S, 3, padding=1), nn.PReLU()]
        layers += [
            nn.Conv2d(self.S, self.D, 1),
            nn.PReLU(),
            nn.ConvTranspose2d(self.D, 1, 9, stride=s, padding=(9 - 1 - s) // 2 + 1, output_padding=(s + 1) % 2),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ----------------------------------------------------------------------------------------------------------
# Bicubic


def cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter ``a`` (-0.5: the edge-SR / Matlab-style bicubic)."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    out = np.zeros_like(x)
    near = x < 1
    far = (x >= 1) & (x < 2)
    out[near] = (a + 2) * x[near] ** 3 - (a + 3) * x[near] ** 2 + 1
    out[far] = a * x[far] ** 3 - 5 * a * x[far] ** 2 + 8 * a * x[far] - 4 * a
    return out


def bicubic_kernel(scale: int) -> np.ndarray:
    """The 1-D bicubic (a=-0.5) interpolation taps of the official ``Bicubic_s<scale>`` model.

    The official code samples the cubic kernel at a fixed phase of -1.5 taps, normalised to sum 1 (each
    output phase then sums to 1: the cubic kernel is a partition of unity). With its transposed-convolution
    padding this puts output pixel ``o`` at input position ``(o + 1/2)/scale - 1/2`` for even scales (pixel
    centres aligned, as ``align_corners=False``) and at ``o/scale - 1/2`` for odd scales: x3 is shifted by
    half an output pixel. That is kept, so ``Bicubic_s3.model`` gives the official numbers. The transposed-
    convolution weight is ``scale**2`` times the outer product of these taps plus a zero row and column.
    """
    s = scale
    # taps that can be non-zero: |(o + 1/2)/s - 1/2 - i| < 2  with o - s*i = k - offset.
    lo = math.ceil(-2 * s + 1.5)
    hi = math.floor(2 * s + 1.5)
    anchor = max(abs(lo), abs(hi))
    idx = np.arange(-anchor + 1, anchor + 1, dtype=np.float64)
    taps = cubic((idx - 1.5) / s)
    return taps / taps.sum()


def _bicubic_weight(scale: int) -> torch.Tensor:
    """The official Bicubic model's ``net.weight``: ConvTranspose2d layout (1, 1, L+1, L+1)."""
    k = bicubic_kernel(scale)
    f2d = np.outer(k, k) * scale * scale
    w = torch.zeros(1, 1, len(k) + 1, len(k) + 1)
    w[0, 0, :-1, :-1] = torch.from_numpy(f2d).float()
    return w


def _polyphase_index(K: int, s: int, p: int) -> tuple[torch.Tensor, int, int]:
    """Index map turning a 1-D transposed conv (kernel K, stride s, padding p) into ``s`` correlation filters.

    The transposed conv gives ``out[s*q + r] = sum_i x[i] * w[s*q + r + p - s*i]``. Returns ``idx[r, t]``
    (tap of ``w`` used by phase r at correlation position t; K means zero) and the left/right zero
    padding for which ``out[s*q + r] = sum_t w[idx[r, t]] * xpad[q + t]``.
    """
    # out[s*q + r] = sum_i x[i] w[k], k = s*(q - i) + r + p; with d = q - i: x[q - d] * w[s*d + r + p]
    dmin = math.floor(-(s - 1 + p) / s)  # smallest d with s*d + r + p >= 0 for some r
    dmax = math.floor((K - 1 - p) / s)  # largest d with s*d + r + p <= K - 1 for some r
    n = dmax - dmin + 1
    idx = torch.full((s, n), K, dtype=torch.long, device="cpu")
    for r in range(s):
        for t in range(n):
            d = dmax - t  # position t reads x[q + t - dmax]
            k = s * d + r + p
            if 0 <= k < K:
                idx[r, t] = k
    return idx, dmax, n - 1 - dmax


class Bicubic(_Base):
    """Bicubic upscaling (Keys a=-0.5, zero outside the image) as a learnable filter layer.

    The parameter is the official ``net.weight`` (transposed-convolution layout, ``(1, 1, L+1, L+1)``,
    initialised to the bicubic kernel), so ``Bicubic_s<n>.model`` files load strictly. The forward pass is
    edge-SR shaped: the weight is rearranged into ``s*s`` polyphase filters, one convolution, then a pixel
    shuffle; this equals the official ``ConvTranspose2d`` exactly (it is the same sum), and with the
    initial weight it equals bicubic interpolation by its definition (Keys a=-0.5, zero outside the image;
    sampling grid as in :func:`bicubic_kernel`: odd scales are shifted by half an output pixel, as in the
    official code).
    """

    def __init__(self, model_id: str | None = None, *, scale: int | None = None) -> None:
        super().__init__()
        if model_id is not None and "PS" in model_id.split("_")[1:]:
            raise ValueError(
                f"{model_id!r}: the official pixel-shuffle Bicubic variant is not supported "
                "(it returns 2n-2 pixels and no released file uses it); use the plain id, e.g. 'Bicubic_s2'"
            )
        mid, v = _resolve("Bicubic", model_id, scale)
        self._declare(mid, v)
        s = self.scale
        w = _bicubic_weight(s)
        K = w.shape[-1]
        self.padding = (K - 1 - s) // 2 + 1  # the official ConvTranspose2d padding
        self.output_padding = (s + 1) % 2
        self.net = nn.Module()
        self.net.weight = nn.Parameter(w)
        idx, left, right = _polyphase_index(K, s, self.padding)
        # 2-D gather index into the weight padded with one zero row and column (index K)
        n = idx.shape[1]
        flat = (idx.view(s, 1, n, 1) * (K + 1) + idx.view(1, s, 1, n)).reshape(s * s, 1, n, n)
        self.register_buffer("_poly_index", flat, persistent=False)
        self._pad = (left, right)
        # output size check: the official transposed conv gives s*h for these settings
        if K - 2 * self.padding + self.output_padding != s:
            raise ValueError(f"Bicubic_s{s}: unsupported scale")

    def polyphase_filters(self) -> torch.Tensor:
        """The ``(s*s, 1, n, n)`` correlation filters, phase ``ry*s + rx`` (``nn.PixelShuffle`` order)."""
        w = F.pad(self.net.weight[0, 0], (0, 1, 0, 1)).reshape(-1)
        return w[self._poly_index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = F.conv2d(F.pad(x.reshape(b * c, 1, h, w), self._pad * 2), self.polyphase_filters())
        return F.pixel_shuffle(y, self.scale).reshape(b, c, h * self.scale, w * self.scale)


# official class names, for users who read the official code
edgeSR_MAX = EdgeSRMAX
edgeSR_TM = EdgeSRTM
edgeSR_TR = EdgeSRTR
edgeSR_CNN = EdgeSRCNN
Classic = Bicubic

_CLASSES: dict[str, type[_Base]] = {
    "EdgeSRMAX": EdgeSRMAX,
    "EdgeSRTM": EdgeSRTM,
    "EdgeSRTR": EdgeSRTR,
    "EdgeSRCNN": EdgeSRCNN,
    "ESPCN": ESPCN,
    "FSRCNN": FSRCNN,
    "Bicubic": Bicubic,
}


def build(model_id: str) -> _Base:
    """The model for an official model id, e.g. ``build('eSR-TR_s2_K5_C4')``."""
    kind, _ = parse_model_id(model_id)
    return _CLASSES[KINDS[kind][0]](model_id)


# ==========================================================================================================
# The family: names, recognition, training defaults

_SUMMARY = "Y only; chroma bicubic"
_DEFAULTS = {
    # name: (class, model id template) - configurations that exist in the released model-files at s2, s3, s4
    "esr-max": ("EdgeSRMAX", "eSR-MAX_s{s}_K7_C8", "edge-SR MAX, one 7x7 layer"),
    "esr-tm": ("EdgeSRTM", "eSR-TM_s{s}_K7_C16", "edge-SR template matching, one 7x7 layer"),
    "esr-tr": ("EdgeSRTR", "eSR-TR_s{s}_K7_C16", "edge-SR transformer, one 7x7 layer"),
    "esr-cnn": ("EdgeSRCNN", "eSR-CNN_s{s}_C8_D3_S6", "edge-SR CNN (D3, S6)"),
    "espcn": ("ESPCN", "ESPCN_s{s}_D64_S32", "ESPCN (D64, S32)"),
    "fsrcnn": ("FSRCNN", "FSRCNN_s{s}_D56_S12_M4", "FSRCNN (D56, S12, M4)"),
    "bicubic": ("Bicubic", "Bicubic_s{s}", "bicubic as a learnable filter layer"),
}

# Names carry the scale: ``esr-tr-x2``, ``esr-tr-x3``, ``esr-tr-x4``. The plain name (``esr-tr``) is x4, the
# scale vsrkit is presented at (before 0.2 it was x2: say ``-x2`` for those models).
PLAIN_SCALE = 4
_NAMED = [
    ModelEntry(
        name=f"{_name}-x{_s}",
        arch=_cls,
        kwargs={"model_id": _tpl.format(s=_s)},
        summary=f"{_what}, x{_s} ({_tpl.format(s=_s)}); {_SUMMARY}; weights: --weights model-files/"
        f"{_tpl.format(s=_s)}.model from pnavarre/eSR",
    )
    for _name, (_cls, _tpl, _what) in _DEFAULTS.items()
    for _s in (2, 3, 4)
]

# trained by vsrkit (issue 13) and shipped inside the package (vsrkit/hub/weights, model card beside it)
_FAST = [
    ModelEntry(
        name="espcn-fast-x4",
        arch="ESPCN",
        kwargs={"model_id": "ESPCN_s4_D64_S32"},
        weights=bundled_weights("espcn-fast-x4", "a1eb799f44279837b9f8e7ac0d0af254270c02781cc52ac1526c0e0b6208b0f7"),
        summary=f"fast ESPCN x4 trained by vsrkit on sample clips (BI), bundled; {_SUMMARY}",
    ),
    ModelEntry(
        name="espcn-fast-x2",
        arch="ESPCN",
        kwargs={"model_id": "ESPCN_s2_D64_S32"},
        weights=bundled_weights("espcn-fast-x2", "9a472eb260cd7f9f504d47554dac879d8eb900044c6a93b2d76f429d7cfd56b2"),
        summary=f"fast ESPCN x2 trained by vsrkit on sample clips (BI), bundled; {_SUMMARY}",
    ),
]

ENTRIES: tuple[ModelEntry, ...] = (*_NAMED, *_FAST)

# names kept for convenience: a plain edge-SR name is its x4 model
ALIASES: dict[str, str] = {
    e.name.rsplit("-x", 1)[0]: e.name for e in ENTRIES if e.name.endswith(f"-x{PLAIN_SCALE}")
}

_STEM_SUFFIXES = (".model", ".pth", ".pt", ".safetensors", ".bin", ".ckpt")


def _stem(filename: str) -> str:
    name = Path(str(filename)).name
    for suf in _STEM_SUFFIXES:
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


def _keys_kind(sd: dict[str, torch.Tensor]) -> str | None:
    """Which edge-SR layout a state dict has from its key names alone ('filter' = MAX/TM/TR), or None."""
    keys = set(sd)
    if keys == {"filter.weight"}:
        return "filter"
    if keys == {"net.weight"}:
        return "Bicubic"
    if keys in ({"filter.0.weight", "filter.0.bias", "filter.2.weight", "filter.2.bias", "filter.4.weight"},
                {"filter.0.weight", "filter.0.bias", "filter.2.weight"}):
        return "eSR-CNN"
    if keys in ({f"net.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")},
                {f"net.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}):
        return "ESPCN"
    if "net.0.weight" in keys and "net.1.weight" in keys and all(re.fullmatch(r"net\.\d+\.(weight|bias)", k) for k in keys):
        return "FSRCNN"
    return None


def _shape(sd: dict[str, torch.Tensor], key: str) -> tuple[int, ...]:
    return tuple(sd[key].shape)


def _infer(kind: str, sd: dict[str, torch.Tensor]) -> tuple[str, dict[str, int]]:
    """Hyper-parameters from shapes alone; VsrkitError naming what cannot be told."""
    hint = "keep the official file name (e.g. {}.model) or pass model_id"
    if kind == "filter":
        n, _, K, _ = _shape(sd, "filter.weight")
        cands = [(k, s, n // (m * s * s)) for k, m in (("eSR-MAX", 1), ("eSR-TM", 2), ("eSR-TR", 3))
                 for s in (2, 3, 4) if n % (m * s * s) == 0]
        if len(cands) == 1:
            k, s, C = cands[0]
            return k, {"s": s, "K": K, "C": C}
        told = ", ".join(f"{k}_s{s}_K{K}_C{C}" for k, s, C in cands) or "none"
        raise VsrkitError(
            f"edge-SR checkpoint: the variant (MAX/TM/TR), scale s and C cannot be told from filter.weight "
            f"{list(sd['filter.weight'].shape)} (it holds variant*s*s*C = {n} filters; could be {told}); "
            + hint.format("eSR-TR_s2_K7_C16")
        )
    if kind == "eSR-CNN":
        if "filter.4.weight" in sd:
            D, S, n = _shape(sd, "filter.0.weight")[0], _shape(sd, "filter.2.weight")[0], _shape(sd, "filter.4.weight")[0]
        else:
            D, S, n = 0, _shape(sd, "filter.0.weight")[0], _shape(sd, "filter.2.weight")[0]
        cands = [(s, n // (2 * s * s)) for s in (2, 3, 4) if n % (2 * s * s) == 0]
        if len(cands) == 1:
            s, C = cands[0]
            return kind, {"s": s, "C": C, "D": D, "S": S}
        told = ", ".join(f"eSR-CNN_s{s}_C{C}_D{D}_S{S}" for s, C in cands) or "none"
        raise VsrkitError(
            f"eSR-CNN checkpoint: scale s and C cannot be told from its last layer ({n} = 2*s*s*C filters; "
            f"could be {told}); " + hint.format("eSR-CNN_s2_C8_D3_S6")
        )
    if kind == "ESPCN":
        if "net.4.weight" in sd:
            D, S, n = _shape(sd, "net.0.weight")[0], _shape(sd, "net.2.weight")[0], _shape(sd, "net.4.weight")[0]
        else:
            D, S, n = 0, _shape(sd, "net.0.weight")[0], _shape(sd, "net.2.weight")[0]
        s = math.isqrt(n)
        if s * s != n or s < 2:
            raise VsrkitError(f"ESPCN checkpoint: last layer has {n} filters, not scale*scale")
        return kind, {"s": s, "D": D, "S": S}
    if kind == "FSRCNN":
        D, S = _shape(sd, "net.0.weight")[0], _shape(sd, "net.2.weight")[0]
        M = sum(1 for k in sd if k.endswith(".weight") and sd[k].ndim == 4 and sd[k].shape[-1] == 3)
        raise VsrkitError(
            f"FSRCNN checkpoint (D{D}, S{S}, M{M}): the scale s cannot be told from the weights (the 9x9 "
            "transposed convolution has the same shape at every scale); "
            + hint.format(f"FSRCNN_s2_D{D}_S{S}_M{M}")
        )
    if kind == "Bicubic":
        L = _shape(sd, "net.weight")[-1]
        for s in range(2, 9):
            if len(bicubic_kernel(s)) + 1 == L:
                return kind, {"s": s}
        raise VsrkitError(f"Bicubic checkpoint: net.weight of size {L} matches no scale")
    raise AssertionError(kind)


def detect_edgesr(state_dict: dict[str, torch.Tensor], filename: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """Recognise an edge-SR / ESPCN / FSRCNN / Bicubic checkpoint.

    With a file name in the official form (``eSR-TR_s4_K3_C5.model``, ``eSR-CNN_s2_C8_D3_S6.model``,
    ``ESPCN_s2_D64_S32.model``, ``FSRCNN_s2_D56_S12_M4.model``, ``Bicubic_s2.model``; any of the suffixes
    .model/.pth/.pt/.safetensors/.bin/.ckpt or none) the id comes from the name and is checked against the
    shapes. Without one, it is read from the shapes where they tell: ESPCN and Bicubic always, eSR-CNN and
    eSR-MAX/TM/TR only when a single scale (and variant) fits; FSRCNN never (its scale is not in the shapes).

    Returns ``(class_name, {'model_id': id})``, or None when the keys are not of this family (and the file
    name does not claim it). Raises VsrkitError when the name claims this family but does not parse or
    does not fit the weights, or when a hyper-parameter cannot be told.
    """
    kind_keys = _keys_kind(state_dict)
    stem = _stem(filename) if filename else None
    kind_name = kind_of(stem) if stem else None
    if kind_keys is None and kind_name is None:
        return None
    if kind_name is not None:
        kind, v = parse_model_id(stem)
        model_id = make_id(kind, v)
        if kind_keys is None:
            first = next(iter(state_dict), None)
            raise VsrkitError(
                f"{Path(str(filename)).name} is named like an edge-SR {kind} model but its weights are not one "
                f"(first key {first!r})"
            )
        with torch.device("meta"):
            own = build(model_id).state_dict()
        check_fits(own, state_dict, Path(str(filename)).name, f"{model_id} (is the file renamed?)")
        return KINDS[kind][0], {"model_id": model_id}
    kind, v = _infer(kind_keys, state_dict)
    return KINDS[kind][0], {"model_id": make_id(kind, v)}


FAMILY = Family(
    "edgesr",
    ENTRIES,
    rules=(Rule((), detect_edgesr, by_name=True),),  # its layouts are told by key sets and official file names
    aliases=ALIASES,
)
