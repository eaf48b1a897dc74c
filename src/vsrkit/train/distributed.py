"""torchrun and torch.distributed: gloo on CPU, NCCL on GPU, DDP, and a resumable distributed sampler.

``torchrun --nproc_per_node=N -m vsrkit.cli.main train CONFIG`` (or ``vsrkit train`` under torchrun) sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; ``setup`` reads them. Every process trains on its own share of each global batch;
DDP averages the gradients, so N processes with ``batch_size`` B train like one process with batch N x B (for a
loss with ``reduction: mean``). Only rank 0 logs, validates and saves.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, Sampler

from vsrkit.errors import VsrkitError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def select_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: this process's GPU if there is one, else the CPU."""
    name = (name or "auto").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise VsrkitError("train.device cuda: no CUDA device is available here")
        return torch.device("cuda", local_rank if name == "cuda" else int(name.split(":")[1]))
    if name != "cpu":
        raise VsrkitError(f"train.device must be auto, cpu or cuda, got {name!r}")
    return torch.device("cpu")


def setup(device: str = "auto") -> DistInfo:
    """Join the process group when started by torchrun (NCCL on GPU, gloo on CPU); a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = select_device(device, local)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistInfo(rank, world, local, dev)


def teardown() -> None:
    """Leave the process group."""
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.barrier()


def sample_seed(seed: int, position: int) -> int:
    """The augmentation seed of the sample at a global stream position (independent of workers and ranks)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{position}".encode(), digest_size=8).digest(), "little")


class TrainSampler(Sampler):
    """An endless stream of ``(index, seed)`` pairs for ``TrainDataset``, sharded over ranks and resumable.

    Epoch ``e`` is ``torch.utils.data.DistributedSampler``'s shuffled order for ``set_epoch(e)`` (seeded by ``seed``);
    rank ``r`` of ``W`` takes the positions ``r, r + W, ...`` of the global stream, so the union of the ranks' ``k``-th
    batches is the ``k``-th batch of one process with ``W`` times the batch size (exactly so when the dataset size is
    a multiple of ``W``). ``start`` is the global position to begin at: ``iteration * batch_size * W`` on resume.
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1, start: int = 0) -> None:
        if size < 1:
            raise ValueError("empty dataset")
        self.size, self.seed, self.rank, self.world = size, seed, rank, world_size
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        W, r = self.world, self.rank
        per_epoch = -(-self.size // W)  # DistributedSampler's num_samples (drop_last False)
        local = self.start // W + (1 if self.start % W > r else 0)
        while True:
            epoch, k = divmod(local, per_epoch)
            sampler = DistributedSampler(range(self.size), num_replicas=W, rank=r, shuffle=True, seed=self.seed)
            sampler.set_epoch(epoch)
            order = list(sampler)
            for i in range(k, per_epoch):
                position = (epoch * per_epoch + i) * W + r
                yield order[i], sample_seed(self.seed, position)
            local = (epoch + 1) * per_epoch
