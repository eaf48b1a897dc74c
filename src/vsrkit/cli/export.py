"""``vsrkit export MODEL -o model.onnx``: a model as an ONNX file that ``vsrkit upscale --backend onnxruntime``
(or any ONNX runtime) can run."""

from __future__ import annotations

from pathlib import Path

import click

from vsrkit.cli.common import say
from vsrkit.errors import VsrkitError


@click.command("export")
@click.argument("model", required=False)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="The .onnx file to write.")
@click.option("-w", "--weights", type=click.Path(path_type=Path), default=None,
              help="Checkpoint file; alone, the architecture is recognised from it.")
@click.option("--size", type=int, default=None,
              help="Input side in pixels of fixed-size exports (BasicVSR, IconVSR, VRT; default 128); frame, "
                   "window and recurrent models take any size.")
@click.option("--frames", type=int, default=None, help="Clip length of BasicVSR, IconVSR and VRT exports.")
@click.option("--clip-overlap", type=int, default=None, help="Frames shared by neighbouring clips when run.")
@click.option("--deform-op", is_flag=True, help="Deformable convolutions as ONNX DeformConv (opset 19).")
@click.option("--opset", type=int, default=None, help="ONNX opset (default 17, 19 with --deform-op).")
@click.option("--no-check", is_flag=True, help="Skip the onnxruntime-against-PyTorch check.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def export(model, output: Path, weights, size, frames, clip_overlap, deform_op, opset, no_check, overwrite) -> None:
    """Export MODEL (a name, or the architecture in --weights) to ONNX, checked against PyTorch."""
    from vsrkit.export.onnx import export_onnx
    from vsrkit.hub.loader import load_model

    if model is None and weights is None:
        raise VsrkitError("give a model name or --weights FILE")
    if weights is not None and not weights.is_file():
        raise VsrkitError(f"checkpoint not found: {weights}")
    if output.exists() and not overwrite:
        raise VsrkitError(f"{output} exists (use --overwrite to replace it)")
    for opt, v in (("--size", size), ("--frames", frames), ("--opset", opset)):
        if v is not None and v < 1:
            raise VsrkitError(f"{opt} must be positive, got {v}")
    if clip_overlap is not None and clip_overlap < 0:
        raise VsrkitError(f"--clip-overlap must be >= 0, got {clip_overlap}")
    net = load_model(model, weights=weights)
    meta = export_onnx(net, output, size=size, frames=frames, clip_overlap=clip_overlap, deform_op=deform_op,
                       opset=opset, check=not no_check)
    shape = f"clips of {meta['frames']} frames, " if meta["frames"] else ""
    shape += f"{meta['size']}x{meta['size']} tiles" if meta["size"] else "any size"
    check = "" if no_check else f"; onnxruntime vs PyTorch max abs error {meta['max_abs_error']:.1e}"
    say(f"wrote {output} ({meta['model']}, {meta['exported_kind']}, {shape}{check})")
