"""``vsrkit upscale``: a video file or image folder in, a 4x (or the model's scale) video or folder out."""

from __future__ import annotations

from pathlib import Path

import click

from vsrkit.cli.common import say
from vsrkit.errors import VsrkitError
from vsrkit.hub.registry import CPU_DEFAULT_MODEL, DEFAULT_MODEL, FAST_MODEL
from vsrkit.pipeline import upscale_file


@click.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Output video (.mp4/.mkv/.mov) or folder for PNG frames.")
@click.option("-m", "--model", default=None,
              help=f"Model name (see `vsrkit models`); default {DEFAULT_MODEL} with a GPU, {CPU_DEFAULT_MODEL} on a CPU.")
@click.option("--fast", is_flag=True, help=f"The fast model trained by vsrkit and shipped with it ({FAST_MODEL}).")
@click.option("-w", "--weights", type=click.Path(path_type=Path), default=None,
              help="Checkpoint file; alone, the architecture is recognised from it.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="fp16 on CPU runs as bf16.")
@click.option("--tile", type=int, default=None, help="Tile size in input pixels (0: whole frames).")
@click.option("--tile-overlap", type=int, default=None, help="Pixels shared by neighbouring tiles.")
@click.option("--chunk", type=int, default=None, help="Frames per temporal chunk for sequence models.")
@click.option("--chunk-overlap", type=int, default=None, help="Context frames on each side of a chunk.")
@click.option("--max-memory", type=float, default=None,
              help="Memory budget in GiB (RAM on CPU, device memory on GPU): picks the tile size.")
@click.option("--crf", type=int, default=18, show_default=True, help="H.264 quality (lower is better).")
@click.option("--max-frames", type=int, default=None, help="Stop after this many frames.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def upscale(input: Path, output: Path, model, fast, weights, device, precision, tile, tile_overlap, chunk, chunk_overlap,
            max_memory, crf, max_frames, overwrite, quiet) -> None:
    """Upscale INPUT (a video file or a folder of images) into OUTPUT."""
    if fast:
        if model is not None or weights is not None:
            raise VsrkitError("give either --fast or --model/--weights, not both")
        model = FAST_MODEL
    if weights is not None and not weights.is_file():
        raise VsrkitError(f"checkpoint not found: {weights}")
    out = upscale_file(
        input, output, model=model, weights=weights, device=device, precision=precision, tile=tile,
        tile_overlap=tile_overlap, chunk=chunk, chunk_overlap=chunk_overlap, max_memory=max_memory, crf=crf, overwrite=overwrite,
        max_frames=max_frames, progress=not quiet, say=say,
    )
    say(f"wrote {out}")
