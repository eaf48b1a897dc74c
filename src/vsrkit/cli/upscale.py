"""``vsrkit upscale``: a video file, image folder or image in, a 4x (or the model's scale) video, folder or image
out; or a folder of videos and frame folders in, the same names upscaled out (a batch)."""

from __future__ import annotations

from pathlib import Path

import click

from vsrkit.cli.common import FINITE, say
from vsrkit.errors import VsrkitError
from vsrkit.hub.registry import CPU_DEFAULT_MODEL, DEFAULT_MODEL, FAST_MODEL


@click.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Output video (.mp4/.mkv/.mov/.m4v), folder for PNG frames (out/ or a name without extension), "
                   "one image for an image in (.png/.jpg/.tif/.bmp), or for a batch the output folder.")
@click.option("-m", "--model", default=None, help=f"Model name (see `vsrkit models`); default {DEFAULT_MODEL}" + ("" if DEFAULT_MODEL == CPU_DEFAULT_MODEL else f" with a GPU, {CPU_DEFAULT_MODEL} on a CPU") + " (--fast: the bundled fast model).")
@click.option("--fast", is_flag=True, help=f"The fast model trained by vsrkit and shipped with it ({FAST_MODEL}).")
@click.option("-w", "--weights", type=click.Path(path_type=Path), default=None,
              help="Checkpoint file; alone, the architecture is recognised from it.")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime", "openvino"]), default="torch", show_default=True,
              help="onnxruntime: run an exported model (--weights model.onnx, from `vsrkit export`); openvino: the "
                   "model converted to OpenVINO on the CPU (pip install 'vsrkit[openvino]').")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16", "int8"]), default="auto", show_default=True,
              help="auto: bf16 where this machine runs it natively and faster and the model's measured loss is "
                   "within budget, else fp32 (it says which). fp16 on CPU runs as bf16. int8: --backend openvino only.")
@click.option("--calibrate", type=click.Path(path_type=Path), default=None,
              help="int8 (--backend openvino): calibrate on frames of this video or folder (default: the input).")
@click.option("--force-precision", is_flag=True,
              help="Run bf16/int8 even where its measured quality loss is over the budget (0.05 / 0.1 dB).")
@click.option("--threads", type=int, default=None, help="CPU threads for the model (default: torch's).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (slow start; see the README).")
@click.option("--layout", type=click.Choice(["channels-last", "contiguous"]), default="channels-last",
              show_default=True, help="Memory format of weights and activations.")
@click.option("--tile", type=int, default=None, help="Tile size in input pixels (0: whole frames).")
@click.option("--tile-overlap", type=int, default=None, help="Pixels shared by neighbouring tiles.")
@click.option("--chunk", type=int, default=None, help="Frames per temporal chunk (sequence models) or block (two-pass).")
@click.option("--chunk-overlap", type=int, default=None, help="Context frames on each side of a chunk.")
@click.option("--max-memory", type=FINITE, default=None,
              help="Memory budget in GiB (RAM on CPU, device memory on GPU): picks the tile size.")
@click.option("--temp-disk", type=FINITE, default=None,
              help="Temporary disk in GiB two-pass models may use (default 4): more disk, less recomputation.")
@click.option("--crf", type=int, default=18, show_default=True, help="H.264 quality, 0-51 (lower is better).")
@click.option("--max-frames", type=int, default=None, help="Stop after this many frames.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output (a batch redoes finished files).")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run of the same command (and keep this run's work if it is interrupted).")
@click.option("--segment", type=click.IntRange(min=1), default=None, hidden=True,
              help="Frames per resumable video segment (default 120).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def upscale(input: Path, output: Path, model, fast, weights, backend, device, precision, calibrate, force_precision,
            threads, compile_, layout, tile, tile_overlap, chunk, chunk_overlap, max_memory, temp_disk, crf, max_frames,
            overwrite, resume, segment, quiet) -> None:
    """Upscale INPUT (a video, a folder of images, an image, or a folder of videos and frame folders) into OUTPUT.

    Under `torchrun --nproc_per_node N`, a batch is split between the N processes (one GPU each where there are
    several)."""
    from vsrkit.batch import is_batch, upscale_batch
    from vsrkit.pipeline import check_options, upscale_file

    if fast:
        if model is not None or weights is not None:
            raise VsrkitError("give either --fast or --model/--weights, not both")
        model = FAST_MODEL
    if weights is not None:
        if weights.is_dir():
            raise VsrkitError(f"{weights}: is a folder, not a checkpoint file")
        if not weights.is_file():
            raise VsrkitError(f"checkpoint not found: {weights}")
    check_options(crf, max_frames, temp_disk, max_memory, threads)
    if precision == "int8" and backend != "openvino":
        raise VsrkitError("--precision int8 runs on --backend openvino only")
    if calibrate is not None and not calibrate.exists():
        raise VsrkitError(f"--calibrate {calibrate}: no such file or folder")
    extra = dict(calibrate=calibrate, force_precision=force_precision) if backend == "openvino" else {}  # (issue 23)
    options = dict(model=model, weights=weights, backend=backend, device=device, precision=precision, threads=threads,
                   compile=compile_, channels_last=layout == "channels-last", tile=tile,
                   tile_overlap=tile_overlap, chunk=chunk, chunk_overlap=chunk_overlap, max_memory=max_memory,
                   temp_disk=temp_disk, crf=crf, overwrite=overwrite, max_frames=max_frames, resume=resume,
                   segment=segment, **extra)
    if is_batch(input):
        upscale_batch(input, output, progress=not quiet, say=say, **options)
        return
    out = upscale_file(input, output, progress=not quiet, say=say, **options)
    say(f"wrote {out}")
