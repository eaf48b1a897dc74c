"""Advice on choosing a model for an input: a hint when a heavily compressed video meets a model trained on clean
degradations.

Models trained on clean bicubic (BI) or blur-downscaled (BD) frames take compression artefacts (blocks, ringing,
smeared detail) for image content and sharpen them. Models trained on real-world degradations (RealBasicVSR, the
NTIRE 2021 decompression BasicVSR++ models, vsrkit's ``*-fast-real-*`` models) learnt to remove them. How
compressed a video is shows in its bits per pixel (``vsrkit.io.probe.bits_per_pixel``).
"""

from __future__ import annotations

from vsrkit.hub.registry import all_aliases, all_entries
from vsrkit.io.probe import VideoInfo, bits_per_pixel

__all__ = ["LOW_BITS_PER_PIXEL", "trained_on_real_degradations", "real_world_models", "compression_hint"]

# Below this the artefacts are plain to see. Web H.264 runs at about 0.05-0.1 bits per pixel (the sample clips:
# bigbuckbunny.mp4 0.052, Megamind.avi 0.070, bikes.mp4 0.093), camera and disc video at 0.2-0.5, a visually
# lossless encode above 1 (carphone_pristine.mp4: 1.54); x264 at its default crf 23 on SD content lands near 0.1-0.2.
LOW_BITS_PER_PIXEL = 0.1

_REAL_PREFIXES = ("realbasicvsr", "basicvsrpp-ntire-decompress")


def _canonical(name: str) -> str | None:
    """The registered model name of ``name`` (an alias resolved); None for a name vsrkit does not list."""
    names = {entry.name for _, entry in all_entries()}
    if name in names:
        return name
    return all_aliases().get(name)


def trained_on_real_degradations(name: str) -> bool | None:
    """True for a named model trained on real-world degradations (realbasicvsr*, basicvsrpp-ntire-decompress*,
    *-fast-real*), False for every other named model (trained on clean BI/BD frames), None for an unknown name."""
    n = _canonical(name)
    if n is None:
        return None
    return n.startswith(_REAL_PREFIXES) or "-fast-real" in n


def real_world_models() -> list[str]:
    """The named models trained on real-world degradations, in registry order."""
    return [e.name for _, e in all_entries() if trained_on_real_degradations(e.name)]


def compression_hint(info: VideoInfo, model: str | None) -> str | None:
    """One line for ``vsrkit upscale`` when the input is heavily compressed (fewer than ``LOW_BITS_PER_PIXEL`` bits
    per pixel) and the named ``model`` was trained on clean degradations; None otherwise (and for unnamed models,
    whose training data is unknown)."""
    if model is None or trained_on_real_degradations(model) is not False:
        return None
    bpp = bits_per_pixel(info)
    if bpp is None or bpp >= LOW_BITS_PER_PIXEL:
        return None
    return (f"{bpp:.3f} bits per pixel: the input is heavily compressed, and {model} was trained on clean frames "
            f"(it may sharpen compression artefacts); models trained on real-world degradations: "
            f"{', '.join(real_world_models())}")
