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

import logging
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vsrkit._version import __version__
from vsrkit.atomic import write_atomic
from vsrkit.errors import VsrkitError, WorkKeptError
from vsrkit.hub.advice import compression_hint
from vsrkit.hub.loader import load_model
from vsrkit.hub.registry import FAST_MODEL, default_model
from vsrkit.infer import engine
from vsrkit.infer.plan import plan_run
from vsrkit.infer.runtime import check_threads, make_config, set_threads
from vsrkit.io import VideoReader, VideoWriter
from vsrkit.io.background import Prefetch, Writer
from vsrkit.io.reader import IMAGE_SUFFIXES
from vsrkit.io.probe import count_frames
from vsrkit.io.writer import DEFAULT_SEGMENT, check_output, finished, output_kind
from vsrkit.jobs import Job, critical, sweep_temp
from vsrkit.progress import ProgressBar

log = logging.getLogger(__name__)

MAX_CRF = 51  # libx264, 8-bit


def check_options(crf: int, max_frames: int | None, temp_disk: float | None = None, max_memory: float | None = None,
                  threads: int | None = None) -> None:
    """One-line errors for option values out of range (NaN and infinities included)."""
    if not 0 <= crf <= MAX_CRF:
        raise VsrkitError(f"--crf must be between 0 (lossless) and {MAX_CRF}, got {crf}")
    if max_frames is not None and max_frames < 1:
        raise VsrkitError(f"--max-frames must be at least 1, got {max_frames}")
    for opt, gib in (("--temp-disk", temp_disk), ("--max-memory", max_memory)):
        if gib is not None and not (isinstance(gib, (int, float)) and math.isfinite(gib) and gib > 0):
            raise VsrkitError(f"{opt} must be a positive number of GiB, got {gib}")
    check_threads(threads)


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
    precision: str = "auto",
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
    ``on_frame(n)`` is called after the n-th frame is written. ``precision="auto"`` (the default, as on the
    command line) picks bf16 or fp32 for the model and says which. Precision, threads, tile and the two-pass
    disk plan are decided once, by ``infer.plan.plan_run``, said, and handed to the engine as they are.
    Decoding and encoding run in their own threads, overlapped with the model; ``backend="onnxruntime"`` runs a
    file from ``vsrkit export`` (given as ``weights``); ``backend="openvino"`` converts the model to OpenVINO
    (``vsrkit.export.openvino``; precision fp32, bf16, int8 calibrated on ``calibrate`` (default: the input itself),
    or auto; ``force_precision`` runs a precision whose measured loss is over its budget).
    """
    inp, out = Path(input), Path(output)
    say = say or log.info
    check_options(crf, max_frames, temp_disk, max_memory, threads)
    set_threads(threads)  # before the model is made: an exported model takes torch's thread count when opened
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
        # check the output before the (slow) model load, so mistakes are reported at once; with --resume, an
        # output that exists may be this very job, finished: known once the model and plan are
        check_output(out, inp, overwrite=overwrite or resume)
        sweep_temp(say)
        job = Job(out, resume=resume, say=say).open()
        writer = None
        try:
            if backend == "onnxruntime":
                net = _onnx_model(model, weights, tile, max_memory)
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
                hint = compression_hint(info, model if isinstance(model, str) else None)
                if hint:
                    say(hint)
                net = model if isinstance(model, torch.nn.Module) else load_model(model, weights=weights, progress=progress is not False)
            spec = net.spec
            n_est = info.num_frames if max_frames is None else min(max_frames, info.num_frames or max_frames)
            disk_budget = temp_disk * 2**30 if temp_disk is not None else None
            plan = plan_run(net, cfg, info.height, info.width, n_est or None, channels=info.channels, backend=backend,
                            max_memory=None if max_memory is None else max_memory * 2**30, tile_given=tile is not None,
                            tile_limit=net.size if backend in ("onnxruntime", "openvino") else None,
                            disk_budget=disk_budget, disk_dir=job.dir)
            for line in plan.describe():
                say(line)
            cfg = plan.config
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
            manifest = {
                "vsrkit": __version__, "input": [str(inp.resolve()), *_file_id(inp)],
                "model": net.spec.name or type(net).__name__,
                "weights": _weights_digest(net), "backend": backend, "device": cfg.device.type,
                "precision": getattr(net, "precision", None) or plan.precision,  # (OpenVINO: its own)
                "tile": cfg.tile, "tile_overlap": cfg.tile_overlap, "chunk": cfg.chunk, "chunk_overlap": cfg.chunk_overlap,
                "crf": crf, "max_frames": max_frames, "segment": seg, "kind": kind, "temp_disk": temp_disk,
            }
            tag = _digest(manifest)
            if resume and out.exists() and not overwrite:
                frames_in = 0  # a video says how many frames it holds; a folder is counted against the input
                if kind != "video":
                    frames_in = 1 if single else (info.num_frames if info.is_image_sequence else count_frames(inp))
                    if max_frames is not None:
                        frames_in = min(frames_in, max_frames)
                if not finished(out, tag, frames_in, info.width * s, info.height * s):
                    if not job.resumed:
                        job.finish()  # made by this run: nothing to keep
                    raise VsrkitError(f"{out}: output already exists, and is not the finished output of this command "
                                      "(pass --overwrite to replace it)")
                say(f"nothing left to do: {out} is complete" + (" (made by this command)" if kind == "video" else
                                                                 f" ({frames_in} frames of {info.width * s}x{info.height * s})"))
                job.finish()
                return out
            job.check_manifest(manifest)

            writer = VideoWriter(out, width=info.width * s, height=info.height * s, source=info, crf=crf,
                                 channels=info.channels, bit_depth=bit_depth, overwrite=overwrite, single_image=single,
                                 workdir=job.dir / "out", segment=seg, resume=job.resumed, tag=tag)
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
            n = start
            frames = sink = None
            try:
                # the threads are started and stopped whole: a SIGTERM or Ctrl-C waits for that (jobs.critical), so
                # no thread is left running native code (a decoder, the encoder) when the files close
                with critical():
                    frames = Prefetch(source())  # decoding thread
                    sink = Writer(writer.write, None if on_frame is None else lambda k: on_frame(start + k))  # encoding
                for pts, image in engine.upscale_stream(net, frames, plan, out_dtype, hooks):
                    sink.put(image, pts)
                    n += 1
                    bar.frame(n)
                sink.finish()
            finally:
                with critical():
                    if sink is not None:
                        sink.close()
                    if frames is not None:
                        frames.close()
                    if not isinstance(progress, ProgressBar):
                        bar.close()
            if n == 0:
                raise VsrkitError(f"{inp}: no frames to upscale")
            with critical():  # joined and renamed into place, then the work folder removed: not cut halfway
                writer.close()
                job.finish()
        except BaseException as e:
            # a failure after every frame was made (joining, renaming) keeps them, resumed or not
            keep = resume or isinstance(e, WorkKeptError)
            with critical():
                if writer is not None:
                    writer.abort(keep=keep)
                job.abort(keep=keep)
            if resume and isinstance(e, KeyboardInterrupt):
                e.vsrkit_note = "the work so far is kept: run the same command with --resume to continue"
            if isinstance(e, WorkKeptError):
                raise WorkKeptError(f"{e}: run the same command with --resume to finish") from None
            raise
    return out


def _digest(manifest: dict[str, Any]) -> str:
    """A short digest of a job's manifest: what its output was made from and with."""
    import hashlib
    import json

    return hashlib.blake2b(json.dumps(manifest, sort_keys=True).encode(), digest_size=12).hexdigest()


def _onnx_model(model: Any, weights: Any, tile: int | None, max_memory: float | None) -> Any:
    """``--backend onnxruntime``: the exported file in ``weights`` as a network (a fixed-size export's tile side,
    ``size``, is then planned by ``plan_run``)."""
    from vsrkit.export.onnx import OnnxModel

    if weights is None or model is not None:
        raise VsrkitError("--backend onnxruntime runs an exported file: give it as --weights model.onnx, without --model")
    net = OnnxModel(weights)
    if net.size:
        if max_memory is not None:
            raise VsrkitError(f"{weights} takes tiles of {net.size} pixels: --max-memory does not apply")
        if tile and tile > net.size:
            raise VsrkitError(f"--tile {tile}: {weights} takes tiles of at most {net.size} pixels")
    return net


def _file_id(p: Path) -> list[int]:
    st = p.stat()
    return [st.st_size, st.st_mtime_ns] if p.is_file() else [len(os.listdir(p)), st.st_mtime_ns]


def _save_state(job: Job, t: int, state: Any) -> None:
    write_atomic(job.dir / "state.pt", lambda tmp: torch.save({"frame": t, "state": state}, tmp))


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
