"""A full disk, simulated with a file-size limit (``ulimit -f``) in a child process: one line, no final file."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from golden import data_path
from media import assert_one_line_error, child_env, cli_command


def limited(max_bytes: int):
    def set_limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return set_limit


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
@pytest.mark.parametrize("name,limit", [("frames", 60_000), ("o.mp4", 20_000), ("o.mkv", 20_000)])
def test_full_disk_is_one_line_and_leaves_no_final_file(tmp_path, name, limit):
    src = data_path("clips", "carphone_pristine.mp4")
    out = tmp_path / name
    r = subprocess.run(cli_command() + ["upscale", str(src), "-o", str(out), "--model", "esr-tr-x2", "-q"],
                       capture_output=True, text=True, timeout=300, env=child_env(), preexec_fn=limited(limit))
    line = assert_one_line_error(r.returncode, r.stderr, name)
    assert "File too large" in line or "No space" in line, line
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [], list(tmp_path.iterdir())  # no partial output either


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
def test_full_disk_with_resume_keeps_the_work_for_later(tmp_path):
    src = data_path("clips", "carphone_pristine.mp4")
    out = tmp_path / "frames"
    r = subprocess.run(cli_command() + ["upscale", str(src), "-o", str(out), "--model", "esr-tr-x2", "-q", "--resume"],
                       capture_output=True, text=True, timeout=300, env=child_env(), preexec_fn=limited(60_000))
    assert_one_line_error(r.returncode, r.stderr, "frames")
    assert not out.exists() and any(p.name.startswith(".vsrkit-job-") for p in tmp_path.iterdir())
