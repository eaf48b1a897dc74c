"""Model creation by name or by checkpoint.

``load_model("basicvsr-reds4")`` builds the architecture and finds its checkpoint (``download``). With
``weights=FILE`` and no name, the architecture and hyper-parameters are recognised from the checkpoint
itself (``detect``). A named configuration also sets the protocol its published numbers were made with.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import zlib
from typing import Any

import torch

from vsrkit.errors import VsrkitError
from vsrkit.hub.checkpoint import load_state_dict, load_strict, load_with_meta
from vsrkit.hub.detect import convert, detect
from vsrkit.hub.download import BUNDLED_DIR, cache_dir, package_file, resolve_weights
from vsrkit.hub.registry import DEFAULT_MODEL
from vsrkit.models.family import ModelEntry
from vsrkit.models.registry import get_entry, get_family, network_class

log = logging.getLogger(__name__)


def build(family: str, arch: str, kwargs: dict[str, Any]) -> torch.nn.Module:
    """An architecture of a family from its constructor arguments; bad arguments are a clear error."""
    cls = network_class(family, arch)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise VsrkitError(f"cannot build {arch}: {e}") from None


def load_model(
    name: str | None = None,
    weights: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    **kwargs: Any,
) -> torch.nn.Module:
    """An ``nn.Module`` in eval mode, with its ``spec`` set (``spec.name``: the model's name, or its class name).

    - ``load_model("basicvsr-reds4")``: a named model with its pretrained weights and protocol;
    - ``load_model("basicvsr")``: the bare architecture, default hyper-parameters, random weights (the same ones
      at every call: drawn from a seed made of the name; a warning says they are random);
    - ``load_model(weights=FILE)``: architecture and hyper-parameters recognised from the checkpoint;
    - ``load_model("edvr", weights=FILE, num_feat=16, ...)``: official constructor arguments by name;
    - ``load_model("rlsp-7-64", weights=FILE)``: a named configuration with other weights; the file must fit it.
    """
    if name is None and weights is None:
        name = DEFAULT_MODEL
    state_dict = None
    filename = None
    meta = None
    losses: dict[str, float] = {}  # a named model's measured precision losses, for its own weights only
    if weights is not None:
        filename = os.path.basename(os.fspath(weights))
        state_dict, meta = load_with_meta(weights)

    if name is None and meta is not None:
        # weights written by vsrkit name their architecture and constructor arguments: nothing to guess
        family, arch = str(meta["family"]), str(meta["arch"])
        try:
            network_class(family, arch)
        except VsrkitError:
            raise VsrkitError(f"{filename}: names an unknown architecture {family}/{arch}") from None
        build_kwargs = {**dict(meta["kwargs"]), **kwargs}
        model_name, protocol = arch, get_family(family).protocol(arch, build_kwargs)
    elif name is None:
        assert state_dict is not None
        family, arch, detected = detect(state_dict, filename)
        build_kwargs = {**detected, **kwargs}
        model_name, protocol = arch, get_family(family).protocol(arch, build_kwargs)
    else:
        fam, entry = get_entry(name)
        family = fam.name
        build_kwargs = dict(entry.kwargs)
        if state_dict is not None and (not entry.kwargs or name.lower() in fam.aliases):
            # an architecture name (``rlsp``, ``esr-tr``) with a file: take the hyper-parameters from the file (the
            # arguments given win). A named configuration (``rlsp-7-128``, ``esr-tr-x2``) keeps its own: the file
            # must fit it.
            try:
                found_family, arch, detected = detect(state_dict, filename)
            except VsrkitError:
                if not kwargs:
                    raise
                found_family, arch, detected = "", "", {}  # the given arguments alone describe the file
            if found_family == family and arch == entry.arch:
                build_kwargs.update(detected)
        build_kwargs.update(kwargs)
        model_name = entry.name
        protocol = entry.protocol or fam.protocol(entry.arch, build_kwargs)
        arch = entry.arch
        if state_dict is None and entry.weights is not None:
            losses = dict(entry.losses_db) if not kwargs else {}
            path = resolve_weights(entry.name, entry.weights, progress=progress)
            state_dict = load_state_dict(path)
            filename = path.name
    if state_dict is not None:
        model = build(family, arch, build_kwargs)
        _load_checked(model, convert(family, state_dict), filename or "checkpoint", name)
    else:
        # no trained weights: random ones, drawn from the model's name, so that the same command gives the same
        # output (and an interrupted run can be resumed); the caller's random state is left as it was
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(zlib.crc32(model_name.encode()))
            model = build(family, arch, build_kwargs)
        log.warning("%s has no trained weights: it runs with random ones (the same at every run), so its output "
                    "is no real upscale; give --weights FILE, or a model with weights (see `vsrkit models`)",
                    model_name)
    model.eval()
    model.spec = dataclasses.replace(model.spec, protocol=protocol, name=model_name, **{
        field: losses[key] for key, field in LOSS_FIELDS.items() if key in losses})
    return model


LOSS_FIELDS = {"bf16": "bf16_loss_db", "ov_bf16": "ov_bf16_loss_db", "ov_int8": "int8_loss_db"}  # ModelEntry.losses_db


def _load_checked(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str, name: str | None) -> None:
    """Strict load; on mismatch, say which model was asked for and which one the file is, if it can be told."""
    what = f"model {name!r}" if name else type(model).__name__
    try:
        load_strict(model, state_dict, source=source, what=what)
    except VsrkitError as e:
        hint = ""
        try:
            _, arch, kw = detect(state_dict, source)
            hint = f"; the file is a {arch} checkpoint with {kw}" + ("" if name is None else ": drop --model to use it")
        except VsrkitError:
            pass
        raise VsrkitError(f"{e}{hint}") from None


def weights_here(entry: ModelEntry) -> str:
    """'yes' if a named model's weights are on this machine, 'download' if fetched on first use, else 'random'."""
    if entry.weights is None:
        return "random"
    if entry.weights.bundled:
        return "yes" if (BUNDLED_DIR / entry.weights.filename).is_file() else "missing"
    local = (cache_dir() / entry.weights.filename).is_file() or package_file(entry.weights) is not None
    return "yes" if local else "download"


def describe_entry(family: str, entry: ModelEntry) -> dict[str, Any]:
    """A row of ``vsrkit models``: built on the meta device, so nothing is allocated."""
    with torch.device("meta"):
        model = build(family, entry.arch, dict(entry.kwargs))
    spec = model.spec
    return {
        "name": entry.name,
        "family": family,
        "temporal": spec.temporal.describe(),
        "scale": f"x{spec.scale}",
        "channels": "Y" if spec.channels == 1 else "RGB",
        "params": sum(p.numel() for p in model.parameters()),
        "weights": weights_here(entry),
        "source": entry.weights.where() if entry.weights else "architecture only (--weights FILE)",
        "licence": entry.weights.licence if entry.weights else "",
        "summary": entry.summary,
        "protocol": entry.protocol or get_family(family).protocol(entry.arch, dict(entry.kwargs)),
    }
