"""``vsrkit eval``: run a model on a dataset through the engine of ``vsrkit upscale`` and score it.

Each clip's LR frames (read, or made from the GT by BI, BD or the RLSP authors' recipe) stream through ``vsrkit.infer.engine`` with the
model's own protocol, exactly as ``vsrkit upscale`` runs them, and come out as uint8 images: what a user
would get in a PNG folder. Those are scored against the GT with BasicSR's PSNR/SSIM
(:mod:`vsrkit.eval.metrics`) under an :class:`~vsrkit.eval.protocols.EvalProtocol`; values are averaged
per clip, then over clips. The result is a JSON-able dict (:data:`SCHEMA`) with per-frame, per-clip and
overall values, timings and a crop of one frame (output, bicubic and GT) for ``vsrkit report``.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from vsrkit.atomic import write_atomic_text
from vsrkit.data.degrade import BD_SCALE, bicubic_baseline, degrade, modcrop
from vsrkit.errors import VsrkitError
from vsrkit.eval import metrics as M
from vsrkit.eval.dataset import Clip, as_rgb8, find_clips, read_frame
from vsrkit.eval.protocols import EvalProtocol
from vsrkit.infer import engine
from vsrkit.infer.runtime import make_config
from vsrkit.io.images import encode_png

__all__ = ["SCHEMA", "METRICS", "columns", "parse_metrics", "evaluate", "write_json", "write_csv", "encode_png"]

SCHEMA = "vsrkit-eval/1"
METRICS = ("psnr", "ssim", "flicker")
DEGRADATIONS = ("bi", "bd", "rlsp", "realworld")  # --degrade: data.degrade modes and data.realworld
CROP_SIZE = 128  # HR pixels of the side-by-side crop kept for the report


TEMPORAL = ("flicker", "warp", "warp_gt")  # what --metric flicker adds (vsrkit.eval.temporal)


def columns(metrics: tuple[str, ...] | list[str]) -> list[str]:
    """The value columns of a result: each metric, and for 'flicker' its three temporal values."""
    out: list[str] = []
    for m in metrics:
        out += list(TEMPORAL) if m == "flicker" else [m]
    return out


def parse_metrics(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"psnr,ssim"`` -> ('psnr', 'ssim'); unknown names are an error."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for n in (x.strip().lower() for x in names):
        if not n:
            continue
        if n not in METRICS:
            raise VsrkitError(f"unknown metric {n!r}: use {', '.join(METRICS)}")
        if n not in out:
            out.append(n)
    if not out:
        raise VsrkitError("--metric names no metric")
    return tuple(out)


def _crop_box(gt: np.ndarray, size: int = CROP_SIZE) -> tuple[int, int, int]:
    """(top, left, size) of the square with the most detail (gradient energy of Y) in a GT frame."""
    h, w = gt.shape[:2]
    s = min(size, h, w)
    y = M.rgb_to_y(gt)
    energy = np.abs(np.diff(y, axis=0))[:, :-1] + np.abs(np.diff(y, axis=1))[:-1, :]
    integral = np.pad(energy, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    best, where = -1.0, (0, 0)
    step = max(s // 8, 1)
    for top in range(0, max(h - s, 0) + 1, step):
        for left in range(0, max(w - s, 0) + 1, step):
            b, r = min(top + s, h - 1), min(left + s, w - 1)
            e = integral[b, r] - integral[top, r] - integral[b, left] + integral[top, left]
            if e > best:
                best, where = e, (top, left)
    return where[0], where[1], s


def _bicubic(lr: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline of a uint8 frame (MATLAB bicubic: the field's 'Bicubic' row), as uint8 RGB."""
    return bicubic_baseline(as_rgb8(lr, "LR"), scale)


def _b64(image: np.ndarray) -> str:
    return base64.b64encode(encode_png(image)).decode("ascii")


def _mean(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else None


def _check_lengths(clips: list[Clip], protocol: EvalProtocol) -> None:
    if protocol.clip_length is None:
        return
    for c in clips:
        if len(c) != protocol.clip_length:
            where = c.gt[0].parent
            raise VsrkitError(f"{where}: {len(c)} frames; --protocol {protocol.name} needs clips of "
                              f"{protocol.clip_length} frames")


def _gt_frame(path: Path, scale: int, crop_to_scale: bool) -> np.ndarray:
    img = as_rgb8(read_frame(path), path)
    return modcrop(img, scale) if crop_to_scale else img


def _realworld_lr(clip: Clip, scale: int, seed: int) -> Iterator[np.ndarray]:
    """The LR frames of a clip under the real-world degradation (``data.realworld``), rounded to uint8: the clip is
    one stream with its own seed (``clip_seed(seed, name)``), so a clip's LR does not depend on the others."""
    from vsrkit.data.realworld import clip_seed, degrade_stream

    frames = (_gt_frame(p, scale, True) for p in clip.gt)
    try:
        for lr in degrade_stream(frames, scale, clip_seed(seed, clip.name)):
            yield np.rint(lr).astype(np.uint8)
    except ValueError as e:
        raise VsrkitError(f"{clip.gt[0].parent}: {e}") from None


def _compressed(items: Iterator[tuple[np.ndarray, Path]], crf: float) -> Iterator[tuple[np.ndarray, Path]]:
    """The LR frames of a clip after H.264 at ``crf`` (``io.codec_roundtrip.crf_roundtrip``: libx264, preset
    medium, yuv420p), as web video compresses them; each with the file it came from."""
    from vsrkit.io.codec_roundtrip import crf_roundtrip

    wheres: deque[Path] = deque()

    def frames() -> Iterator[np.ndarray]:
        for img, where in items:
            wheres.append(where)
            yield as_rgb8(img, where)

    for out in crf_roundtrip(frames(), crf):
        yield out, wheres.popleft()


def evaluate(
    model: str | torch.nn.Module | None,
    gt: str | os.PathLike,
    lr: str | os.PathLike | None = None,
    degradation: str | None = None,
    *,
    weights: str | os.PathLike | None = None,
    metrics: tuple[str, ...] = ("psnr", "ssim"),
    protocol: EvalProtocol | None = None,
    device: str = "auto",
    precision: str = "fp32",
    tile: int | None = None,
    progress: bool = True,
    say: Callable[[str], None] | None = None,
    seed: int = 0,
    backend: str = "torch",
    calibrate: str | os.PathLike | None = None,
    force_precision: bool = False,
    crf: float | None = None,
) -> dict[str, Any]:
    """Score ``model`` on the dataset at ``gt`` (LR frames from ``lr``, or made by ``degradation``: bi, bd, rlsp, or
    realworld with ``seed``, a fixed random degradation per clip; ``crf``: then each LR clip through H.264 at that
    constant rate factor, as web video). ``backend="openvino"``: the model converted to
    OpenVINO (``precision`` fp32, bf16, int8 calibrated on ``calibrate``, or auto)."""
    from vsrkit.eval.protocols import resolve_protocol
    from vsrkit.hub.loader import load_model

    protocol = protocol or resolve_protocol()
    metrics = parse_metrics(metrics)
    if (lr is None) == (degradation is None):
        raise VsrkitError("give either --lr DIR (the LR frames) or --degrade bi|bd|rlsp|realworld (made from the GT)")
    if degradation is not None:
        degradation = degradation.lower()
        if degradation not in DEGRADATIONS:
            raise VsrkitError(f"unknown --degrade {degradation!r}: use bi, bd, rlsp or realworld")
    if crf is not None and (isinstance(crf, bool) or not isinstance(crf, (int, float)) or not 0 <= crf <= 51):
        raise VsrkitError(f"--crf must be a number in 0..51 (H.264 constant rate factor), got {crf!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise VsrkitError(f"--seed must be a non-negative integer, got {seed!r}")
    clips = find_clips(gt, lr)
    _check_lengths(clips, protocol)
    ov_precision = precision  # --- OpenVINO backend (issue 23) ---
    if backend == "openvino":
        precision = "fp32"
    elif backend != "torch":
        raise VsrkitError(f"unknown backend {backend!r} for eval (use torch or openvino)")
    cfg = make_config(device, precision, tile, say=say)
    if backend == "openvino":
        from vsrkit.export.openvino import openvino_model

        net, cfg = openvino_model(model, weights, cfg, ov_precision, calibrate=calibrate, force=force_precision,
                                  tile=tile, say=say, progress=progress)
        model_name = net.model_name
        precision = net.precision
    elif isinstance(model, torch.nn.Module):
        net, model_name = model, model.spec.name or type(model).__name__
    else:
        net = load_model(model, weights=weights, progress=progress)
        model_name = model if model is not None else f"{type(net).__name__}({Path(weights).name})"
    scale = net.spec.scale
    if degradation == "bd" and scale != BD_SCALE:
        raise VsrkitError(f"--degrade bd is defined for x{BD_SCALE} only; {model_name} is x{scale}")
    warp = None
    if "flicker" in metrics:
        from vsrkit.eval.temporal import WarpError

        warp = WarpError(device=cfg.device, crop=protocol.crop)
    y_channel = protocol.channel == "y"

    if lr is not None:
        for clip in clips:  # sizes first, before any (slow) inference
            a, b = read_frame(clip.lr[0]), read_frame(clip.gt[0])
            if (a.shape[0] * scale, a.shape[1] * scale) != b.shape[:2]:
                raise VsrkitError(
                    f"size mismatch: GT {clip.gt[0]} is {b.shape[1]}x{b.shape[0]} but LR {clip.lr[0]} "
                    f"({a.shape[1]}x{a.shape[0]}) x{scale} gives {a.shape[1] * scale}x{a.shape[0] * scale}")
    total = sum(len(c) for c in clips)
    frames_rows: list[dict[str, Any]] = []
    clip_rows: list[dict[str, Any]] = []
    crops: dict[str, Any] | None = None
    engine_total, started = 0.0, time.perf_counter()
    bar = tqdm(total=total, unit="frame", desc=str(model_name), disable=not progress, dynamic_ncols=True)
    try:
        for ci, clip in enumerate(clips):
            scored = set(protocol.scored(len(clip)))
            crop_at = sorted(scored)[len(scored) // 2] if ci == 0 else -1
            kept_lr: dict[int, np.ndarray] = {}
            source_time = 0.0
            lr_size: tuple[int, int] | None = None

            def made() -> Iterator[tuple[np.ndarray, Path]]:
                nonlocal lr_size
                realworld = _realworld_lr(clip, scale, seed) if degradation == "realworld" else None
                for i, gpath in enumerate(clip.gt):
                    if clip.lr is not None:
                        img = read_frame(clip.lr[i])
                        where = clip.lr[i]
                    elif realworld is not None:
                        img, where = next(realworld), gpath
                    else:
                        img = degrade(_gt_frame(gpath, scale, True), degradation, scale)
                        where = gpath
                    if lr_size is None:
                        lr_size = img.shape[:2]
                    elif img.shape[:2] != lr_size:
                        raise VsrkitError(f"{where}: size {img.shape[1]}x{img.shape[0]} differs from the clip's "
                                          f"first frame ({lr_size[1]}x{lr_size[0]})")
                    yield img, where

            def source() -> Iterator[np.ndarray]:
                nonlocal source_time
                items = made() if crf is None else _compressed(made(), crf)
                for i in range(len(clip.gt)):
                    t0 = time.perf_counter()
                    try:
                        img, _ = next(items)
                    except StopIteration:
                        return
                    if i == crop_at:
                        kept_lr[i] = img
                    source_time += time.perf_counter() - t0
                    yield img

            outputs = engine.upscale_frames(net, source(), cfg, np.uint8)
            clip_engine = 0.0
            prev: tuple[np.ndarray, np.ndarray] | None = None  # (gt, output) of the previous frame
            rows: list[dict[str, Any]] = []
            i = 0
            while True:
                t0 = time.perf_counter()
                try:
                    out = next(outputs)
                except StopIteration:
                    break
                finally:
                    clip_engine += time.perf_counter() - t0
                gpath = clip.gt[i]
                g = _gt_frame(gpath, scale, degradation is not None)
                o = as_rgb8(out, "output")
                if o.shape != g.shape:
                    lpath = clip.lr[i] if clip.lr is not None else gpath
                    raise VsrkitError(
                        f"size mismatch: GT {gpath} is {g.shape[1]}x{g.shape[0]} but LR {lpath} x{scale} gives "
                        f"{o.shape[1]}x{o.shape[0]}")
                row: dict[str, Any] = {"clip": clip.name, "frame": i, "file": gpath.name}
                if i in scored:
                    try:
                        if "psnr" in metrics:
                            row["psnr"] = M.psnr(o, g, protocol.crop, y_channel)
                        if "ssim" in metrics:
                            row["ssim"] = M.ssim(o, g, protocol.crop, y_channel)
                    except ValueError as e:
                        raise VsrkitError(f"{gpath}: {e}") from None
                if warp is not None and prev is not None:
                    row.update(warp.pair(prev[0], g, prev[1], o))
                if warp is not None:
                    prev = (g, o)
                if i == crop_at:
                    top, left, s = _crop_box(g)
                    box = (slice(top, top + s), slice(left, left + s))
                    crops = {"clip": clip.name, "frame": i, "file": gpath.name, "box": [top, left, s, s],
                             "scale": scale, "gt": _b64(g[box]), "output": _b64(o[box]),
                             "bicubic": _b64(_bicubic(kept_lr[i], scale)[box])}
                rows.append(row)
                bar.update(1)
                i += 1
            clip_engine -= source_time
            engine_total += clip_engine
            frames_rows.extend(rows)
            crow: dict[str, Any] = {"name": clip.name, "frames": len(clip), "scored": len(scored)}
            for k in columns(metrics):
                crow[k] = _mean([r[k] for r in rows if k in r])
            crow["ms_per_frame"] = 1000.0 * clip_engine / max(len(clip), 1)
            clip_rows.append(crow)
    finally:
        bar.close()

    overall: dict[str, Any] = {}
    for k in columns(metrics):
        overall[k] = _mean([c[k] for c in clip_rows])
    overall["ms_per_frame"] = 1000.0 * engine_total / max(total, 1)
    overall["fps"] = total / engine_total if engine_total > 0 else None
    return {
        "schema": SCHEMA,
        "model": {
            "name": str(model_name),
            "weights": None if weights is None else str(weights),
            "scale": scale,
            "temporal": net.spec.temporal.describe(),
            "params": sum(p.numel() for p in getattr(net, "torch_model", net).parameters()),
        },
        "dataset": {"gt": str(gt), "lr": None if lr is None else str(lr),
                    "degradation": (f"realworld(seed={seed})" if degradation == "realworld" else degradation)
                    if crf is None else f"{degradation or 'lr'}+h264(crf={crf:g})",
                    "clips": len(clips), "frames": total, "gt_modcrop": degradation is not None},
        "protocol": {"name": protocol.name, "channel": protocol.channel, "crop": protocol.crop,
                     "frames": protocol.frames, "clip_length": protocol.clip_length,
                     "description": protocol.describe(), "metrics": list(metrics),
                     "averaging": "per clip, then over clips"},
        "run": {"device": str(cfg.device), "precision": precision, "tile": cfg.tile,
                "seconds": time.perf_counter() - started},
        "overall": overall,
        "clips": clip_rows,
        "frames": frames_rows,
        "crops": crops,
    }


def _clean(x: Any) -> Any:
    """JSON without NaN/Infinity: non-finite floats become null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def write_json(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """The result as JSON (written under a temporary name, then renamed)."""
    p = Path(path)
    write_atomic_text(p, json.dumps(_clean(result), indent=1, allow_nan=False) + "\n")
    return p


def write_csv(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """One row per frame: clip, frame, file and the metrics (empty where a frame is not scored)."""
    import io

    p = Path(path)
    cols = ["clip", "frame", "file", *columns(result["protocol"]["metrics"])]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in result["frames"]:
        w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in cols})
    write_atomic_text(p, buf.getvalue())
    return p
