"""Shared fixtures: a fixed thread count and a spy on grid_sample's dtypes.

Helpers shared by test folders are plain modules beside this file, importable from any of them (pytest puts
``tests/``, where this conftest lives, on ``sys.path``): ``golden.py`` (golden cases and real-data paths, with skip
reasons) and ``compare.py`` (the one comparison of two computation paths).
"""

from __future__ import annotations

import os

import pytest
import torch

THREADS = int(os.environ.get("VSRKIT_TEST_THREADS", "2"))


@pytest.fixture(autouse=True, scope="session")
def _threads() -> None:
    """Every test runs with the same thread count (results and timings do not depend on the machine)."""
    torch.set_num_threads(THREADS)


@pytest.fixture
def grid_sample_dtypes(monkeypatch) -> list[tuple[torch.dtype, torch.dtype]]:
    """Every ``F.grid_sample`` call from now on appends its (input dtype, grid dtype) to the returned list."""
    import torch.nn.functional as F

    seen: list[tuple[torch.dtype, torch.dtype]] = []
    real = F.grid_sample

    def spy(inp, grid, *a, **k):
        seen.append((inp.dtype, grid.dtype))
        return real(inp, grid, *a, **k)

    monkeypatch.setattr(F, "grid_sample", spy)
    return seen

