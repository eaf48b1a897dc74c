"""Names, pretrained configurations, checkpoint reading and recognition, downloads."""

from vsrkit.hub.loader import load_model

__all__ = ["load_model"]
