"""Shared helpers of the training tests."""

from __future__ import annotations

import pytest
import torch

@pytest.fixture(autouse=True)
def _restore_determinism():
    """A Trainer with train.deterministic switches torch's global flag on: switch it back after each test."""
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)
