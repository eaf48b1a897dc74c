"""``vsrkit bench --backend``: one table per model of backend x precision (PyTorch, onnxruntime, OpenVINO).

Every variant runs the same frames through the engine (``infer.upscale_tensor``: the schedule ``vsrkit upscale``
uses, BasicVSR's two passes included), ``warmup`` runs first, then ``repeat`` runs interleaved across the
variants (other processes on the machine slow them alike); per variant:

- **ms/frame** (the median run over the frames) and **fps**;
- **peak RSS**: the process's resident set size while its runs go (sampled every 2 ms; the first variant
  also carries the process's own baseline);
- **dB vs fp32**: PSNR of its output against PyTorch fp32's (how far it moves the pixels);
- **ΔPSNR** (with ``quality``: an HR clip whose first frames, centre-cropped and BI-degraded to the input size,
  are the frames): its Y PSNR against the original frames minus PyTorch fp32's.

Variants that cannot run here (a package missing, bf16 without native units) are listed with the reason.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from vsrkit.bench.run import _PeakRSS, build_model
from vsrkit.errors import VsrkitError

SCHEMA = "vsrkit-bench-backends/1"
BACKENDS = ("torch", "onnxruntime", "openvino")
PRECISIONS = {"torch": ("fp32", "bf16"), "onnxruntime": ("fp32",), "openvino": ("fp32", "bf16", "int8")}


def parse_backends(values: list[str]) -> list[str]:
    """``all`` or names of ``BACKENDS``, in their order."""
    names = {v.lower() for v in values}
    if "all" in names:
        return list(BACKENDS)
    unknown = names - set(BACKENDS)
    if unknown:
        raise VsrkitError(f"unknown backend {sorted(unknown)[0]!r} (use {', '.join(BACKENDS)} or all)")
    return [b for b in BACKENDS if b in names]


def _frames(size: tuple[int, int], scale: int, channels: int, n: int, quality: Any, seed: int
            ) -> tuple[torch.Tensor, list[np.ndarray] | None]:
    """(LR frames (n, c, h, w), their ground truth as uint8 RGB, or None for random frames)."""
    h, w = size
    if quality is None:
        g = torch.Generator().manual_seed(seed)
        return torch.rand(n, channels, h, w, generator=g), None
    from vsrkit.data.degrade import degrade
    from vsrkit.infer.colour import image_to_item
    from vsrkit.io import VideoReader

    gts, lrs = [], []
    with VideoReader(quality) as reader:
        for frame in reader:
            if len(gts) == n:
                break
            im = frame.image
            H, W = h * scale, w * scale
            if im.shape[0] < H or im.shape[1] < W:
                raise VsrkitError(f"{quality}: {im.shape[1]}x{im.shape[0]} frames are smaller than {W}x{H} "
                                  f"(--size x{scale})")
            top, left = (im.shape[0] - H) // 2, (im.shape[1] - W) // 2
            gt = np.ascontiguousarray(im[top:top + H, left:left + W, :3])
            gts.append(gt)
            lrs.append(image_to_item(degrade(gt, "bi", scale), channels, None).x.float())
    if not gts:
        raise VsrkitError(f"{quality}: no frames")
    return torch.stack(lrs), gts


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def _y_psnr(out: torch.Tensor, gts: list[np.ndarray]) -> float:
    from vsrkit.eval import metrics as M

    imgs = (out.clamp(0, 1) * 255).round().to(torch.uint8)
    vals = []
    for y, gt in zip(imgs, gts):
        o = y.permute(1, 2, 0).numpy()
        if o.shape[2] == 1:  # a Y model: compare Y with the GT's Y
            o = np.repeat(o, 3, axis=2)
        vals.append(M.psnr(o, gt, 0, True))
    return float(np.mean(vals))


def _variant(net: torch.nn.Module, backend: str, precision: str, calibration: torch.Tensor | None, seed: int,
             tmp: str, say: Callable[[str], None]) -> tuple[torch.nn.Module, Any]:
    """(the network run by this backend at this precision, its engine config)."""
    from vsrkit.infer.runtime import make_config

    if backend == "torch":
        if precision == "bf16":
            from vsrkit.infer.runtime import native_bf16_unit

            if native_bf16_unit() is None:
                raise VsrkitError("no native bf16 units on this CPU")
        return net, make_config("cpu", precision)
    if backend == "onnxruntime":
        from vsrkit.export.onnx import OnnxModel, export_onnx

        path = os.path.join(tmp, "model.onnx")
        if not os.path.exists(path):
            export_onnx(net, path, check=False)
        m = OnnxModel(path)
        cfg = make_config("cpu", channels_last=False)
        if m.size:
            cfg = make_config("cpu", tile=m.size, tile_overlap=min(cfg.tile_overlap, (m.size - 1) // 2), channels_last=False)
        return m, cfg
    from vsrkit.export.openvino import OpenVinoModel

    m = OpenVinoModel(net, precision, calibration=calibration if precision == "int8" else None, seed=seed, say=say)
    cfg = make_config("cpu", channels_last=False)
    if m.size:
        cfg = make_config("cpu", tile=m.size, tile_overlap=min(cfg.tile_overlap, (m.size - 1) // 2), channels_last=False)
    return m, cfg


def run_backends(
    models: list[str],
    size: tuple[int, int],
    backends: list[str],
    *,
    weights: str | os.PathLike | None = None,
    frames: int = 8,
    warmup: int = 1,
    repeat: int = 3,
    quality: str | os.PathLike | None = None,
    calibrate: str | os.PathLike | None = None,
    seed: int = 0,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every (backend, precision) of every model on ``frames`` frames of ``size`` = (height, width)."""
    from vsrkit.infer.engine import upscale_tensor

    tell = say or (lambda _m: None)
    if weights is not None and len(models) != 1:
        raise VsrkitError("--weights goes with exactly one --model")
    tables = []
    for name in models:
        net = build_model(name, weights)
        if quality is not None and weights is None:  # quality needs the trained weights, where they are here
            from vsrkit.hub.loader import load_model

            try:
                net = load_model(name, progress=False)
            except VsrkitError as e:
                tell(f"{name}: random weights ({str(e).splitlines()[0]})")
        spec = net.spec
        x, gts = _frames(size, spec.scale, spec.channels, frames, quality, seed)
        calibration = None
        if "openvino" in backends:
            from vsrkit.export.openvino import calibration_frames

            calibration = calibration_frames(calibrate, spec.channels, seed=seed) if calibrate else x
        rows: list[dict[str, Any]] = []
        runs: list[tuple[dict[str, Any], Any, Any]] = []
        with tempfile.TemporaryDirectory(prefix="vsrkit-bench-") as tmp:
            for backend in backends:
                for precision in PRECISIONS[backend]:
                    row: dict[str, Any] = {"backend": backend, "precision": precision}
                    rows.append(row)
                    try:
                        tell(f"bench {name}: preparing {backend} {precision}")
                        t0 = time.perf_counter()
                        variant, cfg = _variant(net, backend, precision, calibration, seed, tmp, tell)
                        with _PeakRSS() as rss:
                            out = upscale_tensor(variant, x, cfg)  # (also the warm-up: conversion, compilation)
                            for _ in range(max(warmup - 1, 0)):
                                upscale_tensor(variant, x, cfg)
                        row["prepare_s"] = time.perf_counter() - t0
                        row["peak_rss_mib"] = rss.peak / 2**20
                        row["output"] = out
                        runs.append((row, variant, cfg))
                    except (VsrkitError, ImportError) as e:
                        row["skipped"] = str(e).splitlines()[0]
            for _ in range(repeat):  # interleaved
                for row, variant, cfg in runs:
                    with _PeakRSS() as rss:
                        t0 = time.perf_counter()
                        upscale_tensor(variant, x, cfg)
                        row.setdefault("times", []).append(time.perf_counter() - t0)
                    row["peak_rss_mib"] = max(row["peak_rss_mib"], rss.peak / 2**20)
        outputs = {id(r): r.pop("output") for r in rows if "output" in r}
        ref = next((outputs[id(r)] for r in rows if r["backend"] == "torch" and r["precision"] == "fp32"
                    and id(r) in outputs), None)
        base = _y_psnr(ref, gts) if (ref is not None and gts is not None) else None
        for r in rows:
            out = outputs.get(id(r))
            if out is None:
                continue
            med = statistics.median(r["times"])
            r["ms_per_frame"] = 1e3 * med / x.shape[0]
            r["fps"] = x.shape[0] / med
            r["db_vs_fp32"] = None if ref is None else _psnr(out, ref)
            if gts is not None:
                r["psnr_y"] = _y_psnr(out, gts)
                r["delta_psnr"] = None if base is None else r["psnr_y"] - base
        tables.append({"model": getattr(net, "model_name", name), "kind": spec.temporal.describe(),
                       "size": f"{size[1]}x{size[0]}", "frames": int(x.shape[0]),
                       "input": str(quality) if quality else "random frames", "rows": rows})
    return {"schema": SCHEMA, "machine": machine(), "threads": torch.get_num_threads(), "tables": tables}


def machine() -> dict[str, Any]:
    """The CPU (name and the flags that matter to these backends), versions and the load average."""
    import platform

    from vsrkit.infer.runtime import _cpu_flags

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = sorted(f for f in _cpu_flags() if f.startswith(("amx", "avx512_bf16", "avx512_vnni", "avx512f", "avx2", "avx_vnni")))
    versions = {"torch": torch.__version__}
    for pkg in ("openvino", "nncf", "onnxruntime"):
        try:
            import importlib.metadata

            versions[pkg] = importlib.metadata.version(pkg)
        except Exception:  # noqa: BLE001 - not installed
            pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": name, "flags": flags, "cpu_count": os.cpu_count(), "versions": versions, "load_average": load}


def format_tables(result: dict[str, Any]) -> str:
    """One text table per model."""
    m = result["machine"]
    lines = [f"CPU: {m['cpu']} ({m['cpu_count']} CPUs; {' '.join(m['flags']) or 'no AVX-512/AMX'}); "
             f"{result['threads']} threads; load average {', '.join(f'{v:.1f}' for v in m['load_average'] or [])}"]
    for t in result["tables"]:
        lines.append("")
        lines.append(f"{t['model']} ({t['kind']}), {t['frames']} frames of {t['size']} ({t['input']})")
        head = ["backend", "prec", "ms/frame", "fps", "peak RSS MiB", "dB vs fp32", "ΔPSNR dB"]
        rows = [head]
        for r in t["rows"]:
            if "skipped" in r:
                rows.append([r["backend"], r["precision"], "-", "-", "-", "-", f"skipped: {r['skipped']}"])
                continue
            db = r.get("db_vs_fp32")
            rows.append([r["backend"], r["precision"], f"{r['ms_per_frame']:.1f}", f"{r['fps']:.2f}",
                         f"{r['peak_rss_mib']:.0f}", "-" if db is None else ("inf" if math.isinf(db) else f"{db:.1f}"),
                         "-" if r.get("delta_psnr") is None else f"{r['delta_psnr']:+.3f}"])
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        for r in rows:
            lines.append("  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(r[:len(head)])))
    return "\n".join(lines)
