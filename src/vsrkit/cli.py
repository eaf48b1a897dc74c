"""The ``vsrkit`` command: upscale a video, list models, run the demo."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from vsrkit.errors import VsrkitError


def _say(msg: str) -> None:
    click.echo(f"vsrkit: {msg}", err=True)


class _Group(click.Group):
    """Every VsrkitError (and an interrupted run) becomes one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VsrkitError as e:
            _say(f"error: {e}")
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            _say("interrupted; no output was left behind")
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vsrkit")
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def main(verbose: bool) -> None:
    """Video super-resolution: BasicVSR, IconVSR, EDVR, RLSP, edge-SR and VRT on real videos."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="vsrkit: %(levelname)s: %(message)s")


@main.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Output video (.mp4/.mkv/.mov) or folder for PNG frames.")
@click.option("-m", "--model", default=None, help="Model name (see `vsrkit models`); default basicvsr-reds4.")
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
def upscale(input: Path, output: Path, model, weights, device, precision, tile, tile_overlap, chunk, chunk_overlap,
            max_memory, crf, max_frames, overwrite, quiet) -> None:
    """Upscale INPUT (a video file or a folder of images) into OUTPUT."""
    from vsrkit.engine import upscale_file

    if weights is not None and not weights.is_file():
        raise VsrkitError(f"checkpoint not found: {weights}")
    out = upscale_file(
        input, output, model=model, weights=weights, device=device, precision=precision, tile=tile,
        tile_overlap=tile_overlap, chunk=chunk, chunk_overlap=chunk_overlap, max_memory=max_memory, crf=crf, overwrite=overwrite,
        max_frames=max_frames, progress=not quiet, say=_say,
    )
    _say(f"wrote {out}")


@main.command()
def models() -> None:
    """List the models: name, family, temporal kind, scale, parameters, weights and where from."""
    from vsrkit.catalog import all_entries
    from vsrkit.hub import describe_entry

    rows = [describe_entry(f, e) for f, e in all_entries()]
    cols = [("name", "name"), ("family", "family"), ("temporal", "temporal"), ("scale", "scale"),
            ("params", "params"), ("weights", "weights"), ("source", "source")]
    for r in rows:
        r["params"] = f"{r['params'] / 1e6:.2f}M" if r["params"] >= 1e5 else f"{r['params']:,}"
    widths = {k: max(len(h), *(len(str(r[k])) for r in rows)) for h, k in cols}
    click.echo("  ".join(h.upper().ljust(widths[k]) for h, k in cols))
    for r in rows:
        line = "  ".join(str(r[k]).ljust(widths[k]) for _, k in cols)
        click.echo(line + (f"  # {r['summary']}" if r["summary"] else ""))
    click.echo("weights: yes = found here; download = fetched from the official URL on first use; "
               "random = architecture only, pass --weights FILE")


@main.command()
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), default=Path("vsrkit-demo"), show_default=True)
@click.option("--frames", type=int, default=20, show_default=True, help="Frames of the sample clip to use.")
@click.option("-m", "--model", default="basicvsr-reds4", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
def demo(output_dir: Path, frames: int, model: str, device: str) -> None:
    """Upscale a real sample clip (with audio) 4x and compare it with bicubic."""
    from vsrkit.demo import run_demo

    run_demo(output_dir, frames=frames, model=model, device=device, say=_say)


if __name__ == "__main__":  # pragma: no cover
    main()
