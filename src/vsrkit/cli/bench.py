"""``vsrkit bench``: speed, memory, FLOPs and roofline of models; what a whole upscale adds."""

from __future__ import annotations

from pathlib import Path

import click

from vsrkit.cli.common import say
from vsrkit.errors import VsrkitError


MAX_CALLS = 1000  # --frames, --warmup, --repeat


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@click.command()
@click.option("-m", "--model", "models", multiple=True, required=True, help="Model name; repeat or comma-separate.")
@click.option("-w", "--weights", type=click.Path(path_type=Path), default=None,
              help="Checkpoint (one model only); without it the architecture runs with random weights.")
@click.option("--size", "sizes", multiple=True, default=("320x180",), show_default=True,
              help="Input WIDTHxHEIGHT; repeat or comma-separate.")
@click.option("--device", "devices", multiple=True, default=("auto",), show_default=True, help="cpu, cuda, mps, auto.")
@click.option("--precision", "precisions", multiple=True, default=("fp32",), show_default=True,
              help="fp32, bf16, fp16; repeat or comma-separate.")
@click.option("--frames", type=int, default=8, show_default=True, help="Frames per call of sequence models.")
@click.option("--warmup", type=int, default=2, show_default=True, help="Untimed calls first.")
@click.option("--repeat", type=int, default=5, show_default=True, help="Timed calls (the median is reported).")
@click.option("--clip", type=click.Path(path_type=Path), default=None,
              help="Also time a whole `vsrkit upscale` of this clip against the model alone.")
@click.option("--clip-frames", type=int, default=8, show_default=True, help="Frames of --clip to upscale.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Write the results as JSON.")
@click.option("--backend", "backends", multiple=True, default=(),
              help="Compare backends on the CPU (torch, onnxruntime, openvino, or all): one table per model of "
                   "backend x precision through the engine.")
@click.option("--quality", type=click.Path(path_type=Path), default=None,
              help="With --backend: an HR clip; its first --frames frames, BI-degraded to --size, are the input, "
                   "and the table adds each variant's Y PSNR change from PyTorch fp32.")
@click.option("--calibrate", type=click.Path(path_type=Path), default=None,
              help="With --backend openvino: int8 calibration frames (default: the input frames).")
def bench(models, weights, sizes, devices, precisions, frames, warmup, repeat, clip, clip_frames, json_out, backends,
          quality, calibrate) -> None:
    """Median ms/frame, fps, peak memory, parameters, FLOPs/frame and roofline fraction per model."""
    from vsrkit.bench.run import format_table, parse_size, run_bench
    from vsrkit.eval.run import write_json

    for opt, v, low in (("--frames", frames, 1), ("--warmup", warmup, 0), ("--repeat", repeat, 1),
                        ("--clip-frames", clip_frames, 1)):
        if v < low:
            raise VsrkitError(f"{opt} must be at least {low}, got {v}")
    # more calls than this change no median, and a clip of more frames is run in several calls
    for opt, v in (("--frames", frames), ("--warmup", warmup), ("--repeat", repeat)):
        if v > MAX_CALLS:
            raise VsrkitError(f"{opt} must be at most {MAX_CALLS}, got {v}")
    if weights is not None and not weights.is_file():
        raise VsrkitError(f"checkpoint not found: {weights}")
    if clip is not None and not clip.exists():
        raise VsrkitError(f"{clip}: no such file or folder")
    if backends:  # --- backend comparison (issue 23): vsrkit.bench.backends ---
        from vsrkit.bench.backends import format_tables, parse_backends, run_backends

        for p in (quality, calibrate):
            if p is not None and not p.exists():
                raise VsrkitError(f"{p}: no such file or folder")
        names = parse_backends(_split(backends))
        for size in [parse_size(s) for s in _split(sizes)]:
            result = run_backends(_split(models), size, names, weights=weights, frames=frames, warmup=max(warmup, 1),
                                  repeat=repeat, quality=quality, calibrate=calibrate, say=say)
            click.echo(format_tables(result))
        if json_out is not None:
            say(f"wrote {write_json(result, json_out)}")
        return
    result = run_bench(_split(models), [parse_size(s) for s in _split(sizes)], _split(devices), _split(precisions),
                       weights=weights, frames=frames, warmup=warmup, repeat=repeat, clip=clip,
                       clip_frames=clip_frames, say=say)
    click.echo(format_table(result))
    if json_out is not None:
        say(f"wrote {write_json(result, json_out)}")
