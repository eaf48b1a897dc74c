"""RLSP: Recurrent Latent Space Propagation (Fuoli, Gu, Timofte, ICCV-W 2019; official code dariofuoli/RLSP,
``pytorch/rlsp.py``).

Each frame goes through one cell: the previous, current and next LR frames, the previous HR output
shuffled down to LR resolution (feedback) and the hidden state are concatenated; ``layers`` 3x3 convs
with ReLU give ``in_channels*factor**2`` residual channels and ``state_dim`` new-state channels. The
output is ``shuffle_up(residual + current frame repeated factor**2 times)``: with the official
``shuffle_up`` channel order ``(fy, fx, c)`` (not ``nn.PixelShuffle``'s ``(c, fy, fx)``) the repeated
frame is a nearest-neighbour upsampling. At the ends the missing neighbour is the current frame
(``(0, 0, 1)`` and ``(T-2, T-1, T-1)``); the first frame gets zero feedback and a zero state.

Constructor arguments and the official ``pytorch/parameters.py`` keys:

=================  =====================  ==========================================
argument           official params key    default (official default)
=================  =====================  ==========================================
``layers``         ``'layers'``           7
``filters``        ``'filters'``          128
``state_dim``      ``'state dimension'``  128
``kernel_size``    ``'kernel size'``      3
``factor``         ``'factor'``           4
``in_channels``    (3 in the code)        3 (1 for the paper's Y-only models)
=================  =====================  ==========================================

``RLSP(params={'filters': 64, 'state dimension': 64})`` reads the official dict (other keys ignored);
keywords given explicitly win over ``params``. Ablation switches (paper, Table 1): ``neighbours=False``
feeds the current frame only, ``feedback=False`` drops the fed-back output, ``hidden_state=False`` drops
the state; the first conv's input channels shrink accordingly (``hidden_state=False`` is ``state_dim=0``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from vsrkit.errors import VsrkitError
from vsrkit.models.family import (
    Family, ModelEntry, RemoteFile, Rule, WeightsSource, bundled_weights, count_blocks,
)
from vsrkit.models.layers.common import frames_to_channels, zeros_frame
from vsrkit.models.rlsp_keys import TF_OPTIMISER_NAMES, TF_OPTIMISER_SUFFIXES, convert_rlsp_released, tf_layers
from vsrkit.models.spec import ModelSpec, Protocol, Temporal

__all__ = ["RLSP", "RLSPReleased", "shuffle_down", "shuffle_up", "studio_y"]

PARAM_KEYS = {
    "layers": "layers",
    "filters": "filters",
    "state dimension": "state_dim",
    "kernel size": "kernel_size",
    "factor": "factor",
}


def shuffle_down(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(b, c, fh, fw) -> (b, f*f*c, h, w), channel order (fy, fx, c) as the official RLSP code."""
    b, c, hh, ww = x.shape
    if hh % factor or ww % factor:
        raise ValueError(f"height and width must be multiples of {factor}")
    h, w = hh // factor, ww // factor
    return x.reshape(b, c, h, factor, w, factor).permute(0, 3, 5, 1, 2, 4).reshape(b, factor * factor * c, h, w)


def shuffle_up(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(b, f*f*c, h, w) -> (b, c, fh, fw), the inverse of :func:`shuffle_down`."""
    b, cc, h, w = x.shape
    if cc % (factor * factor):
        raise ValueError(f"channels must be a multiple of {factor * factor}")
    c = cc // (factor * factor)
    return x.reshape(b, factor, factor, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(b, c, h * factor, w * factor)


class RLSP(nn.Module):
    """RLSP video super-resolution (recurrent, 3 frames with 1 ahead; see the module docstring)."""

    def __init__(
        self,
        layers: int | None = None,
        filters: int | None = None,
        state_dim: int | None = None,
        kernel_size: int | None = None,
        factor: int | None = None,
        in_channels: int = 3,
        neighbours: bool = True,
        feedback: bool = True,
        hidden_state: bool = True,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        cfg = {"layers": 7, "filters": 128, "state_dim": 128, "kernel_size": 3, "factor": 4}
        for key, name in PARAM_KEYS.items():
            if params and key in params:
                cfg[name] = int(params[key])
        for name, val in (("layers", layers), ("filters", filters), ("state_dim", state_dim),
                          ("kernel_size", kernel_size), ("factor", factor)):
            if val is not None:
                cfg[name] = int(val)
        if not hidden_state:
            cfg["state_dim"] = 0
        if cfg["layers"] < 2 or cfg["filters"] < 1 or cfg["state_dim"] < 0 or cfg["factor"] < 1:
            raise ValueError(f"RLSP: bad configuration {cfg}")
        if cfg["kernel_size"] < 1 or cfg["kernel_size"] % 2 == 0:
            raise ValueError(f"RLSP: kernel size must be odd, got {cfg['kernel_size']}")
        if in_channels not in (1, 3):
            raise ValueError(f"RLSP: in_channels must be 1 (Y) or 3 (RGB), got {in_channels}")
        self.layers, self.filters, self.kernel_size = cfg["layers"], cfg["filters"], cfg["kernel_size"]
        self.factor, self.state_dim = cfg["factor"], cfg["state_dim"]
        self.in_channels = in_channels
        self.neighbours, self.feedback = bool(neighbours), bool(feedback)
        self.hidden_state = self.state_dim > 0

        self.scale = self.factor
        self.spec = ModelSpec(
            scale=self.factor,
            temporal=Temporal("recurrent", window=3, ahead=1) if self.neighbours else Temporal("recurrent"),
            channels=in_channels,
        )

        c, f2, k = in_channels, self.factor**2, self.kernel_size
        n_in = c * (3 if self.neighbours else 1) + (c * f2 if self.feedback else 0) + self.state_dim
        self.act = nn.ReLU()
        self.conv1 = nn.Conv2d(n_in, self.filters, k, padding=k // 2)
        self.conv_list = nn.ModuleList(
            [nn.Conv2d(self.filters, self.filters, k, padding=k // 2) for _ in range(self.layers - 2)]
        )
        self.conv_out = nn.Conv2d(self.filters, c * f2 + self.state_dim, k, padding=k // 2)

    def extra_repr(self) -> str:
        return (
            f"layers={self.layers}, filters={self.filters}, state_dim={self.state_dim}, factor={self.factor}, "
            f"in_channels={self.in_channels}, neighbours={self.neighbours}, feedback={self.feedback}"
        )

    def step(
        self, x: torch.Tensor, state: tuple[torch.Tensor, ...] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One frame: ``x[b, window, c, h, w]`` (t-1, t, t+1, or t alone without neighbours).

        ``state`` is None at the first frame, otherwise the tuple returned by the previous step: the previous
        output still shuffled down (``(b, c*f*f, h, w)``, if ``feedback``) and the hidden state (if any).
        """
        b, n, c, h, w = x.shape
        if n != self.spec.temporal.window or c != self.in_channels:
            raise ValueError(f"RLSP.step expects (b, {self.spec.temporal.window}, {self.in_channels}, h, w), got {tuple(x.shape)}")
        f2 = self.factor**2
        cur = x[:, self.spec.temporal.window - 1 - self.spec.temporal.ahead]
        if state is None:
            parts = []
            if self.feedback:
                parts.append(zeros_frame(cur, c * f2))
            if self.hidden_state:
                parts.append(zeros_frame(cur, self.state_dim))
            state = tuple(parts)
        inputs = list(x.unbind(1)) + list(state)
        y = self.act(self.conv1(torch.cat(inputs, dim=1)))
        for conv in self.conv_list:
            y = self.act(conv(y))
        y = self.conv_out(y)
        out_lr = y[:, : c * f2] + cur.repeat(1, f2, 1, 1)
        new_state: list[torch.Tensor] = []
        if self.feedback:
            new_state.append(out_lr)
        if self.hidden_state:
            new_state.append(self.act(y[:, c * f2 :]))
        return shuffle_up(out_lr, self.factor), tuple(new_state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x[b, T, c, h, w] -> [b, T, c, f*h, f*w]``, the official recurrence over the whole sequence."""
        T = x.shape[1]
        outs = []
        state = None
        for t in range(T):
            if self.neighbours:
                idx = [max(t - 1, 0), t, min(t + 1, T - 1)]
                window = x[:, idx]
            else:
                window = x[:, t : t + 1]
            y, state = self.step(window, state)
            outs.append(y)
        return torch.stack(outs, dim=1)


# ==========================================================================================================
# RLSP as released: the TensorFlow models of the paper (official ``evaluate/`` and ``tensorflow/model.py``)
#
# Self-contained (issue 14). Its names (``rlsp-7-*-released``) and recognition are in the family section at the
# end of this file; the renaming of TensorFlow's names is ``vsrkit.models.rlsp_keys``; reading the TensorFlow
# checkpoint files is in ``vsrkit.hub.tfbundle``, since a model does not import upwards.

from torch.nn import functional as F  # noqa: E402

# BT.601 studio-range luma of RGB on the 0..255 scale, as the released graph computes Y of the centre frame
# (the same as 16 + 219 * (0.299 R + 0.587 G + 0.114 B) / 255, to 5 digits).
RELEASED_Y_WEIGHTS = (65.738 / 256, 129.057 / 256, 25.064 / 256)
RELEASED_Y_OFFSET = 16.0
_LUMA = (0.299, 0.587, 0.114)  # full-range BT.601 luma, the engine's (vsrkit's) convention


class RLSPReleased(nn.Module):
    """RLSP as the authors released it (the paper's 7-48/7-64/7-128/7-256): RGB in, Y out, TF weights.

    One cell per LR frame, all 3x3 convs with zero padding, on the 0..255 scale of the release:

    - input: [previous RGB, centre RGB, next RGB, hidden state, feedback] concatenated on channels,
      the feedback being the previous output Y shuffled down (``factor**2`` channels); state and
      feedback are zeros at the first frame;
    - trunk: ``layers - 1`` convs + ReLU (``layer0`` .. ``layer5`` in the checkpoint for 7 layers);
    - heads on the trunk's output: the new hidden state (``layer6``: conv + ReLU, ``state_dim`` channels)
      and the output (``layer7``: conv, ``factor**2`` channels, linear);
    - output: ``depth_to_space(layer7 + Y_centre)``, Y_centre being the studio-range BT.601 luma of the LR
      centre frame (with its +16), i.e. a residual over a nearest-neighbour upsampling of Y. The raw,
      unclipped output is the next frame's feedback.

    Parameter names: TensorFlow's ``layerN/kernel`` cannot be module names, so the layers are ``trunk.<i>``,
    ``state_head`` and ``out_head`` (OIHW); the released files are renamed by ``vsrkit.models.rlsp_keys``.

    vsrkit's conventions around it: the engine gives RGB in [0, 1]; ``step`` multiplies by 255, runs the
    released cell and turns its studio-range Y into an RGB frame in [0, 1]: the bicubically upscaled LR
    centre frame with its luma (full-range BT.601, the engine's) replaced by the network's. That is the same
    as upscaling the chroma bicubically and recombining it with the network's Y, as the engine does for
    Y-only models; it is done here because this network needs RGB in. So ``spec.channels == 3``; the
    parameters are the released ones unchanged (0..255 scale). :meth:`cell` is the released graph itself
    (0..255, Y out).

    Ends of a video: the engine's default protocol (``replicate``) gives every frame, the missing neighbour
    at each end being the end frame. The official evaluation is ``Protocol(end_padding="none")``: the
    first and the last frame are only neighbours, so T frames give T-2 outputs (frames 1..T-2).
    """

    def __init__(self, layers: int = 7, filters: int = 64, state_dim: int | None = None, factor: int = 4) -> None:
        super().__init__()
        state_dim = filters if state_dim is None else int(state_dim)
        if layers < 2 or filters < 1 or state_dim < 0 or factor < 1:
            raise ValueError(f"RLSPReleased: bad configuration layers={layers}, filters={filters}, "
                             f"state_dim={state_dim}, factor={factor}")
        self.layers, self.filters, self.state_dim, self.factor = int(layers), int(filters), state_dim, int(factor)
        self.spec = ModelSpec(scale=self.factor, temporal=Temporal("recurrent", window=3, ahead=1), channels=3)

        f2 = self.factor**2
        n_in = 3 * 3 + state_dim + f2
        self.trunk = nn.ModuleList(
            [nn.Conv2d(n_in if i == 0 else filters, filters, 3, padding=1) for i in range(layers - 1)]
        )
        self.state_head = nn.Conv2d(filters, state_dim, 3, padding=1)
        self.out_head = nn.Conv2d(filters, f2, 3, padding=1)
        self.act = nn.ReLU()

    def extra_repr(self) -> str:
        return f"layers={self.layers}, filters={self.filters}, state_dim={self.state_dim}, factor={self.factor}"

    def cell(
        self, frames: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The released cell on the 0..255 scale: ``frames[b, 3, 3, h, w]`` RGB (t-1, t, t+1) ->
        ``(y, head, (hidden state, feedback))`` where ``y`` is the output Y still shuffled down
        (``(b, factor**2, h, w)`` = ``head`` + Y_centre) and the feedback is that same ``y``."""
        b, n, c, h, w = frames.shape
        if n != 3 or c != 3:
            raise ValueError(f"RLSPReleased expects (b, 3, 3, h, w) RGB windows, got {tuple(frames.shape)}")
        f2 = self.factor**2
        if state is None:
            state = (zeros_frame(frames[:, 0], self.state_dim), zeros_frame(frames[:, 0], f2))
        hidden, feedback = state
        x = torch.cat([frames_to_channels(frames), hidden, feedback], dim=1)  # channels-last if the frames are
        for conv in self.trunk:
            x = self.act(conv(x))
        new_hidden = self.act(self.state_head(x))
        head = self.out_head(x)
        wy = torch.tensor(RELEASED_Y_WEIGHTS, dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)
        y_centre = (frames[:, 1] * wy).sum(1, keepdim=True) + RELEASED_Y_OFFSET
        y = head + y_centre
        return y, head, (new_hidden, y)

    def step(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The engine's step: ``x[b, 3, 3, h, w]`` RGB in [0, 1] -> RGB ``(b, 3, fh, fw)`` in [0, 1] (unclamped)
        and the state (on the released 0..255 scale)."""
        y, _head, state = self.cell(x * 255.0, state)
        y_full = (F.pixel_shuffle(y, self.factor) - RELEASED_Y_OFFSET) / 219.0  # studio -> full-range Y in [0, 1]
        up = F.interpolate(x[:, 1], scale_factor=self.factor, mode="bicubic", align_corners=False)
        luma = (up * torch.tensor(_LUMA, dtype=up.dtype, device=up.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        return up + (y_full - luma), state

    def forward(self, x: torch.Tensor, end_padding: str = "replicate") -> torch.Tensor:
        """``x[b, T, 3, h, w]`` RGB in [0, 1] -> ``[b, T', 3, fh, fw]``: T' = T (``end_padding="replicate"``,
        ends replicated) or T - 2 (``"none"``, the official evaluation: frames 1..T-2)."""
        T = x.shape[1]
        if end_padding == "none":
            windows = [[t - 1, t, t + 1] for t in range(1, T - 1)]
        elif end_padding == "replicate":
            windows = [[max(t - 1, 0), t, min(t + 1, T - 1)] for t in range(T)]
        else:
            raise ValueError(f"RLSPReleased.forward: end_padding must be 'replicate' or 'none', got {end_padding!r}")
        outs, state = [], None
        for idx in windows:
            y, state = self.step(x[:, idx], state)
            outs.append(y)
        if not outs:
            return x.new_zeros(x.shape[0], 0, 3, x.shape[-2] * self.factor, x.shape[-1] * self.factor)
        return torch.stack(outs, dim=1)


def studio_y(rgb: torch.Tensor) -> torch.Tensor:
    """The released model's Y (BT.601 studio range, 0..255 scale) of an RGB output in [0, 1] of
    :meth:`RLSPReleased.step`: the inverse of the conversion done there. ``rgb[..., 3, h, w]``."""
    w = torch.tensor(_LUMA, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    return 16.0 + 219.0 * (rgb * w).sum(-3, keepdim=True)


# ==========================================================================================================
# The family: names, recognition, training defaults

# architecture presets (random weights)
_PRESETS: list[ModelEntry] = [
    ModelEntry(
        name="rlsp",
        arch="RLSP",
        kwargs={},
        summary="RLSP 7-128 (official defaults: 7 layers, 128 filters, state 128, x4), RGB; random weights",
    )
]
for _f in (48, 64, 128, 256):
    _PRESETS.append(
        ModelEntry(
            name=f"rlsp-7-{_f}",
            arch="RLSP",
            kwargs={"layers": 7, "filters": _f, "state_dim": _f, "factor": 4, "in_channels": 3},
            summary=f"RLSP 7-{_f} (7 layers, {_f} filters, state {_f}, x4), RGB as the official PyTorch code; "
            "random weights",
        )
    )
    _PRESETS.append(
        ModelEntry(
            name=f"rlsp-7-{_f}-y",
            arch="RLSP",
            kwargs={"layers": 7, "filters": _f, "state_dim": _f, "factor": 4, "in_channels": 1},
            summary=f"RLSP 7-{_f} on Y only as in the paper (chroma bicubic); random weights",
        )
    )


# RLSP as released: the paper's TensorFlow models (RGB in, Y out) and the authors' checkpoints in the official
# repository (``evaluate/checkpoints``; "rslp" in the 7-48 file name is the official spelling). The hashes of
# 7-48 and 7-64 are those of ../shared/golden/rlsp_tf_official (byte-identical to the repository's blobs); 7-128
# has none recorded (its data file was not in the copy used for the golden case), so it is pinned at first
# download. The published numbers were made without end padding (frames 1..T-2: ``RLSP_RELEASED_EVAL``); a
# video tool needs every frame, so the named models replicate the end frames (``REPLICATE``).

RLSP_RELEASED_EVAL = Protocol(end_padding="none")
REPLICATE = Protocol(end_padding="replicate")
_RLSP_LICENCE = "CC BY-NC-SA 4.0 (dariofuoli/RLSP; academic research use only)"
_RLSP_RAW = "https://raw.githubusercontent.com/dariofuoli/RLSP/f59696c11b40b06db53d49cc97a422203879120b/evaluate/checkpoints/"
_RLSP_RELEASES = {
    # filters: (checkpoint prefix, sha256 of .index, sha256 of .data-00000-of-00001)
    48: ("ckpt_rslp_48", "6f440c5ae4da9211922374e16f0817fc69b1ae8beea415082c44d035c63bd170",
         "ee994b6f9a5e9546f3edf3c63e2291b8a8291dd6abd18486d883159a79be0543"),
    64: ("ckpt_rlsp_64", "b0a94c8635e82abe283a1f96c95f7b7814fdfe376092e93486f53e102ef090b1",
         "a9bb40cc8aa91665a747a1232518c19abaaea40b8a9f9fa0605b1d3fcebbb568"),
    128: ("ckpt_rlsp_128", "", ""),
}


def rlsp_released_weights(filters: int) -> WeightsSource:
    """The official TensorFlow checkpoint of RLSP 7-``filters``, converted once into the cache."""
    prefix, sha_index, sha_data = _RLSP_RELEASES[filters]
    files = ((f"{prefix}.index", sha_index), (f"{prefix}.data-00000-of-00001", sha_data))
    return WeightsSource(
        filename=f"rlsp-7-{filters}-released.safetensors",
        sha256="",
        parts=tuple(RemoteFile(name, sha, _RLSP_RAW + name) for name, sha in files),
        convert="tf-rlsp",
        licence=_RLSP_LICENCE,
    )


_RELEASED = [
    ModelEntry(
        name=f"rlsp-7-{_f}-released",
        arch="RLSPReleased",
        kwargs={"layers": 7, "filters": _f, "state_dim": _f, "factor": 4},
        weights=rlsp_released_weights(_f) if _f in _RLSP_RELEASES else None,
        summary=f"RLSP 7-{_f} as released and measured in the paper (TensorFlow: RGB in, Y out, chroma bicubic), "
        + ("the authors' checkpoint" if _f in _RLSP_RELEASES else "no released weights: random weights"),
        protocol=REPLICATE,
    )
    for _f in (48, 64, 128, 256)
]

# trained by vsrkit (issue 13) and shipped inside the package (vsrkit/hub/weights, model card beside it)
_FAST = [
    ModelEntry(
        name="rlsp-fast-x4",
        arch="RLSP",
        kwargs={"layers": 7, "filters": 48, "state_dim": 48, "kernel_size": 3, "factor": 4, "in_channels": 3},
        weights=bundled_weights("rlsp-fast-x4", "6e39f0a0e91108a0ea9234dc03663df33cbc90e5f8859f99c5102f4084a783e6"),
        summary="fast RLSP 7-48 x4, RGB, trained by vsrkit on sample clips (BI), bundled: `vsrkit upscale --fast`",
        # benchmarks/bench_openvino.py --sections quality: 3 real clips, 6 frames of 160x90, Intel Xeon with AMX
        losses_db={"ov_bf16": -0.0007, "ov_int8": 0.021},
    ),
    ModelEntry(  # issue 21: the real-world pipeline's web then web-bi presets (a x4 shrink, then H.264 on the LR clip)
        name="rlsp-fast-real-x4",
        arch="RLSP",
        kwargs={"layers": 7, "filters": 64, "state_dim": 64, "kernel_size": 3, "factor": 4, "in_channels": 3},
        weights=bundled_weights("rlsp-fast-real-x4", "9a2117a305102c2e8864a20cda5da60f080a8aa90a597b5c4d609ad04a3f1268"),
        summary="fast RLSP 7-64 x4, RGB, trained by vsrkit on sample clips as compressed web video, bundled",
    ),
]

ENTRIES: tuple[ModelEntry, ...] = (*_PRESETS, *_RELEASED, *_FAST)


def detect_rlsp(state_dict: dict[str, torch.Tensor], filename: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """Recognise an RLSP state dict (``conv1``, ``conv_list.<i>``, ``conv_out``) and read its configuration.

    ``layers``, ``filters`` and ``kernel_size`` are read directly. ``in_channels``, ``factor``, ``state_dim``
    and the ablation switches are solved from the channel counts of ``conv1`` (input) and ``conv_out``
    (output), which do not always tell them apart: among the configurations that fit, the first in this
    order is taken: a state as wide as the filters (as in every released RLSP model) or none before other
    widths, then factor 4 (the only one the paper and code use) before factors 2-8, then all inputs
    (neighbours and feedback) before ablations, then RGB before Y. So a checkpoint of an unusual
    configuration whose channel counts also fit a more usual one is read as the usual one (this cannot
    be told from the file). The file name is not used.
    """
    keys = set(state_dict)
    if not {"conv1.weight", "conv1.bias", "conv_out.weight", "conv_out.bias"} <= keys:
        return None
    n_list = count_blocks(state_dict, "conv_list.")
    expected = {"conv1.weight", "conv1.bias", "conv_out.weight", "conv_out.bias"}
    expected |= {f"conv_list.{i}.{p}" for i in range(n_list) for p in ("weight", "bias")}
    if keys != expected:
        return None
    w1, wo = state_dict["conv1.weight"], state_dict["conv_out.weight"]
    if w1.ndim != 4 or wo.ndim != 4:
        return None
    filters, n_in, k, _ = w1.shape
    n_out = wo.shape[0]
    cands = []
    for factor in range(2, 9):
        for c in (3, 1):
            st = n_out - c * factor**2
            if st < 0:
                continue
            for nb in (True, False):
                for fb in (True, False):
                    if n_in == c * (3 if nb else 1) + (c * factor**2 if fb else 0) + st:
                        pref = (st not in (filters, 0), factor != 4, not (nb and fb), c != 3, not nb, st != filters, factor)
                        cands.append((pref, dict(factor=factor, in_channels=c, state_dim=st, neighbours=nb, feedback=fb)))
    if not cands:
        raise VsrkitError(
            f"RLSP checkpoint: conv1 takes {n_in} channels and conv_out gives {n_out}, which fit no RLSP "
            "configuration (in_channels 1 or 3, factor 1-8)"
        )
    cands.sort(key=lambda pc: pc[0])
    cfg = cands[0][1]
    kwargs: dict[str, Any] = {
        "layers": n_list + 2,
        "filters": int(filters),
        "state_dim": int(cfg["state_dim"]),
        "kernel_size": int(k),
        "factor": int(cfg["factor"]),
        "in_channels": int(cfg["in_channels"]),
    }
    if not cfg["neighbours"]:
        kwargs["neighbours"] = False
    if not cfg["feedback"]:
        kwargs["feedback"] = False
    if cfg["state_dim"] == 0:
        kwargs["hidden_state"] = False
    return "RLSP", kwargs


def detect_rlsp_released(state_dict: Mapping[str, torch.Tensor], filename: str | None = None) -> tuple[str, dict] | None:
    """Recognise a released RLSP checkpoint, in TensorFlow names (optimiser slots allowed) or converted, and read
    ``layers``, ``filters``, ``state_dim`` and ``factor`` from its shapes: ``layer0`` takes 9 (3 RGB frames) +
    state + factor**2 channels, the state head gives the state, the output head factor**2 channels. The file
    name is not used."""
    if tf_layers(state_dict):
        extra = [k for k in state_dict if not (re.fullmatch(r"layer\d+/(kernel|bias)", k)
                                                or k.endswith(TF_OPTIMISER_SUFFIXES) or k in TF_OPTIMISER_NAMES)]
        if extra:
            return None
        try:
            sd = convert_rlsp_released({k: v for k, v in state_dict.items() if re.fullmatch(r"layer\d+/(kernel|bias)", k)})
        except VsrkitError:
            return None
    else:
        sd = dict(state_dict)
    n_trunk = count_blocks(sd, "trunk.")
    expected = {f"{m}.{p}" for m in ["state_head", "out_head"] + [f"trunk.{i}" for i in range(n_trunk)]
                for p in ("weight", "bias")}
    if n_trunk == 0 or set(sd) != expected:
        return None
    w0, ws, wo = sd["trunk.0.weight"], sd["state_head.weight"], sd["out_head.weight"]
    if any(w.ndim != 4 or tuple(w.shape[-2:]) != (3, 3) for w in (w0, ws, wo)):
        return None
    filters, n_in = int(w0.shape[0]), int(w0.shape[1])
    state_dim, f2 = int(ws.shape[0]), int(wo.shape[0])
    factor = math.isqrt(f2)
    if factor * factor != f2 or n_in != 9 + state_dim + f2:
        return None
    return "RLSPReleased", {"layers": n_trunk + 1, "filters": filters, "state_dim": state_dim, "factor": factor}


FAMILY = Family(
    "rlsp",
    ENTRIES,
    rules=(
        Rule(("conv1.weight", "conv_out.weight"), detect_rlsp),
        Rule(("layer0/kernel", "layer0/bias"), detect_rlsp_released),  # RLSP as released: TensorFlow names
        Rule(("trunk.0.weight", "state_head.weight", "out_head.weight"), detect_rlsp_released),  # converted
    ),
    convert=convert_rlsp_released,  # TensorFlow names -> RLSPReleased's; other state dicts pass unchanged
)
