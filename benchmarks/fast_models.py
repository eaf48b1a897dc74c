"""Ship and document the fast models trained by vsrkit (issue 13): copy a run's weights into the package, measure
them on the held-out clips (``vsrkit eval``, eval/cards.py) and write their model cards (hub/cards.py).

    python benchmarks/fast_models.py ship rlsp-fast-x4 RUN_DIR            # newest weights of RUN_DIR -> vsrkit/hub/weights
    python benchmarks/fast_models.py speed rlsp-fast-x4 --bench bench_fast.json --bench-ref bench_basicvsr.json
    python benchmarks/fast_models.py card rlsp-fast-x4 --config STAGE1.yml [STAGE2.yml] --run RUN1 [RUN2] \\
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

from vsrkit.eval.cards import MatlabBicubic, validate, write_heldout_frames
from vsrkit.hub.cards import HELD_OUT, VALIDATION_FRAMES, card_path
from vsrkit.hub.checkpoint import load_with_meta, sha256_file
from vsrkit.hub.download import BUNDLED_DIR
from vsrkit.models.registry import get_entry

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


def _log(run: Path, until: int | None = None) -> tuple[int, float, list[dict]]:
    """Iterations, wall seconds and validation rows of a run's log.jsonl, up to iteration ``until``. A resumed run
    restarts its clock: each segment's last time is added."""
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if until is None or r["iter"] <= until]
    train = [r for r in rows if "loss" in r]
    seconds, last = 0.0, 0.0
    for r in train:
        if r["time"] < last:  # a new segment (resumed)
            seconds += last
        last = r["time"]
    return train[-1]["iter"], seconds + last, [r for r in rows if "val" in r]


def _stages(configs: list[str], runs: list[Path]) -> list[dict]:
    """One entry per training stage (a config and its run): a later stage starts from an earlier one's weights."""
    if len(configs) != len(runs):
        sys.exit("give one --run per --config (the training stages, in order)")
    out = []
    for config, run in zip(configs, runs):
        cfg = yaml.safe_load(Path(config).read_text())
        iters, seconds, vals = _log(run, cfg["train"]["total_iter"])
        out.append({"config": config, "cfg": cfg, "iterations": iters, "wall_seconds": seconds, "vals": vals})
    return out


def card(args: argparse.Namespace) -> None:
    name = args.name
    family, entry = get_entry(name)
    stages = _stages(args.config, args.run)
    cfg = stages[-1]["cfg"]
    scale = cfg["data"]["scale"]
    degradations = args.degradations.split(",") if args.degradations else (["bi", "bd"] if scale == 4 else ["bi"])
    metrics = ("psnr", "ssim", "flicker") if args.flicker else ("psnr", "ssim")
    with tempfile.TemporaryDirectory() as tmp:
        gt = write_heldout_frames(CLIPS, Path(tmp) / "heldout")
        results = {}
        for di, deg in enumerate(degradations):
            t0 = time.time()
            m = metrics if deg != "bd" else ("psnr", "ssim")  # flicker: not on BD (no model is aimed at it)
            base, _, crf = deg.partition("+crf")
            crf = float(crf) if crf else None
            rows = {name: validate(name, gt, base, m, crf=crf),
                    "bicubic": validate(MatlabBicubic(scale), gt, base, m, crf=crf)}
            for extra in args.compare:
                rows[extra] = validate(extra, gt, base, m, crf=crf)
            results[deg] = {k: {**v["overall"], "clips": v["clips"]} for k, v in rows.items()}
            print(f"{deg}: " + ", ".join(f"{k} {v['overall']}" for k, v in rows.items()), f"({time.time() - t0:.0f} s)")
    speed = {"input": "320x180 (W x H), CPU, `vsrkit bench`", "model_ms_per_frame": _speed(args.bench, args.bench_name or name),
             "basicvsr_ms_per_frame": _speed(args.bench_ref, "basicvsr-reds4"), "note": args.speed_note}
    sha = sha256_file(card_path(name, ".safetensors"))
    data = {
        "name": name,
        "family": family.name,
        "arch": entry.arch,
        "kwargs": entry.kwargs,
        "params": int(sum(p.numel() for p in __import__("vsrkit").load_model(name).parameters())),
        "weights": {"file": f"{name}.safetensors", "sha256": sha, "licence": entry.weights.licence},
        "training": {
            "config": " then ".join(st["config"] for st in stages),
            "command": " && ".join(f"vsrkit train {st['config']}" for st in stages),
            "clips": cfg["data"]["include"],
            "data": "../shared/data/clips (sample clips; licences in its README.md): "
                    + ", ".join(cfg["data"]["include"]),
            "degradation": cfg["data"]["degradation"].upper(),
            "recipe": {k: cfg[k] for k in ("data", "train", "optim", "scheduler", "loss")},
            "iterations": sum(st["iterations"] for st in stages),
            "wall_seconds": round(sum(st["wall_seconds"] for st in stages)),
            "hardware": args.hardware,
            "stages": [{"config": st["config"], "init": st["cfg"]["model"].get("init"), "iterations": st["iterations"],
                        "recipe": {k: st["cfg"][k] for k in ("data", "train", "optim", "scheduler", "loss")},
                        "wall_seconds": round(st["wall_seconds"]),
                        "validation_during_training": [{"iter": v["iter"], "psnr": v["val"]["psnr"]} for v in st["vals"]]}
                       for st in stages],
        },
        "validation": {
            "clips": list(HELD_OUT),
            "frames": VALIDATION_FRAMES,
            "what": f"the first {VALIDATION_FRAMES} frames of each held-out clip (PNG), LR made from them by BI/BD"
                    + (" (+crfN: then the LR clip through H.264, libx264 preset medium, at crf N: vsrkit eval --crf N)"
                       if any("+crf" in d for d in degradations) else "") + ", "
                    "vsrkit eval: Y (MATLAB BT.601), no border crop, every frame, mean per clip then over clips; "
                    "bicubic = MATLAB imresize of the same LR" + ("; flicker (not on BD): vsrkit eval --metric flicker, "
                    "1000 x mean squared change of the error along the GT's motion, lower is steadier" if args.flicker else ""),
            "command": f"vsrkit eval -m {name} --gt HELDOUT --degrade {degradations[0].split('+crf')[0]}"
                       + (f" --crf {degradations[0].split('+crf')[1]}" if "+crf" in degradations[0] else "")
                       + f" --metric {','.join(metrics)}",
            "results": results,
        },
        "speed": speed,
    }
    if card_path(name).is_file():  # hand-written notes survive a re-measurement
        old = json.loads(card_path(name).read_text())
        data["notes"] = old.get("notes", [])
        if args.bench is None and "speed" in old:  # new weights of the same network: its measured speed stands
            data["speed"] = old["speed"]
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
             f"- iterations: {t['iterations']}, {t['wall_seconds'] / 60:.0f} minutes wall time on {t['hardware']}"
             + (" (stages: " + "; ".join(f"`{st['config']}` {st['iterations']} iterations, {st['wall_seconds'] / 60:.0f} min"
                                        + (f", from `{st['init']}`" if st["init"] else "") for st in t["stages"]) + ")"
                if len(t.get("stages", [])) > 1 else ""),
             f"- retrain: `{t['command']}` (from the repository root, with ../shared/data beside it)", "",
             "## Validation (Y)", "", v["what"] + ".", ""]
    for deg, rows in v["results"].items():
        metrics = [k for k in next(iter(rows.values())) if k != "clips"]
        base, _, crf = deg.partition("+crf")
        head = f"{base.upper()}, then H.264 crf {crf} (libx264, preset medium)" if crf else deg.upper()
        trained = deg.upper() == t["degradation"] or (t["degradation"] == "REALWORLD" and crf)
        lines += [f"### {head}" + (" (as trained)" if trained else " (not trained for it)"), "",
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
    if d.get("notes"):  # written by hand into NAME.json (what the numbers mean, what a goal still lacks)
        lines += ["", "## Notes", "", *d["notes"]]
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
    c.add_argument("--config", required=True, nargs="+", help="the training configs, one per stage, in order")
    c.add_argument("--run", required=True, type=Path, nargs="+", help="their run folders (log.jsonl), same order")
    c.add_argument("--bench", type=Path)
    c.add_argument("--bench-name", help="the model name in the --bench JSON (default NAME)")
    c.add_argument("--bench-ref", type=Path)
    c.add_argument("--speed-note", default="")
    c.add_argument("--hardware", default="a 2-core CPU shared with other jobs (1 training thread)")
    c.add_argument("--flicker", action="store_true", help="flicker too (not on BD)")
    c.add_argument("--degradations", default="",
                   help="comma list: bi, bd, bi+crf23 (BI then H.264 crf 23)...; default bi,bd (x4) or bi")
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
