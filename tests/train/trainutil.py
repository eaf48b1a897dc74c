"""Helpers of the training tests (paths, the child command line)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "train"


def cli_env() -> dict[str, str]:
    """The environment of a child ``python -m vsrkit.cli.main``: this checkout's sources first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vsrkit.cli.main", *args]
