"""Device, precision and the engine's run options: where and how a model runs.

The fast paths are chosen here and are all overridable: channels-last activations and weights
(``channels_last``), the precision (``auto``: bf16 where this machine runs it natively *and* faster, and
the model's measured quality loss is within ``BF16_BUDGET_DB``; fp16/bf16 on CUDA), the thread count
(``set_threads``) and ``torch.compile`` (``compile``). The engine always runs under ``torch.inference_mode``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vsrkit.errors import VsrkitError
from vsrkit.models.spec import ModelSpec, Protocol

log = logging.getLogger(__name__)

# Defaults chosen by measurement (benchmarks/chunk_tile_agreement.py, tests/infer/test_engine.py):
DEFAULT_CHUNK = 24  # frames per temporal chunk (sequence models) or per block (two-pass streaming)
DEFAULT_CHUNK_OVERLAP = 6  # context frames on each side of a chunk (generic sequence models)
DEFAULT_TILE_OVERLAP = 24  # input pixels shared by neighbouring tiles

BF16_BUDGET_DB = 0.05  # --precision auto: the most PSNR (dB, against fp32 on a real clip) bf16 may cost
BF16_MIN_SPEEDUP = 1.2  # --precision auto on CPU: bf16 must be at least this much faster than fp32


@dataclass(frozen=True)
class EngineConfig:
    """How to run: device, precision, tiling and temporal chunking."""

    device: torch.device
    autocast_dtype: torch.dtype | None = None  # None: full fp32
    tile: int = 0  # tile size in input pixels; 0: whole frames
    tile_overlap: int = DEFAULT_TILE_OVERLAP
    chunk: int = DEFAULT_CHUNK
    chunk_overlap: int | None = None  # None: the protocol's ``clip_overlap``, else DEFAULT_CHUNK_OVERLAP
    protocol: Protocol | None = None  # None: the model's own (``model.spec.protocol``)
    channels_last: bool = True  # channels-last weights and activations (frames of a clip each channels-last)
    compile: bool = False  # torch.compile the model's parts (``prepare_model``)
    auto_precision: bool = False  # precision still to be chosen for the model (``plan.plan_run``)


def select_device(name: str = "auto") -> torch.device:
    """cuda, then mps, then cpu for 'auto'; a clear error when the asked one is not there."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VsrkitError("--device cuda: no CUDA device is available here (try --device auto)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise VsrkitError("--device mps: no Apple MPS device is available here (try --device auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise VsrkitError(f"unknown device {name!r} (use cpu, cuda, mps or auto)") from None


def select_precision(precision: str, device: torch.device, say: Callable[[str], None] | None = None) -> torch.dtype | None:
    """The autocast dtype for a precision name; fp16 on CPU becomes bf16, said through ``say``.
    ``auto`` gives None here: it is chosen per model by ``resolve_precision``."""
    precision = (precision or "fp32").lower()
    if precision in ("fp32", "auto"):
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type == "cpu":
            (say or log.warning)("fp16 is not supported on CPU: using bf16 instead")
            return torch.bfloat16
        return torch.float16
    raise VsrkitError(f"unknown precision {precision!r} (use auto, fp32, bf16 or fp16)")


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@functools.cache
def native_bf16_unit() -> str | None:
    """The CPU's native bf16 unit: ``amx_bf16`` (matrix), ``avx512_bf16`` (vector), or None.

    From /proc/cpuinfo's flags (Linux), else from torch's CPU capability. ``VSRKIT_CPU_BF16`` overrides
    (a unit name, or ``none``)."""
    forced = os.environ.get("VSRKIT_CPU_BF16")
    if forced is not None:
        return None if forced.lower() in ("", "0", "none", "no") else forced
    flags = _cpu_flags()
    for unit in ("amx_bf16", "avx512_bf16"):
        if unit in flags:
            return unit
    cap = str(torch.backends.cpu.get_cpu_capability()).upper()
    if "AMX" in cap:
        return "amx_bf16"
    return None


@functools.cache
def _bf16_speedup_at(threads: int) -> float:
    # a 64->64 3x3 convolution, channels-last, the kind of layer the conv models are made of; interleaved
    # runs, the median of each (other processes on the machine hit both the same)
    def make(dtype: torch.dtype) -> torch.nn.Module:
        return torch.nn.Conv2d(64, 64, 3, 1, 1).eval().to(dtype=dtype, memory_format=torch.channels_last)

    conv, convb = make(torch.float32), make(torch.bfloat16)
    x = torch.rand(1, 64, 64, 128).contiguous(memory_format=torch.channels_last)
    xb = x.to(torch.bfloat16)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    with torch.inference_mode():
        for _ in range(2):
            conv(x), convb(xb)
        for _ in range(7):
            for name, c, t in (("fp32", conv, x), ("bf16", convb, xb)):
                start = time.perf_counter()
                c(t)
                times[name].append(time.perf_counter() - start)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    return med["fp32"] / max(med["bf16"], 1e-9)


def bf16_speedup() -> float:
    """How much faster a bf16 channels-last convolution runs than fp32 here, on CPU (measured once per
    thread count, about 0.1 s; ``VSRKIT_BF16_SPEEDUP`` overrides)."""
    forced = os.environ.get("VSRKIT_BF16_SPEEDUP")
    if forced:
        return float(forced)
    return _bf16_speedup_at(torch.get_num_threads())


def resolve_precision(cfg: EngineConfig, spec: ModelSpec, say: Callable[[str], None] | None = None) -> EngineConfig:
    """``--precision auto`` for one model: bf16 (fp16 on CUDA without bf16) where the hardware runs it
    natively (and, on CPU, measurably faster) and the model's measured bf16 loss is within
    ``BF16_BUDGET_DB``; otherwise fp32. Says which, and why, through ``say``."""
    if not cfg.auto_precision:
        return cfg
    tell = say or log.info
    loss = spec.bf16_loss_db
    dev = cfg.device
    low: torch.dtype | None = None
    if loss is None or loss > BF16_BUDGET_DB:
        why = ("this model's bf16 quality has not been measured" if loss is None
               else f"bf16 costs this model {loss:.2f} dB, over the {BF16_BUDGET_DB} dB budget")
    elif dev.type == "cuda":
        low = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        why = f"native on {torch.cuda.get_device_name(dev)}; measured loss {loss:.3f} dB"
    elif dev.type == "cpu":
        unit = native_bf16_unit()
        if unit is None:
            why = "this CPU has no native bf16 units"
        else:
            gain = bf16_speedup()
            if gain >= BF16_MIN_SPEEDUP:
                low = torch.bfloat16
                why = f"native here ({unit}), {gain:.1f}x fp32 speed; measured loss {loss:.3f} dB"
            else:
                why = f"bf16 is native here ({unit}) but runs at {gain:.2f}x the fp32 speed"
    else:
        why = f"no low-precision fast path on {dev.type}"
    cfg = dataclasses.replace(cfg, autocast_dtype=low, auto_precision=False)
    tell(f"precision auto: {precision_name(cfg)} ({why})")
    return cfg


def precision_name(cfg: EngineConfig) -> str:
    """fp32, bf16 or fp16: the precision ``cfg`` runs in (after ``resolve_precision``)."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[cfg.autocast_dtype]


THREADS_PER_CPU = 4  # --threads above this many per CPU is a mistake (each thread costs memory and mappings)


def check_threads(threads: int | None) -> None:
    """A one-line error for a ``--threads`` below 1 or above ``THREADS_PER_CPU`` times the CPUs here."""
    if threads is None:
        return
    cpus = os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= THREADS_PER_CPU * cpus:
        raise VsrkitError(f"--threads must be between 1 and {THREADS_PER_CPU * cpus} ({THREADS_PER_CPU} per CPU; "
                          f"this machine has {cpus}), got {threads}")


def set_threads(threads: int | None) -> None:
    """``--threads``: the number of CPU threads torch uses (None: leave torch's default)."""
    if threads is None:
        return
    check_threads(threads)
    torch.set_num_threads(threads)


def prepare_model(model: torch.nn.Module, cfg: EngineConfig) -> torch.nn.Module:
    """The model on the device, channels-last if asked, its heavy parts compiled if asked (in place)."""
    model = model.to(cfg.device)
    if cfg.channels_last:
        for param in model.parameters():
            if param.dim() == 4:  # 2-D convolution weights (Conv3d and linear layers stay as they are)
                param.data = param.data.contiguous(memory_format=torch.channels_last)
    if cfg.compile and not getattr(model, "_vsrkit_compiled", False):
        # each child with parameters is compiled on its own: the schedules call the parts (trunks, SpyNet,
        # a recurrent step's layers) through plain functions, not only ``forward``
        for child in model.children():
            if any(True for _ in child.parameters()):
                # freezing: inference only, weights are constants, so convolutions get prepacked weights
                # and fused activations (set per compile, not in inductor's global config)
                child.compile(dynamic=False, options={"freezing": True})
        model._vsrkit_compiled = True
    return model



def make_config(
    device: str = "auto",
    precision: str = "fp32",
    tile: int | None = None,
    tile_overlap: int | None = None,
    chunk: int | None = None,
    chunk_overlap: int | None = None,
    say: Callable[[str], None] | None = None,
    channels_last: bool = True,
    compile: bool = False,
) -> EngineConfig:
    """An EngineConfig from user options, with validation and the measured defaults. ``precision='auto'``
    is settled per model, once, when the run is planned (``vsrkit.infer.plan.plan_run``)."""
    dev = select_device(device)
    dtype = select_precision(precision, dev, say)
    for opt, v in (("--tile", tile), ("--tile-overlap", tile_overlap), ("--chunk", chunk), ("--chunk-overlap", chunk_overlap)):
        if v is not None and v < 0:
            raise VsrkitError(f"{opt} must be >= 0, got {v}")
    ov = DEFAULT_TILE_OVERLAP if tile_overlap is None else tile_overlap
    if tile and tile <= 2 * ov:
        raise VsrkitError(f"--tile {tile} must be larger than twice the tile overlap ({ov})")
    if chunk is not None and chunk < 1:
        raise VsrkitError("--chunk must be at least 1")
    return EngineConfig(
        device=dev,
        autocast_dtype=dtype,
        tile=tile or 0,
        tile_overlap=ov,
        chunk=chunk or DEFAULT_CHUNK,
        chunk_overlap=chunk_overlap,
        channels_last=channels_last,
        compile=compile,
        auto_precision=(precision or "").lower() == "auto",
    )
