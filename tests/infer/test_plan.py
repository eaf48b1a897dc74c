"""One run plan: precision, tile and the two-pass disk plan are decided once (``infer.plan.plan_run``); the
engine runs the plan it is given; the Python API and the command line share their defaults."""

from __future__ import annotations

import inspect
import sys

import click
import numpy as np
import pytest
import torch

import vsrkit
from vsrkit.infer import make_config, memory, plan, runtime, twopass
from vsrkit.infer.engine import Hooks, upscale_stream
from vsrkit.models.basicvsr import BasicVSR

from media import make_clip, run


def spy(monkeypatch, module, name: str) -> list[tuple]:
    """Count the calls of ``module.name`` wherever a vsrkit module holds it (``from x import f`` copies too)."""
    real = getattr(module, name)
    calls: list[tuple] = []

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("vsrkit") and getattr(mod, name, None) is real:
            monkeypatch.setattr(mod, name, counted)
    return calls


@pytest.fixture
def decisions(monkeypatch) -> dict[str, list]:
    """Every deciding function, counted: the precision resolver, the tile planner, the two-pass planner (and its
    probe of the state sizes, its arithmetic, the free-space check) and ``plan_run`` itself."""
    return {
        "resolve_precision": spy(monkeypatch, runtime, "resolve_precision"),
        "plan_tile": spy(monkeypatch, memory, "plan_tile"),
        "plan_for": spy(monkeypatch, twopass, "plan_for"),
        "sizes": spy(monkeypatch, twopass, "sizes"),
        "make_plan": spy(monkeypatch, twopass, "make_plan"),
        "check_space": spy(monkeypatch, twopass, "check_space"),
        "plan_run": spy(monkeypatch, plan, "plan_run"),
    }


@pytest.fixture
def basicvsr_weights(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "basicvsr.pth"
    torch.save({"params": BasicVSR(num_feat=8, num_block=1).state_dict()}, path)
    return path


def test_one_upscale_decides_precision_tile_and_disk_once(tmp_path, decisions, basicvsr_weights):
    """A two-pass model with a memory budget: every decision is made once, before the engine starts, and said once."""
    src = make_clip(tmp_path / "in.mp4", n=9, w=64, h=48)
    said: list[str] = []
    vsrkit.upscale(str(src), str(tmp_path / "out"), weights=str(basicvsr_weights), device="cpu", chunk=3,
                   max_memory=8, progress=False, say=said.append)
    assert len(list((tmp_path / "out").glob("*.png"))) == 9
    counts = {k: len(v) for k, v in decisions.items()}
    assert counts == {k: 1 for k in decisions}, counts
    assert sum(s.startswith("plan: ") for s in said) == 1, said
    assert sum(s.startswith("two-pass streaming: 3 blocks of 3 frames") for s in said) == 1, said
    assert sum(s.startswith("precision auto: fp32") for s in said) == 1, said


def test_the_engine_runs_the_plan_it_is_given(decisions):
    """Given a RunPlan the engine decides nothing; given a bare config it plans once, and the two agree."""
    torch.manual_seed(0)
    net = BasicVSR(num_feat=8, num_block=1).eval()
    g = np.random.default_rng(0)
    imgs = [g.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(7)]
    cfg = make_config("cpu", precision="auto", chunk=3)

    p = plan.plan_run(net, cfg, 32, 32, len(imgs))
    assert p.precision == "fp32" and not p.config.auto_precision and p.disk is not None and p.disk.frames == 7
    for v in decisions.values():
        v.clear()
    def reopen(i):  # the input can be read again (as a file can): nothing is spooled, as planned
        yield from ((j, j, imgs[j]) for j in range(i, len(imgs)))

    planned = list(upscale_stream(net, ((i, a) for i, a in enumerate(imgs)), p, hooks=Hooks(reopen=reopen)))
    assert {k: len(v) for k, v in decisions.items()} == {k: 0 for k in decisions}

    bare = list(upscale_stream(net, ((i, a) for i, a in enumerate(imgs)), cfg))
    counts = {k: len(v) for k, v in decisions.items()}
    # the engine plans once (precision), then the disk once pass 0 has counted the frames
    assert counts == {"resolve_precision": 1, "plan_tile": 0, "plan_for": 0, "sizes": 1, "make_plan": 1,
                      "check_space": 1, "plan_run": 1}, counts
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(planned, bare)) and len(planned) == len(bare) == 7


def test_a_wrong_frame_count_replans_the_disk_from_the_measured_sizes(decisions):
    """The container's count was wrong: the disk plan is made again for the counted frames, without a new probe."""
    torch.manual_seed(0)
    net = BasicVSR(num_feat=8, num_block=1).eval()
    g = np.random.default_rng(1)
    imgs = [g.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(7)]
    p = plan.plan_run(net, make_config("cpu", chunk=3), 32, 32, 30)  # the planner was told 30 frames
    for v in decisions.values():
        v.clear()
    hooks = Hooks(reopen=lambda i: ((j, j, imgs[j]) for j in range(i, len(imgs))))
    got = list(upscale_stream(net, ((i, a) for i, a in enumerate(imgs)), p, hooks=hooks))
    assert len(got) == 7
    assert (len(decisions["sizes"]), len(decisions["make_plan"]), len(decisions["check_space"])) == (0, 1, 1)
    assert decisions["make_plan"][0][:3] == (7, 3, p.disk.state_bytes)


def test_a_fixed_size_export_and_a_memory_budget_set_the_tile_in_the_plan():
    net = BasicVSR(num_feat=8, num_block=1).eval()
    cfg = make_config("cpu")
    assert plan.plan_run(net, cfg, 100, 120, 5, tile_limit=40).config.tile == 40
    fixed = plan.plan_run(net, cfg, 100, 120, 5, tile_limit=40).config
    assert fixed.tile_overlap == min(cfg.tile_overlap, 19)
    assert plan.plan_run(net, make_config("cpu", tile=32, tile_overlap=8), 100, 120, 5, tile_limit=40).config.tile == 32
    whole = plan.plan_run(net, cfg, 100, 120, 5, max_memory=64 * 2**30)
    assert whole.tile == 0 and whole.memory_budget == 64 * 2**30 and "whole frames" in whole.notes[-1]
    given = plan.plan_run(net, make_config("cpu", tile=64), 100, 120, 5)
    assert given.tile == 64 and given.memory_budget is None


def test_api_and_cli_defaults_agree(tmp_path):
    """Every option of `vsrkit upscale` that is also an argument of ``vsrkit.upscale`` has the same default, and
    a run with the defaults makes the same plan (precision auto, said) both ways."""
    from vsrkit.cli.upscale import upscale as command
    from vsrkit.pipeline import upscale_file

    api = inspect.signature(upscale_file).parameters
    ctx = click.Context(command)
    renamed = {"compile_": "compile"}
    shared = 0
    for param in command.params:
        name = renamed.get(param.name, param.name)
        if param.param_type_name == "option" and not param.required and name in api:
            shared += 1
            default = param.get_default(ctx)
            assert default == api[name].default, (param.name, default, api[name].default)
    assert shared >= 15
    layout = next(p for p in command.params if p.name == "layout").get_default(ctx)
    assert api["channels_last"].default == (layout == "channels-last")
    assert api["precision"].default == "auto"

    src = make_clip(tmp_path / "in.mp4", n=2)
    said: list[str] = []
    vsrkit.upscale(str(src), str(tmp_path / "api.mp4"), model="bicubic-x4", progress=False, say=said.append)
    code, text = run("upscale", src, "-o", tmp_path / "cli.mp4", "--model", "bicubic-x4", "-q")
    assert code == 0, text
    cli = [line.removeprefix("vsrkit: ") for line in text.splitlines()]
    api_plan = [s for s in said if s.startswith(("plan: ", "precision auto: "))]
    assert len(api_plan) == 2 and api_plan == [s for s in cli if s.startswith(("plan: ", "precision auto: "))]
