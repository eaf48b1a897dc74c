"""Speed of the fast paths against the reference path (and the official code, when given), in one run.

For each model, the time per output frame of:

- ``ref``: vsrkit's plain path as the official test scripts run it: fp32, contiguous (NCHW) tensors,
  ``torch.no_grad``, one window per output for EDVR, the pixel shuffle before the softmax for eSR-TR,
  residual blocks as the official expression (``x + conv(...) * res_scale``, out of place).
  The issue measured this path at 1.00x the official BasicVSR (0.8-1.0x for the others);
- ``fp32``: the engine's fast path: channels-last weights and activations, ``torch.inference_mode``,
  EDVR's sliding windows, eSR-TR's softmax before the shuffle in cached strips;
- ``bf16``: the same under bf16 autocast (flow warping and deformable sampling stay fp32);
- ``official`` (with ``--official DIR``): the official code from ``DIR`` (BasicSR/, RLSP/pytorch, eSR/,
  VRT/), loaded with the same weights; skipped when absent.

Variants run interleaved (ref, fp32, bf16, ref, ...) and each figure is the median of ``--repeats``, so
other processes on the machine slow all of them alike; ratios are against ``ref`` of the same run. Also
printed: the model's GFLOP per frame (``torch.utils.flop_counter``) and its GFLOP/s as a fraction of a
64->64 3x3 convolution at the same size, precision and memory format measured in the same run; the PSNR
change of bf16 against fp32 on a real clip (Big Buck Bunny, BI-degraded to 320x180: against the original
frames, and bf16 output against fp32 output); and with ``--e2e`` the file-to-file speed of
``vsrkit upscale`` against the model's own time per frame, for RLSP-7-64 (320x180 -> 1280x720) and
BasicVSR (two-pass streaming, 160x90).

    python benchmarks/bench_speed.py [--models basicvsr,iconvsr,edvr-m,rlsp-7-64,vrt,esr-tr] [--threads 1]
        [--size 180x320] [--frames 3] [--repeats 3] [--quality] [--e2e [--e2e-models M] [--e2e-frames N]]
        [--compile] [--jit] [--no-bf16] [--official DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import vsrkit
from vsrkit.hub.loader import build
from vsrkit.models.registry import get_entry
from vsrkit.infer.runtime import bf16_speedup, native_bf16_unit
from vsrkit.models.basicvsr import backward_pass, forward_pass
from vsrkit.models.layers.common import ResidualBlockNoBN
from vsrkit.models.spec import Block
from vsrkit.models.edvr import forward_sliding
from vsrkit.models.layers.common import channels_last_frames

os.environ.setdefault("VSRKIT_OFFLINE", "1")  # weights that are not on this machine: random weights, no download
SHARED = Path(__file__).resolve().parents[2] / "shared"
CLIP = SHARED / "data" / "clips" / "bigbuckbunny.mp4"


# ------------------------------------------------------------------------------------------------
# models and how each variant runs them


def make_model(name: str) -> torch.nn.Module:
    """The named configuration; pretrained weights where they are on this machine, else random weights."""
    if name == "vrt":  # VRT REDS 6 frames is far too heavy at 180x320 on a CPU: the REDS config at 64x64
        name = "vrt-reds-6f"
    family, entry = get_entry(name)
    try:
        model = vsrkit.load_model(name, progress=False)
        model.weights_note = "pretrained" if entry.weights is not None else "random"
    except vsrkit.VsrkitError:
        model = build(family.name, entry.arch, dict(entry.kwargs)).eval()
        model.weights_note = "random"
    return model.eval()


def esr_official_forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """eSR-TR as the official code computes it: pixel shuffle first, softmax over C at high resolution."""
    value, query, key = F.pixel_shuffle(model.filter(x), model.scale).split(model.C, dim=1)
    return (value * torch.softmax(query * key, dim=1)).sum(dim=1, keepdim=True)


def _official_residual_forward(self: ResidualBlockNoBN, x: torch.Tensor) -> torch.Tensor:
    return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale  # BasicSR's expression: out of place


def as_official(model: torch.nn.Module) -> torch.nn.Module:
    """The reference path computes residual blocks as the official code does (a multiply and an out-of-place
    add), not with vsrkit's in-place accumulation, so ``ref`` keeps the official cost."""
    for m in model.modules():
        if isinstance(m, ResidualBlockNoBN):
            m.forward = types.MethodType(_official_residual_forward, m)
    return model


def runner(model: torch.nn.Module, kind: str, fast: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """x[1, T, 3, h, w] (T = frames + window - 1 for EDVR) -> the outputs of the model's frames."""
    if kind == "edvr":
        n = model.num_frame
        if fast:
            return lambda x: forward_sliding(model, x)
        return lambda x: torch.stack([model(x[:, j:j + n]) for j in range(x.shape[1] - n + 1)], 1)
    if kind == "rlsp":
        def rlsp(x: torch.Tensor) -> torch.Tensor:
            T, state, outs = x.shape[1], None, []
            for t in range(T):
                idx = [max(t - 1, 0), t, min(t + 1, T - 1)]
                y, state = model.step(x[:, idx], state)
                outs.append(y)
            return torch.stack(outs, 1)
        return rlsp
    if kind == "esr":
        y_of = model if fast else (lambda x: esr_official_forward(model, x))
        return lambda x: y_of(x[0, :, :1])
    if kind == "basicvsr" and fast:  # the engine's two passes, on one block (backward branch once per frame)
        def two_passes(x):
            blk = Block(0, x.shape[1], x.shape[1])
            feats, _ = backward_pass(model, x, None, blk)
            return forward_pass(model, x, feats, None, blk)[0]
        return two_passes
    return model


def kind_of(name: str) -> str:
    for k in ("iconvsr", "basicvsr", "edvr", "rlsp", "vrt", "esr"):
        if name.startswith(k):
            return k
    raise ValueError(name)


def frames_in(kind: str, model: torch.nn.Module, frames: int) -> int:
    return frames + model.num_frame - 1 if kind == "edvr" else frames


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def conv_gflops(h: int, w: int, dtype: torch.dtype | None, cl: bool, repeats: int = 5) -> float:
    """GFLOP/s of a 64->64 3x3 convolution at h x w in this precision and memory format."""
    conv = torch.nn.Conv2d(64, 64, 3, 1, 1).eval()
    x = torch.rand(1, 64, h, w)
    fmt = torch.channels_last if cl else torch.contiguous_format
    conv = conv.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    ctx = torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()
    with torch.inference_mode(), ctx:
        conv(x)
        t = statistics.median(timed(lambda: conv(x)) for _ in range(repeats))
    return 2 * 64 * 64 * 9 * h * w / t / 1e9


def count_gflop(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(x)
    return counter.get_total_flops() / 1e9


def official_model(kind: str, root: Path | None, ours: torch.nn.Module) -> torch.nn.Module | None:
    """The official implementation with our weights (same state-dict keys), or None when absent."""
    if root is None:
        return None
    try:
        if kind in ("basicvsr", "iconvsr", "edvr"):
            sys.path.insert(0, str(root / "BasicSR"))
            mod = __import__("basicsr.archs." + ("edvr_arch" if kind == "edvr" else "basicvsr_arch"), fromlist=["x"])
            cls = {"basicvsr": "BasicVSR", "iconvsr": "IconVSR", "edvr": "EDVR"}[kind]
            net = getattr(mod, cls)(**_official_kwargs(kind, ours))
        elif kind == "rlsp":
            spec = importlib.util.spec_from_file_location("rlsp_official", root / "RLSP" / "pytorch" / "rlsp.py")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            net = mod.RLSP({"layers": ours.layers, "filters": ours.filters, "state dimension": ours.state_dim,
                            "kernel size": ours.kernel_size, "factor": ours.factor})
        elif kind == "esr":
            spec = importlib.util.spec_from_file_location("esr_official", root / "eSR" / "models.py")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            net = mod.edgeSR_TR(ours.model_id)
        elif kind == "vrt":
            sys.path.insert(0, str(root / "VRT"))
            from models.network_vrt import VRT as OfficialVRT  # type: ignore[import-not-found]

            net = OfficialVRT(**_official_kwargs(kind, ours))
        else:
            return None
        net.load_state_dict(ours.state_dict(), strict=True)
        return net.eval()
    except Exception as e:  # the official code is optional: say why it is not measured
        print(f"  official {kind}: not measured ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
        return None


def _official_kwargs(kind: str, ours: torch.nn.Module) -> dict:
    from vsrkit.hub.registry import all_entries

    for _, e in all_entries():
        if e.name == ours.spec.name:
            return dict(e.kwargs)
    return {}


# ------------------------------------------------------------------------------------------------


def bench_model(name: str, args, h: int, w: int) -> dict:
    kind = kind_of(name)
    base = make_model(name)
    if kind == "vrt":
        h, w = args.vrt_size
    if kind == "rlsp" or kind == "esr":
        frames = max(args.frames, 4)
    else:
        frames = args.frames
    T = frames_in(kind, base, frames)
    if kind == "vrt":
        T = max(T, base.spec.protocol.clip or 6)
        frames = T
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, T, 3, h, w, generator=g)
    ref_model = base
    fast_model = copy.deepcopy(base)
    as_official(ref_model)
    for p in fast_model.parameters():
        if p.dim() == 4:
            p.data = p.data.contiguous(memory_format=torch.channels_last)
    xcl = channels_last_frames(x)
    variants: dict[str, Callable[[], object]] = {}
    ref_fn = runner(ref_model, kind, fast=False)
    fast_fn = runner(fast_model, kind, fast=True)

    def ref():
        with torch.no_grad():
            return ref_fn(x)

    def fp32():
        with torch.inference_mode():
            return fast_fn(xcl)

    def bf16():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return fast_fn(xcl)

    variants = {"ref": ref, "fp32": fp32, "bf16": bf16}
    official = official_model(kind, args.official, base)
    if official is not None:
        off_fn = runner(official, kind, fast=False) if kind != "esr" else (lambda x: official(x[0, :, :1]))

        def off():
            with torch.no_grad():
                return off_fn(x)

        variants = {"official": off, **variants}
    if args.compile:
        comp_model = copy.deepcopy(fast_model)
        for child in comp_model.children():  # as ``--compile`` does (``runtime.prepare_model``)
            if any(True for _ in child.parameters()):
                child.compile(dynamic=False, options={"freezing": True})
        comp_fn = runner(comp_model, kind, fast=True)

        def fp32c():
            with torch.inference_mode():
                return comp_fn(xcl)

        start = time.perf_counter()
        fp32c()
        fp32c()
        print(f"  compile warm-up {time.perf_counter() - start:.0f} s")
        variants["fp32+compile"] = fp32c
    if args.jit:
        jit_fn = jit_frozen(fast_model, kind, xcl)
        if jit_fn is not None:
            def fp32j():
                with torch.inference_mode():
                    return jit_fn(xcl)

            variants["fp32+jit"] = fp32j
    if args.no_bf16:
        del variants["bf16"]
    # warm-up (oneDNN primitive caches), then interleaved repeats
    for fn in variants.values():
        fn()
    # the reference convolution is measured in every repeat too (its own figure varies by +-15 % between quick
    # measurements on a shared machine), and its median over the repeats is the throughput the model is held to
    times: dict[str, list[float]] = {k: [] for k in variants}
    convs: dict[str, list[float]] = {"ref": [], "fp32": [], "bf16": []}
    for _ in range(args.repeats):
        for k, fn in variants.items():
            times[k].append(timed(fn) / frames)
        convs["ref"].append(conv_gflops(h, w, None, False))
        convs["fp32"].append(conv_gflops(h, w, None, True))
        if not args.no_bf16:
            convs["bf16"].append(conv_gflops(h, w, torch.bfloat16, True))
    med = {k: statistics.median(v) for k, v in times.items()}
    gflop = count_gflop(ref_fn, x) / frames
    conv = {k: statistics.median(v) for k, v in convs.items() if v}
    row = {"name": name, "kind": kind, "weights": base.weights_note, "size": f"{h}x{w}", "frames": frames,
           "gflop": gflop, "times": med, "conv": conv}
    print_row(row)
    if args.quality:
        q = quality(name, kind, fast_model, fast_fn)
        row.update(q)
        if q:
            print(f"  {name}: PSNR fp32 {q['psnr_fp32']:.3f} bf16 {q['psnr_bf16']:.3f} dB (change "
                  f"{q['psnr_bf16'] - q['psnr_fp32']:+.3f}), bf16 output vs fp32 output {q['psnr_bf16_vs_fp32']:.1f} dB",
                  flush=True)
    return row


def jit_frozen(model: torch.nn.Module, kind: str, x: torch.Tensor) -> Callable | None:
    """The fast path traced for this input shape, then ``torch.jit.freeze`` and ``optimize_for_inference``
    (oneDNN-prepacked convolutions); None where tracing fails."""

    class Traced(torch.nn.Module):
        def __init__(self, m: torch.nn.Module):
            super().__init__()
            self.m = m
            self.fn = runner(m, kind, fast=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fn(x)

    try:
        start = time.perf_counter()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(Traced(copy.deepcopy(model)).eval(), (x,), check_trace=False)
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            frozen(x)
        print(f"  jit trace + freeze + optimize_for_inference: {time.perf_counter() - start:.0f} s")
        return frozen
    except Exception as e:  # noqa: BLE001 - a measurement: say why it is missing
        print(f"  jit: not measured ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
        return None


def print_row(row: dict) -> None:
    name, t, conv_ref = row["name"], row["times"], row["conv"]
    line = (f"{name:16s} {row['size']:>8s} {row['weights']:10s} {row['gflop']:7.1f} GFLOP/frame | "
            + " ".join(f"{k} {v:.3f}s" for k, v in t.items())
            + " | " + " ".join(f"{k} {v / t['ref']:.2f}x" for k, v in t.items() if k != "ref") + " of ref")
    if "official" in t:
        line += " | " + " ".join(f"{k} {v / t['official']:.2f}x" for k, v in t.items() if k != "official") + " of official"
    if "fp32+compile" in t:
        line += f" | compile {t['fp32+compile'] / t['fp32']:.2f}x of fp32"
    frac = {k: row["gflop"] / t[k] / conv_ref[k] for k in ("ref", "fp32", "bf16") if k in t}
    line += " | of large-conv throughput: " + " ".join(f"{k} {v:.0%}" for k, v in frac.items())
    line += " (conv " + " ".join(f"{k} {v:.0f}" for k, v in conv_ref.items()) + " GFLOP/s)"
    print(line, flush=True)


def quality(name: str, kind: str, model: torch.nn.Module, fn: Callable) -> dict:
    """PSNR (Y, BasicSR's) of fp32 and bf16 outputs against the original frames of a real clip, BI x4."""
    from vsrkit.data.degrade import bi_downscale
    from vsrkit.eval.metrics import psnr
    from vsrkit.io import VideoReader

    if not CLIP.is_file():
        return {}
    n = 6 if kind != "edvr" else 6 + model.num_frame - 1
    gts = []
    with VideoReader(CLIP) as r:
        for k, f in enumerate(r):
            if k >= n:
                break
            gts.append(f.image[..., :3])
    s = model.spec.scale
    lr = np.stack([bi_downscale(g, 4) for g in gts])
    if kind == "vrt":  # a 64x64 crop (VRT at 180x320 is too slow here)
        lr = lr[:, 40:104, 100:164]
        gts = [g[160:416, 400:656] for g in gts]
    x = torch.from_numpy(lr).permute(0, 3, 1, 2)[None].float() / 255
    targets = gts[model.num_frame // 2:] if kind == "edvr" else gts
    if kind == "esr":  # a luma model: Y in, Y out, compared as grey images
        from vsrkit.eval.metrics import rgb_to_y

        x = torch.from_numpy(np.stack([rgb_to_y(f) for f in lr]))[None, :, None].float().expand(-1, -1, 3, -1, -1) / 255
        targets = [np.repeat(np.clip(np.round(rgb_to_y(t)), 0, 255).astype(np.uint8)[..., None], 3, 2) for t in targets]
    x = channels_last_frames(x.contiguous())
    outs = {}
    for prec in ("fp32", "bf16"):
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if prec == "bf16" else contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            y = fn(x).float()
        y = y[0] if y.dim() == 5 else y  # (T, c, H, W)
        y = y.expand(-1, 3, -1, -1)
        outs[prec] = (y.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    targets = targets[: len(outs["fp32"])]
    p32 = float(np.mean([psnr(o, t, crop_border=s) for o, t in zip(outs["fp32"], targets)]))
    p16 = float(np.mean([psnr(o, t, crop_border=s) for o, t in zip(outs["bf16"], targets)]))
    agree = float(np.mean([psnr(a, b, crop_border=s) for a, b in zip(outs["bf16"], outs["fp32"])]))
    return {"psnr_fp32": p32, "psnr_bf16": p16, "psnr_bf16_vs_fp32": agree}


def e2e(args) -> None:
    """File to file (decode, engine, encode) against the model's own time per frame, same precision."""
    from vsrkit.data.degrade import bi_downscale
    from vsrkit.io import VideoReader, VideoWriter
    from vsrkit.pipeline import upscale_file

    if not CLIP.is_file():
        print("e2e: no clip (../shared/data absent)")
        return
    for name, factor, n, precs in (("rlsp-7-64", 4, 40, ("fp32", "bf16")), ("basicvsr-reds4", 8, 20, ("fp32",))):
        if args.e2e_models and name not in args.e2e_models.split(","):
            continue
        n = args.e2e_frames or n
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "lr.mp4"
            frames = []
            with VideoReader(CLIP) as r:
                fps = r.info.fps
                for k, f in enumerate(r):
                    if k >= n:
                        break
                    frames.append(bi_downscale(f.image[..., :3], factor))
            h, w = frames[0].shape[:2]
            with VideoWriter(src, width=w, height=h, crf=12, fps=fps) as wr:
                for fr in frames:
                    wr.write(fr)
            model = make_model(name)
            kind = kind_of(name)
            fast = copy.deepcopy(model)
            for p in fast.parameters():
                if p.dim() == 4:
                    p.data = p.data.contiguous(memory_format=torch.channels_last)
            fn = runner(fast, kind, fast=True)
            x = channels_last_frames(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)[None].float() / 255)
            for prec in precs:
                ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if prec == "bf16" else contextlib.nullcontext
                def own():
                    with torch.inference_mode(), ctx():
                        fn(x)

                def job(k=[0]):
                    k[0] += 1
                    upscale_file(src, Path(tmp) / f"{prec}{k[0]}.mp4", model=fast, precision=prec, device="cpu",
                                 progress=False, say=lambda m: None)

                own()  # warm-up
                t_own, t_job = [], []
                for _ in range(args.repeats):
                    t_own.append(timed(own) / n)
                    t_job.append(timed(job) / n)
                mo, mj = statistics.median(t_own), statistics.median(t_job)
                print(f"e2e {name} {w}x{h} -> {w * 4}x{h * 4} {prec}: model {1 / mo:.2f} fps, vsrkit upscale "
                      f"{1 / mj:.2f} fps file to file ({mj / mo:.2f}x the model's time per frame)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="basicvsr-reds4,iconvsr-reds4,edvr-m,rlsp-7-64,vrt,esr-tr")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", default="180x320")
    ap.add_argument("--vrt-size", default="64x64")
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quality", action="store_true")
    ap.add_argument("--e2e", action="store_true")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (inductor, freezing) of each part")
    ap.add_argument("--jit", action="store_true", help="also time the fast path traced, frozen and optimize_for_inference")
    ap.add_argument("--no-bf16", action="store_true", help="skip the bf16 variant (slower than fp32 without AMX)")
    ap.add_argument("--e2e-models", default="", help="with --e2e: only these (rlsp-7-64, basicvsr-reds4)")
    ap.add_argument("--e2e-frames", type=int, default=0, help="with --e2e: frames per clip (default 40 / 20)")
    ap.add_argument("--official", type=Path, default=None, help="folder holding BasicSR/, RLSP/, eSR/, VRT/")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.split("x"))
    args.vrt_size = tuple(int(v) for v in args.vrt_size.split("x"))
    if args.official is not None and not args.official.is_dir():
        print(f"official code: {args.official} not found, skipped")
        args.official = None
    load = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{args.threads} thread(s), load average {load[0]:.1f}; native bf16: {native_bf16_unit()}, "
          f"bf16 conv speed-up here {bf16_speedup():.2f}x")
    rows = []
    for name in args.models.split(","):
        if not name:
            continue
        start = time.perf_counter()
        rows.append(bench_model(name, args, h, w))
        print(f"  [{time.perf_counter() - start:.0f} s]", flush=True)
    if args.e2e:
        e2e(args)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
