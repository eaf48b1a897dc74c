"""Batches: every video and frame folder inside a folder, upscaled into an output folder.

- ``a.mp4``, ``a.mkv``, ``a.mov``, ``a.m4v`` keep their name; other videos get ``.mp4`` added (``a.avi`` ->
  ``a.avi.mp4``, so no two inputs share an output); a folder of images becomes a folder of PNG frames.
- Finished outputs are skipped (an output exists only once it is complete); ``--overwrite`` redoes them and
  ``--resume`` continues the interrupted ones.
- A file that fails does not stop the batch: failures are listed at the end and the exit code is non-zero.
- Under ``torchrun --nproc_per_node N`` (or any launcher that sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``, also
  across machines that share the folders) each process takes its share of the files: all processes list the
  same files in the same order and deal them out by their frames x pixels (read from the headers), so no file is
  done twice or missed and the processes finish together; each process uses GPU ``LOCAL_RANK`` where there are
  several.
- The output is a folder: a name that asks for a video or an image (``out.mp4``) is refused.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import torch

from vsrkit.errors import VsrkitError
from vsrkit.io.decode import decode_image
from vsrkit.io.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, WRITE_FORMATS, list_images, natural_key, open_input
from vsrkit.io.probe import frame_count
from vsrkit.jobs import disk_full

log = logging.getLogger(__name__)


def _has_images(folder: Path) -> bool:
    try:
        return any(p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
                   for p in folder.iterdir())
    except OSError:
        return False


def is_batch(path: str | os.PathLike) -> bool:
    """A folder without images of its own but with videos or image folders inside: a batch."""
    p = Path(path)
    if not p.is_dir() or _has_images(p):
        return False
    return bool(batch_items(p))


def batch_items(folder: str | os.PathLike, exclude: Path | None = None) -> list[Path]:
    """The videos and image folders directly inside ``folder``, in natural order."""
    items = []
    for p in Path(folder).iterdir():
        if p.name.startswith("."):
            continue
        if exclude is not None and p.resolve() == exclude.resolve():
            continue
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
            items.append(p)
        elif p.is_dir() and _has_images(p):
            items.append(p)
    return sorted(items, key=lambda q: natural_key(q.name))


def output_for(item: Path, out_dir: Path) -> Path | str:
    """Where an item's output goes (see the module docstring); a frame folder's ends with a separator."""
    if item.is_dir():
        return os.fspath(out_dir / item.name) + os.sep
    if item.suffix.lower() in WRITE_FORMATS:
        return out_dir / item.name
    return out_dir / (item.name + ".mp4")


def work(p: Path) -> int:
    """What upscaling an item costs, in frames x pixels, read from its header (a frame folder: its first image);
    1 for what cannot be read (it fails at once)."""
    try:
        if p.is_dir():
            files = list_images(p)
            first = decode_image(files[0], 0)
            return max(1, len(files) * first.width * first.height)
        with open_input(p) as c:
            s = c.streams.video[0]
            cc = s.codec_context
            n = s.frames
            rate = s.average_rate or s.guessed_rate
            if not n and c.duration and rate:  # Matroska and WebM declare a duration, not a frame count
                n = round(c.duration / av.time_base * float(rate))
            n = n or frame_count(s) or 1
            return max(1, int(n) * cc.width * cc.height)
    except (VsrkitError, av.error.FFmpegError, OSError, ValueError, IndexError, AttributeError, TypeError,
            OverflowError, UnicodeDecodeError):
        return 1


def deal(weights: list[int], world: int) -> list[int]:
    """The process (0 .. world - 1) of each item: greedy longest processing time first, each item in turn from the
    heaviest to the least loaded process (ties: the earlier item, the lower rank), so that the heaviest process has
    at most 4/3 of the best possible load."""
    owner = [0] * len(weights)
    load = [0] * max(world, 1)
    for i in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        r = min(range(len(load)), key=lambda k: (load[k], k))
        owner[i] = r
        load[r] += max(weights[i], 1)
    return owner


def share(items: list[Path], rank: int, world: int) -> list[Path]:
    """The items of process ``rank`` of ``world``, balanced by frames x pixels (:func:`work`, :func:`deal`; every
    process computes the same split from the same list)."""
    if world <= 1:
        return list(items)
    owner = deal([work(p) for p in items], world)
    return [p for p, r in zip(items, owner) if r == rank]


def _ranks() -> tuple[int, int, int]:
    env = os.environ
    world = int(env.get("WORLD_SIZE", "1") or 1)
    rank = int(env.get("RANK", "0") or 0)
    local = int(env.get("LOCAL_RANK", str(rank)) or 0)
    if not 0 <= rank < max(world, 1):
        raise VsrkitError(f"RANK {rank} is outside WORLD_SIZE {world}")
    return rank, max(world, 1), local


def upscale_batch(input_dir: str | os.PathLike, output_dir: str | os.PathLike, *, model: Any = None,
                  weights: Any = None, device: str = "auto", progress: bool = True,
                  say: Callable[[str], None] | None = None, overwrite: bool = False, resume: bool = False,
                  **options: Any) -> dict[str, list]:
    """Upscale every video and image folder in ``input_dir`` into ``output_dir``; returns
    ``{"done": [...], "skipped": [...], "failed": [(path, message), ...]}`` (this process's share), and raises
    a one-line error after the list when any failed."""
    from vsrkit.hub.loader import load_model
    from vsrkit.pipeline import upscale_file

    say = say or log.info
    src, dst = Path(input_dir), Path(output_dir)
    if dst.exists() and not dst.is_dir():
        raise VsrkitError(f"{dst}: a batch writes into a folder, and this is a file")
    if dst.suffix.lower() in WRITE_FORMATS or dst.suffix.lower() in IMAGE_SUFFIXES:
        raise VsrkitError(f"{dst}: {src} is a folder of videos, upscaled into a folder of the same names: give the "
                          f"output folder a name without {dst.suffix}")
    rank, world, local = _ranks()
    if world > 1 and device in ("auto", "cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        device = f"cuda:{local % torch.cuda.device_count()}"
    items = batch_items(src, exclude=dst)
    mine = share(items, rank, world)
    who = f"process {rank} of {world}: " if world > 1 else ""
    say(f"{who}{len(mine)} of {len(items)} files in {src}")
    try:
        dst.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VsrkitError(f"{dst}: cannot make the output folder: {e.strerror or e}") from None
    if options.get("backend", "torch") != "torch":
        net = model  # an exported file, opened per job
    else:
        net = model if isinstance(model, torch.nn.Module) else (load_model(model, weights=weights, progress=progress) if mine else None)
    done: list[Path] = []
    skipped: list[Path] = []
    failed: list[tuple[Path, str]] = []
    for item in mine:
        out = output_for(item, dst)
        if Path(out).exists() and not overwrite:
            skipped.append(item)
            continue
        try:
            upscale_file(item, out, model=net, weights=weights, device=device, progress=progress and rank == 0,
                         say=say, overwrite=overwrite, resume=resume, **options)
            done.append(item)
            say(f"{who}wrote {out}")
        except KeyboardInterrupt:
            raise
        except VsrkitError as e:
            failed.append((item, str(e)))
        except OSError as e:
            if disk_full(e):
                raise
            failed.append((item, f"{e.strerror or e}"))
        except Exception as e:  # noqa: BLE001 - one file's problem must not stop the others
            log.debug("%s failed", item, exc_info=True)
            failed.append((item, f"{type(e).__name__}: {e}"))
    say(f"{who}{len(done)} upscaled, {len(skipped)} already done, {len(failed)} failed")
    for item, msg in failed:
        say(f"failed: {item.name}: {msg}")
    if failed:
        raise VsrkitError(f"{who}{len(failed)} of {len(mine)} files failed (listed above)")
    return {"done": done, "skipped": skipped, "failed": failed}
