"""The report's figures, drawn by matplotlib (Agg) as inline SVG: nothing to load, works offline."""

from __future__ import annotations

import io
from typing import Any

__all__ = ["pareto_front", "scatter_svg", "curves_svg", "COLOURS"]

# matplotlib's tab10, so a model has the same colour in every figure and in the table
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    matplotlib.rcParams.update({"svg.hashsalt": "vsrkit", "svg.fonttype": "path", "font.size": 10})
    import matplotlib.pyplot as plt

    return plt


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    _pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prologue and DOCTYPE: the SVG sits inside HTML


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both time (lower) and quality (higher), by time."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def scatter_svg(points: list[dict[str, Any]], ylabel: str, title: str) -> str:
    """Quality against milliseconds per frame (log axis) with the Pareto front; ``points`` hold
    name, ms, value, colour."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    xy = [(p["ms"], p["value"]) for p in points]
    for p in points:
        ax.scatter(p["ms"], p["value"], s=60, color=p["colour"], zorder=3, label=p["name"])
        ax.annotate(p["name"], (p["ms"], p["value"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    front = pareto_front(xy)
    if len(front) > 1:
        fx = [xy[i][0] for i in front]
        fy = [xy[i][1] for i in front]
        ax.step(fx, fy, where="post", color="#444444", linestyle="--", linewidth=1, zorder=2, label="Pareto front")
    if all(x > 0 for x, _ in xy):
        ax.set_xscale("log")
    ax.set_xlabel("time per frame (ms, log scale; lower is better)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _svg(fig)


def curves_svg(series: list[dict[str, Any]], title: str, ylabel: str = "PSNR (dB)") -> str:
    """Per-frame curves; ``series`` hold name, x, y, colour."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    for s in series:
        ax.plot(s["x"], s["y"], color=s["colour"], marker="o", markersize=2.5, linewidth=1.2, label=s["name"])
    ax.set_xlabel("frame")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _svg(fig)
