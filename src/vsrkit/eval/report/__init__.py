"""``vsrkit report``: one self-contained HTML page from ``vsrkit eval`` and ``vsrkit bench`` JSON files.

The page holds the quality and speed table per model, quality against time per frame with the Pareto
front, per-frame PSNR curves, and side-by-side crops (bicubic, each model, ground truth) with a slider
that compares any two. Figures are matplotlib SVG written into the page and crops are PNG data URIs, so
the file works offline and alone; a few lines of plain JavaScript drive the slider.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from vsrkit.atomic import write_atomic_text
from vsrkit.errors import VsrkitError

__all__ = ["load_results", "build_report", "write_report"]


def load_results(paths: list[str | os.PathLike]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(eval results, bench results) from JSON files; anything else is an error naming the file."""
    evals, benches = [], []
    if not paths:
        raise VsrkitError("give at least one results file (vsrkit eval --json / vsrkit bench --json)")
    for p in map(Path, paths):
        if not p.is_file():
            raise VsrkitError(f"{p}: no such file")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise VsrkitError(f"{p}: not a JSON results file ({' '.join(str(e).split())})") from None
        schema = data.get("schema") if isinstance(data, dict) else None
        if schema == "vsrkit-eval/1":
            evals.append({**data, "_file": str(p)})
        elif schema == "vsrkit-bench/1":
            benches.append({**data, "_file": str(p)})
        else:
            raise VsrkitError(f"{p}: not a vsrkit eval or bench result (schema {schema!r})")
    return evals, benches


def _fmt(v: Any, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def _dataset_key(r: dict[str, Any]) -> str:
    d, p = r["dataset"], r["protocol"]
    lr = f"LR {d['lr']}" if d["lr"] else f"{(d['degradation'] or '').upper()} from GT"
    return f"{d['gt']} ({lr}; {p['description']})"


def _bench_speed(benches: list[dict[str, Any]], model: str) -> dict[str, Any] | None:
    """The bench row of a model (the first one found; the largest input size if several)."""
    rows = [r for b in benches for r in b["results"] if r["model"] == model]
    if not rows:
        return None

    def pixels(r: dict[str, Any]) -> int:
        w, h = (int(v) for v in r["size"].split("x"))
        return w * h

    return max(rows, key=pixels)


def build_report(evals: list[dict[str, Any]], benches: list[dict[str, Any]], title: str = "vsrkit report",
                 videos: list[dict[str, Any]] | None = None) -> str:
    """The HTML text of the report; ``videos``: crops of real clips with no ground truth
    (``vsrkit.eval.compare.video_crops``), shown first."""
    from vsrkit.eval.report.plots import COLOURS, curves_svg, scatter_svg

    models = []
    for r in evals:
        if r["model"]["name"] not in models:
            models.append(r["model"]["name"])
    for b in benches:
        for row in b["results"]:
            if row["model"] not in models:
                models.append(row["model"])
    colour = {m: COLOURS[i % len(COLOURS)] for i, m in enumerate(models)}
    esc = html.escape
    parts: list[str] = []

    # ---- real clips with no ground truth: crops only
    for vi, v in enumerate(videos or []):
        box = v["box"]
        head = (f"Crops: {esc(v['clip'])} (no ground truth), frame {v['frame']}, {box[2]}×{box[3]} pixels at "
                f"({box[1]}, {box[0]}), x{v['scale']}")
        parts.append(f"<section class='video' id='video{vi}'><h2>{esc(v['clip'])}</h2>"
                     + _tiles_html(head, v["tiles"], f"vid{vi}") + "</section>")
    if not evals and not benches:
        return _PAGE.format(title=esc(title), body="\n".join(parts), sources="the videos below",
                            script=_SCRIPT)

    # ---- table
    cols = ["model", "dataset", "PSNR", "SSIM", "flicker", "warp (GT)", "ms/frame", "fps", "params", "GFLOP/frame",
            "of conv peak", "speed from"]
    rows = []
    for r in evals:
        o, name = r["overall"], r["model"]["name"]
        b = _bench_speed(benches, name)
        ms = b["ms_per_frame"] if b else o.get("ms_per_frame")
        warp = (f"{_fmt(o.get('warp'), '.4f')} ({_fmt(o.get('warp_gt'), '.4f')})" if "warp" in o else "–")
        rows.append([f'<span class="sw" style="background:{colour[name]}"></span>{esc(name)}', esc(_dataset_key(r)),
                     _fmt(o.get("psnr"), ".4f"), _fmt(o.get("ssim"), ".4f"), _fmt(o.get("flicker"), ".4f"), warp,
                     _fmt(ms, ".2f"), _fmt(1000 / ms if ms else None, ".2f"), f"{r['model']['params'] / 1e6:.3f}M",
                     _fmt(b["gflop_per_frame"] if b else None, ".3f"),
                     _fmt(100 * b["roofline_fraction"] if b and b.get("roofline_fraction") else None, ".0f")
                     + ("%" if b and b.get("roofline_fraction") else ""),
                     esc(f"bench {b['size']} {b['device']} {b['precision']}" if b else f"eval on {r['run']['device']}")])
    evaluated = {r["model"]["name"] for r in evals}
    for b in benches:
        for row in b["results"]:
            if row["model"] in evaluated:
                continue
            rows.append([f'<span class="sw" style="background:{colour[row["model"]]}"></span>{esc(row["model"])}',
                         "–", "–", "–", "–", "–", f"{row['ms_per_frame']:.2f}", f"{row['fps']:.2f}",
                         f"{row['params'] / 1e6:.3f}M", f"{row['gflop_per_frame']:.3f}",
                         _fmt(100 * (row["roofline_fraction"] or 0), ".0f") + "%",
                         esc(f"bench {row['size']} {row['device']} {row['precision']}")])
    table = ["<table id='results'><thead><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr></thead><tbody>"]
    table += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    table.append("</tbody></table>")
    parts.append("<section id='table'><h2>Quality and speed</h2>" + "".join(table)
                 + "<p class='note'>PSNR in dB and SSIM as BasicSR computes them, averaged per clip, then over "
                 "clips. flicker: 1000 × mean squared change of the error along the ground truth's motion "
                 "(0 for a perfect output); warp: 1000 × warping error of the output (of the ground truth in "
                 "brackets). Time per frame from <code>vsrkit bench</code> where a bench result is given, "
                 "otherwise from the evaluation run.</p></section>")

    # ---- per dataset: scatter, curves, crops
    datasets: dict[str, list[dict[str, Any]]] = {}
    for r in evals:
        datasets.setdefault(_dataset_key(r), []).append(r)
    for di, (key, results) in enumerate(datasets.items()):
        sec = [f"<section class='dataset' id='dataset{di}'><h2>{esc(key)}</h2>"]
        points = []
        for r in results:
            b = _bench_speed(benches, r["model"]["name"])
            ms = b["ms_per_frame"] if b else r["overall"].get("ms_per_frame")
            if ms is not None and r["overall"].get("psnr") is not None:
                points.append({"name": r["model"]["name"], "ms": ms, "value": r["overall"]["psnr"],
                               "colour": colour[r["model"]["name"]]})
        if points:
            sec.append("<div class='fig scatter'>" + scatter_svg(points, "PSNR (dB)", "Quality against time per frame")
                       + "</div>")
        clips: list[str] = []
        for r in results:
            for c in r["clips"]:
                if c["name"] not in clips and c["scored"] > 1:
                    clips.append(c["name"])
        for clip in clips[:6]:
            series = []
            for r in results:
                fr = [f for f in r["frames"] if f["clip"] == clip and f.get("psnr") is not None]
                if fr:
                    series.append({"name": r["model"]["name"], "x": [f["frame"] for f in fr],
                                   "y": [f["psnr"] for f in fr], "colour": colour[r["model"]["name"]]})
            if series:
                sec.append("<div class='fig curve'>" + curves_svg(series, f"Per-frame PSNR, clip {clip}") + "</div>")
        sec.append(_crops_html(results, di))
        sec.append("</section>")
        parts.append("".join(sec))

    files = [r["_file"] for r in evals] + [b["_file"] for b in benches]
    return _PAGE.format(title=esc(title), body="\n".join(parts),
                        sources=", ".join(f"<code>{esc(f)}</code>" for f in files), script=_SCRIPT)


def _crops_html(results: list[dict[str, Any]], di: int) -> str:
    """Crops of the same frame and box from every result of a dataset, and the two-image slider."""
    esc = html.escape
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in results:
        c = r.get("crops")
        if c:
            groups.setdefault((c["clip"], c["frame"], tuple(c["box"])), []).append(r)
    out = []
    for gi, ((clip, frame, box), rs) in enumerate(groups.items()):
        first = rs[0]["crops"]
        tiles = [("Bicubic", first["bicubic"])] + [(r["model"]["name"], r["crops"]["output"]) for r in rs]
        tiles.append(("Ground truth", first["gt"]))
        head = f"Crops: clip {esc(clip)}, frame {frame}, {box[2]}×{box[3]} pixels at ({box[1]}, {box[0]})"
        out.append(_tiles_html(head, tiles, f"cmp{di}_{gi}"))
    return "".join(out)


def _tiles_html(head: str, tiles: list[tuple[str, str]], cid: str) -> str:
    """A row of named crops (PNG base64) and the slider comparing any two of them (the last two at first)."""
    esc = html.escape
    imgs = "".join(f"<figure><img class='crop' alt='{esc(n)}' src='data:image/png;base64,{b}'>"
                   f"<figcaption>{esc(n)}</figcaption></figure>" for n, b in tiles)
    options = "".join(f"<option value='{i}'>{esc(n)}</option>" for i, (n, _) in enumerate(tiles))
    sources = "".join(f"<img class='src' hidden alt='' src='data:image/png;base64,{b}'>" for _, b in tiles)
    return (f"<div class='crops'><h3>{head}</h3><div class='row'>{imgs}</div>"
            f"<div class='compare' id='{cid}'><div class='pick'>left <select class='a'>{options}</select> "
            f"right <select class='b'>{options}</select> <input class='slider' type='range' min='0' max='100' "
            f"value='50' aria-label='slider'></div><div class='stage'>"
            f"<img class='under' alt='right'><img class='over' alt='left'><div class='bar'></div></div>"
            f"<div class='sources'>{sources}</div></div></div>")


_SCRIPT = """
window.addEventListener('error', function (e) {
  document.body.dataset.error = String(e.message || e);
  var b = document.createElement('div'); b.className = 'scripterror';
  b.textContent = 'script error: ' + (e.message || e); document.body.prepend(b);
});
function setupCompare(root) {
  var srcs = root.querySelectorAll('.sources img');
  var a = root.querySelector('select.a'), b = root.querySelector('select.b');
  var over = root.querySelector('img.over'), under = root.querySelector('img.under');
  var slider = root.querySelector('.slider'), bar = root.querySelector('.bar');
  a.value = String(srcs.length - 2); b.value = String(srcs.length - 1);
  function show() {
    over.src = srcs[+a.value].src; under.src = srcs[+b.value].src;
    over.style.clipPath = 'inset(0 ' + (100 - slider.value) + '% 0 0)';
    bar.style.left = slider.value + '%';
  }
  a.addEventListener('change', show); b.addEventListener('change', show); slider.addEventListener('input', show);
  show();
}
document.querySelectorAll('.compare').forEach(setupCompare);
var imgs = Array.prototype.slice.call(document.querySelectorAll('img.crop'));
Promise.all(imgs.map(function (im) {
  return im.decode ? im.decode().then(function () { return im.naturalWidth > 0; }, function () { return false; })
                   : Promise.resolve(im.naturalWidth > 0);
})).then(function (ok) {
  document.body.dataset.images = String(ok.filter(Boolean).length) + '/' + ok.length;
  document.body.dataset.ready = '1';
});
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 18px; margin-top: 28px; }} h3 {{ font-size: 14px; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: right; }}
th:nth-child(-n+2), td:nth-child(-n+2), td:last-child {{ text-align: left; }}
.sw {{ display: inline-block; width: 10px; height: 10px; margin-right: 6px; border-radius: 2px; }}
.note {{ color: #555; font-size: 12px; max-width: 900px; }}
.fig {{ display: inline-block; vertical-align: top; margin: 8px 16px 8px 0; }}
.fig svg {{ max-width: 640px; height: auto; }}
.row {{ display: flex; flex-wrap: wrap; gap: 8px; }}
figure {{ margin: 0; text-align: center; font-size: 12px; }}
img.crop {{ width: 192px; height: 192px; image-rendering: pixelated; border: 1px solid #ccc; }}
.stage {{ position: relative; width: 384px; height: 384px; margin-top: 8px; border: 1px solid #ccc; }}
.stage img {{ position: absolute; left: 0; top: 0; width: 384px; height: 384px; image-rendering: pixelated; }}
.bar {{ position: absolute; top: 0; bottom: 0; width: 2px; background: #fff; box-shadow: 0 0 2px #000; }}
.slider {{ width: 384px; }}
.scripterror {{ background: #c00; color: #fff; padding: 8px; font-weight: bold; }}
</style></head>
<body>
<h1>{title}</h1>
<p class="note">Made by <code>vsrkit report</code> from {sources}.</p>
{body}
<script>{script}</script>
</body></html>
"""


def write_report(paths: list[str | os.PathLike], output: str | os.PathLike, title: str = "vsrkit report",
                 videos: list[dict[str, Any]] | None = None) -> Path:
    """Read the results, write the page under a temporary name and rename it to ``output``; ``videos``: crops of
    real clips (``vsrkit.eval.compare.video_crops``), which may stand alone."""
    evals, benches = load_results(paths) if paths or not videos else ([], [])
    text = build_report(evals, benches, title, videos)
    out = Path(output)
    write_atomic_text(out, text)
    return out
