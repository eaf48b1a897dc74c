"""Shared helpers of the training tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "train"


@pytest.fixture(autouse=True)
def _restore_determinism():
    """A Trainer with train.deterministic switches torch's global flag on: switch it back after each test."""
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


def cli_env() -> dict[str, str]:
    """The environment of a child ``python -m vsrkit.cli.main``: this checkout's sources first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vsrkit.cli.main", *args]
