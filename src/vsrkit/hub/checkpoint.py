"""Reading checkpoints safely and in every container format the official projects use."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from vsrkit.atomic import write_atomic, write_atomic_text  # noqa: F401 - write_atomic_text: for the hub's callers
from vsrkit.errors import VsrkitError
from vsrkit.hub import tfbundle
from vsrkit.models.family import check_fits  # the one strict key and shape check (recognition uses it too)

# Where the state dict sits inside the official containers, in the order they are tried:
# BasicSR / VRT {'params': ...} (BasicSR loads 'params' by default), {'params_ema': ...},
# RLSP {'rlsp': ..., 'optimizer': ..., 'iteration': ...}, Lightning-style {'state_dict': ...}.
CONTAINER_KEYS = ("params", "params_ema", "rlsp", "state_dict", "model")
# safetensors metadata key of the architecture that vsrkit-written weights carry
WEIGHTS_META_KEY = "vsrkit"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a checkpoint file (``.pth``/``.pt``/``.model``, ``.safetensors``, or a TensorFlow checkpoint's
    ``.index``) as a flat state dict.

    Untrusted files are safe: torch files are read with ``weights_only=True``. The official
    containers are unwrapped and a DataParallel ``module.`` prefix is removed. TensorFlow checkpoints
    (``.index`` + ``.data-*``, recognised by name or by the table's magic number) are read without
    TensorFlow (``tfbundle``), in TensorFlow's names and layout, without the optimiser's variables.
    """
    return load_with_meta(path)[0]


def load_with_meta(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """``load_state_dict`` plus the architecture a vsrkit-written safetensors file names, if any.

    Weights exported by ``vsrkit train`` (and its training checkpoints) carry ``{"family", "arch", "kwargs"}`` in
    the safetensors metadata under ``"vsrkit"``, so ``load_model(weights=FILE)`` builds them without guessing. A
    training checkpoint holds more than the network: ``"weights_prefix"`` names the tensors that are its weights.
    """
    path = Path(path)
    if path.is_dir():
        raise VsrkitError(f"{path}: is a folder, not a checkpoint file")
    if path.suffix == ".meta" and path.with_suffix(".index").is_file():
        raise VsrkitError(f"{path} is a TensorFlow graph (.meta), not weights: pass {path.with_suffix('.index')}")
    if tfbundle.is_tf_checkpoint(path) or path.name.endswith(".index") or ".data-" in path.name:
        # a TensorFlow checkpoint (the released RLSP): its model variables, the optimiser's left unread
        return tfbundle.read_variables(path), None
    if not path.is_file():
        raise VsrkitError(f"checkpoint not found: {path}")
    meta = None
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open
            from safetensors.torch import load_file

            obj = load_file(str(path))
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
            if WEIGHTS_META_KEY in header:
                meta = json.loads(header[WEIGHTS_META_KEY])
        else:
            with warnings.catch_warnings():  # PyTorch warns of a pickle protocol above 2 in two lines: said below
                warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
                obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any reader failure is a bad file for the user
        raise VsrkitError(f"cannot read checkpoint {path}: {_why_unreadable(path, e)}") from None
    if meta is not None:
        if not isinstance(meta, dict) or not {"family", "arch", "kwargs"} <= set(meta):
            raise VsrkitError(f"{path}: its vsrkit metadata does not name family, arch and kwargs")
        prefix = meta.get("weights_prefix") or ""
        if prefix:
            obj = {k[len(prefix):]: v for k, v in obj.items() if k.startswith(prefix)}
    return unwrap_state_dict(obj, source=str(path)), meta


def save_weights(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor], family: str, arch: str,
                 kwargs: Mapping[str, Any], extra: Mapping[str, str] | None = None) -> None:
    """Write a network's weights atomically as safetensors, with its family, class and constructor arguments in the
    metadata (``load_model(weights=FILE)`` reads them back)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    meta = {WEIGHTS_META_KEY: json.dumps({"family": family, "arch": arch, "kwargs": dict(kwargs)})}
    meta.update(extra or {})
    write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def _pickle_globals(path: Path) -> list[str] | None:
    """The Python names a pickle (plain, or torch's zip) would import, found without running it; None when the
    file is not a pickle at all."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.endswith("data.pkl")]
                if not names:
                    return None
                data = z.read(names[0])
        else:
            data = path.read_bytes()
        found, strings = [], []
        for op, arg, _pos in pickletools.genops(data):
            if op.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(str(arg))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
        return found
    except Exception:  # noqa: BLE001 - not a pickle
        return None


def _why_unreadable(path: Path, e: Exception) -> str:
    """One line on why ``torch.load``/safetensors refused a file, never PyTorch's advice to load it unsafely."""
    if path.suffix == ".meta":
        return "not a valid weights file: a TensorFlow graph (.meta) holds no weights; pass the checkpoint's .index"
    if path.suffix == ".safetensors":
        return "not a valid safetensors file (damaged or of another format)"
    with open(path, "rb") as f:
        head = f.read(4)
    if not zipfile.is_zipfile(path) and head[:1] != b"\x80":
        return "not a valid weights file: not a PyTorch (zip or pickle), safetensors or TensorFlow checkpoint"
    names = _pickle_globals(path)
    if names is not None:
        unsafe = [n for n in names if not n.startswith(("torch.", "collections.OrderedDict", "_codecs.encode"))]
        if not unsafe and head[:1] == b"\x80" and head[1] > 2 and "Unsupported operand" in str(e):
            return (f"refused as unsafe: it is pickled with protocol {head[1]}, which only an unsafe loader (one that "
                    "could run code) reads; save it again with torch.save's defaults, or as .safetensors")
        if unsafe or "Unsupported" in str(e) or str(e).startswith("Weights only load failed"):
            what = f" (it would import {unsafe[0]})" if unsafe else ""
            return f"refused as unsafe: it holds Python objects, not only tensors, and loading it could run code{what}"
    text = str(e).strip()
    first = text.splitlines()[0] if text and "weights_only" not in text.splitlines()[0] else type(e).__name__
    return f"not a valid weights file: damaged or not a PyTorch checkpoint ({first})"


# mmagic (mmediting) keeps a GAN's networks side by side in one state dict under these prefixes; the generator is
# the network, its EMA copy is what mmagic tests with when present, the discriminator is training only
MMAGIC_GENERATORS = ("generator_ema.", "generator.")


def unwrap_state_dict(obj: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Take the state dict out of an official container and strip a ``module.`` prefix.

    mmagic's container (``{'state_dict': {'generator.<key>': ...}, 'meta': ...}``) gives the generator's weights:
    ``generator_ema.`` when present (as mmagic's test does), else ``generator.``; ``discriminator.`` keys are
    dropped."""
    if isinstance(obj, Mapping):
        for key in CONTAINER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise VsrkitError(f"{source} holds no state dict of tensors")
    sd = dict(obj)
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    for prefix in MMAGIC_GENERATORS:
        if any(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
            break
    return sd


def load_strict(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint",
                what: str | None = None) -> None:
    """``load_state_dict(strict=True)`` after ``check_fits``: mismatches are one clear line."""
    check_fits(model.state_dict(), state_dict, source, what or type(model).__name__)
    model.load_state_dict(state_dict, strict=True)


def save_safetensors_atomic(state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Save a state dict as safetensors through a temporary name, renamed when complete."""
    from safetensors.torch import save_file

    write_atomic(path, lambda tmp: save_file({k: v.contiguous() for k, v in state_dict.items()}, tmp))
