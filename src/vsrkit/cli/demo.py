"""``vsrkit demo``: the main job on a real sample clip, compared with bicubic."""

from __future__ import annotations

from pathlib import Path

import click

from vsrkit.cli.common import say
from vsrkit.demo import run_demo


@click.command()
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), default=Path("vsrkit-demo"), show_default=True)
@click.option("--frames", type=int, default=20, show_default=True, help="Frames of the sample clip to use.")
@click.option("-m", "--model", default="basicvsr-reds4", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
def demo(output_dir: Path, frames: int, model: str, device: str) -> None:
    """Upscale a real sample clip (with audio) 4x and compare it with bicubic."""
    run_demo(output_dir, frames=frames, model=model, device=device, say=say)
