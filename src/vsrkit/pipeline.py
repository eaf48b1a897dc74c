"""File-to-file jobs: reader -> engine -> writer, with the output written atomically and resumable.

A job works in a folder beside its output (``vsrkit.jobs``): the writer's frames or video segments, the
engine's two-pass states and the model state at the last resume point. ``resume=True`` continues an
interrupted job from there:

- frame, window and sequence models need no state: a PNG folder continues after its last complete frame, a
  video after its last complete segment (chunks whose outputs are all written are read, not computed);
- recurrent models (RLSP) restart from their state saved with the last complete segment (every
  ``segment`` frames), so the frames after it are recomputed from that saved state;
- two-pass models (BasicVSR, IconVSR) keep pass 1's backward states, so pass 1 is not run again, and restart
  pass 2 from the forward state saved with the last complete segment (a block boundary).

The result equals an uninterrupted run: a video is always written in the same segments, resumed or not.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

import vsrkit
from vsrkit.errors import VsrkitError
from vsrkit.hub.loader import load_model
from vsrkit.hub.registry import FAST_MODEL, default_model
from vsrkit.infer import engine, twopass
from vsrkit.infer.memory import default_budget, plan_tile
from vsrkit.infer.runtime import make_config, precision_name, resolve_precision, set_threads
from vsrkit.io import VideoReader, VideoWriter
from vsrkit.io.background import Prefetch, Writer
from vsrkit.io.reader import IMAGE_SUFFIXES
from vsrkit.io.writer import DEFAULT_SEGMENT, check_output, output_kind
from vsrkit.jobs import Job, sweep_temp
from vsrkit.progress import ProgressBar

log = logging.getLogger(__name__)

MAX_CRF = 51  # libx264, 8-bit


def check_options(crf: int, max_frames: int | None, temp_disk: float | None = None) -> None:
    """One-line errors for option values out of range."""
    if not 0 <= crf <= MAX_CRF:
        raise VsrkitError(f"--crf must be between 0 (lossless) and {MAX_CRF}, got {crf}")
    if max_frames is not None and max_frames < 1:
        raise VsrkitError(f"--max-frames must be at least 1, got {max_frames}")
    if temp_disk is not None and not temp_disk > 0:
        raise VsrkitError(f"--temp-disk must be a positive number of GiB, got {temp_disk}")


def _weights_digest(net: torch.nn.Module) -> str:
    """A digest of the model's parameters and buffers: a resumed run must use the very same weights (a model
    with random weights differs at each load)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    path = getattr(net, "path", None)  # an exported file (--backend onnxruntime): its bytes are the weights
    if isinstance(path, Path) and not any(True for _ in net.parameters()):
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    for name, t in net.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def upscale_file(
    input: str | os.PathLike,
    output: str | os.PathLike,
    *,
    model: str | torch.nn.Module | None = None,
    weights: str | os.PathLike | None = None,
    backend: str = "torch",
    device: str = "auto",
    precision: str = "fp32",
    threads: int | None = None,
    compile: bool = False,
    channels_last: bool = True,
    tile: int | None = None,
    tile_overlap: int | None = None,
    chunk: int | None = None,
    chunk_overlap: int | None = None,
    max_memory: float | None = None,
    crf: int = 18,
    overwrite: bool = False,
    max_frames: int | None = None,
    progress: bool | ProgressBar = True,
    say: Callable[[str], None] | None = None,
    on_frame: Callable[[int], None] | None = None,
    resume: bool = False,
    temp_disk: float | None = None,
    segment: int | None = None,
    calibrate: str | os.PathLike | None = None,
    force_precision: bool = False,
) -> Path:
    """Upscale a video file, image folder or image into a video, PNG folder or image; returns the output path.

    Audio and subtitle streams are copied, frame rate and timestamps kept. The output is written in a work
    folder beside it and renamed when complete; ``resume`` continues an interrupted job (module docstring) and
    keeps the work folder when this run is interrupted too. ``max_memory`` (GiB) picks the tile size from the
    model's memory estimate (``plan_tile``); ``temp_disk`` (GiB) bounds the temporary disk of two-pass models.
    ``on_frame(n)`` is called after the n-th frame is written. ``precision="auto"`` picks bf16 or fp32 for the
    model and says which (``resolve_precision``). Decoding and encoding run in their own threads, overlapped
    with the model; ``backend="onnxruntime"`` runs a file from ``vsrkit export`` (given as ``weights``);
    ``backend="openvino"`` converts the model to OpenVINO (``vsrkit.export.openvino``; precision fp32, bf16,
    int8 calibrated on ``calibrate`` (default: the input itself), or auto; ``force_precision`` runs a precision
    whose measured loss is over its budget).
    """
    inp, out = Path(input), Path(output)
    say = say or log.info
    check_options(crf, max_frames, temp_disk)
    set_threads(threads)
    ov_precision = precision  # --- OpenVINO backend (issue 23): its precisions are its own (int8)
    if backend == "openvino":
        precision = "fp32"
    cfg = make_config(device, precision, tile, tile_overlap, chunk, chunk_overlap, say=say,
                      channels_last=channels_last, compile=compile)
    if max_memory is not None and tile:
        raise VsrkitError("give either --tile or --max-memory, not both")
    with VideoReader(inp) as reader:
        info = reader.info
        single = not info.is_image_sequence and inp.suffix.lower() in IMAGE_SUFFIXES
        kind = output_kind(out, single_image=single)
        # check the output before the (slow) model load, so mistakes are reported at once
        check_output(out, inp, overwrite=overwrite)
        sweep_temp(say)
        job = Job(out, resume=resume, say=say).open()
        writer = None
        try:
            if backend == "onnxruntime":
                net, cfg = _onnx_model(model, weights, cfg, tile, max_memory)
            elif backend == "openvino":  # --- OpenVINO backend (issue 23) ---
                from vsrkit.export.openvino import openvino_model

                net, cfg = openvino_model(model, weights, cfg, ov_precision, calibrate=calibrate or inp,
                                          force=force_precision, tile=tile, max_memory=max_memory, say=say,
                                          progress=progress is not False)
            elif backend != "torch":
                raise VsrkitError(f"unknown backend {backend!r} (use torch, onnxruntime or openvino)")
            else:
                if model is None and weights is None:
                    model = default_model(str(cfg.device))
                    if cfg.device.type == "cpu":
                        say(f"no GPU: {model} takes seconds a frame on a CPU; --fast ({FAST_MODEL}) is about "
                            f"30x faster, at lower quality")
                net = model if isinstance(model, torch.nn.Module) else load_model(model, weights=weights, progress=progress is not False)
            cfg = resolve_precision(cfg, net.spec, say)
            budget = max_memory * 2**30 if max_memory is not None else None
            if budget is None and tile is None and not cfg.tile and net.spec.memory_per_pixel:
                budget = default_budget(cfg.device)  # memory-hungry models (VRT) tile by default
            n_est = info.num_frames if max_frames is None else min(max_frames, info.num_frames or max_frames)
            if budget is not None:
                cfg = dataclasses.replace(cfg, tile=plan_tile(net, cfg, budget, info.height, info.width, n_est))
                say(f"memory budget {budget / 2**30:.1f} GiB: " + (f"tiles of {cfg.tile} pixels" if cfg.tile else "whole frames"))
            spec = net.spec
            s = spec.scale
            to_png = kind != "video"
            bit_depth = 16 if (info.bit_depth == 16 and to_png) else 8
            out_dtype = np.uint16 if bit_depth == 16 else np.uint8
            kind_t = spec.temporal.kind
            two = kind_t == "bidirectional"
            stateful = kind_t in ("recurrent", "bidirectional")
            seg = segment or DEFAULT_SEGMENT
            if two:
                seg = math.ceil(seg / cfg.chunk) * cfg.chunk  # resume points on block boundaries
            disk_budget = temp_disk * 2**30 if temp_disk is not None else None
            job.check_manifest({
                "vsrkit": vsrkit.__version__, "input": [str(inp.resolve()), *_file_id(inp)],
                "model": getattr(net, "model_name", type(net).__name__),
                "weights": _weights_digest(net), "backend": backend, "device": cfg.device.type,
                "precision": getattr(net, "precision", None) or precision_name(cfg),  # (OpenVINO: its own)
                "tile": cfg.tile, "tile_overlap": cfg.tile_overlap, "chunk": cfg.chunk, "chunk_overlap": cfg.chunk_overlap,
                "crf": crf, "max_frames": max_frames, "segment": seg, "kind": kind, "temp_disk": temp_disk,
            })
            if two:
                plan = twopass.plan_for(net.to(cfg.device), cfg, info.height, info.width, n_est or 1, info.channels,
                                        rereads=True, budget=disk_budget)
                free = twopass.free_bytes(job.dir)
                say(f"two-pass streaming: {plan.summary}: about {plan.disk / 2**30:.2f} GiB of temporary disk in {job.dir.parent.resolve()} "
                    f"({free / 2**30:.1f} GiB free)")
                twopass.check_space(plan, job.dir)

            writer = VideoWriter(out, width=info.width * s, height=info.height * s, source=info, crf=crf,
                                 channels=info.channels, bit_depth=bit_depth, overwrite=overwrite, single_image=single,
                                 workdir=job.dir / "out", segment=seg, resume=job.resumed)
            start, state = writer.frames_written, None
            if start and stateful:
                saved_at, state = _load_state(job)
                start = min(start, saved_at)
                writer.truncate(start)
                if start == 0:
                    state = None
            if start:
                say(f"resuming {out.name} at frame {start}" + (f" of {n_est}" if n_est else ""))

            def save_state(t: int, st: Any) -> None:
                sink.drain()  # the frames before t are with the writer
                if t <= writer.frames_written:
                    _save_state(job, t, st)

            def source() -> Iterator[tuple[Any, np.ndarray]]:
                for k, frame in enumerate(reader):
                    if max_frames is not None and k >= max_frames:
                        break
                    yield frame.pts, frame.image

            def reopen(i: int) -> Iterator[tuple[int, Any, np.ndarray]]:
                for frame in reader.frames_from(i):
                    if max_frames is not None and frame.index >= max_frames:
                        break
                    yield frame.index, frame.pts, frame.image

            bar = progress if isinstance(progress, ProgressBar) else ProgressBar(inp.name, n_est, enabled=bool(progress))
            hooks = engine.Hooks(start=start, state=state, on_state=save_state if stateful else None, state_every=seg,
                                 reopen=reopen, workdir=job.dir, disk_budget=disk_budget,
                                 on_progress=bar.phases if two else None)
            frames = Prefetch(source())  # decoding thread
            sink = Writer(writer.write, None if on_frame is None else lambda k: on_frame(start + k))  # encoding thread
            n = start
            try:
                for pts, image in engine.upscale_stream(net, frames, cfg, out_dtype, hooks):
                    sink.put(image, pts)
                    n += 1
                    bar.frame(n)
                sink.finish()
            finally:
                sink.close()
                frames.close()
                if not isinstance(progress, ProgressBar):
                    bar.close()
            if n == 0:
                raise VsrkitError(f"{inp}: no frames to upscale")
            writer.close()
            job.finish()
        except BaseException as e:
            if writer is not None:
                writer.abort(keep=resume)
            job.abort(keep=resume)
            if resume and isinstance(e, KeyboardInterrupt):
                e.vsrkit_note = "the work so far is kept: run the same command with --resume to continue"
            raise
    return out


def _onnx_model(model: Any, weights: Any, cfg: Any, tile: int | None, max_memory: float | None) -> tuple[Any, Any]:
    """``--backend onnxruntime``: the exported file in ``weights`` as a network; fixed-size exports set the tiles."""
    from vsrkit.export.onnx import OnnxModel

    if weights is None or model is not None:
        raise VsrkitError("--backend onnxruntime runs an exported file: give it as --weights model.onnx, without --model")
    net = OnnxModel(weights)
    if net.size:
        if max_memory is not None:
            raise VsrkitError(f"{weights} takes tiles of {net.size} pixels: --max-memory does not apply")
        if tile and tile > net.size:
            raise VsrkitError(f"--tile {tile}: {weights} takes tiles of at most {net.size} pixels")
        side = tile or net.size
        cfg = dataclasses.replace(cfg, tile=side, tile_overlap=min(cfg.tile_overlap, (side - 1) // 2))
    return net, cfg


def _file_id(p: Path) -> list[int]:
    st = p.stat()
    return [st.st_size, st.st_mtime_ns] if p.is_file() else [len(os.listdir(p)), st.st_mtime_ns]


def _save_state(job: Job, t: int, state: Any) -> None:
    path = job.dir / "state.pt"
    tmp = job.dir / "state.pt.tmp"
    torch.save({"frame": t, "state": state}, tmp)
    os.replace(tmp, path)


def _load_state(job: Job) -> tuple[int, Any]:
    path = job.dir / "state.pt"
    if not path.exists():
        return 0, None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return int(saved["frame"]), saved["state"]
    except Exception:  # noqa: BLE001 - a damaged state file: start again from the first frame
        log.warning("%s: the saved model state cannot be read; starting again from the first frame", path)
        return 0, None
