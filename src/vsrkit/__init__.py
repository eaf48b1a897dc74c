"""vsrkit: video super-resolution that loads the published models exactly and streams real videos."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vsrkit.errors import VsrkitError
from vsrkit.spec import Temporal

__version__ = "0.1.0"
__all__ = ["VsrkitError", "Temporal", "load_model", "upscale", "__version__"]

if TYPE_CHECKING:
    import torch


def load_model(name: str | None = None, weights: str | None = None, **kwargs: Any) -> "torch.nn.Module":
    """An ``nn.Module`` in eval mode with ``.temporal`` and ``.scale``; see ``vsrkit.hub.load_model``."""
    from vsrkit.hub import load_model as _load

    return _load(name, weights=weights, **kwargs)


def upscale(input: str, output: str, **kwargs: Any) -> Any:
    """Upscale a video file or image folder to ``output``; see ``vsrkit.engine.upscale_file``."""
    from vsrkit.engine import upscale_file

    return upscale_file(input, output, **kwargs)
