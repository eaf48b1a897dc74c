"""The models vsrkit picks when none is named, and the list of every named model.

The names themselves, their weights and protocols are declared by each family (``FAMILY`` at the end of its module
in ``vsrkit.models``) and looked up through ``vsrkit.models.registry``.
"""

from __future__ import annotations

from vsrkit.models.family import ModelEntry
from vsrkit.models.registry import all_families

DEFAULT_MODEL = "basicvsr-reds4"  # with a GPU (and load_model's default)
FAST_MODEL = "rlsp-fast-x4"  # `vsrkit upscale --fast`: trained by vsrkit, bundled (README "Fast models")
# `vsrkit upscale` without --model on a CPU, chosen from measurement (README "Fast models"): BasicVSR still, since
# the fast model is 20-33x faster but +1.6 dB over bicubic (BasicVSR: +3.93 dB in the demo); a hint names --fast
CPU_DEFAULT_MODEL = DEFAULT_MODEL


def default_model(device: str) -> str:
    """The model `vsrkit upscale` uses when none is given: ``DEFAULT_MODEL`` with a GPU, ``CPU_DEFAULT_MODEL`` on a CPU
    (BasicVSR on both today; on a CPU the CLI names --fast)."""
    return CPU_DEFAULT_MODEL if str(device).split(":")[0] == "cpu" else DEFAULT_MODEL


def all_entries() -> list[tuple[str, ModelEntry]]:
    """Every named model as (family name, entry), family by family in registration order (imports them all)."""
    return [(family.name, entry) for family in all_families() for entry in family.entries]


def all_aliases() -> dict[str, str]:
    """Every alias -> model name, family by family."""
    return {alias: name for family in all_families() for alias, name in family.aliases.items()}
