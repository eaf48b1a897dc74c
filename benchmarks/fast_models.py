"""Ship and document the fast models trained by vsrkit (issue 13): copy a run's weights into the package, measure
them on the held-out clips (``vsrkit eval``) and write their model cards (hub/cards.py).

    python benchmarks/fast_models.py ship rlsp-fast-x4 RUN_DIR            # newest weights of RUN_DIR -> vsrkit/hub/weights
    python benchmarks/fast_models.py speed rlsp-fast-x4 --bench bench_fast.json --bench-ref bench_basicvsr.json
    python benchmarks/fast_models.py card rlsp-fast-x4 --config configs/train/rlsp_fast_x4.yml --run RUN_DIR \\
        --bench bench_fast.json --bench-ref bench_basicvsr.json [--flicker]

``card`` prints the numbers and writes NAME.json and NAME.md beside the weights. Speed comes from ``vsrkit bench``
JSON files (``--bench``: the model's architecture; ``--bench-ref``: BasicVSR), 320x180 input (180x320 HxW).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from vsrkit.hub.cards import HELD_OUT, VALIDATION_FRAMES, MatlabBicubic, card_path, validate, write_heldout_frames
from vsrkit.hub.checkpoint import load_with_meta, sha256_file
from vsrkit.hub.download import BUNDLED_DIR
from vsrkit.hub.registry import get_entry

CLIPS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "clips"


def ship(name: str, run: Path, iteration: int | None) -> None:
    weights = sorted((run / "weights").glob("net_g_0*.safetensors"))
    if iteration is not None:
        weights = [w for w in weights if w.name == f"net_g_{iteration:08d}.safetensors"]
    if not weights:
        sys.exit(f"no weights in {run / 'weights'}")
    src = weights[-1]
    BUNDLED_DIR.mkdir(parents=True, exist_ok=True)
    dest = card_path(name, ".safetensors")
    shutil.copyfile(src, dest)
    _, meta = load_with_meta(dest)
    print(f"{src} -> {dest}: {dest.stat().st_size} bytes, sha256 {sha256_file(dest)}, {meta['arch']} {meta['kwargs']}")


def _speed(path: Path | None, arch_name: str) -> dict:
    if path is None:
        return {}
    data = json.loads(path.read_text())
    out = {}
    for r in data["results"]:
        if r["model"] == arch_name:
            out[r["precision"]] = r["ms_per_frame"]
    return out


def _log(run: Path) -> tuple[int, float, list[dict]]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in rows if "loss" in r]
    return train[-1]["iter"], train[-1]["time"], [r for r in rows if "val" in r]


def card(args: argparse.Namespace) -> None:
    name = args.name
    family, entry = get_entry(name)
    cfg = yaml.safe_load(Path(args.config).read_text())
    scale = cfg["data"]["scale"]
    degradations = ["bi", "bd"] if scale == 4 else ["bi"]
    metrics = ("psnr", "ssim", "flicker") if args.flicker else ("psnr", "ssim")
    iters, seconds, vals = _log(Path(args.run))
    with tempfile.TemporaryDirectory() as tmp:
        gt = write_heldout_frames(CLIPS, Path(tmp) / "heldout")
        results = {}
        for deg in degradations:
            t0 = time.time()
            m = metrics if deg == "bi" else ("psnr", "ssim")  # flicker: BI only (the target's degradation)
            rows = {name: validate(name, gt, deg, m), "bicubic": validate(MatlabBicubic(scale), gt, deg, m)}
            for extra in args.compare:
                rows[extra] = validate(extra, gt, deg, m)
            results[deg] = {k: {**v["overall"], "clips": v["clips"]} for k, v in rows.items()}
            print(f"{deg}: " + ", ".join(f"{k} {v['overall']}" for k, v in rows.items()), f"({time.time() - t0:.0f} s)")
    speed = {"input": "320x180 (W x H), CPU, `vsrkit bench`", "model_ms_per_frame": _speed(args.bench, args.bench_name or name),
             "basicvsr_ms_per_frame": _speed(args.bench_ref, "basicvsr-reds4"), "note": args.speed_note}
    sha = sha256_file(card_path(name, ".safetensors"))
    data = {
        "name": name,
        "family": family,
        "arch": entry.arch,
        "kwargs": entry.kwargs,
        "params": int(sum(p.numel() for p in __import__("vsrkit").load_model(name).parameters())),
        "weights": {"file": f"{name}.safetensors", "sha256": sha, "licence": entry.weights.licence},
        "training": {
            "config": args.config,
            "command": f"vsrkit train {args.config}",
            "clips": cfg["data"]["include"],
            "data": "../shared/data/clips (sample clips; licences in its README.md): "
                    + ", ".join(cfg["data"]["include"]),
            "degradation": cfg["data"]["degradation"].upper(),
            "recipe": {k: cfg[k] for k in ("data", "train", "optim", "scheduler", "loss")},
            "iterations": iters,
            "wall_seconds": round(seconds),
            "hardware": args.hardware,
            "validation_during_training": [{"iter": v["iter"], "psnr": v["val"]["psnr"]} for v in vals],
        },
        "validation": {
            "clips": list(HELD_OUT),
            "frames": VALIDATION_FRAMES,
            "what": f"the first {VALIDATION_FRAMES} frames of each held-out clip (PNG), LR made from them by BI/BD, "
                    "vsrkit eval: Y (MATLAB BT.601), no border crop, every frame, mean per clip then over clips; "
                    "bicubic = MATLAB imresize of the same LR" + ("; flicker (BI only): vsrkit eval --metric flicker, "
                    "1000 x mean squared change of the error along the GT's motion, lower is steadier" if args.flicker else ""),
            "command": f"vsrkit eval -m {name} --gt HELDOUT --degrade bi --metric {','.join(metrics)}",
            "results": results,
        },
        "speed": speed,
    }
    card_path(name).write_text(json.dumps(data, indent=1) + "\n")
    card_path(name, ".md").write_text(render(data))
    print(f"wrote {card_path(name)} and {card_path(name, '.md')}")


def speed(args: argparse.Namespace) -> None:
    """Replace the speed section of an existing card (a quieter machine, a new bench) and render it again."""
    data = json.loads(card_path(args.name).read_text())
    data["speed"] = {"input": "320x180 (W x H), CPU, `vsrkit bench`",
                     "model_ms_per_frame": _speed(args.bench, args.bench_name or args.name),
                     "basicvsr_ms_per_frame": _speed(args.bench_ref, "basicvsr-reds4"), "note": args.speed_note}
    card_path(args.name).write_text(json.dumps(data, indent=1) + "\n")
    card_path(args.name, ".md").write_text(render(data))
    print(f"{args.name}: {data['speed']}")


def render(d: dict) -> str:
    t, v, s = d["training"], d["validation"], d["speed"]
    lines = [f"# {d['name']}", "",
             f"{d['arch']} {d['kwargs']}, {d['params']:,} parameters. Weights `{d['weights']['file']}` "
             f"(sha256 `{d['weights']['sha256'][:16]}...`), licence: {d['weights']['licence']}.", "",
             "## Training", "",
             f"- data: {t['data']}; degradation {t['degradation']}",
             f"- held out (never trained on): {', '.join(v['clips'])}",
             f"- recipe: `{t['config']}` (crops, batch, Adam, cosine schedule, loss: see the file)",
             f"- iterations: {t['iterations']}, {t['wall_seconds'] / 60:.0f} minutes wall time on {t['hardware']}",
             f"- retrain: `{t['command']}` (from the repository root, with ../shared/data beside it)", "",
             "## Validation (Y)", "", v["what"] + ".", ""]
    for deg, rows in v["results"].items():
        metrics = [k for k in next(iter(rows.values())) if k != "clips"]
        lines += [f"### {deg.upper()}" + (" (as trained)" if deg.upper() == t["degradation"] else
                                          " (not trained for it)"), "",
                  "| model | " + " | ".join(metrics) + " | " + " | ".join(f"PSNR {c}" for c in next(iter(rows.values()))["clips"]) + " |",
                  "|---" * (1 + len(metrics) + len(next(iter(rows.values()))["clips"])) + "|"]
        for model, r in rows.items():
            vals = [f"{r[m]:.4f}" if m == "ssim" else f"{r[m]:.3f}" for m in metrics]
            clips = [f"{c['psnr']:.3f}" for c in r["clips"].values()]
            lines.append(f"| {model} | " + " | ".join(vals + clips) + " |")
        lines.append("")
    lines += ["## Speed", "", f"{s['input']}; ms per frame:", ""]
    for prec, ms in s["model_ms_per_frame"].items():
        ref = s["basicvsr_ms_per_frame"].get(prec)
        lines.append(f"- {prec}: {ms:.1f} ms" + (f" (basicvsr-reds4 {ref:.0f} ms: {ref / ms:.0f}x faster)" if ref else ""))
    if s.get("note"):
        lines += ["", s["note"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("ship")
    a.add_argument("name")
    a.add_argument("run", type=Path)
    a.add_argument("--iter", type=int, default=None)
    c = sub.add_parser("card")
    c.add_argument("name")
    c.add_argument("--config", required=True)
    c.add_argument("--run", required=True, type=Path)
    c.add_argument("--bench", type=Path)
    c.add_argument("--bench-name", help="the model name in the --bench JSON (default NAME)")
    c.add_argument("--bench-ref", type=Path)
    c.add_argument("--speed-note", default="")
    c.add_argument("--hardware", default="a 2-core CPU shared with other jobs (1 training thread)")
    c.add_argument("--flicker", action="store_true")
    c.add_argument("--compare", nargs="*", default=[], help="other models scored beside it")
    sp = sub.add_parser("speed")
    sp.add_argument("name")
    sp.add_argument("--bench", type=Path, required=True)
    sp.add_argument("--bench-name")
    sp.add_argument("--bench-ref", type=Path)
    sp.add_argument("--speed-note", default="")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.cmd == "ship":
        ship(args.name, args.run, args.iter)
    elif args.cmd == "speed":
        speed(args)
    else:
        card(args)


if __name__ == "__main__":
    main()
