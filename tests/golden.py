"""Helpers for the golden tests: read a case of ../shared/golden, skip with a reason when it is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared"
GOLDEN = SHARED / "golden"
DATA = SHARED / "data"
TOL = 1e-4


def case_dir(name: str) -> Path:
    d = GOLDEN / name
    if not d.is_dir():
        pytest.skip(f"golden case {name} not found at {d} (../shared is not beside this checkout)")
    return d


def load_case(name: str) -> tuple[dict, dict[str, torch.Tensor], Path]:
    """(case.json, io tensors, folder) of a golden case."""
    from safetensors.torch import load_file

    d = case_dir(name)
    meta = json.loads((d / "case.json").read_text())
    io = load_file(str(d / "io.safetensors"))
    return meta, io, d


def data_path(*parts: str) -> Path:
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"test data {p} not found (../shared/data is not beside this checkout)")
    return p


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: float = TOL, what: str = "output") -> None:
    assert tuple(actual.shape) == tuple(expected.shape), f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    err = (actual.detach().float() - expected.float()).abs().max().item()
    assert err <= tol, f"{what}: max abs error {err:.3g} > {tol}"
