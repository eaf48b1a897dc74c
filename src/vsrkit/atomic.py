"""The one way vsrkit writes a file: under a temporary name beside it, renamed into place when complete.

A reader never sees a half-written file under the final name, whatever stops the writer (an error, Ctrl-C, a full
disk, a killed process): the rename is atomic. The temporary name is hidden (``.NAME.XXXXXXXX.tmp``), so leftovers of
a killed process are easy to recognise, and the file gets the permissions a plain ``open()`` gives.

This module is a bottom-floor utility (like ``errors``): it imports nothing from vsrkit.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_atomic", "write_atomic_bytes", "write_atomic_text"]


def _reserve(path: Path) -> Path:
    """A new empty file beside ``path`` under a hidden temporary name (mode 0666 less the umask, as ``open``)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


def write_atomic(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` to write a temporary file beside ``path`` (its folder is made if missing), then rename it
    to ``path``; on any error the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _reserve(path)
    try:
        write(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary name, renamed when complete."""
    write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def write_atomic_text(path: str | os.PathLike, text: str) -> None:
    """Write a (small) UTF-8 text file through a temporary name, renamed when complete."""
    write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
