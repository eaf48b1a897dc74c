"""The evaluation protocols of the published VSR numbers: which channel, which border, which frames.

=========  =======  ======  ==============================  =====================================
protocol   channel  crop    frames scored                   as in
=========  =======  ======  ==============================  =====================================
vid4       Y        0       every frame of every clip       BasicSR / mmagic Vid4 (BI and BD)
reds4      RGB      0       all 100 frames of each clip     BasicSR / mmagic REDS4 (000 011 015 020)
vimeo      Y        0       the centre frame (im4) of each  Vimeo-90K-T (EDVR, BasicVSR's tables)
                            7-frame septuplet
=========  =======  ======  ==============================  =====================================

Without a protocol: Y, no crop, every frame (``--channel`` and ``--crop`` set them). Y is MATLAB's
``rgb2ycbcr`` (ITU-R BT.601, 16..235), computed by :mod:`vsrkit.eval.metrics`. Values are averaged per
clip, then over clips (BasicSR's ``nondist_validation`` and mmagic's per-sequence means).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vsrkit.errors import VsrkitError

__all__ = ["EvalProtocol", "PROTOCOLS", "CHANNELS", "resolve_protocol"]

CHANNELS = ("y", "rgb")


@dataclass(frozen=True)
class EvalProtocol:
    """How frames are scored: channel, border crop, which frames of a clip, and the clip length it needs."""

    name: str | None  # None: the plain defaults
    channel: str = "y"  # 'y' (BT.601 of MATLAB rgb2ycbcr) or 'rgb'
    crop: int = 0  # HR pixels dropped on every side before scoring
    frames: str = "all"  # 'all' or 'centre' (only the middle frame of each clip)
    clip_length: int | None = None  # every clip must have exactly this many frames

    def scored(self, n: int) -> list[int]:
        """Indices of the frames scored in a clip of ``n`` frames."""
        if self.frames == "centre":
            return [n // 2]
        return list(range(n))

    def describe(self) -> str:
        """One line for tables: 'vid4: Y, crop 0, all frames'."""
        what = "centre frame" if self.frames == "centre" else "all frames"
        length = f" of {self.clip_length}-frame clips" if self.clip_length else ""
        return f"{self.name or 'custom'}: {self.channel.upper()}, crop {self.crop}, {what}{length}"


PROTOCOLS: dict[str, EvalProtocol] = {
    "vid4": EvalProtocol("vid4", channel="y", crop=0, frames="all"),
    "reds4": EvalProtocol("reds4", channel="rgb", crop=0, frames="all", clip_length=100),
    "vimeo": EvalProtocol("vimeo", channel="y", crop=0, frames="centre", clip_length=7),
}


def resolve_protocol(name: str | None = None, channel: str | None = None, crop: int | None = None) -> EvalProtocol:
    """The protocol for the command line's ``--protocol``, ``--channel`` and ``--crop``.

    A named protocol fixes channel and crop: giving another value with it is an error (the numbers would
    no longer be the published protocol's); giving the same value is fine.
    """
    if channel is not None:
        channel = channel.lower()
        if channel not in CHANNELS:
            raise VsrkitError(f"unknown --channel {channel!r}: use y or rgb")
    if crop is not None and crop < 0:
        raise VsrkitError(f"--crop must be >= 0, got {crop}")
    if name is None:
        return EvalProtocol(None, channel=channel or "y", crop=crop or 0)
    key = name.lower()
    if key not in PROTOCOLS:
        raise VsrkitError(f"unknown protocol {name!r}: use {', '.join(PROTOCOLS)}")
    p = PROTOCOLS[key]
    if channel is not None and channel != p.channel:
        raise VsrkitError(f"--protocol {key} scores {p.channel.upper()}; drop --channel {channel}")
    if crop is not None and crop != p.crop:
        raise VsrkitError(f"--protocol {key} scores with crop {p.crop}; drop --crop {crop}")
    return replace(p)
