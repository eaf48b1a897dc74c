"""vsrkit: video super-resolution that loads the published models exactly and streams real videos."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vsrkit._version import __version__
from vsrkit.errors import VsrkitError

__all__ = ["VsrkitError", "load_model", "upscale", "__version__"]

if TYPE_CHECKING:
    import torch


def load_model(name: str | None = None, weights: str | None = None, **kwargs: Any) -> "torch.nn.Module":
    """An ``nn.Module`` in eval mode with its ``spec``; see ``vsrkit.hub.loader.load_model``."""
    from vsrkit.hub.loader import load_model as _load

    return _load(name, weights=weights, **kwargs)


def upscale(input: str, output: str, **kwargs: Any) -> Any:
    """Upscale a video file or image folder to ``output``; see ``vsrkit.pipeline.upscale_file``."""
    from vsrkit.pipeline import upscale_file

    return upscale_file(input, output, **kwargs)
