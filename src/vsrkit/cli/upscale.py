"""``vsrkit upscale``: a video file or image folder in, a 4x (or the model's scale) video or folder out."""

from __future__ import annotations

from pathlib import Path

import click

from vsrkit.cli.common import say
from vsrkit.errors import VsrkitError
from vsrkit.pipeline import upscale_file


@click.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Output video (.mp4/.mkv/.mov) or folder for PNG frames.")
@click.option("-m", "--model", default=None, help="Model name (see `vsrkit models`); default basicvsr-reds4.")
@click.option("-w", "--weights", type=click.Path(path_type=Path), default=None,
              help="Checkpoint file; alone, the architecture is recognised from it.")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime"]), default="torch", show_default=True,
              help="onnxruntime: run an exported model (--weights model.onnx, from `vsrkit export`).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="auto: bf16 where this machine runs it natively and faster and the model's measured loss is "
                   "within budget, else fp32 (it says which). fp16 on CPU runs as bf16.")
@click.option("--threads", type=int, default=None, help="CPU threads for the model (default: torch's).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (slow start; see the README).")
@click.option("--layout", type=click.Choice(["channels-last", "contiguous"]), default="channels-last",
              show_default=True, help="Memory format of weights and activations.")
@click.option("--tile", type=int, default=None, help="Tile size in input pixels (0: whole frames).")
@click.option("--tile-overlap", type=int, default=None, help="Pixels shared by neighbouring tiles.")
@click.option("--chunk", type=int, default=None, help="Frames per temporal chunk for sequence models.")
@click.option("--chunk-overlap", type=int, default=None, help="Context frames on each side of a chunk.")
@click.option("--max-memory", type=float, default=None,
              help="Memory budget in GiB (RAM on CPU, device memory on GPU): picks the tile size.")
@click.option("--crf", type=int, default=18, show_default=True, help="H.264 quality (lower is better).")
@click.option("--max-frames", type=int, default=None, help="Stop after this many frames.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no notes (errors are still printed).")
def upscale(input: Path, output: Path, model, weights, backend, device, precision, threads, compile_, layout, tile, tile_overlap,
            chunk, chunk_overlap, max_memory, crf, max_frames, overwrite, quiet) -> None:
    """Upscale INPUT (a video file or a folder of images) into OUTPUT."""
    if weights is not None and not weights.is_file():
        raise VsrkitError(f"checkpoint not found: {weights}")
    out = upscale_file(
        input, output, model=model, weights=weights, backend=backend, device=device, precision=precision, threads=threads,
        compile=compile_, channels_last=layout == "channels-last", tile=tile,
        tile_overlap=tile_overlap, chunk=chunk, chunk_overlap=chunk_overlap, max_memory=max_memory, crf=crf, overwrite=overwrite,
        max_frames=max_frames, progress=not quiet, say=(lambda _msg: None) if quiet else say,
    )
    say(f"wrote {out}")
