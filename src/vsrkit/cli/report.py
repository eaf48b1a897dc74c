"""``vsrkit report``: one self-contained HTML page from eval and bench results."""

from __future__ import annotations

from pathlib import Path

import click

from vsrkit.cli.common import say
from vsrkit.errors import VsrkitError

BI_MODEL, REAL_MODEL = "rlsp-fast-x4", "rlsp-fast-real-x4"  # the default pair of --video: trained on clean / real-world


@click.command()
@click.argument("results", nargs=-1, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="The HTML file to write.")
@click.option("--title", default="vsrkit report", show_default=True, help="Page title.")
@click.option("--video", "videos", multiple=True, type=click.Path(path_type=Path),
              help="A real clip with no ground truth: show the same crop of one frame upscaled by bicubic and by "
                   "each of --models, with the slider (repeatable).")
@click.option("--models", default=f"{BI_MODEL},{REAL_MODEL}", show_default=True,
              help="--video: comma list of the models to show beside bicubic (a BI model, a real-world model).")
@click.option("--frame", type=int, default=None, help="--video: the frame shown (default: the 11th, or the last).")
@click.option("--crop-size", type=int, default=96, show_default=True, help="--video: the crop's side in output pixels.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
def report(results, output, title, videos, models, frame, crop_size, device) -> None:
    """Write RESULTS (JSON of `vsrkit eval --json` and `vsrkit bench --json`) as one offline HTML page; --video adds
    crops of real clips, upscaled by bicubic and by --models side by side (e.g. a BI and a real-world model)."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise VsrkitError("vsrkit report needs matplotlib: pip install 'vsrkit[report]'")
    if output.suffix.lower() not in (".html", ".htm"):
        raise VsrkitError(f"{output}: the report is an HTML file (.html)")
    if any(Path(r).resolve() == output.resolve() for r in (*results, *videos)):
        raise VsrkitError(f"{output}: is one of the inputs; write the report elsewhere")
    if not results and not videos:
        raise VsrkitError("give results files (vsrkit eval --json / vsrkit bench --json) or --video CLIP")
    for v in videos:
        if not v.exists():
            raise VsrkitError(f"{v}: no such video file or folder")
    from vsrkit.eval.report import write_report

    crops = []
    if videos:
        from vsrkit.eval.compare import video_crops

        names = [m.strip() for m in models.split(",") if m.strip()]
        for v in videos:
            say(f"{v}: bicubic, {', '.join(names)}")
            crops.append(video_crops(v, names, frame=frame, size=crop_size, device=device))
    say(f"wrote {write_report(list(results), output, title, crops)}")
