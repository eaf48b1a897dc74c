"""The one inference engine: scheduling (``engine``), tiling, colour conversion, device and precision
(``runtime``), memory planning (``memory``) and the run plan that settles them once (``plan``). It imports
neither the readers/writers nor the hub."""

from vsrkit.infer.engine import upscale_frames, upscale_stream, upscale_tensor
from vsrkit.infer.memory import default_budget, plan_tile
from vsrkit.infer.plan import RunPlan, plan_run
from vsrkit.infer.runtime import DEFAULT_CHUNK, DEFAULT_CHUNK_OVERLAP, DEFAULT_TILE_OVERLAP, EngineConfig, make_config

__all__ = [
    "DEFAULT_CHUNK", "DEFAULT_CHUNK_OVERLAP", "DEFAULT_TILE_OVERLAP", "EngineConfig", "RunPlan", "default_budget",
    "make_config", "plan_run", "plan_tile", "upscale_frames", "upscale_stream", "upscale_tensor",
]
