"""--max-memory picks tiles from the model's memory estimate, and the real peak stays under the budget."""

from __future__ import annotations

import subprocess
import sys

import pytest

import vsrkit
from vsrkit.infer import make_config, plan_tile
from vsrkit.errors import VsrkitError

from golden import case_dir, data_path

# The child's own peak: VmHWM starts afresh at exec, while getrusage's ru_maxrss keeps the forking
# parent's RSS (pytest's, over 1 GiB late in the suite), which once failed this test for the wrong reason.
CHILD = """
import sys
from vsrkit.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
    print("PEAK_MIB", int(hwm.split()[1]) / 1024, flush=True)
    raise
"""


def test_tile_shrinks_with_the_budget_and_too_small_a_budget_is_refused():
    model = vsrkit.load_model(weights=str(case_dir("vrt_small_x4") / "weights.pth"))
    cfg = make_config("cpu", chunk=4, chunk_overlap=1)
    tiles = [plan_tile(model, cfg, gib * 2**30, 180, 320) for gib in (1.5, 2.5, 4.0)]
    assert 0 < tiles[0] < tiles[1] < tiles[2]
    assert all(t % model.spec.size_multiple == 0 and t >= model.spec.min_size for t in tiles)
    assert plan_tile(model, cfg, 64 * 2**30, 144, 176) == 0  # whole frames fit
    with pytest.raises(VsrkitError, match="too small"):
        plan_tile(model, cfg, 0.6 * 2**30, 180, 320)


def test_real_peak_stays_under_the_budget(tmp_path):
    ckpt = case_dir("vrt_small_x4") / "weights.pth"
    src = data_path("clips", "carphone_pristine.mp4")
    budget = 1.25
    r = subprocess.run(
        [sys.executable, "-c", CHILD, "upscale", str(src), "-o", str(tmp_path / "o.mp4"), "--weights", str(ckpt),
         "--max-memory", str(budget), "--chunk", "4", "--chunk-overlap", "1", "--max-frames", "6", "--device", "cpu"],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert "tiles of" in r.stderr  # the budget really forced tiling of the 176x144 frames
    peak = float(r.stdout.split("PEAK_MIB")[1])
    assert peak < budget * 1024, f"peak {peak:.0f} MiB over the {budget} GiB budget"


def test_memory_hungry_models_tile_by_default_others_do_not(tmp_path, monkeypatch):
    from vsrkit.infer import memory

    monkeypatch.setattr(memory, "default_budget", lambda device: 1.25 * 2**30)
    src = data_path("clips", "carphone_pristine.mp4")
    said: list[str] = []
    vsrkit.upscale(str(src), str(tmp_path / "vrt.mp4"), weights=str(case_dir("vrt_small_x4") / "weights.pth"),
                   max_frames=2, progress=False, say=said.append)
    assert any("tiles of" in s for s in said), said  # VRT declares memory_per_pixel: planned tiles
    said.clear()
    vsrkit.upscale(str(src), str(tmp_path / "bic.mp4"), model="bicubic", max_frames=2, progress=False, say=said.append)
    assert not any("budget" in s for s in said)  # models without a memory figure run whole frames
