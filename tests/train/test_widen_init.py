"""``model.init_widen``: a trained narrow RLSP starts a wider one as exactly the same function (the fast model's
third stage, configs/train/rlsp_fast_x4_stage3.yml)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from compare import assert_close_rel
from vsrkit.errors import VsrkitError
from vsrkit.models.rlsp import RLSP
from vsrkit.train.config import from_dict
from vsrkit.train.loop import Trainer


def _trainer(tmp_path, init, filters, state_dim, widen=True):
    return Trainer(from_dict({
        "name": "w", "output": str(tmp_path / "run"),
        "model": {"arch": "RLSP", "init": str(init), "init_widen": widen,
                  "kwargs": {"layers": 4, "filters": filters, "state_dim": state_dim, "factor": 2, "in_channels": 3}},
        "train": {"total_iter": 1, "batch_size": 1}, "optim": {"lr": 1e-3}}))


def _narrow(tmp_path):
    torch.manual_seed(3)
    narrow = RLSP(layers=4, filters=8, state_dim=6, factor=2, in_channels=3).eval()
    for p in narrow.parameters():  # trained-looking weights: no zero biases that could hide a wrong embedding
        p.data.normal_(0, 0.2)
    path = tmp_path / "narrow.safetensors"
    save_file(narrow.state_dict(), str(path))
    return narrow, path


def test_widened_network_computes_the_narrow_function(tmp_path):
    narrow, path = _narrow(tmp_path)
    wide = _trainer(tmp_path, path, filters=12, state_dim=10).model.eval()
    assert wide.conv1.out_channels == 12 and wide.state_dim == 10
    x = torch.rand(1, 6, 3, 9, 11, generator=torch.Generator().manual_seed(0))  # 6 frames: the state matters
    with torch.no_grad():
        want, got = narrow(x), wide(x)
    assert_close_rel(got, want, what="wide against narrow")
    # the new channels are live (their own nonzero weights, which training can use) and unseen by the old outputs
    old_out = 3 * 2 * 2 + 6  # residual channels and the narrow state
    assert wide.conv1.weight[8:].abs().sum() > 0 and wide.conv_out.weight[old_out:].abs().sum() > 0
    assert wide.conv_out.weight[:old_out, 8:].abs().sum() == 0


def test_widening_needs_a_narrower_network_of_the_same_layout(tmp_path):
    _, path = _narrow(tmp_path)
    with pytest.raises(VsrkitError, match=r"cannot widen conv1\.(weight|bias)"):
        _trainer(tmp_path, path, filters=4, state_dim=10)
    bigger = RLSP(layers=5, filters=8, state_dim=6, factor=2, in_channels=3)
    other = tmp_path / "other.safetensors"
    save_file(bigger.state_dict(), str(other))
    with pytest.raises(VsrkitError, match="is in only one of them"):
        _trainer(tmp_path, other, filters=12, state_dim=10)
