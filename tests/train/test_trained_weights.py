"""A model trained with ``vsrkit train`` loads with ``vsrkit.load_model(weights=FILE)`` from the architecture and
constructor arguments saved in the file, with nothing recognised from the tensors: the shipped edge-SR / ESPCN /
FSRCNN recipes (a couple of iterations on real images) and RLSP. The loaded model gives the trained network's
output through the engine."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

import vsrkit
from compare import assert_close_rel
from golden import data_path
from trainutil import CONFIGS
from vsrkit.train.config import load_config
from vsrkit.train.loop import Trainer

FAST = ["esr_max_x4.yml", "esr_tm_x4.yml", "esr_tr_x4.yml", "esr_cnn_x4.yml", "espcn_x4.yml", "fsrcnn_x4.yml"]


def _no_guessing(monkeypatch):
    import vsrkit.hub.loader as loader

    def refuse(*_a, **_k):
        raise AssertionError("load_model recognised the architecture from the tensors instead of the saved arguments")

    monkeypatch.setattr(loader, "detect", refuse)


def _train(cfg_file, out, sets):
    cfg = load_config(CONFIGS / cfg_file, [f"output={out}", "train.total_iter=2", "train.save_every=2",
                                           "train.num_workers=0", "train.device=cpu", "train.progress=false",
                                           "val.every=0", *sets])
    trainer = Trainer(cfg)
    trainer.fit(say=lambda _m: None)
    return cfg, trainer


@pytest.mark.parametrize("cfg_file", FAST)
def test_trained_fast_model_loads_by_file_alone(cfg_file, tmp_path, monkeypatch):
    cfg, trainer = _train(cfg_file, tmp_path, [f"data.root={data_path('images/Set5')}", "data.gt_size=32",
                                               "train.batch_size=2", "model.init=null"])  # fsrcnn_x4: not from x3
    weights = tmp_path / "weights" / "net_g_00000002.safetensors"
    with safe_open(str(weights), framework="pt") as f:
        meta = json.loads(f.metadata()["vsrkit"])
    assert (meta["arch"], meta["kwargs"]) == (cfg.model.arch, cfg.model.kwargs)

    _no_guessing(monkeypatch)
    model = vsrkit.load_model(weights=str(weights))
    assert type(model) is type(trainer.model) and not model.training
    trained = trainer.model.state_dict()
    assert model.state_dict().keys() == trained.keys()
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())
    assert any(not torch.equal(v, Trainer(cfg).model.state_dict()[k]) for k, v in trained.items())  # it did train
    assert (model.spec.scale, model.spec.channels) == (4, 1)

    # through the engine, as vsrkit upscale runs it
    from vsrkit.infer.engine import upscale_tensor
    from vsrkit.infer.runtime import EngineConfig

    x = torch.rand(1, 1, 12, 10)
    with torch.no_grad():
        want = trainer.model.eval()(x)
    got = upscale_tensor(model, x, EngineConfig(device=torch.device("cpu")))
    assert got.shape == (1, 1, 48, 40)
    assert_close_rel(got, want, what="engine against the module")


def test_trained_rlsp_loads_by_file_alone(tmp_path, monkeypatch):
    clips = data_path("clips")
    cfg, trainer = _train("rlsp_7-48.yml", tmp_path, [
        f"data.root={clips}", "data.include=[carphone_pristine.mp4]", "data.num_frame=2", "data.gt_size=32",
        "model.kwargs.layers=2", "model.kwargs.filters=8", "model.kwargs.state_dim=4"])
    _no_guessing(monkeypatch)
    for f in ("weights/net_g_00000002.safetensors", "checkpoints/iter_00000002.safetensors"):
        model = vsrkit.load_model(weights=str(tmp_path / f))
        assert (type(model).__name__, model.layers, model.filters, model.state_dim) == ("RLSP", 2, 8, 4), f
        assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in model.state_dict().items()), f
