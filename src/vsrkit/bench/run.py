"""``vsrkit bench``: speed, memory, FLOPs and roofline fraction of a model, and what a whole upscale adds.

For each model, input size, device and precision:

- **time**: the network's own call in its calling convention (``ModelSpec``: one frame, one window, one
  recurrent step, or a clip of ``frames`` frames for sequence models), ``warmup`` calls first, then the
  median of ``repeat`` calls, per output frame; frames per second is its inverse;
- **memory**: the peak resident set size of the process while the calls run (sampled every 2 ms), and on
  CUDA ``torch.cuda.max_memory_allocated``;
- **parameters**, and **FLOPs per frame** counted by ``torch.utils.flop_counter.FlopCounterMode`` (the
  matrix products and convolutions, a multiply-add counted as 2; element-wise work and grid sampling are
  not counted, so the figure is a lower bound for flow-based models);
- **roofline**: the achieved GFLOP/s against a large 3x3 convolution's GFLOP/s measured in the same
  process, on the same device, at the same precision and memory format (channels-last, as the engine runs
  models: ``EngineConfig.channels_last``; ``benchmarks/bench_speed.py`` compares it with the NCHW path).

``upscale_clip`` times ``vsrkit.pipeline.upscale_file`` on a real clip (decode, colour conversion,
scheduling, encode) against the model's own time at the clip's size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from vsrkit.errors import VsrkitError
from vsrkit.infer.runtime import EngineConfig, prepare_model, select_device, select_precision
from vsrkit.models.layers.common import channels_last_frames

__all__ = ["SCHEMA", "build_model", "parse_size", "bench_model", "conv_throughput", "upscale_clip",
           "run_bench", "format_table"]

SCHEMA = "vsrkit-bench/1"
MEMORY_FORMAT = "channels-last"


def parse_size(text: str) -> tuple[int, int]:
    """'320x180' (width x height) -> (height, width)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise VsrkitError(f"bad --size {text!r}: use WIDTHxHEIGHT, e.g. 320x180") from None
    if w < 1 or h < 1:
        raise VsrkitError(f"bad --size {text!r}: width and height must be positive")
    return h, w


def build_model(name: str, weights: str | os.PathLike | None = None) -> torch.nn.Module:
    """The model to time: with ``weights`` loaded as ``vsrkit upscale`` would; without, the named
    configuration's architecture with random weights and its protocol (speed does not depend on weights,
    and nothing is downloaded)."""
    from vsrkit.hub.loader import build, load_model
    from vsrkit.models.registry import get_entry

    if weights is not None:
        return load_model(name, weights=weights, progress=False)
    family, entry = get_entry(name)
    net = build(family.name, entry.arch, dict(entry.kwargs)).eval()
    protocol = entry.protocol or family.protocol(entry.arch, dict(entry.kwargs))
    net.spec = dataclasses.replace(net.spec, protocol=protocol, name=entry.name)
    return net


# ------------------------------------------------------------------------------------------- memory
def _rss() -> int:
    """Resident set size of this process in bytes (Linux /proc; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):  # pragma: no cover - not Linux
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if platform.system() == "Darwin" else peak * 1024


class _PeakRSS:
    """Samples the RSS in a thread while the ``with`` block runs; ``peak`` and ``start`` in bytes."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.peak = self.start = 0
        self._stop = threading.Event()

    def __enter__(self) -> "_PeakRSS":
        self.start = self.peak = _rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


# -------------------------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":  # pragma: no cover - Apple only
        torch.mps.synchronize()


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _padded(n: int, multiple: int, minimum: int) -> int:
    return max(int(math.ceil(n / multiple)) * multiple, minimum)


def _caller(net: torch.nn.Module, h: int, w: int, frames: int, device: torch.device
            ) -> tuple[Callable[[], Any], int, tuple[int, ...]]:
    """(a call of the network in its calling convention, output frames per call, input shape)."""
    spec = net.spec
    c = spec.channels
    h, w = _padded(h, spec.size_multiple, spec.min_size), _padded(w, spec.size_multiple, spec.min_size)
    kind = spec.temporal.kind
    if kind == "frame":
        x = channels_last_frames(torch.rand(1, c, h, w, device=device))
        return (lambda: net(x)), 1, tuple(x.shape)
    if kind == "window":
        x = channels_last_frames(torch.rand(1, spec.temporal.window, c, h, w, device=device))
        return (lambda: net(x)), 1, tuple(x.shape)
    if kind == "recurrent":
        x = channels_last_frames(torch.rand(1, spec.temporal.window, c, h, w, device=device))
        state: list[Any] = [None]

        def step() -> Any:
            y, state[0] = net.step(x, state[0])
            return y

        return step, 1, tuple(x.shape)
    t = max(frames, spec.min_frames)
    if spec.protocol.clip:
        t = max(t, spec.protocol.clip)
    x = channels_last_frames(torch.rand(1, t, c, h, w, device=device))
    return (lambda: net(x)), t, tuple(x.shape)


def _time_calls(call: Callable[[], Any], device: torch.device, warmup: int, repeat: int) -> list[float]:
    for _ in range(warmup):
        call()
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def _count_flops(call: Callable[[], Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        call()
    return int(counter.get_total_flops())


_ROOFLINE: dict[tuple[str, str], dict[str, Any]] = {}


def conv_throughput(device: torch.device, dtype: torch.dtype | None, warmup: int = 2, repeat: int = 5
                    ) -> dict[str, Any]:
    """GFLOP/s of a large 3x3 convolution (128 -> 128 channels at 128 x 128 on CPU, 256 -> 256 at 512 x 512
    on a GPU), channels-last, at ``dtype`` autocast: the machine's practical peak for conv networks, from the fastest
    of ``repeat`` calls (a peak; the models' times are medians). Cached per device and precision."""
    key = (str(device), "fp32" if dtype is None else str(dtype).replace("torch.", ""))
    if key in _ROOFLINE:
        return _ROOFLINE[key]
    ch, size = (128, 128) if device.type == "cpu" else (256, 512)
    conv = torch.nn.Conv2d(ch, ch, 3, padding=1).to(device, memory_format=torch.channels_last).eval()
    x = torch.rand(1, ch, size, size, device=device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), _autocast(device, dtype):
        call = lambda: conv(x)  # noqa: E731
        flops = _count_flops(call)
        times = _time_calls(call, device, warmup, repeat)
    best = min(times)
    _ROOFLINE[key] = {"conv": f"3x3 {ch}->{ch} at {size}x{size}", "memory_format": MEMORY_FORMAT,
                      "gflop": flops / 1e9, "ms": best * 1e3, "gflops_per_s": flops / best / 1e9}
    return _ROOFLINE[key]


def bench_model(
    net: torch.nn.Module,
    size: tuple[int, int],
    device: torch.device,
    precision: str = "fp32",
    frames: int = 8,
    warmup: int = 2,
    repeat: int = 5,
) -> dict[str, Any]:
    """Time, memory, FLOPs and roofline fraction of ``net`` on ``size`` = (height, width) input frames."""
    dtype = select_precision(precision, device)
    net = prepare_model(net, EngineConfig(device=device)).eval()  # the engine's layout: channels-last weights
    h, w = size
    with torch.inference_mode(), _autocast(device, dtype):
        call, per_call, shape = _caller(net, h, w, frames, device)
        flops = _count_flops(call)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with _PeakRSS() as rss:
            times = _time_calls(call, device, warmup, repeat)
        cuda_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    med = statistics.median(times)
    ms = 1e3 * med / per_call
    flops_frame = flops / per_call
    achieved = flops / med / 1e9
    roof = conv_throughput(device, dtype, warmup, repeat)
    s = net.spec.scale
    return {
        "model": net.spec.name or type(net).__name__,
        "kind": net.spec.temporal.describe(),
        "size": f"{w}x{h}",
        "output_size": f"{w * s}x{h * s}",
        "input_shape": list(shape),
        "frames_per_call": per_call,
        "device": str(device),
        "precision": precision if dtype is not None else "fp32",
        "autocast_dtype": None if dtype is None else str(dtype).replace("torch.", ""),
        "memory_format": MEMORY_FORMAT,
        "threads": torch.get_num_threads(),
        "warmup": warmup,
        "repeat": repeat,
        "ms_per_frame": ms,
        "ms_per_frame_all": [1e3 * t / per_call for t in times],
        "fps": 1e3 / ms,
        "peak_rss_mib": rss.peak / 2**20,
        "rss_before_mib": rss.start / 2**20,
        "cuda_max_allocated_mib": None if cuda_peak is None else cuda_peak / 2**20,
        "params": sum(p.numel() for p in net.parameters()),
        "gflop_per_frame": flops_frame / 1e9,
        "gflops_per_s": achieved,
        "conv_gflops_per_s": roof["gflops_per_s"],
        "roofline_fraction": achieved / roof["gflops_per_s"] if roof["gflops_per_s"] else None,
    }


def upscale_clip(net: torch.nn.Module, clip: str | os.PathLike, device: str, precision: str, frames: int
                 ) -> dict[str, Any]:
    """Wall time of a whole ``vsrkit upscale`` (``pipeline.upscale_file``) of the first ``frames`` frames
    of ``clip`` to a temporary H.264 file, per frame."""
    from vsrkit.io import probe
    from vsrkit.pipeline import upscale_file

    info = probe(clip)
    n = frames if info.num_frames is None else min(frames, info.num_frames)
    with tempfile.TemporaryDirectory(prefix="vsrkit-bench-") as tmp:
        t0 = time.perf_counter()
        upscale_file(clip, Path(tmp) / "out.mp4", model=net, device=device, precision=precision,
                     max_frames=n, progress=False, overwrite=True)
        wall = time.perf_counter() - t0
    return {"clip": str(clip), "size": f"{info.width}x{info.height}", "frames": n,
            "upscale_ms_per_frame": 1e3 * wall / n}


def run_bench(
    models: list[str],
    sizes: list[tuple[int, int]],
    devices: list[str],
    precisions: list[str],
    *,
    weights: str | os.PathLike | None = None,
    frames: int = 8,
    warmup: int = 2,
    repeat: int = 5,
    clip: str | os.PathLike | None = None,
    clip_frames: int = 8,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every (model, size, device, precision) case, plus the whole-upscale comparison on ``clip``."""
    results, upscales = [], []
    if weights is not None and len(models) != 1:
        raise VsrkitError("--weights goes with exactly one --model")
    for name in models:
        net = build_model(name, weights)
        for dev_name in devices:
            device = select_device(dev_name)
            for precision in precisions:
                for size in sizes:
                    if say:
                        say(f"bench {name} {size[1]}x{size[0]} {device} {precision}")
                    results.append(bench_model(net, size, device, precision, frames, warmup, repeat))
                if clip is not None:
                    from vsrkit.io import probe

                    info = probe(clip)
                    own = bench_model(net, (info.height, info.width), device, precision, frames, warmup, repeat)
                    up = upscale_clip(net, clip, str(device), precision, clip_frames)
                    up.update({"model": own["model"], "device": str(device), "precision": own["precision"],
                               "model_ms_per_frame": own["ms_per_frame"],
                               "overhead_ms_per_frame": up["upscale_ms_per_frame"] - own["ms_per_frame"],
                               "upscale_over_model": up["upscale_ms_per_frame"] / own["ms_per_frame"]})
                    upscales.append(up)
    return {
        "schema": SCHEMA,
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "roofline": [{"device": k[0], "dtype": k[1], **v} for k, v in _ROOFLINE.items()],
        "results": results,
        "upscale": upscales,
    }


def _rows(result: dict[str, Any]) -> Iterator[list[str]]:
    yield ["model", "size", "device", "prec", "ms/frame", "fps", "RSS MiB", "CUDA MiB", "params",
           "GFLOP/frame", "GFLOP/s", "of conv"]
    for r in result["results"]:
        cuda = "-" if r["cuda_max_allocated_mib"] is None else f"{r['cuda_max_allocated_mib']:.0f}"
        yield [r["model"], r["size"], r["device"], r["precision"], f"{r['ms_per_frame']:.2f}", f"{r['fps']:.2f}",
               f"{r['peak_rss_mib']:.0f}", cuda, f"{r['params'] / 1e6:.3f}M", f"{r['gflop_per_frame']:.3f}",
               f"{r['gflops_per_s']:.1f}", f"{100 * (r['roofline_fraction'] or 0):.0f}%"]


def format_table(result: dict[str, Any]) -> str:
    """The bench result as a text table (and the upscale comparison below it)."""
    rows = list(_rows(result))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(widths[i]) if i < 4 else c.rjust(widths[i]) for i, c in enumerate(r)) for r in rows]
    for roof in result["roofline"]:
        lines.append(f"roofline {roof['device']} {roof['dtype']}: {roof['conv']} = "
                     f"{roof['gflops_per_s']:.1f} GFLOP/s ({roof['memory_format']})")
    for u in result["upscale"]:
        lines.append(f"vsrkit upscale {u['clip']} ({u['size']}, {u['frames']} frames) with {u['model']} on "
                     f"{u['device']} {u['precision']}: {u['upscale_ms_per_frame']:.1f} ms/frame against "
                     f"{u['model_ms_per_frame']:.1f} for the model alone (x{u['upscale_over_model']:.2f})")
    return "\n".join(lines)
