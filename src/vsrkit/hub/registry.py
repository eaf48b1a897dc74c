"""Model names: which family a name belongs to, its pretrained configuration, and the list of all names.

A name is lowercase and hyphenated, architecture first, then training set and degradation:
``basicvsr-reds4``, ``basicvsr-vimeo-bd``, ``edvr-m-reds``, ``rlsp-7-64``, ``esr-tr-x2``... The tables live in
``vsrkit.hub.pretrained``; a name's network class is imported only when it is built.
"""

from __future__ import annotations

import difflib
import importlib
from types import ModuleType

from vsrkit.errors import VsrkitError
from vsrkit.hub import pretrained
from vsrkit.hub.pretrained import ModelEntry

DEFAULT_MODEL = "basicvsr-reds4"  # with a GPU (and load_model's default)
FAST_MODEL = "rlsp-fast-x4"  # `vsrkit upscale --fast`: trained by vsrkit, bundled (README "Fast models")
# `vsrkit upscale` without --model on a CPU, chosen from measurement (README "Fast models"): BasicVSR still, since
# the fast model is 20-33x faster but +1.6 dB over bicubic (BasicVSR: +3.75 dB in the demo); a hint names --fast
CPU_DEFAULT_MODEL = DEFAULT_MODEL

# family -> the module that holds its networks
FAMILIES: dict[str, str] = {
    "basicvsr": "vsrkit.models.basicvsr",
    "edvr": "vsrkit.models.edvr",
    "rlsp": "vsrkit.models.rlsp",
    "edgesr": "vsrkit.models.edgesr",
    "vrt": "vsrkit.models.vrt",
}

# family -> its named configurations
TABLES: dict[str, list[ModelEntry]] = {
    "basicvsr": pretrained.BASICVSR,
    "edvr": pretrained.EDVR,
    "rlsp": pretrained.RLSP,
    "edgesr": pretrained.EDGESR,
    "vrt": pretrained.VRT,
}

# first word of a model name -> family
PREFIXES: dict[str, str] = {
    "basicvsr": "basicvsr",
    "iconvsr": "basicvsr",
    "edvr": "edvr",
    "rlsp": "rlsp",
    "esr": "edgesr",
    "espcn": "edgesr",
    "fsrcnn": "edgesr",
    "bicubic": "edgesr",
    "vrt": "vrt",
}

# names kept for convenience: a plain edge-SR name is its x4 model
ALIASES: dict[str, str] = {
    name.rsplit("-x", 1)[0]: name for name in (e.name for e in pretrained.EDGESR) if name.endswith(f"-x{pretrained.PLAIN_SCALE}")
}


def default_model(device: str) -> str:
    """The model `vsrkit upscale` uses when none is given: BasicVSR with a GPU, the fast model on a CPU."""
    return CPU_DEFAULT_MODEL if str(device).split(":")[0] == "cpu" else DEFAULT_MODEL


def family_of(name: str) -> str:
    """The family a model name belongs to, from its first word."""
    first = name.lower().split("-")[0]
    if first not in PREFIXES:
        raise VsrkitError(f"unknown model {name!r}{_suggest(name)}; `vsrkit models` lists them")
    return PREFIXES[first]


def family_module(family: str) -> ModuleType:
    """Import one family's network module."""
    return importlib.import_module(FAMILIES[family])


def get_entry(name: str) -> tuple[str, ModelEntry]:
    """(family, entry) for a model name; a clear error for an unknown name."""
    family = family_of(name)
    key = ALIASES.get(name.lower(), name.lower())
    for entry in TABLES[family]:
        if entry.name == key:
            return family, entry
    names = [e.name for e in TABLES[family]] + list(ALIASES)
    raise VsrkitError(f"unknown model {name!r}{_suggest(name, names)}; `vsrkit models` lists them")


def all_entries() -> list[tuple[str, ModelEntry]]:
    """Every named model as (family, entry)."""
    return [(family, entry) for family, table in TABLES.items() for entry in table]


def _suggest(name: str, candidates: list[str] | None = None) -> str:
    if candidates is None:
        candidates = list(PREFIXES)
    close = difflib.get_close_matches(name.lower(), candidates, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""
