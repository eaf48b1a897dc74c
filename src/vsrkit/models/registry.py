"""The registry of model families: one ``register(...)`` line per family, nothing imported until it is needed.

A model name is lowercase and hyphenated, architecture first, then training set and degradation:
``basicvsr-reds4``, ``edvr-m-reds``, ``rlsp-7-64``, ``esr-tr-x2``... Its first word names the family
(``register(..., names=("basicvsr", "iconvsr"))``). A lookup by name imports that family's module only;
``all_families()`` imports every one (``vsrkit models``, and recognition of a file, which asks the families in
registration order until one claims it).
"""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING

from vsrkit.errors import VsrkitError

if TYPE_CHECKING:
    from vsrkit.models.family import Family, ModelEntry

__all__ = ["register", "unregister", "registered", "get_family", "family_of", "get_entry", "network_class",
           "all_families", "family_of_arch"]

_MODULES: dict[str, str] = {}  # family name -> the module that defines FAMILY and the networks
_FIRST_WORDS: dict[str, str] = {}  # first word of a model name -> family name


def register(name: str, module: str, names: tuple[str, ...]) -> None:
    """Declare a family: ``module`` defines ``FAMILY = Family(name, ...)`` and the network classes; ``names`` are
    the first words of its model names. Nothing is imported here. Registering the same family again with the
    same module is allowed (it keeps its place); a first word that another family holds is an error."""
    if name in _MODULES and _MODULES[name] != module:
        raise ValueError(f"model family {name!r} is already registered (module {_MODULES[name]})")
    words = tuple(w.lower() for w in names)
    taken = [w for w in words if _FIRST_WORDS.get(w, name) != name]
    if taken:
        raise ValueError(f"model name {taken[0]!r} already belongs to family {_FIRST_WORDS[taken[0]]!r}")
    _MODULES[name] = module
    for w in words:
        _FIRST_WORDS[w] = name


def unregister(name: str) -> None:
    """Remove a family and its names (for tests and plugins that registered one)."""
    _MODULES.pop(name, None)
    for w in [w for w, f in _FIRST_WORDS.items() if f == name]:
        del _FIRST_WORDS[w]


def registered() -> tuple[str, ...]:
    """The registered family names, in registration order (nothing is imported)."""
    return tuple(_MODULES)


def get_family(name: str) -> Family:
    """The ``FAMILY`` of a registered family, importing its module (only that one)."""
    if name not in _MODULES:
        raise VsrkitError(f"unknown model family {name!r} (known: {', '.join(_MODULES)})")
    module = importlib.import_module(_MODULES[name])
    family = getattr(module, "FAMILY", None)
    if family is None or family.name != name:
        raise VsrkitError(f"{_MODULES[name]} does not define FAMILY = Family({name!r}, ...)")
    return family


def family_of(model_name: str) -> str:
    """The family a model name belongs to, from its first word (nothing is imported)."""
    first = model_name.lower().split("-")[0]
    if first not in _FIRST_WORDS:
        raise VsrkitError(f"unknown model {model_name!r}{_suggest(model_name)}; `vsrkit models` lists them")
    return _FIRST_WORDS[first]


def get_entry(model_name: str) -> tuple[Family, ModelEntry]:
    """(family, entry) of a model name or alias; a clear error for an unknown name."""
    family = get_family(family_of(model_name))
    entry = family.entry(model_name)
    if entry is None:
        names = [e.name for e in family.entries] + list(family.aliases)
        raise VsrkitError(f"unknown model {model_name!r}{_suggest(model_name, names)}; `vsrkit models` lists them")
    return family, entry


def network_class(family_name: str, arch: str) -> type:
    """The network class ``arch`` of a family (a class its module defines); a clear error if there is none."""
    get_family(family_name)
    cls = getattr(importlib.import_module(_MODULES[family_name]), arch, None)
    if not _is_network(cls):
        raise VsrkitError(f"model family {family_name!r} has no network class {arch!r}")
    return cls


def all_families() -> list[Family]:
    """Every registered family, in registration order (imports them all)."""
    return [get_family(name) for name in _MODULES]


def family_of_arch(arch: str) -> str:
    """The family whose module defines the network class ``arch``: families are imported in registration order
    until one has it."""
    for name in _MODULES:
        get_family(name)
        if _is_network(getattr(importlib.import_module(_MODULES[name]), arch, None)):
            return name
    raise VsrkitError(f"{arch!r} is not a vsrkit network class")


def _is_network(cls: object) -> bool:
    import torch

    return isinstance(cls, type) and issubclass(cls, torch.nn.Module)


def _suggest(name: str, candidates: list[str] | None = None) -> str:
    if candidates is None:
        candidates = list(_FIRST_WORDS)
    close = difflib.get_close_matches(name.lower(), candidates, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""
