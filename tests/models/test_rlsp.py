"""RLSP: golden output, recurrence through step(), channel orders, ablations, presets, detection."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from golden import assert_close, load_case
from vsrkit.models.registry import get_entry
from vsrkit.models.rlsp import FAMILY, detect_rlsp
from vsrkit.hub.checkpoint import load_state_dict, load_strict
from vsrkit.errors import VsrkitError
from vsrkit.models.rlsp import RLSP, shuffle_down, shuffle_up
from vsrkit.models.spec import Temporal


@pytest.fixture(scope="module")
def golden():
    meta, io, d = load_case("rlsp_f64_s64")
    return meta, io, d


def test_golden_official_params_dict(golden):
    meta, io, d = golden
    # the official container {'rlsp', 'optimizer', 'iteration'} loads with weights_only=True
    raw = torch.load(d / "weights.pth", map_location="cpu", weights_only=True)
    assert set(raw) == {"rlsp", "optimizer", "iteration"}
    sd = load_state_dict(d / "weights.pth")
    assert detect_rlsp(sd) == (
        "RLSP",
        {"layers": 7, "filters": 64, "state_dim": 64, "kernel_size": 3, "factor": 4, "in_channels": 3},
    )
    model = RLSP(params=meta["official_params_used"]).eval()
    load_strict(model, sd)
    with torch.no_grad():
        out = model(io["input"])
    assert_close(out, io["output"])


def test_golden_by_step_with_kwargs(golden):
    """The engine's way: step() on replicate-padded windows (0,0,1) .. (T-2,T-1,T-1), state None at first."""
    meta, io, d = golden
    model = RLSP(layers=7, filters=64, state_dim=64, kernel_size=3, factor=4).eval()
    assert model.spec.temporal == Temporal("recurrent", window=3, ahead=1) and model.spec.protocol.end_padding == "replicate"
    assert (model.spec.scale, model.spec.channels, model.spec.size_multiple) == (4, 3, 1)
    load_strict(model, load_state_dict(d / "weights.pth"))
    x = io["input"]
    T = x.shape[1]
    padded = torch.cat([x[:, :1], x, x[:, -1:]], dim=1)
    state = None
    with torch.no_grad():
        for t in range(T):
            y, state = model.step(padded[:, t : t + 3], state)
            assert_close(y, io["output"][:, t], what=f"frame {t}")
    assert all(isinstance(s, torch.Tensor) for s in state)


def test_shuffle_order_is_fy_fx_c():
    f, c, h, w = 3, 2, 4, 5
    x = torch.randn(1, c, f * h, w * f)
    d = shuffle_down(x, f)
    for fy in range(f):
        for fx in range(f):
            for ch in range(c):
                assert torch.equal(d[0, (fy * f + fx) * c + ch], x[0, ch, fy::f, fx::f])
    assert torch.equal(shuffle_up(d, f), x)
    # differs from nn.PixelUnshuffle's (c, fy, fx) order
    assert not torch.equal(d, F.pixel_unshuffle(x, f))
    # the residual: the frame repeated f*f times, shuffled up, is nearest-neighbour upsampling
    lr = torch.rand(2, 3, h, w)
    assert torch.equal(shuffle_up(lr.repeat(1, f * f, 1, 1), f), F.interpolate(lr, scale_factor=f, mode="nearest"))


def _tiny(**kw):
    torch.manual_seed(0)
    cfg = dict(layers=3, filters=8, state_dim=8, kernel_size=3, factor=2)
    cfg.update(kw)
    return RLSP(**cfg).eval()


def test_zero_weights_give_nearest_upsampling_and_calls_once_per_frame():
    model = _tiny()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    x = torch.rand(1, 4, 3, 6, 5)
    calls = []
    model.conv1.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        y = model(x)
    assert len(calls) == 4  # one cell per frame: past frames are never re-run
    assert torch.equal(y, F.interpolate(x.flatten(0, 1), scale_factor=2, mode="nearest").view(1, 4, 3, 12, 10))


def test_first_frame_state_is_zero():
    model = _tiny()
    x = torch.rand(1, 3, 3, 6, 6)
    zeros = (torch.zeros(1, 12, 6, 6), torch.zeros(1, 8, 6, 6))
    with torch.no_grad():
        a, sa = model.step(x, None)
        b, sb = model.step(x, zeros)
    assert torch.equal(a, b)
    assert all(torch.equal(u, v) for u, v in zip(sa, sb))


@pytest.mark.parametrize(
    "kw,n_in",
    [
        ({}, 9 + 12 + 8),
        ({"neighbours": False}, 3 + 12 + 8),
        ({"feedback": False}, 9 + 8),
        ({"hidden_state": False}, 9 + 12),
        ({"in_channels": 1}, 3 + 4 + 8),
        ({"neighbours": False, "feedback": False, "hidden_state": False}, 3),
    ],
)
def test_ablations(kw, n_in):
    model = _tiny(**kw)
    assert model.conv1.in_channels == n_in
    c = kw.get("in_channels", 3)
    assert model.spec.channels == c
    window = 3 if kw.get("neighbours", True) else 1
    assert model.spec.temporal.window == window
    x = torch.rand(2, 3, c, 5, 7)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, 3, c, 10, 14)
        # the ablated inputs really are absent: the state only holds what is used
        _, state = model.step(torch.rand(2, window, c, 5, 7), None)
    assert len(state) == int(kw.get("feedback", True)) + int(kw.get("hidden_state", True))
    # detection round trip: with state = filters (as released RLSP models) these are told apart
    name, got = detect_rlsp(model.state_dict())
    rebuilt = RLSP(**got)
    load_strict(rebuilt, model.state_dict())
    for attr in ("factor", "state_dim", "in_channels", "neighbours", "feedback", "hidden_state", "layers", "filters"):
        assert getattr(rebuilt, attr) == getattr(model, attr), attr


def test_detect_defaults_and_other_families():
    for entry in FAMILY.entries:
        if entry.name in ("rlsp-7-256", "rlsp-7-256-y"):
            continue  # large; same code path
        model = RLSP(**entry.kwargs)
        name, kw = detect_rlsp(model.state_dict(), "whatever.pth")
        assert name == "RLSP"
        expected = {"layers": 7, "kernel_size": 3, "factor": 4, **entry.kwargs}
        expected.setdefault("filters", 128)
        expected.setdefault("state_dim", 128)
        expected.setdefault("in_channels", 3)
        assert kw == expected
    assert detect_rlsp({"filter.weight": torch.zeros(4, 1, 3, 3)}) is None
    assert detect_rlsp({"conv1.weight": torch.zeros(8, 25, 3, 3), "conv1.bias": torch.zeros(8),
                        "conv_out.weight": torch.zeros(16, 8, 3, 3), "conv_out.bias": torch.zeros(16),
                        "other.weight": torch.zeros(1)}) is None
    with pytest.raises(VsrkitError, match="fit no RLSP"):
        detect_rlsp({"conv1.weight": torch.zeros(8, 2, 3, 3), "conv1.bias": torch.zeros(8),
                     "conv_out.weight": torch.zeros(1000, 8, 3, 3), "conv_out.bias": torch.zeros(1000)})


def test_presets_and_params():
    names = {e.name for e in FAMILY.entries}
    assert {"rlsp", "rlsp-7-48", "rlsp-7-64", "rlsp-7-128", "rlsp-7-256", "rlsp-7-64-y"} <= names
    _, entry = get_entry("rlsp-7-64-y")
    model = RLSP(**entry.kwargs)
    assert (model.filters, model.state_dim, model.spec.channels, model.in_channels) == (64, 64, 1, 1)
    assert model.conv1.in_channels == 3 + 16 + 64
    for e in FAMILY.entries:
        with torch.device("meta"):  # `vsrkit models` builds them on the meta device
            assert RLSP(**e.kwargs).spec.scale == 4
    default = RLSP()
    assert (default.layers, default.filters, default.state_dim, default.factor) == (7, 128, 128, 4)
    assert len(default.conv_list) == 5
    # official params dict, explicit keywords win
    m = RLSP(params={"filters": 16, "state dimension": 8, "layers": 4, "kernel size": 5, "factor": 2, "lr": 1e-4},
             filters=12)
    assert (m.filters, m.state_dim, m.layers, m.kernel_size, m.factor) == (12, 8, 4, 5, 2)
    assert m.conv1.weight.shape == (12, 9 + 12 + 8, 5, 5)
    with pytest.raises(ValueError):  # API misuse
        RLSP(kernel_size=4)
