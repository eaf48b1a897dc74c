"""vsrkit.atomic: the one way files are written (a temporary name beside the file, renamed when complete)."""

from __future__ import annotations

import os
import stat

import pytest

from vsrkit.atomic import write_atomic, write_atomic_bytes, write_atomic_text


def test_a_complete_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "sub" / "a.json"  # the folder is made
    write_atomic_text(path, "one")
    write_atomic_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    seen = []

    def half(tmp: str) -> None:
        seen.append(os.path.basename(tmp))
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_atomic(path, half)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]
    assert seen[0].startswith(".a.bin.") and seen[0].endswith(".tmp")  # hidden, recognisable leftovers


def test_the_file_gets_the_permissions_of_a_plain_open(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic_text(tmp_path / "a.txt", "x")
        (tmp_path / "b.txt").write_text("x")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "a.txt") == mode(tmp_path / "b.txt") == 0o640
