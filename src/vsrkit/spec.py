"""How a model consumes time: the declaration that the engine schedules by.

Every vsrkit model is a plain ``nn.Module`` that sets, in ``__init__``:

- ``self.scale: int`` - the upscaling factor;
- ``self.temporal: Temporal`` - how it consumes frames (below);
- ``self.channels: int`` - 3 for RGB models, 1 for models that work on luma (Y) only;
- ``self.size_multiple: int`` - the engine pads height and width to a multiple of this (1: any size).

All tensors are float RGB (or Y) in [0, 1]; outputs are not clamped.

Calling conventions by ``Temporal.kind``:

``frame``      ``forward(x[b, c, h, w]) -> [b, c, sh, sw]``
``window``     ``forward(x[b, n, c, h, w]) -> [b, c, sh, sw]``, the centre frame of n = ``window`` frames.
               Optional fast path ``forward_sliding(x[b, T + n - 1, ...]) -> [b, T, c, sh, sw]`` that
               gives the same result for every window position while computing per-frame work once.
``recurrent``  ``step(x[b, n, c, h, w], state | None) -> (y[b, c, sh, sw], state)`` where the n = ``window``
               frames are t - (n - 1 - ahead) .. t + ahead; ``state`` is a tensor or tuple of tensors,
               ``None`` at the first frame. ``forward(x[b, T, ...])`` runs the whole sequence.
``sequence``   ``forward(x[b, T, c, h, w]) -> [b, T, c, sh, sw]``; ``clip`` set means the model is
               run on clips of exactly that many frames (VRT). The engine runs it over overlapping
               temporal chunks and keeps each chunk's centre. A bidirectional recurrent model (BasicVSR)
               may instead expose its two propagation passes, resumable at any frame:
               ``backward_pass(x, state, has_next) -> feats`` and
               ``forward_pass(x, feats, state, has_prev) -> (y, state)``; the engine then streams it
               exactly (whole-sequence result, memory of one block) in two passes.
               Optional attributes: ``min_frames`` (shorter videos are padded by repeating the last
               frame), ``min_size`` (frames are padded up to it), ``clip_overlap``.

Frames that do not exist at the ends of the video are made by ``end_padding``:
``replicate`` repeats the first/last frame (RLSP, Vimeo-style EDVR), ``reflection`` mirrors about it
(BasicSR's REDS EDVR testing), ``reflection_circle`` as BasicSR's ``generate_frame_indices``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["frame", "window", "recurrent", "sequence"]
EndPadding = Literal["replicate", "reflection", "reflection_circle"]


@dataclass(frozen=True)
class Temporal:
    """How a model consumes time (see the module docstring)."""

    kind: Kind
    window: int = 1
    ahead: int = 0
    clip: int | None = None
    end_padding: EndPadding = "replicate"

    def __post_init__(self) -> None:
        if self.kind not in ("frame", "window", "recurrent", "sequence"):
            raise ValueError(f"unknown temporal kind {self.kind!r}")
        if self.window < 1 or not 0 <= self.ahead < self.window:
            raise ValueError(f"bad temporal window {self.window} / ahead {self.ahead}")

    def describe(self) -> str:
        """A short human description for tables: 'recurrent (3 frames, 1 ahead)'."""
        if self.kind == "frame":
            return "frame"
        if self.kind == "window":
            return f"window ({self.window} frames)"
        if self.kind == "recurrent":
            return f"recurrent ({self.window} frames, {self.ahead} ahead)" if self.window > 1 else "recurrent"
        return f"sequence (clips of {self.clip})" if self.clip else "sequence"


FRAME = Temporal("frame")
SEQUENCE = Temporal("sequence")
