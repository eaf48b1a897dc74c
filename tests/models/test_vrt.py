"""VRT: golden outputs of the official code, official state-dict layouts, presets, detect, checkpointing."""

from __future__ import annotations

import json

import pytest
import torch

from compare import assert_close_rel
from golden import GOLDEN, assert_close, load_case
from vsrkit.hub.checkpoint import load_state_dict, load_strict
from vsrkit.models import vrt as vrt_mod
from vsrkit.models.vrt import ENTRIES as MODELS, detect_vrt as detect
from vsrkit.models.vrt import VRT

GOLDEN_CASES = ["vrt_small_x4", "vrt_small_x4_pa4", "vrt_small_x4_pa6", "vrt_small_x4_dcn_offsets"]


def _official_configs() -> dict:
    path = GOLDEN / "vrt_official_configs.json"
    if not path.is_file():
        pytest.skip(f"{path} not found (../shared is not beside this checkout)")
    return json.loads(path.read_text())["configs"]


def _tiny(**kw) -> VRT:
    """A very small VRT that still runs every component (2 mutual + self / self blocks per stage)."""
    args = dict(
        upscale=4,
        img_size=[3, 40, 40],
        window_size=[2, 4, 4],
        depths=[2] * 7 + [2, 2],
        indep_reconsts=[8],
        embed_dims=[8] * 7 + [12, 12],
        num_heads=[2] * 9,
        pa_frames=2,
        deformable_groups=2,
    )
    args.update(kw)
    return VRT(**args)


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_golden(name):
    meta, io, d = load_case(name)
    model = VRT(**meta["kwargs"]).eval()
    load_strict(model, load_state_dict(d / "weights.pth"), source=name)
    x = io["input"]
    with torch.no_grad():
        if "flows_backward_l0" in io:
            fb, ff = model.get_flow_2frames(x)
            for level in range(4):
                assert_close(fb[level], io[f"flows_backward_l{level}"], what=f"flows_backward_l{level}")
                assert_close(ff[level], io[f"flows_forward_l{level}"], what=f"flows_forward_l{level}")
        y = model(x)
    assert_close(y, io["output"])


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_detect_golden(name):
    meta, _, d = load_case(name)
    sd = load_state_dict(d / "weights.pth")
    arch, kwargs = detect(sd, "weights.pth")
    assert arch == "VRT"
    want = meta["kwargs"]
    for k in ("upscale", "in_chans", "out_chans", "window_size", "depths", "indep_reconsts", "embed_dims",
              "num_heads", "pa_frames", "deformable_groups"):
        assert kwargs[k] == want[k], k
    with torch.device("meta"):
        model = VRT(**kwargs)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {k: tuple(v.shape) for k, v in sd.items()}


def test_official_configs_state_dict_layout():
    configs = _official_configs()
    assert len(configs) == 4
    for name, cfg in configs.items():
        layout = configs[cfg["same_architecture_as"]] if "same_architecture_as" in cfg else cfg
        with torch.device("meta"):
            model = VRT(**cfg["kwargs"])
        sd = model.state_dict()
        got = {k: list(v.shape) for k, v in sd.items()}
        assert list(got) == list(layout["state_dict_shapes"]), name  # same keys, same order
        assert got == layout["state_dict_shapes"], name
        assert [k for k, _ in model.named_buffers()] == layout["buffers"], name
        assert sum(p.numel() for p in model.parameters()) == layout["num_params"], name
        idx = [k for k in sd if k.endswith("relative_position_index")]
        assert idx and all(sd[k].dtype == torch.int64 for k in idx)

        # detect reads the same architecture back from shapes alone
        fake = {k: torch.empty(v, device="meta") for k, v in layout["state_dict_shapes"].items()}
        arch, kwargs = detect(fake, f"{name}.pth")
        assert arch == "VRT"
        for k, v in cfg["kwargs"].items():
            assert kwargs[k] == v, (name, k)
        assert "clip_frames" not in kwargs  # the clip length is the protocol, not an argument


def test_presets():
    names = [e.name for e in MODELS]
    assert names == ["vrt", "vrt-reds-6f", "vrt-reds-16f", "vrt-vimeo-bi-7f", "vrt-vimeo-bd-7f"]
    for e in MODELS:
        assert e.arch == "VRT"
        with torch.device("meta"):
            model = VRT(**e.kwargs)
        assert model.spec.scale == 4 and model.spec.channels == 3 and model.spec.size_multiple == 8 and model.spec.min_size == 64
        assert model.spec.temporal.kind == "sequence"
        if e.name == "vrt":
            assert e.weights is None and e.protocol is None and model.spec.protocol.clip is None
            continue
        w = e.weights
        assert w.url == f"https://github.com/JingyunLiang/VRT/releases/download/v0.0/{w.filename}"
        assert w.filename.endswith(".pth") and w.licence == "CC BY-NC 4.0"
        assert e.protocol.clip == (40 if "reds" in e.name else 32)
        assert e.protocol.clip_overlap == 2
    by = {e.name: e for e in MODELS}
    assert by["vrt-reds-16f"].kwargs["pa_frames"] == 6 and by["vrt-vimeo-bi-7f"].kwargs["pa_frames"] == 4


def test_detect_rejects_other_families():
    assert detect({"conv_first.weight": torch.zeros(4, 3, 3, 3), "spynet.mean": torch.zeros(1, 3, 1, 1)}) is None
    assert detect({"feat_extract.main.0.weight": torch.zeros(4, 3, 3, 3)}) is None


def test_tiny_model_contract_and_sizes():
    torch.manual_seed(0)
    model = _tiny().eval()
    assert model.spec.temporal.kind == "sequence" and model.spec.protocol.clip is None
    x = torch.rand(1, 3, 3, 40, 48)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (1, 3, 3, 160, 192)
        assert model.spec.min_size == 33
        with pytest.raises(ValueError, match="SpyNet"):
            model(torch.rand(1, 2, 3, 32, 40))
        with pytest.raises(ValueError, match="frames"):
            _tiny(pa_frames=4).eval()(torch.rand(1, 2, 3, 40, 40))


def test_attention_chunking_is_exact(monkeypatch):
    torch.manual_seed(0)
    model = _tiny().eval()
    x = torch.rand(1, 3, 3, 40, 40)
    with torch.no_grad():
        ref = model(x)
        monkeypatch.setattr(vrt_mod, "ATTN_WINDOW_CHUNK", 7)
        out = model(x)
    assert_close_rel(out, ref)


def test_gradient_checkpointing_same_gradients(monkeypatch):
    torch.manual_seed(0)
    plain = _tiny(drop_path_rate=0.0)
    ckpt = _tiny(drop_path_rate=0.0, use_checkpoint_attn=True, use_checkpoint_ffn=True, no_checkpoint_ffn_blocks=[0])
    ckpt.load_state_dict(plain.state_dict())
    calls = []
    real = vrt_mod._ckpt.checkpoint
    monkeypatch.setattr(vrt_mod._ckpt, "checkpoint", lambda fn, *a, **k: calls.append(fn) or real(fn, *a, **k))
    x = torch.rand(1, 2, 3, 40, 40)
    grads = []
    for m in (plain, ckpt):
        m.train()
        m.spynet.requires_grad_(False)  # keeps the test short: no backward through the 7x7 SpyNet convs
        calls.clear()
        m(x).square().mean().backward()
        grads.append(m.stage1.residual_group1.blocks[0].attn.qkv_self.weight.grad.clone())
        n_calls = len(calls)
    # plain: only residual_group2 attention (hard-wired, as the official code); ckpt: attention and ffn everywhere
    assert n_calls > 0
    with torch.no_grad():
        calls.clear()
        ckpt(x)
        assert not calls  # no effect without gradients
    assert grads[0].abs().sum() > 0
    assert_close_rel(grads[1], grads[0], floor=0, what="grad")
