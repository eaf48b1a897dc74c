"""The model contract: what every vsrkit network declares, and what the engine schedules by.

Every network sets ``self.spec = ModelSpec(...)`` in ``__init__``. The engine reads that declaration
and nothing else: it never probes a model for attributes. All tensors are float RGB (or Y) in
[0, 1]; outputs are not clamped.

Calling conventions by ``Temporal.kind``:

``frame``          ``forward(x[b, c, h, w]) -> [b, c, sh, sw]``
``window``         ``forward(x[b, n, c, h, w]) -> [b, c, sh, sw]``: the output is frame ``n - 1 - ahead`` of
                   the window of n = ``window`` frames. Optional fast path ``spec.sliding(model, x[b, T + n - 1, ...])
                   -> [b, T, c, sh, sw]``: every window position at once, per-frame work done once.
``recurrent``      ``step(x[b, n, c, h, w], state | None) -> (y[b, c, sh, sw], state)``; the n = ``window``
                   frames are t - (n - 1 - ahead) .. t + ahead; ``state`` is ``None`` at the first frame.
``sequence``       ``forward(x[b, T, c, h, w]) -> [b, T, c, sh, sw]``; the engine runs it over overlapping
                   temporal chunks (or clips of exactly ``protocol.clip`` frames) and keeps each chunk's centre.
``bidirectional``  a sequence model whose two propagation passes are resumable at any frame
                   (``spec.passes``): the engine streams it exactly, in two passes, in the memory of one block;
                   a whole-video decision the passes depend on (``TwoPass.survey``) is made in a pass before them.

How a pretrained model was evaluated (end padding, clip length and overlap) is not architecture: it is
the ``Protocol`` of a pretrained configuration (``ModelEntry.protocol``, declared by its family in
``vsrkit.models``). A network gets the default protocol; ``load_model`` replaces it with the named
configuration's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["frame", "window", "recurrent", "sequence", "bidirectional"]
EndPadding = Literal["replicate", "reflection", "reflection_circle", "none"]
KINDS = ("frame", "window", "recurrent", "sequence", "bidirectional")
END_PADDINGS = ("replicate", "reflection", "reflection_circle", "none")


@dataclass(frozen=True)
class Temporal:
    """How a network consumes time: its kind, and for window/recurrent models the frames it sees.

    ``ahead`` is the number of frames after the output frame in the window (0: the last frame is the
    output, ``window // 2``: the centre).
    """

    kind: Kind
    window: int = 1
    ahead: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown temporal kind {self.kind!r}")
        if self.window < 1 or not 0 <= self.ahead < self.window:
            raise ValueError(f"bad temporal window {self.window} / ahead {self.ahead}")

    @property
    def back(self) -> int:
        """Frames before the output frame in the window."""
        return self.window - 1 - self.ahead

    def describe(self) -> str:
        """A short human description for tables: 'recurrent (3 frames, 1 ahead)'."""
        if self.kind in ("window", "recurrent") and self.window > 1:
            return f"{self.kind} ({self.window} frames, {self.ahead} ahead)"
        return self.kind


@dataclass(frozen=True)
class Protocol:
    """How frames are fed at run time, as the published numbers were made.

    - ``end_padding``: which frames stand in beyond the ends of the video (BasicSR's ``generate_frame_indices``);
      ``none`` (recurrent models): nothing stands in, frames without all their neighbours get no output, so a
      3-frame window gives T-2 outputs, frames 1..T-2 (the released RLSP's official evaluation);
    - ``clip``: sequence models run on clips of exactly this many frames (VRT's test clips); ``None``: chunks;
    - ``clip_overlap``: frames shared by neighbouring clips or chunks; ``None``: the engine's default.
    """

    end_padding: EndPadding = "replicate"
    clip: int | None = None
    clip_overlap: int | None = None

    def __post_init__(self) -> None:
        if self.end_padding not in END_PADDINGS:
            raise ValueError(f"unknown end padding {self.end_padding!r} (use {', '.join(END_PADDINGS)})")
        if self.clip is not None and self.clip < 1:
            raise ValueError(f"clip must be at least 1, got {self.clip}")


@dataclass(frozen=True)
class Block:
    """Where a block of frames sits in the video, for the resumable passes of a bidirectional model.

    The passes get ``x[b, L, c, h, w]``: frames ``first .. first + L - 1`` of the video, which hold the block
    ``start .. stop - 1`` and up to ``TwoPass.context`` frames on each side of it (fewer at the ends).
    """

    start: int  # video index of the block's first frame
    stop: int  # one past its last frame
    total: int  # frames in the whole video
    first: int = -1  # video index of x[:, 0]; -1: the same as ``start``
    survey: Any = None  # what ``TwoPass.survey`` decided for the whole video (None: the model has no survey)

    def __post_init__(self) -> None:
        if self.first < 0:
            object.__setattr__(self, "first", self.start)
        if not 0 <= self.first <= self.start < self.stop <= self.total:
            raise ValueError(f"bad block {self}")

    @property
    def offset(self) -> int:
        """Index in ``x`` of the block's first frame."""
        return self.start - self.first

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def has_prev(self) -> bool:
        return self.start > 0

    @property
    def has_next(self) -> bool:
        return self.stop < self.total


@dataclass(frozen=True)
class Survey:
    """A whole-video decision a bidirectional network makes before propagating (RealBasicVSR: how many times it
    cleans every frame, from the mean residue over the whole clip).

    ``measure(model, x, region) -> Tensor``: sums over the frames ``x[b, n, c, h, w]`` (a 1-D tensor), counted only
    over ``region = (top, bottom, left, right)`` of each frame (a tile's own part, without padding);
    the engine adds them up over every frame and tile of the video.
    ``decide(model, sums) -> Any``: the decision from the whole video's sums, handed to both passes as
    ``Block.survey``.
    ``cost``: time of ``measure`` per frame over that of ``TwoPass.backward`` (measured), for progress estimates.
    """

    measure: Callable[..., Any]
    decide: Callable[..., Any]
    cost: float = 1.0


@dataclass(frozen=True)
class TwoPass:
    """The resumable passes of a bidirectional recurrent network (see ``vsrkit.models.basicvsr``).

    ``backward(model, x, state, block) -> (feats, state)``: the backward branch over the block, entering with
    the backward state of frame ``block.stop`` (``None`` after the last frame); returns what the forward pass
    needs (``feats``) and the backward state of frame ``block.start``.
    ``forward(model, x, feats, state, block) -> (y[b, n, c, sh, sw], state)``: the forward branch and the
    outputs of the block's n frames, entering with the forward state of frame ``block.start - 1`` (``None``
    before the first frame); returns the forward state of its last frame.
    ``context``: frames the passes need on each side of a block (flows, keyframe windows).
    ``forward_cost``: time of ``forward`` over that of ``backward`` (measured), for progress estimates.
    ``survey``: a whole-video decision the engine makes in a pass over the video before the two passes.
    """

    backward: Callable[..., Any]
    forward: Callable[..., Any]
    context: int = 1
    forward_cost: float = 1.5
    survey: Survey | None = None


@dataclass(frozen=True)
class ModelSpec:
    """What a network declares to the engine."""

    scale: int
    temporal: Temporal
    channels: int = 3  # 3: RGB; 1: luma (Y) only, the chroma is upscaled bicubically
    size_multiple: int = 1  # height and width are padded to a multiple of this
    min_size: int = 1  # height and width are padded up to at least this
    min_frames: int = 1  # shorter videos are padded by repeating the last frame
    memory_per_pixel: int = 0  # bytes per input pixel per frame (measured); 0: not declared
    # PSNR (dB) that bf16 costs against fp32 on a real clip (measured by benchmarks/bench_speed.py);
    # --precision auto uses bf16 only within its budget. None: not measured, so auto stays fp32
    bf16_loss_db: float | None = None
    # the same on the OpenVINO backend (vsrkit.export.openvino; benchmarks/bench_openvino.py): bf16, and int8
    # after NNCF calibration; its bf16/int8 is refused beyond 0.05 / 0.1 dB unless forced. None: not measured
    ov_bf16_loss_db: float | None = None
    int8_loss_db: float | None = None
    sliding: Callable[..., Any] | None = None  # window models: all window positions at once
    passes: TwoPass | None = None  # bidirectional models: the two resumable passes
    protocol: Protocol = Protocol()
    # the model's name: a named model's (``basicvsr-reds4``) or, by file, its class name; set by ``load_model``
    # ("" for a network built directly). A label, not part of the contract: specs compare equal without it
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.scale < 1 or self.channels not in (1, 3):
            raise ValueError(f"bad model spec: scale {self.scale}, channels {self.channels}")
        if self.temporal.kind == "bidirectional" and self.passes is None:
            raise ValueError("a bidirectional model must declare its two passes (spec.passes)")
        if self.sliding is not None and self.temporal.kind != "window":
            raise ValueError("only window models have a sliding fast path")


def pad_index(i: int, centre: int, total: int, half: int, mode: str) -> int:
    """The frame that stands in for index ``i`` outside [0, total) in the window of ``centre`` with ``half``
    frames on each side: BasicSR's ``generate_frame_indices`` padding modes. Where BasicSR would index outside a
    very short video, the index is mirrored back into it."""
    last = total - 1
    if 0 <= i <= last:
        return i
    if mode == "replicate":
        j = 0 if i < 0 else last
    elif mode == "reflection":
        j = -i if i < 0 else 2 * last - i
    elif mode == "reflection_circle":
        j = (centre + half) - i if i < 0 else (centre - half) - (i - last)
    else:
        raise ValueError(f"unknown end padding {mode!r}")
    if last == 0:
        return 0
    period = 2 * last
    j %= period
    return j if j <= last else period - j
