"""Two CPU processes (gloo, DDP) train like one process with the same global batch; both ranks hold the same
weights. The tiny BasicVSR recipe crosses the fix_flow boundary, so DDP is rebuilt when SpyNet starts training.
With two CUDA GPUs the same run goes through NCCL (skipped, with the reason, elsewhere)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from compare import assert_close_rel
from golden import data_path
from trainutil import CONFIGS

ITERS = 3
# a loss is a mean over the batch's pixels: its summation order (here all-reduced from two halves) moves it by a
# few eps, and the models' float32 differences (see compare.py) average out in it
LOSS_RTOL = 1e-5


def _sets(out, batch: int, clips) -> list[str]:
    return [f"output={out}", f"data.root={clips}", f"train.total_iter={ITERS}", f"train.batch_size={batch}",
            "train.save_every=100", f"scheduler.periods=[{ITERS}]"]


def _worker(rank: int, world: int, port: int, out: str, clips: str, device: str = "cpu") -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from vsrkit.train.config import load_config
    from vsrkit.train.distributed import setup, teardown
    from vsrkit.train.loop import Trainer

    cfg = load_config(CONFIGS / "tiny_basicvsr_clips.yml", _sets(out, 1, clips) + [f"train.device={device}"])
    info = setup(device)
    assert info.world_size == world
    assert torch.distributed.get_backend() == ("nccl" if device == "cuda" else "gloo")
    try:
        trainer = Trainer(cfg, info)
        trainer.fit(say=lambda _m: None)
        save_file({k: v.contiguous() for k, v in trainer.model.state_dict().items()}, f"{out}/rank{rank}.safetensors")
    finally:
        teardown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_with_the_global_batch(tmp_path):
    clips = data_path("clips")
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), str(clips)), nprocs=2, join=True)
    r0, r1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert all(torch.equal(r0[k], r1[k]) for k in r0), "the ranks hold different weights"

    from vsrkit.train.config import load_config
    from vsrkit.train.loop import Trainer, read_log

    one = tmp_path / "one"
    cfg = load_config(CONFIGS / "tiny_basicvsr_clips.yml", _sets(one, 2, clips))
    trainer = Trainer(cfg)
    trainer.fit(say=lambda _m: None)
    init = Trainer(cfg).model.state_dict()
    sd = trainer.model.state_dict()
    # float tolerance: the gradients agree to float32 rounding (the all-reduce sums in another order), which Adam's
    # first steps (about +-lr whatever a gradient's size) amplify for gradients near its eps; lr is 2e-4 here
    moved, big, total = 0, 0, 0
    for k, v in sd.items():
        diff = (r0[k] - v).abs()
        assert diff.max().item() <= 5e-5, f"{k}: 2 processes x batch 1 differ from 1 process x batch 2 by {diff.max():.3g}"
        big += int((diff > 1e-6).sum())
        total += v.numel()
        moved += int(not torch.equal(v, init[k]))
    assert big <= 1e-3 * total, f"{big} of {total} weights differ by more than 1e-6"
    assert moved > 50  # the comparison is of trained weights, SpyNet included
    # rank 0 logged the averaged loss; the effective batch is reported
    two = [e["loss"] for e in read_log(tmp_path / "log.jsonl") if "loss" in e]
    ref = [e["loss"] for e in read_log(one / "log.jsonl") if "loss" in e]
    assert len(two) == ITERS
    assert_close_rel(two, ref, LOSS_RTOL, floor=0, what="losses of 2 processes against 1")
    # only rank 0 logs and saves: one TensorBoard event file, one log entry per iteration, one checkpoint
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 1
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["iter_00000003.safetensors", "latest.json"]


@pytest.mark.skipif(torch.cuda.device_count() < 2,
                    reason=f"the NCCL backend needs 2 CUDA GPUs (found {torch.cuda.device_count()}); gloo on CPU is "
                           "tested above")
def test_two_gpus_train_through_nccl(tmp_path):
    clips = data_path("clips")
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), str(clips), "cuda"), nprocs=2, join=True)
    r0, r1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert all(torch.equal(r0[k], r1[k]) for k in r0), "the ranks hold different weights"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["iter_00000003.safetensors", "latest.json"]
