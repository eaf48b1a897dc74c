"""Training throughput of vsrkit's trainer: iterations/s and samples/s for BasicVSR and RLSP at their paper crop
sizes (64x64 LR, 256x256 HR; BasicVSR 15 frames, RLSP 10 frames), fp32 and bf16 (+ channels-last), on synthetic
batches (the training step only: forward, loss, backward, Adam, EMA; no data loading).

    python benchmarks/bench_train.py                       # both models, fp32 and bf16, batch 1
    python benchmarks/bench_train.py --models rlsp --batch 4 --iters 5
    python benchmarks/bench_train.py --device cuda         # on a GPU (fp16 too)

BasicVSR is the released size (64 features, 30 blocks); RLSP 7-128. The paper batches are 4 per GPU (BasicVSR,
8 GPUs) and 1 (RLSP's official code): --batch sets it.
"""

from __future__ import annotations

import argparse
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
          device: str) -> tuple[float, float]:
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
    t = time.perf_counter()
    for _ in range(iters):
        trainer.train_step(lq, gt).item()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / iters
    return 1.0 / dt, batch / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["rlsp", "basicvsr"], choices=list(MODELS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--frames", type=int, default=None, help="frames per clip (default: the paper's)")
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--modes", nargs="+", default=["fp32", "fp32-cl", "bf16", "bf16-cl"],
                    help="precisions to measure; -cl: channels-last")
    args = ap.parse_args()
    modes = [(m.split("-")[0], m.endswith("-cl")) for m in args.modes]
    if args.device.startswith("cuda") and ("fp16", False) not in modes:
        modes.append(("fp16", False))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, batch {args.batch}")
    print(f"{'model':10s} {'frames':>6s} {'precision':10s} {'layout':13s} {'it/s':>8s} {'samples/s':>10s}")
    for name in args.models:
        for precision, cl in modes:
            its, sps = bench(name, precision, cl, args.batch, args.frames, args.iters, args.warmup, args.device)
            n = args.frames or MODELS[name][1]
            print(f"{name:10s} {n:6d} {precision:10s} {'channels-last' if cl else 'contiguous':13s} "
                  f"{its:8.4f} {sps:10.4f}", flush=True)


if __name__ == "__main__":
    main()
