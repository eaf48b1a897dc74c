"""Two-pass streaming of long videos: input re-read from its source (never spooled as float32), bounded backward
states recomputed exactly, the temporary disk stated and checked, resuming, and a progress bar that tells the
truth over both passes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from compare import assert_close_rel
from vsrkit.errors import VsrkitError
from vsrkit.infer import make_config, upscale_tensor
from vsrkit.infer import twopass
from vsrkit.infer.engine import Hooks, Phase, upscale_stream
from vsrkit.models.spec import Block, ModelSpec, Temporal, TwoPass
from vsrkit.progress import ProgressBar


class Clock:
    """A fake clock the toy model advances: backward 1 s per frame, forward 1.5 s per frame."""

    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class LongMemoryNet(nn.Module):
    """A bidirectional recurrence that remembers far back and far ahead (decay 0.97), local in space."""

    def __init__(self, clock: Clock | None = None):
        super().__init__()
        self.clock = clock
        self.calls = {"backward": 0, "forward": 0}
        self.spec = ModelSpec(scale=2, temporal=Temporal("bidirectional"),
                              passes=TwoPass(LongMemoryNet.backward_pass, LongMemoryNet.forward_pass, forward_cost=1.5))

    def backward_pass(self, x, state, block: Block):
        o, n = block.offset, block.size
        seg = x[:, o : o + n + int(block.has_next)]
        feat = state if state is not None else torch.zeros_like(seg[:, 0])
        feats = [None] * n
        for i in range(n - 1, -1, -1):
            if i < seg.shape[1] - 1:
                feat = 0.97 * feat + 0.03 * seg[:, i + 1].roll(1, -1)
            feat = feat + seg[:, i]
            feats[i] = feat
        self.calls["backward"] += n
        if self.clock is not None:
            self.clock.t += n
        return torch.stack(feats, 1), feat

    def forward_pass(self, x, feats, state, block: Block):
        o, n = block.offset, block.size
        off = int(block.has_prev)
        seg = x[:, o - off : o + n]
        feat = state if state is not None else torch.zeros_like(seg[:, 0])
        outs = []
        for i in range(n):
            k = i + off
            if k > 0:
                feat = 0.97 * feat + 0.02 * seg[:, k - 1].roll(1, -2)
            feat = feat + seg[:, k]
            outs.append(F.interpolate(0.01 * feat + 0.005 * feats[:, i] + 0.5 * seg[:, k], scale_factor=2))
        self.calls["forward"] += n
        if self.clock is not None:
            self.clock.t += 1.5 * n
        return torch.stack(outs, 1), feat

    def forward(self, x):
        whole = Block(0, x.shape[1], x.shape[1])
        return self.forward_pass(x, self.backward_pass(x, None, whole)[0], None, whole)[0]


def images(T=37, h=12, w=16, seed=0) -> list[np.ndarray]:
    g = np.random.default_rng(seed)
    return [g.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(T)]


def as_tensor(imgs) -> torch.Tensor:
    return torch.stack([torch.from_numpy(a).permute(2, 0, 1).float() / 255 for a in imgs])


def reopen_of(imgs, key_every=5, log: list | None = None):
    """A source that can be read again from a 'keyframe' at or before the asked frame."""

    def reopen(i):
        k = i // key_every * key_every
        if log is not None:
            log.append((i, k))
        for j in range(k, len(imgs)):
            yield j, j * 10, imgs[j]

    return reopen


def run_stream(net, imgs, chunk, budget=None, reopen=True, workdir=None, **hooks):
    h = Hooks(reopen=reopen_of(imgs) if reopen is True else reopen or None, disk_budget=budget, workdir=workdir, **hooks)
    return list(upscale_stream(net, ((i * 10, a) for i, a in enumerate(imgs)), make_config("cpu", chunk=chunk), hooks=h))


# ------------------------------------------------------------------------------------------------- plan
def test_plan_keeps_states_within_the_budget_and_says_its_cost():
    one = twopass.make_plan(90_000, 24, state_bytes=33 * 2**20, budget=1e15)
    assert one.every == 1 and one.blocks == 3750 and one.backward_runs < 2.0
    assert one.disk > 100 * 2**30  # an hour of 480x270 with a state per block: the >100 GB of the issue
    small = twopass.make_plan(90_000, 24, state_bytes=33 * 2**20, budget=4 * 2**30)
    assert small.every > 1 and small.disk <= 4 * 2**30
    assert small.groups * small.every >= small.blocks and 2.9 < small.backward_runs <= 3.0
    assert twopass.make_plan(10, 24, 100, budget=1).every == 1  # one block: nothing to keep


def test_state_bytes_are_measured_per_tile():
    net = LongMemoryNet()
    from vsrkit.infer.tiling import Runner

    whole = twopass.state_bytes(net, net.spec, Runner(net, net.spec, make_config("cpu")), 270, 480)
    assert abs(whole - 3 * 4 * 270 * 480) < 10_000  # the toy's state: 3 float32 channels per pixel
    tiled = twopass.state_bytes(net, net.spec, Runner(net, net.spec, make_config("cpu", tile=128, tile_overlap=16)), 270, 480)
    assert tiled > whole  # overlapping tiles each keep their state


# ------------------------------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("chunk,budget", [(4, None), (3, 3.5), (5, 1.0), (1, 2.5)])
def test_bounded_states_and_rereading_stay_exact(chunk, budget):
    """Budgets in states (x the state size) force a state every few blocks; the output stays the whole-video one."""
    imgs = images()
    net = LongMemoryNet()
    want = run_stream(net, imgs, chunk=100, reopen=False)
    sb = twopass.state_bytes(net, net.spec, __import__("vsrkit.infer.tiling", fromlist=["Runner"]).Runner(net, net.spec, make_config("cpu")), 12, 16)
    got = run_stream(net, imgs, chunk=chunk, budget=None if budget is None else budget * 4 * sb)
    assert [p for p, _ in got] == [p for p, _ in want] == [i * 10 for i in range(37)]
    for (_, a), (_, b) in zip(got, want):
        assert np.array_equal(a, b)
    with torch.inference_mode():
        whole = net(as_tensor(imgs)[None])[0]
    assert_close_rel(upscale_tensor(net, as_tensor(imgs), make_config("cpu", chunk=chunk)), whole)


def test_the_input_is_reread_not_spooled_and_the_disk_stays_in_the_plan(tmp_path):
    imgs = images(T=40)
    net = LongMemoryNet()
    seen: list[tuple[int, int]] = []
    peak = {"bytes": 0, "files": set()}

    def watch(phases, index, done):
        files = [p for p in (tmp_path / "twopass").rglob("*") if p.is_file()]
        peak["bytes"] = max(peak["bytes"], sum(p.stat().st_size for p in files))
        peak["files"].update(p.suffix for p in files)

    from vsrkit.infer.tiling import Runner

    sb = twopass.state_bytes(net, net.spec, Runner(net, net.spec, make_config("cpu")), 12, 16)
    got = run_stream(net, imgs, chunk=2, budget=8 * sb, reopen=reopen_of(imgs, log=seen), workdir=tmp_path, on_progress=watch)
    plan = twopass.make_plan(40, 2, sb, 0, 8 * sb)
    assert plan.every > 1
    assert len(got) == 40 and seen  # blocks were read again from the source
    assert not (tmp_path / "twopass" / "spool").exists() and peak["files"] <= {".pt", ".json", ".tmp"}
    assert 0 < peak["bytes"] <= plan.disk


def test_a_source_that_rereads_other_pictures_is_spooled_and_stays_exact(tmp_path, caplog):
    imgs = images(T=20)
    net = LongMemoryNet()
    want = run_stream(net, imgs, chunk=100, reopen=False)
    calls = {"n": 0}

    def liar(i):  # seeking lands on wrong pictures once; reading from the start is right
        calls["n"] += 1
        for j in range(i // 4 * 4, len(imgs)):
            yield j, j * 10, (imgs[j] ^ 1) if (i and calls["n"] == 1) else imgs[j]

    with caplog.at_level(logging.WARNING, logger="vsrkit.infer"):
        got = run_stream(net, imgs, chunk=3, reopen=liar, workdir=tmp_path)
    assert "spooling" in caplog.text
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, want))
    spool = list((tmp_path / "twopass" / "spool").iterdir())
    assert spool and sum(p.stat().st_size for p in spool) < 1.5 * sum(a.nbytes for a in imgs)  # uint8 (float32: 4x)


def test_a_changed_input_is_a_clear_error(tmp_path):
    imgs = images(T=12)

    def changed(i):
        for j in range(0, len(imgs)):
            yield j, j * 10, imgs[j] ^ 255

    with pytest.raises(VsrkitError, match="changed"):
        run_stream(LongMemoryNet(), imgs, chunk=3, reopen=changed, workdir=tmp_path)


def test_too_little_free_disk_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(twopass, "free_bytes", lambda folder: 1000)
    with pytest.raises(VsrkitError, match=r"needs about .* GiB of temporary disk .* free"):
        run_stream(LongMemoryNet(), images(T=10), chunk=2, workdir=tmp_path)


# ------------------------------------------------------------------------------------------------- resuming
@pytest.mark.parametrize("budget", [None, 2.5])
def test_resume_from_a_saved_forward_state_is_exact(tmp_path, budget):
    imgs = images(T=30)
    net = LongMemoryNet()
    from vsrkit.infer.tiling import Runner

    sb = twopass.state_bytes(net, net.spec, Runner(net, net.spec, make_config("cpu")), 12, 16)
    saved = {}
    want = run_stream(net, imgs, chunk=3, budget=None if budget is None else budget * 4 * sb, workdir=tmp_path,
                      on_state=lambda t, s: saved.__setitem__(t, s), state_every=6)
    assert sorted(saved) == [6, 12, 18, 24]
    backward_before = net.calls["backward"]
    got = run_stream(net, imgs, chunk=3, budget=None if budget is None else budget * 4 * sb, workdir=tmp_path,
                     start=18, state=saved[18])
    assert [p for p, _ in got] == [p for p, _ in want[18:]]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, want[18:]))
    # pass 1 was kept in the work folder: the resumed run only recomputes what pass 2 needs from frame 18 on
    assert net.calls["backward"] - backward_before <= 2 * 12 + 6


# ------------------------------------------------------------------------------------------------- progress
def test_progress_covers_both_passes_with_a_true_eta():
    clock = Clock()
    net = LongMemoryNet(clock)
    bar = ProgressBar("toy", 40, enabled=False, clock=clock)
    seen = []

    def watch(phases, index, done):
        bar.phases(phases, index, done)
        seen.append((phases[index].name, done, bar.fraction, bar.eta, clock.t))

    run_stream(net, images(T=40), chunk=4, on_progress=watch)
    end = clock.t
    backward = [s for s in seen if s[0] == "backward" and s[1] > 0]
    assert backward and all(f > 0 for _, _, f, _, _ in backward)  # the bar moves during the backward pass
    for name, done, fraction, eta, t in seen:
        if eta is not None and t > 0:
            assert abs(eta - (end - t)) <= 0.1 * end, (name, done, eta, end - t)
    assert seen[-1][2] == 1.0


def test_the_command_line_bar_moves_during_the_backward_pass(tmp_path):
    """Failure 8: the bar sat at 0% through the backward pass. It now says which pass and how far."""
    from click.testing import CliRunner
    from media import make_clip
    from vsrkit.cli.main import main

    from vsrkit.models.basicvsr import BasicVSR

    torch.manual_seed(0)
    weights = tmp_path / "small.pth"
    torch.save({"params": BasicVSR(num_feat=8, num_block=1).state_dict()}, weights)
    src = make_clip(tmp_path / "in.mp4", n=12, w=64, h=48)
    r = CliRunner().invoke(main, ["upscale", str(src), "-o", str(tmp_path / "o.mp4"), "-w", str(weights),
                                  "--chunk", "4", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    shown = r.output.replace("\r", "\n")
    assert "pass 1/2 backward" in shown and "pass 2/2 forward" in shown
    backward = [line for line in shown.splitlines() if "backward" in line and "ETA" in line]
    assert any(not line.strip().split(":")[1].strip().startswith("0%") for line in backward), backward


# ------------------------------------------------------------------------------------------------- IconVSR, real clip
def test_iconvsr_streams_a_real_clip_exactly_with_bounded_states():
    """IconVSR (keyframes from the video's length, a state that remembers far back) in blocks of 2 with a state
    kept every other block, input re-read: identical to one whole-video run of the model on real frames. Seven
    frames with a keyframe every 4: keyframes 0, 4 and 6, the last one there because the video ends there."""
    from golden import data_path

    from vsrkit.infer.tiling import Runner
    from vsrkit.io import VideoReader
    from vsrkit.models.basicvsr import IconVSR

    clip = data_path("clips", "carphone_pristine.mp4")
    with VideoReader(clip) as r:
        imgs = [np.ascontiguousarray(f.image[40:76, 56:96]) for _, f in zip(range(7), r)]
    torch.manual_seed(0)
    net = IconVSR(num_feat=8, num_block=1, keyframe_stride=4, temporal_padding=2).eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: one thread costs a tenth of the CPU time of two on a busy machine
    try:
        sb = twopass.state_bytes(net, net.spec, Runner(net, net.spec, make_config("cpu")), 36, 40)
        plan = twopass.make_plan(7, 2, sb, 0, 2.5 * sb)
        assert plan.every == 2 and plan.keep == 0  # states recomputed between the kept ones
        want = run_stream(net, imgs, chunk=100, reopen=False)  # one block
        got = run_stream(net, imgs, chunk=2, budget=2.5 * sb)
        with torch.inference_mode():
            whole = net(as_tensor(imgs)[None])[0].clamp(0, 1)  # the network's own forward over the whole video
    finally:
        torch.set_num_threads(threads)
    assert [p for p, _ in got] == [i * 10 for i in range(7)]
    for (_, a), (_, b) in zip(got, want):
        assert np.array_equal(a, b)
    got_t = torch.stack([torch.from_numpy(a).permute(2, 0, 1).float() / 255 for _, a in got])
    assert got_t.shape == whole.shape
    assert (got_t - whole).abs().max() <= 0.5 / 255 + 1e-4  # rounding to 8 bits, and the usual 1e-4


# ------------------------------------------------------------------------------------------------- backward runs
class CountingNet(LongMemoryNet):
    """LongMemoryNet that counts, per video frame, the backward branch's runs (not the planner's probe)."""

    def __init__(self, frames: int):
        super().__init__()
        self.per_frame = [0] * frames
        self.spec = ModelSpec(scale=2, temporal=Temporal("bidirectional"),
                              passes=TwoPass(CountingNet.backward_pass, LongMemoryNet.forward_pass, forward_cost=1.5))

    def backward_pass(self, x, state, block: Block):
        if block.total == len(self.per_frame):
            for t in range(block.start, block.stop):
                self.per_frame[t] += 1
        return super().backward_pass(x, state, block)


def plan_of(net, T, chunk, budget):
    from vsrkit.infer.tiling import Runner

    sb, fb = twopass.sizes(net, net.spec, Runner(net, net.spec, make_config("cpu")), 12, 16)
    return twopass.make_plan(T, chunk, sb, 0, budget, feature_bytes=fb * chunk + 4096), sb, fb


@pytest.mark.parametrize("T,chunk", [(7, 8), (37, 4)])
def test_a_video_whose_features_fit_runs_the_backward_branch_once_per_frame(T, chunk):
    """One block, or a short video within the default budget: pass 1's backward features are used, not recomputed."""
    imgs = images(T=T)
    want = run_stream(LongMemoryNet(), imgs, chunk=100, reopen=False)
    net = CountingNet(T)
    got = run_stream(net, imgs, chunk=chunk)
    assert net.per_frame == [1] * T
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, want)) and len(got) == T
    net = CountingNet(T)  # frames in memory (upscale_tensor) alike
    upscale_tensor(net, as_tensor(imgs), make_config("cpu", chunk=chunk))
    assert net.per_frame == [1] * T


@pytest.mark.parametrize("states,keep", [(10.5, 0), (10, 3), (7, 0)])
def test_under_a_small_budget_the_backward_branch_runs_as_planned_and_stays_exact(states, keep):
    """37 frames in 10 blocks of 4, a budget of ``states`` states (+ ``keep`` blocks of features): a state per
    block, the features of the first blocks kept, or a state every few blocks. The counted runs are the plan's."""
    T, chunk = 37, 4
    imgs = images(T=T)
    want = run_stream(LongMemoryNet(), imgs, chunk=100, reopen=False)
    net = CountingNet(T)
    _, sb, fb = plan_of(net, T, chunk, None)
    budget = states * sb + keep * (fb * chunk + 4096 - sb)
    plan, _, _ = plan_of(net, T, chunk, budget)
    assert plan.keep == keep and (plan.every > 1) == (states < 10) and plan.disk <= budget
    got = run_stream(net, imgs, chunk=chunk, budget=budget)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, want)) and len(got) == T
    assert sum(net.per_frame) == round(plan.backward_runs * T)
    assert net.per_frame[: keep * chunk] == [1] * (keep * chunk)  # kept blocks: once
    if plan.every == 1:  # pass 1 and pass 2 (the first block only in pass 2, or kept)
        assert net.per_frame[max(keep, 1) * chunk :] == [2] * (T - max(keep, 1) * chunk)
    assert 1 < plan.backward_runs < (2 if plan.every == 1 else 3)


def test_the_bar_counts_a_phase_with_nothing_to_do_as_zero_frames():
    """A short video keeps every backward feature in pass 1's place: the bar says 0/0, not an unknown total."""
    bar = ProgressBar("clip", 20, enabled=False)
    phases = [Phase("reading", None, 0.0), Phase("backward", 0, 1.0), Phase("forward", 20, 2.0)]
    bar.phases(phases, 1, 0)
    assert "backward 0/0 frames" in bar._bar.postfix
    bar.phases(phases, 0, 5)
    assert "reading 5/20 frames" in bar._bar.postfix
    bar.close()
