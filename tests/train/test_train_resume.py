"""A run killed with SIGKILL and resumed gives the same losses and final weights, bit for bit, as an
uninterrupted run (CPU, deterministic settings); checkpoints load with vsrkit.load_model."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file

import vsrkit
from trainutil import CONFIGS, ROOT, cli, cli_env
from golden import data_path
from vsrkit.train.config import load_config
from vsrkit.train.loop import Trainer, read_log

TOTAL = 10


def _sets(out) -> list[str]:
    return [f"output={out}", f"data.root={data_path('clips')}", "val.every=0", f"train.total_iter={TOTAL}",
            "train.save_every=2", "train.num_workers=1", "data.num_frame=3", "data.gt_size=48",
            f"scheduler.periods=[{TOTAL}]"]


def _losses(out) -> list[tuple[int, float]]:
    return [(e["iter"], e["loss"]) for e in read_log(out / "log.jsonl") if "loss" in e]


def _latest(out) -> int:
    f = out / "checkpoints" / "latest.json"
    try:
        return json.loads(f.read_text())["iteration"]
    except (OSError, ValueError):
        return 0


def test_sigkill_then_resume_is_bitwise_identical(tmp_path):
    cfg_file = CONFIGS / "tiny_rlsp_clips.yml"
    ref, run = tmp_path / "ref", tmp_path / "run"
    # the killed run: a real child process, SIGKILL once it has saved iteration 4
    # one intra-op thread in the child and here: the sums of a convolution's backward are split by thread, so
    # bitwise equality needs the same count in both processes (an earlier test may have changed this one's)
    env = dict(cli_env(), OMP_NUM_THREADS="1")
    child = subprocess.Popen(cli("train", str(cfg_file), *sum((["--set", s] for s in _sets(run)), [])), cwd=ROOT,
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while _latest(run) < 4:
        assert child.poll() is None, f"the training child ended early: {child.stderr.read().decode()[-2000:]}"
        assert time.time() < deadline, "the training child made no checkpoint in time"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stderr.close()
    killed_at = _latest(run)
    assert child.returncode == -signal.SIGKILL
    assert 4 <= killed_at < TOTAL, "the child finished before it could be killed"
    assert _losses(run)[-1][0] >= killed_at

    # the uninterrupted reference, in this process, with the child's one thread
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(load_config(cfg_file, _sets(ref))).fit(say=lambda _m: None)

        # resume (in this process, through the same entry point as --resume)
        torch.use_deterministic_algorithms(False)
        messages = []
        Trainer(load_config(cfg_file, _sets(run))).fit(resume=True, say=messages.append)
    finally:
        torch.set_num_threads(before)
    assert any(f"resumed from iteration {killed_at}" in m for m in messages)

    assert _losses(run) == _losses(ref)  # bitwise: the same floats, the killed part truncated and redone
    assert [i for i, _ in _losses(run)] == list(range(1, TOTAL + 1))
    a = load_file(str(run / "weights" / f"net_g_{TOTAL:08d}.safetensors"))
    b = load_file(str(ref / "weights" / f"net_g_{TOTAL:08d}.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # and the result loads by file alone, from its saved constructor arguments
    m = vsrkit.load_model(weights=str(run / "weights" / f"net_g_{TOTAL:08d}.safetensors"))
    assert (type(m).__name__, m.layers, m.filters, m.state_dim) == ("RLSP", 3, 16, 8)
    assert all(torch.equal(v, a[k]) for k, v in m.state_dict().items())
    m2 = vsrkit.load_model(weights=str(run / "checkpoints" / f"iter_{TOTAL:08d}.safetensors"))
    assert all(torch.equal(v, a[k]) for k, v in m2.state_dict().items())


def test_fresh_run_refuses_an_existing_run(tmp_path):
    from vsrkit.errors import VsrkitError

    cfg = load_config(CONFIGS / "tiny_rlsp_clips.yml", _sets(tmp_path) + ["train.total_iter=2", "train.num_workers=0"])
    Trainer(cfg).fit(say=lambda _m: None)
    with pytest.raises(VsrkitError, match="already holds a training run: use --resume"):
        Trainer(cfg).fit(say=lambda _m: None)
