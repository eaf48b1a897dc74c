"""OpenVINO against vsrkit's fastest PyTorch path on the same CPU, in one run (issue 23).

Sections (all by default; pick with ``--sections``):

- ``routes``: how the OpenVINO model is read: straight from the PyTorch module (``ov.convert_model``) or from
  vsrkit's ONNX export, for RLSP 7-64's step and BasicVSR's backward step at the input size: conversion time,
  time per call (interleaved) and the largest difference of their outputs;
- ``blocks``: what converting BasicVSR's passes on blocks of L frames costs (L = 1, 2, 4; the engine's blocks
  are 24 frames), and what running it as fixed clips tiled into squares (as ``vsrkit export`` does) costs
  against the exact one-frame steps, in time and in PSNR against the exact result;
- ``profile`` (BasicVSR): where one frame's step spends its time, graph by graph (alignment, trunks, fusion and
  upsampling), PyTorch fp32/bf16 against OpenVINO fp32/bf16/int8, at the input size;
- ``quality``: Y PSNR against the ground truth on held-out real clips (``--quality-clips``, BI-degraded x4 to
  the input size, centre crop) of PyTorch fp32/bf16 and OpenVINO fp32/bf16/int8 (int8 calibrated on
  ``--calibrate``, not those clips); the losses against fp32 are what the entries keep (``ModelEntry.losses_db``);
- ``engine``: ``vsrkit bench --backend torch,openvino`` on the same frames (the engine alone, frames in memory);
- ``speed``: ``vsrkit upscale`` end to end (decode, engine, H.264 encode) of a 320x180 input (``--input``; by
  default Big Buck Bunny BI-degraded to it), ``--frames`` frames for BasicVSR, ``--frames-fast`` for the others,
  per variant, after a warm-up run (so conversion and calibration are cached); repeats interleaved, the
  median of each: the whole run, its start (to the first frame written) and the steady time per frame after
  it; ratios against the fastest PyTorch variant of the same run. Frames per second are on ``--threads`` cores.

The CPU's name and flags and the load average (before and after) are printed: the machine may be shared.

    python benchmarks/bench_openvino.py [--models basicvsr-reds4,rlsp-7-64,rlsp-fast-x4] [--threads 2]
        [--sections routes,blocks,quality,speed] [--frames 21] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("VSRKIT_OFFLINE", "1")
import vsrkit  # noqa: E402
from vsrkit.bench.backends import _y_psnr, machine  # noqa: E402
from vsrkit.bench.run import build_model  # noqa: E402
from vsrkit.export import openvino as O  # noqa: E402
from vsrkit.infer import make_config, upscale_tensor  # noqa: E402
from vsrkit.models.spec import Block  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CALIBRATE = SHARED / "frames" / "reds_demo_000_lr"
HELD_OUT = [SHARED / "clips" / "bigbuckbunny.mp4", SHARED / "clips" / "Megamind.avi", SHARED / "clips" / "vtest.avi"]

warnings.simplefilter("ignore")


def say(msg: str) -> None:
    print(msg, flush=True)


def model(name: str) -> torch.nn.Module:
    """Pretrained weights where they are on this machine, else the architecture with random weights."""
    try:
        m = vsrkit.load_model(name, progress=False)
        m.weights_note = "pretrained"
    except vsrkit.VsrkitError:
        m = build_model(name)
        m.weights_note = "random weights"
    return m.eval()


def held_out(clip: Path, n: int, h: int, w: int, scale: int, skip: int = 40) -> tuple[torch.Tensor, list[np.ndarray]]:
    """n frames of ``clip`` after the first ``skip`` (title cards, fades), centre-cropped to (h, w) x scale and
    BI-degraded: (LR frames, HR ground truth)."""
    from vsrkit.bench.backends import _frames

    with tempfile.TemporaryDirectory(prefix="vsrkit-bench-ov-") as tmp:
        from vsrkit.io import VideoReader
        from vsrkit.eval.run import encode_png

        with VideoReader(clip) as reader:  # the frames after ``skip``, as a PNG folder
            k = 0
            for i, frame in enumerate(reader):
                if i >= skip:
                    Path(tmp, f"{k:08d}.png").write_bytes(encode_png(np.ascontiguousarray(frame.image[..., :3])))
                    k += 1
                if k == n:
                    break
        return _frames((h, w), scale, 3, n, tmp, 0)


def lr_folder(clip: Path, n: int, h: int, w: int, folder: Path) -> Path:
    """A PNG folder of n LR frames (h x w, BI x4 of the clip's centre crop): the speed runs' input."""
    from vsrkit.eval.run import encode_png

    x, _ = held_out(clip, n, h, w, 4, skip=0)
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(x):
        img = (f.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        (folder / f"{i:08d}.png").write_bytes(encode_png(np.ascontiguousarray(img)))
    return folder


def ov_model(m, precision, calib, cache, **kw):
    return O.OpenVinoModel(m, precision, calibration=calib if precision == "int8" else None, cache=cache, say=say, **kw)


# ------------------------------------------------------------------------------------------------- routes
def routes(m: torch.nn.Module, h: int, w: int, repeats: int) -> list[dict]:
    out = []
    g = torch.Generator().manual_seed(0)
    spec = m.spec
    if spec.temporal.kind == "recurrent":
        x = torch.rand(1, spec.temporal.window, spec.channels, h, w, generator=g)
        with torch.no_grad():
            _, st = m.step(x, None)
        module, example = O._Step(m), [x, *[s + 0.1 for s in st]]
        name = "step"
    else:
        module, name = O._BackwardBody(m), "backward body"
        example = [torch.rand(1, 3, h, w, generator=g), torch.rand(1, m.num_feat, h, w, generator=g)]
    dims = [list(t.shape) for t in example]
    core = O._core(None)
    compiled, conv = {}, {False: [], True: []}
    for via in (True, False, True, False):  # conversions interleaved too; the faster of two each
        t0 = time.perf_counter()
        ir = O._convert(module, example, dims, via_onnx=via)
        conv[via].append(time.perf_counter() - t0)
        compiled[via] = core.compile_model(ir, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                       "INFERENCE_NUM_THREADS": str(torch.get_num_threads())}).create_infer_request()
    conv = {k: min(v) for k, v in conv.items()}
    feed = [t.numpy() for t in example]
    times = {False: [], True: []}
    for r in compiled.values():
        r.infer(feed)
    for _ in range(repeats):
        for via, r in compiled.items():
            t0 = time.perf_counter()
            r.infer(feed)
            times[via].append(time.perf_counter() - t0)
    a = [np.array(compiled[False].get_output_tensor(i).data) for i in range(len(compiled[False].model_outputs))]
    b = [np.array(compiled[True].get_output_tensor(i).data) for i in range(len(compiled[True].model_outputs))]
    diff = max(float(np.abs(p - q).max()) for p, q in zip(a, b))
    for via in (False, True):
        out.append({"graph": name, "route": "onnx" if via else "pytorch", "convert_s": conv[via],
                    "ms_per_call": 1e3 * statistics.median(times[via]), "max_abs_diff": diff})
    return out


# ------------------------------------------------------------------------------------------------- blocks
def block_cost(m: torch.nn.Module, h: int, w: int, lengths: list[int]) -> list[dict]:
    """Conversion time of BasicVSR's backward pass on a block of L frames (with a frame after it)."""
    class Back(torch.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.model, self.n = m, n

        def forward(self, x, state):
            return m.spec.passes.backward(self.model, x, state, Block(0, self.n, self.n + 1))

    out = []
    for L in lengths:
        ex = [torch.rand(1, L + 1, 3, h, w), torch.rand(1, m.num_feat, h, w)]
        t0 = time.perf_counter()
        O._convert(Back(L), ex, [list(t.shape) for t in ex])
        out.append({"block": L, "convert_s": time.perf_counter() - t0})
        say(f"  backward pass on a block of {L} frame(s): converted in {out[-1]['convert_s']:.1f} s")
    return out


def clip_vs_steps(m, x: torch.Tensor, precision: str, cache) -> dict:
    """BasicVSR as fixed clips in square tiles (8 frames, 128 px) against its exact one-frame steps."""
    res = {}
    for label, kw in (("steps", {}), ("clips", dict(stepwise=False, size=128, frames=8))):
        ovm = ov_model(m, precision, None, cache, **kw)
        cfg = make_config("cpu", channels_last=False)
        if ovm.size:
            cfg = make_config("cpu", tile=ovm.size, tile_overlap=16, channels_last=False)
        upscale_tensor(ovm, x[:2], cfg)  # conversion, compilation
        t0 = time.perf_counter()
        y = upscale_tensor(ovm, x, cfg)
        res[label] = {"ms_per_frame": 1e3 * (time.perf_counter() - t0) / x.shape[0], "out": y}
    mse = float(((res["clips"]["out"].clamp(0, 1) - res["steps"]["out"].clamp(0, 1)) ** 2).mean())
    return {"precision": precision, "steps_ms_per_frame": res["steps"]["ms_per_frame"],
            "clips_ms_per_frame": res["clips"]["ms_per_frame"],
            "clips_psnr_vs_exact": math.inf if mse == 0 else 10 * math.log10(1 / mse)}


# ------------------------------------------------------------------------------------------------ profile
def profile(m, h: int, w: int, repeats: int, calib, cache) -> list[dict]:
    """Where a stepwise bidirectional model's time goes: ms per call of each graph of one frame's step
    (alignment: SpyNet's flow and the warp; body: the trunk, and forward: fusion and upsampling) at ``h x w``,
    PyTorch fp32/bf16 (autocast, as the engine runs it) against OpenVINO fp32/bf16/int8; calls interleaved,
    the median of ``repeats``."""
    g = torch.Generator().manual_seed(0)
    c, nf = m.spec.channels, m.num_feat
    two, lr = torch.rand(1, 2, c, h, w, generator=g), torch.rand(1, c, h, w, generator=g)
    st, bf = torch.rand(1, nf, h, w, generator=g), torch.rand(1, nf, h, w, generator=g)
    inputs = {"align-backward": (two, st), "body-backward": (lr, st), "align-forward": (two, st),
              "body-forward": (lr, st, bf)}
    cl = torch.channels_last  # as the engine runs PyTorch on the CPU (oneDNN's fast kernels need it)
    torch_mods = {"align-backward": O._Align(m, True), "body-backward": O._BackwardBody(m),
                  "align-forward": O._Align(m, False), "body-forward": O._ForwardBody(m)}
    torch_mods = {k: copy.deepcopy(v).to(memory_format=cl) for k, v in torch_mods.items()}
    calls: dict[tuple[str, str], Callable[[], object]] = {}
    cl_inputs = {k: tuple(a.contiguous(memory_format=cl) if a.dim() == 4 else a for a in v) for k, v in inputs.items()}
    for p in ("fp32", "bf16"):
        for part, mod in torch_mods.items():
            def call(mod=mod, args=cl_inputs[part], p=p):
                with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=p == "bf16"):
                    return mod(*args)
            calls[(f"torch {p}", part)] = call
    for p in O.PRECISIONS:
        ovm = ov_model(m, p, calib, cache)
        ovm.prepare(h, w)
        for part in torch_mods:
            graph = ovm.graph(two, part)
            calls[(f"openvino {p}", part)] = lambda graph=graph, args=inputs[part]: graph(*args)
    for f in calls.values():  # warm-up
        f()
    times: dict[tuple[str, str], list[float]] = {k: [] for k in calls}
    for _ in range(repeats):
        for k, f in calls.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    rows = []
    for variant in dict.fromkeys(k[0] for k in calls):
        ms = {part: 1e3 * statistics.median(times[(variant, part)]) for part in torch_mods}
        rows.append({"variant": variant, "ms_per_call": ms, "ms_per_frame": sum(ms.values())})
    return rows


# ------------------------------------------------------------------------------------------------- quality
def quality(name: str, m, clips: list[Path], n: int, h: int, w: int, calib, cache) -> dict:
    scale = m.spec.scale
    rows: dict[str, list[float]] = {}
    for clip in clips:
        x, gts = held_out(clip, n, h, w, scale)
        if m.spec.channels == 1:
            x = x[:, :1]
        say(f"  {name} on {clip.name}: {x.shape[0]} frames of {w}x{h}")
        variants = [("torch fp32", lambda: (m, make_config("cpu"))), ("torch bf16", lambda: (m, make_config("cpu", "bf16")))]
        for p in O.PRECISIONS:
            variants.append((f"openvino {p}", lambda p=p: (ov_model(m, p, calib, cache), make_config("cpu", channels_last=False))))
        for label, make in variants:
            net, cfg = make()
            t0 = time.perf_counter()
            v = _y_psnr(upscale_tensor(net, x, cfg), gts)
            rows.setdefault(label, []).append(v)
            say(f"    {label}: {v:.4f} dB ({time.perf_counter() - t0:.0f} s)")
    mean = {k: float(np.mean(v)) for k, v in rows.items()}
    loss = {"bf16": mean["openvino fp32"] - mean["openvino bf16"], "int8": mean["openvino fp32"] - mean["openvino int8"],
            "torch_bf16": mean["torch fp32"] - mean["torch bf16"],
            "openvino_fp32_vs_torch_fp32": mean["torch fp32"] - mean["openvino fp32"]}
    return {"model": name, "clips": [c.name for c in clips], "frames": n, "size": f"{w}x{h}", "psnr_y": mean,
            "per_clip": rows, "loss_db": loss}


# ------------------------------------------------------------------------------------------------- speed
def speed(name: str, m, src: Path, frames: int, repeats: int, calib_src: Path) -> dict:
    """``vsrkit upscale`` of ``frames`` frames of ``src`` to H.264 per variant: the whole run's time, its start
    (to the first frame written: loading, cache reads, compilation, the first block of two-pass models) and
    the steady time per frame after it."""
    from vsrkit.pipeline import upscale_file

    variants = [("torch", "fp32"), ("torch", "bf16"), ("openvino", "fp32"), ("openvino", "bf16"), ("openvino", "int8")]
    runs: dict[tuple[str, str], list[tuple[float, float, float]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="vsrkit-bench-ov-") as tmp:
        def run(backend, precision):
            stamps = []
            t0 = time.perf_counter()
            upscale_file(src, Path(tmp) / "out.mp4", model=m, backend=backend, device="cpu",
                         precision=precision, max_frames=frames, progress=False, overwrite=True, say=lambda _s: None,
                         calibrate=calib_src if backend == "openvino" else None,
                         force_precision=backend == "openvino", on_frame=lambda _k: stamps.append(time.perf_counter()))
            wall = time.perf_counter() - t0
            steady = (stamps[-1] - stamps[0]) / max(len(stamps) - 1, 1)
            return wall, stamps[0] - t0, steady
        for v in variants:  # warm-up: conversion, calibration, compilation are cached after it
            say(f"  {name} {v[0]} {v[1]}: warm-up {run(*v)[0]:.1f} s")
        for _ in range(repeats):
            for v in variants:
                runs[v].append(run(*v))
    key = {v: f"{v[0]} {v[1]}" for v in variants}
    wall = {key[v]: statistics.median(r[0] for r in rs) for v, rs in runs.items()}
    start = {key[v]: statistics.median(r[1] for r in rs) for v, rs in runs.items()}
    steady = {key[v]: statistics.median(r[2] for r in rs) for v, rs in runs.items()}
    fastest = min(("torch fp32", "torch bf16"), key=lambda k: wall[k])
    return {"model": name, "input": str(src), "frames": frames, "seconds": wall, "start_seconds": start,
            "fastest_torch": fastest, "ms_per_frame": {k: 1e3 * v / frames for k, v in wall.items()},
            "steady_ms_per_frame": {k: 1e3 * v for k, v in steady.items()},
            "fps": {k: frames / v for k, v in wall.items()}, "steady_fps": {k: 1 / v for k, v in steady.items()},
            "ratio_to_fastest_torch": {k: v / wall[fastest] for k, v in wall.items()},
            "steady_ratio_to_fastest_torch": {k: v / steady[fastest] for k, v in steady.items()},
            "all_runs": {key[v]: rs for v, rs in runs.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="basicvsr-reds4,rlsp-7-64,rlsp-fast-x4")
    ap.add_argument("--sections", default="routes,blocks,profile,quality,engine,speed")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", default="180x320", help="input HxW")
    ap.add_argument("--frames", type=int, default=21, help="speed: frames upscaled end to end (two-pass, clip models)")
    ap.add_argument("--frames-fast", type=int, default=120, help="speed: frames for the other models")
    ap.add_argument("--quality-frames", type=int, default=8)
    ap.add_argument("--quality-size", default="90x160", help="LR HxW of the held-out clips (their HR crop is x4)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--input", type=Path, default=None,
                    help="speed input (default: Big Buck Bunny BI-degraded to --size, a PNG folder)")
    ap.add_argument("--calibrate", type=Path, default=CALIBRATE)
    ap.add_argument("--quality-clips", default=",".join(str(p) for p in HELD_OUT))
    ap.add_argument("--cache", type=Path, default=None, help="OpenVINO cache folder (default: vsrkit's)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.split("x"))
    sections = set(args.sections.split(","))
    cache = args.cache if args.cache is not None else True
    if args.cache is not None:
        os.environ["VSRKIT_CACHE"] = str(args.cache.parent)
    mach = machine()
    say(f"CPU: {mach['cpu']}, {mach['cpu_count']} CPUs; flags: {' '.join(mach['flags'])}")
    say(f"versions: {mach['versions']}; threads {args.threads}; load average at start {mach['load_average']}")
    result: dict = {"machine": mach, "threads": args.threads, "size": f"{w}x{h}"}
    work = Path(tempfile.mkdtemp(prefix="vsrkit-bench-ov-"))
    speed_input = args.input or lr_folder(HELD_OUT[0], max(args.frames, args.frames_fast), h, w, work / "lr")
    for name in args.models.split(","):
        m = model(name)
        say(f"\n== {name} ({m.weights_note}), {m.spec.temporal.describe()}")
        calib = O.calibration_frames(args.calibrate, m.spec.channels, seed=0)
        r: dict = {"weights": m.weights_note}
        if "routes" in sections:
            r["routes"] = routes(m, h, w, args.repeats * 3)
            for row in r["routes"]:
                say(f"  route {row['route']:8s} {row['graph']}: converted in {row['convert_s']:.1f} s, "
                    f"{row['ms_per_call']:.1f} ms/call (outputs differ by {row['max_abs_diff']:.2g})")
        if "blocks" in sections and m.spec.temporal.kind == "bidirectional":
            r["blocks"] = block_cost(m, h, w, [1, 2, 4])
            x, _ = held_out(HELD_OUT[0], 8, h, w, m.spec.scale)
            r["clips"] = [clip_vs_steps(m, x, p, cache) for p in ("fp32", "bf16")]
            for c in r["clips"]:
                say(f"  {c['precision']}: exact steps {c['steps_ms_per_frame']:.0f} ms/frame; fixed 8-frame clips in "
                    f"128 px tiles {c['clips_ms_per_frame']:.0f} ms/frame, {c['clips_psnr_vs_exact']:.1f} dB from exact")
        if "profile" in sections and O._stepwise_passes(m.spec) == "basicvsr":
            r["profile"] = profile(m, h, w, args.repeats * 3, calib, cache)
            say(f"  one frame's step at {w}x{h}, ms per call (align = SpyNet + warp; on OpenVINO one f32 graph in fp32, "
                "else SpyNet's CNNs in bf16 with f32 sampling):")
            for row in r["profile"]:
                parts = " ".join(f"{k} {v:7.1f}" for k, v in row["ms_per_call"].items())
                say(f"  {row['variant']:14s} {parts} | frame {row['ms_per_frame']:7.1f}")
        if "quality" in sections:
            qh, qw = (int(v) for v in args.quality_size.split("x"))
            r["quality"] = quality(name, m, [Path(p) for p in args.quality_clips.split(",")], args.quality_frames, qh, qw,
                                   calib, cache)
            say(f"  losses (dB): {json.dumps({k: round(v, 4) for k, v in r['quality']['loss_db'].items()})}")
        if "engine" in sections:  # the engine alone (frames in memory, no decoding or encoding)
            from vsrkit.bench.backends import format_tables, run_backends

            n = args.frames if m.spec.temporal.kind in ("bidirectional", "sequence") else args.frames_fast
            x, _ = held_out(HELD_OUT[0], 1, h, w, m.spec.scale)  # (a size check)
            eng = run_backends([name], (h, w), ["torch", "openvino"], frames=min(n, 24), warmup=1,
                               repeat=args.repeats, quality=str(HELD_OUT[0]), calibrate=args.calibrate, say=None)
            r["engine"] = eng["tables"][0]
            say(format_tables(eng))
        if "speed" in sections:
            n = args.frames if m.spec.temporal.kind in ("bidirectional", "sequence") else args.frames_fast
            r["speed"] = speed(name, m, speed_input, n, args.repeats, args.calibrate)
            s = r["speed"]
            say(f"  {n} frames of {w}x{h} -> H.264, whole run (start = to the first frame written), then steady "
                f"after the first frame; ratios against {s['fastest_torch']}, the fastest PyTorch path")
            for k in s["seconds"]:
                say(f"  {k:14s} whole {s['ms_per_frame'][k]:8.1f} ms/frame {s['fps'][k]:6.2f} fps "
                    f"{s['ratio_to_fastest_torch'][k]:.2f}x | start {s['start_seconds'][k]:5.1f} s | steady "
                    f"{s['steady_ms_per_frame'][k]:8.1f} ms/frame {s['steady_fps'][k]:6.2f} fps "
                    f"{s['steady_ratio_to_fastest_torch'][k]:.2f}x")
        result[name] = r
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    result["load_average_end"] = os.getloadavg()
    say(f"\nload average at the end {result['load_average_end']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
