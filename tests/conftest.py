"""Shared fixtures: a fixed thread count, golden case loading, real-data paths with skip reasons.

The helpers themselves live in ``golden.py`` (importable from any test folder, since this file puts
``tests/`` on ``sys.path``); the fixtures below wrap them for tests that prefer fixtures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import golden

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


@pytest.fixture
def golden_case():
    """``golden_case(name) -> (case.json, io tensors, folder)``; skips when ../shared/golden is absent."""
    return golden.load_case


@pytest.fixture
def shared_data():
    """``shared_data(*parts) -> Path`` under ../shared/data; skips with the missing path as the reason."""
    return golden.data_path


@pytest.fixture
def carphone() -> Path:
    """The real 176x144 carphone clip (120 frames)."""
    return golden.data_path("clips", "carphone_pristine.mp4")
