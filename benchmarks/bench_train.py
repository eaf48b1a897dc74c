"""Training throughput of vsrkit's trainer: iterations/s and samples/s for BasicVSR and RLSP at their paper crop
sizes (64x64 LR, 256x256 HR; BasicVSR 15 frames, RLSP 10 frames), fp32 and bf16 (+ channels-last), on synthetic
batches (the training step only: forward, loss, backward, Adam, EMA; no data loading).

    nice -n 10 python benchmarks/bench_train.py            # both models, fp32 and bf16, batch 1, 1 warm-up + 2 timed
    python benchmarks/bench_train.py --models rlsp --batch 4 --iters 5
    python benchmarks/bench_train.py --modes fp32 fp32-cl bf16 bf16-cl   # channels-last too
    python benchmarks/bench_train.py --device cuda         # on a GPU (fp16 too)

BasicVSR is the released size (64 features, 30 blocks; configs/train/basicvsr_reds.yml: 15 frames, 256 GT crops);
RLSP 7-128 (configs/train/rlsp_7-128.yml: 10 frames, 256 GT crops). The paper batches are 4 per GPU (BasicVSR,
8 GPUs) and 1 (RLSP's official code). The default here is batch 1 so that a loaded 2-core CPU finishes in minutes;
samples/s at batch 1 is the per-sample figure (a larger batch amortises little on a CPU). The load average is printed
before and after: the wall-clock figures are only comparable at similar load; cpu-s/it (this process's CPU seconds per
iteration, all threads) depends much less on what else runs.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from vsrkit.train.config import from_dict
from vsrkit.train.loop import Trainer

MODELS = {
    "basicvsr": ({"arch": "BasicVSR", "kwargs": {"num_feat": 64, "num_block": 30}}, 15,
                 {"lr_mul": {"spynet": 0.125}}, {"type": "charbonnier", "eps": 1e-12}),
    "rlsp": ({"arch": "RLSP", "kwargs": {"layers": 7, "filters": 128, "state_dim": 128}}, 10, {}, {"type": "mse"}),
}


def bench(name: str, precision: str, channels_last: bool, batch: int, frames: int | None, iters: int, warmup: int,
          device: str) -> tuple[float, float, float]:
    model, n, optim, loss = MODELS[name]
    n = frames or n
    cfg = from_dict({"name": "bench", "output": "/tmp/vsrkit-bench-train", "model": model,
                     "train": {"total_iter": 10**9, "batch_size": batch, "precision": precision, "device": device,
                               "channels_last": channels_last, "ema_decay": 0.999 if name == "basicvsr" else 0.0},
                     "optim": {"lr": 1e-4, "betas": [0.9, 0.99], **optim}, "loss": loss})
    trainer = Trainer(cfg)
    g = torch.Generator().manual_seed(0)
    lq = torch.rand(batch, n, 3, 64, 64, generator=g)
    gt = torch.rand(batch, n, 3, 256, 256, generator=g)
    for _ in range(warmup):
        trainer.train_step(lq, gt)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    t, c = time.perf_counter(), time.process_time()
    for _ in range(iters):
        trainer.train_step(lq, gt).item()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / iters
    return 1.0 / dt, batch / dt, (time.process_time() - c) / iters


def _loadavg() -> str:
    """The 1, 5 and 15 minute load averages (Linux), or 'n/a'."""
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a" if not hasattr(os, "getloadavg") else " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["rlsp", "basicvsr"], choices=list(MODELS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--frames", type=int, default=None, help="frames per clip (default: the paper's)")
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--modes", nargs="+", default=["fp32", "bf16"],
                    help="precisions to measure: fp32, bf16, fp16 (GPU); suffix -cl: channels-last")
    args = ap.parse_args()
    modes = [(m.split("-")[0], m.endswith("-cl")) for m in args.modes]
    if args.device.startswith("cuda") and ("fp16", False) not in modes:
        modes.append(("fp16", False))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, batch {args.batch}, "
          f"{args.warmup} warm-up + {args.iters} timed iterations, LR crop 64x64 (GT 256x256)")
    print(f"load average before: {_loadavg()}")
    print(f"{'model':10s} {'frames':>6s} {'precision':10s} {'layout':13s} {'s/it':>8s} {'it/s':>8s} {'samples/s':>10s} "
          f"{'cpu-s/it':>9s}")
    for name in args.models:
        for precision, cl in modes:
            its, sps, cpu = bench(name, precision, cl, args.batch, args.frames, args.iters, args.warmup, args.device)
            n = args.frames or MODELS[name][1]
            print(f"{name:10s} {n:6d} {precision:10s} {'channels-last' if cl else 'contiguous':13s} "
                  f"{1.0 / its:8.2f} {its:8.4f} {sps:10.4f} {cpu:9.2f}", flush=True)
    print(f"load average after: {_loadavg()}")


if __name__ == "__main__":
    main()
