"""BasicVSR++ (c64n7) against BasicVSR (64 features, 30 blocks) in one run: same input, threads and precision,
repeats interleaved (the machine may be shared), medians per frame; then the share of BasicVSR++'s time spent
in its parts (deformable alignment, SpyNet, propagation trunks, reconstruction), timed with forward hooks.

Random weights (speed does not depend on them); both run as `vsrkit bench` runs them (channels-last, fp32,
inference mode, ``vsrkit.bench.run.build_model``).

    OMP_NUM_THREADS=2 python benchmarks/bench_basicvsrpp_speed.py --size 320x180 --frames 3 --repeats 3 --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict

import torch

from vsrkit.bench.run import _caller, build_model


def part_times(net: torch.nn.Module, call) -> dict[str, float]:
    """Seconds spent in each named part of BasicVSR++ during one call (forward hooks on the modules)."""
    parts = {"deform_align": list(net.deform_align.values()), "spynet": [net.spynet],
             "backbone (propagation trunks)": list(net.backbone.values()), "feat_extract": [net.feat_extract],
             "reconstruction + upsampling": [net.reconstruction, net.upsample1, net.upsample2, net.conv_hr,
                                             net.conv_last]}
    spent: dict[str, float] = defaultdict(float)
    started: dict[int, float] = {}
    handles = []
    for name, mods in parts.items():
        for m in mods:
            handles.append(m.register_forward_pre_hook(lambda mod, a: started.__setitem__(id(mod), time.perf_counter())))
            handles.append(m.register_forward_hook(
                lambda mod, a, out, name=name: spent.__setitem__(name, spent[name] + time.perf_counter() - started[id(mod)])))
    t0 = time.perf_counter()
    call()
    spent["total"] = time.perf_counter() - t0
    for h in handles:
        h.remove()
    return dict(spent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="320x180")
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    w, h = map(int, a.size.lower().split("x"))
    models = {"basicvsrpp": "BasicVSR++ c64n7", "basicvsr-reds4": "BasicVSR 64f 30b"}
    calls = {}
    nets = {}
    for name in models:
        nets[name] = build_model(name).to(memory_format=torch.channels_last)
        calls[name] = _caller(nets[name], h, w, a.frames, torch.device("cpu"))
    print(f"{a.size}, {a.frames} frames a call, {a.threads} threads, fp32; load average {os.getloadavg()}")
    times: dict[str, list[float]] = defaultdict(list)
    with torch.inference_mode():
        for name, (call, _, shape) in calls.items():  # warm-up
            call()
        for r in range(a.repeats):
            for name, (call, per_call, shape) in calls.items():
                t0 = time.perf_counter()
                call()
                times[name].append((time.perf_counter() - t0) / per_call)
            print(f"repeat {r}: " + ", ".join(f"{models[n]} {times[n][-1]:.2f} s/frame" for n in models)
                  + f"; load {os.getloadavg()[0]:.1f}")
        med = {n: statistics.median(v) for n, v in times.items()}
        for n in models:
            print(f"{models[n]}: median {med[n]:.3f} s/frame over {a.repeats} repeats ({times[n]})")
        print(f"ratio BasicVSR++ / BasicVSR: {med['basicvsrpp'] / med['basicvsr-reds4']:.2f}x")
        spent = part_times(nets["basicvsrpp"], calls["basicvsrpp"][0])
    total = spent.pop("total")
    print(f"BasicVSR++ parts in one call ({total:.2f} s):")
    for k, v in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {k}: {v:.2f} s ({100 * v / total:.1f} %)")
    print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()

# Results (shared 2-core CPU, load average 9-10; --size 320x180 --frames 2 --repeats 2 --threads 2):
#   320x180, 2 frames a call, 2 threads, fp32; load average (9.19580078125, 7.52783203125, 7.17041015625)
#   repeat 0: BasicVSR++ c64n7 31.64 s/frame, BasicVSR 64f 30b 18.66 s/frame; load 10.5
#   repeat 1: BasicVSR++ c64n7 21.53 s/frame, BasicVSR 64f 30b 17.53 s/frame; load 9.2
#   BasicVSR++ c64n7: median 26.583 s/frame over 2 repeats ([31.636400912000227, 21.53026655199983])
#   BasicVSR 64f 30b: median 18.095 s/frame over 2 repeats ([18.659328121999806, 17.530177477000052])
#   ratio BasicVSR++ / BasicVSR: 1.47x
#   BasicVSR++ parts in one call (45.42 s):
#     deform_align: 17.45 s (38.4 %)
#     backbone (propagation trunks): 10.48 s (23.1 %)
#     reconstruction + upsampling: 9.61 s (21.2 %)
#     spynet: 3.95 s (8.7 %)
#     feat_extract: 1.45 s (3.2 %)
#   load average at the end (8.7587890625, 9.0830078125, 8.1015625)
