"""``vsrkit eval``: PSNR/SSIM (and flicker) of a model on a dataset, with the field's protocols."""

from __future__ import annotations

from pathlib import Path

import click

from vsrkit.cli.common import say
from vsrkit.errors import VsrkitError


@click.command("eval")
@click.option("-m", "--model", default=None,
              help="Model name (see `vsrkit models`), or an architecture with --weights; optional with --weights.")
@click.option("-w", "--weights", type=click.Path(path_type=Path), default=None, help="Checkpoint file.")
@click.option("--gt", required=True, type=click.Path(path_type=Path),
              help="Ground truth: one folder of frames per clip (or a folder of images: an image set).")
@click.option("--lr", type=click.Path(path_type=Path), default=None, help="LR frames, mirroring --gt.")
@click.option("--degrade", "degradation", default=None,
              help="Make the LR frames from the GT: bi, bd, rlsp (the RLSP authors' Vid4 recipe, as "
                   "`vsrkit degrade --mode rlsp`), or realworld (RealBasicVSR's random pipeline, --seed).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="--degrade realworld: the seed of the fixed degraded version (one stream per clip name).")
@click.option("--crf", type=float, default=None,
              help="Then compress each LR clip with H.264 at this constant rate factor (libx264, preset medium, "
                   "yuv420p; web video is about 23-30), as real videos are.")
@click.option("--metric", default="psnr,ssim", show_default=True, help="Comma list of psnr, ssim, flicker.")
@click.option("--crop", type=int, default=None, help="Border pixels dropped on each side (default 0).")
@click.option("--channel", default=None, help="y (BT.601, MATLAB rgb2ycbcr; default) or rgb.")
@click.option("--protocol", default=None, help="vid4 (Y), reds4 (RGB, 100 frames), vimeo (Y, centre frame of 7).")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Write per-frame, per-clip and overall values as JSON (and OUT.csv beside it).")
@click.option("--csv", "csv_out", type=click.Path(path_type=Path), default=None,
              help="Per-frame CSV (default: beside --json, same name with .csv).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16", "int8", "auto"]), default="fp32", show_default=True,
              help="int8 and auto: --backend openvino only.")
@click.option("--backend", type=click.Choice(["torch", "openvino"]), default="torch", show_default=True,
              help="openvino: the model converted to OpenVINO on the CPU (pip install 'vsrkit[openvino]').")
@click.option("--calibrate", type=click.Path(path_type=Path), default=None,
              help="int8 (--backend openvino): calibration frames from this video or folder (not the test set).")
@click.option("--force-precision", is_flag=True, help="Run bf16/int8 even where its measured loss is over budget.")
@click.option("--tile", type=int, default=None, help="Tile size in input pixels (as vsrkit upscale).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def eval_(model, weights, gt, lr, degradation, seed, crf, metric, crop, channel, protocol, json_out, csv_out, device,
          precision, backend, calibrate, force_precision, tile, quiet) -> None:
    """Score MODEL on a dataset: PSNR/SSIM averaged per clip, then over clips (as BasicSR and mmagic)."""
    from vsrkit.eval.protocols import resolve_protocol
    from vsrkit.eval.run import evaluate, parse_metrics, write_csv, write_json

    if model is None and weights is None:
        raise VsrkitError("give --model NAME, or --weights FILE (its architecture is recognised from the file)")
    if weights is not None and not weights.is_file():
        raise VsrkitError(f"checkpoint not found: {weights}")
    if precision in ("int8", "auto") and backend != "openvino":
        raise VsrkitError(f"--precision {precision} runs on --backend openvino only")
    if calibrate is not None and not calibrate.exists():
        raise VsrkitError(f"--calibrate {calibrate}: no such file or folder")
    extra = dict(backend=backend, calibrate=calibrate, force_precision=force_precision) if backend != "torch" else {}
    proto = resolve_protocol(protocol, channel, crop)
    metrics = parse_metrics(metric)
    if json_out is not None and csv_out is None:
        csv_out = json_out.with_suffix(".csv")
    result = evaluate(model, gt, lr, degradation, weights=weights, metrics=metrics, protocol=proto, device=device,
                      precision=precision, tile=tile, progress=not quiet, say=say, seed=seed, crf=crf,
                      **extra)
    click.echo(format_summary(result))
    if json_out is not None:
        say(f"wrote {write_json(result, json_out)}")
    if csv_out is not None:
        say(f"wrote {write_csv(result, csv_out)}")


def format_summary(result: dict) -> str:
    """The per-clip table and the overall line that `vsrkit eval` prints."""
    from vsrkit.eval.run import columns

    metrics = result["protocol"]["metrics"]
    cols = columns(metrics)
    fmt = {"psnr": "{:.4f}", "ssim": "{:.4f}", "flicker": "{:.4f}", "warp": "{:.4f}", "warp_gt": "{:.4f}"}

    def cell(v, k):
        return "-" if v is None else fmt[k].format(v)

    width = max([len("overall")] + [len(c["name"]) for c in result["clips"]])
    lines = [f"{result['model']['name']} on {result['dataset']['gt']} ({result['protocol']['description']})",
             f"{'clip':<{width}}  {'frames':>6}  " + "  ".join(f"{c:>10}" for c in cols)]
    for c in result["clips"]:
        lines.append(f"{c['name']:<{width}}  {c['frames']:>6}  " + "  ".join(f"{cell(c.get(k), k):>10}" for k in cols))
    o = result["overall"]
    lines.append(f"{'overall':<{width}}  {result['dataset']['frames']:>6}  "
                 + "  ".join(f"{cell(o.get(k), k):>10}" for k in cols))
    units = "PSNR in dB" + ("; flicker, warp, warp_gt: 1000 x MSE along the GT's motion" if "flicker" in metrics else "")
    lines.append(f"({units}; {o['ms_per_frame']:.1f} ms/frame on {result['run']['device']})")
    return "\n".join(lines)
