"""Configs: YAML validated into dataclasses, one-line errors naming the key, --set overrides; every shipped recipe
loads and builds its network (on the meta device)."""

from __future__ import annotations

import pytest
import torch

from trainutil import CONFIGS
from vsrkit.errors import VsrkitError
from vsrkit.train.config import from_dict, load_config, read_yaml

TINY = CONFIGS / "tiny_rlsp_clips.yml"


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("path", sorted(p.name for p in CONFIGS.glob("*.yml")))
def test_every_shipped_config_loads_and_builds(path):
    from vsrkit.hub.loader import build
    from vsrkit.models.registry import family_of_arch as find_family

    cfg = load_config(CONFIGS / path)
    with torch.device("meta"):
        model = build(find_family(cfg.model.arch), cfg.model.arch, {k: v for k, v in cfg.model.kwargs.items()
                                                                    if not k.endswith("_path")})
    assert model.spec.scale == cfg.data.scale


def test_unknown_key_names_it(tmp_path):
    with pytest.raises(VsrkitError) as e:
        load_config(TINY, ["train.bacth_size=2"])
    assert "unknown key train.bacth_size" in _one_line(e) and str(TINY) in str(e.value)
    with pytest.raises(VsrkitError, match="unknown key colour"):
        load_config(TINY, ["colour=red"])


def test_missing_key_names_it(tmp_path):
    f = tmp_path / "c.yml"
    f.write_text("name: x\noutput: y\nmodel: {arch: RLSP}\ntrain: {batch_size: 2}\noptim: {lr: 1.0e-4}\n")
    with pytest.raises(VsrkitError) as e:
        load_config(f)
    assert "missing key train.total_iter" in _one_line(e)
    f.write_text("name: x\noutput: y\ntrain: {total_iter: 1, batch_size: 2}\noptim: {lr: 1.0e-4}\n")
    with pytest.raises(VsrkitError, match="missing key model"):
        load_config(f)


def test_bad_values_and_files(tmp_path):
    with pytest.raises(VsrkitError, match="train.batch_size must be an integer, got 'two'"):
        load_config(TINY, ["train.batch_size=two"])
    with pytest.raises(VsrkitError, match="loss.type must be one of charbonnier, l1, mse"):
        load_config(TINY, ["loss.type=ssim"])
    with pytest.raises(VsrkitError, match="data.gt_size 66 must be a multiple of scale 4"):
        load_config(TINY, ["data.gt_size=66"])
    with pytest.raises(VsrkitError, match="--set train.batch_size: expected key=value|expected key=value"):
        load_config(TINY, ["train.batch_size"])
    with pytest.raises(VsrkitError, match="config not found"):
        load_config(tmp_path / "nope.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(VsrkitError) as e:
        load_config(bad)
    assert "not valid YAML" in _one_line(e) and "line" in str(e.value)


def test_overrides():
    cfg = load_config(TINY, ["optim.lr=1e-4", "train.batch_size=3", "data.include=[a.mp4]", "model.kwargs.filters=8"])
    assert cfg.optim.lr == 1e-4 and cfg.train.batch_size == 3 and cfg.data.include == ["a.mp4"]
    assert cfg.model.kwargs["filters"] == 8 and cfg.model.kwargs["layers"] == 3


@pytest.mark.parametrize("path", sorted(p.name for p in CONFIGS.glob("*.yml")))
def test_family_training_defaults_leave_every_shipped_config_as_it_is(path):
    raw = read_yaml(CONFIGS / path)
    assert load_config(CONFIGS / path) == from_dict(raw, family_training=False)


def test_family_training_defaults_fill_what_a_config_leaves_out(tmp_path):
    f = tmp_path / "c.yml"
    base = "name: x\noutput: y\ntrain: {total_iter: 1, batch_size: 1}\n"
    f.write_text(base + "model: {arch: IconVSR}\noptim: {lr: 1.0e-4}\nfreeze: {until: 5}\n")
    cfg = load_config(f)
    assert cfg.optim.lr_mul == {"spynet": 0.125}  # BasicSR's flow_lr_mul, from the basicvsr family
    assert cfg.freeze.keys == ["spynet", "edvr"] and cfg.freeze.until == 5
    # the config wins, key by key and whole: an empty lr_mul stays empty, its own freeze keys stay
    f.write_text(base + "model: {arch: BasicVSR}\noptim: {lr: 1.0e-4, lr_mul: {}}\nfreeze: {keys: [spynet]}\n")
    cfg = load_config(f)
    assert cfg.optim.lr_mul == {} and cfg.freeze.keys == ["spynet"]
    cfg = load_config(f, ["optim.lr_mul={deform: 0.5}", "model.arch=VRT"])
    assert cfg.optim.lr_mul == {"deform": 0.5} and cfg.freeze.keys == ["spynet"]
    f.write_text(base + "model: {arch: VRT}\noptim: {lr: 1.0e-4}\n")
    cfg = load_config(f)
    assert cfg.optim.lr_mul == {"spynet": 0.125, "deform": 0.125} and cfg.freeze.keys == ["spynet", "deform"]
    # a family without training defaults: the dataclass defaults
    f.write_text(base + "model: {arch: RLSP}\noptim: {lr: 1.0e-4}\n")
    cfg = load_config(f)
    assert cfg.optim.lr_mul == {} and cfg.freeze.keys == []
