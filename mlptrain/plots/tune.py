"""PNGs of the tuning tools: the init-scale scan (init-scan.png) and the LR range test (lr-find.png)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mlptrain.plots.common import pyplot, save
from mlptrain.tune.initscan import Placed, Scan, placed
from mlptrain.tune.lrfind import LRFind

INIT_SCAN_FILE, LR_FIND_FILE = "init-scan.png", "lr-find.png"
MARKERS = "osD^vP*X"


def _positive(values: list[float]) -> list[float]:
    """A log axis cannot show 0 or inf: those points are left out."""
    return [v if 0 < v < math.inf else math.nan for v in values]


def init_scan_figure(scan: Scan) -> Any:
    """Gain product against r, log-log: one line per activation, its healthy r band shaded, initializers marked.

    An init is drawn at its equivalent r and the gain measured for it, filled when that gain is healthy and
    hollow when it is not: the text's verdict, which the r band cannot give for every activation. With a
    norm the same activations without it are drawn dashed, their bands hatched, to show how the norm moves them.
    """
    plt = pyplot()
    # Fixed margins, not constrained layout: on these log axes its tick-label measuring was a large
    # share of the whole command's time (benchmarks/NOTES.md), and the legend sits inside the axes anyway.
    fig, ax = plt.subplots(figsize=(9, 5.5))
    fig.subplots_adjust(left=0.085, right=0.985, bottom=0.095, top=0.94)
    ax.axhspan(1 / scan.factor, scan.factor, color="0.85", zorder=0, label=f"healthy: within {scan.factor:g}x of 1")
    for i, curve in enumerate(scan.curves):
        colour = f"C{i % 10}"
        ax.plot(scan.radii, _positive(curve.gains), color=colour, marker=".",
                label=f"{curve.activation}{_with(scan)}: U(-r, r)")
        for low, high in curve.bands:
            ax.axvspan(low, high, color=colour, alpha=0.15, zorder=0)
        *inits, yours = placed(scan, curve)
        for marker, row in zip(MARKERS, inits):
            _mark(ax, row, marker, colour)
        _mark(ax, yours, "*", colour, markersize=14)
    for i, curve in enumerate(scan.plain):
        colour = f"C{i % 10}"
        ax.plot(scan.radii, _positive(curve.gains), color=colour, linestyle="--", linewidth=1.0,
                label=f"{curve.activation} without {scan.norm} norm: total gain (band hatched)")
        for low, high in curve.bands:
            ax.axvspan(low, high, facecolor="none", edgecolor=colour, hatch="//", linewidth=0.0, zorder=0)
    # The key shows each marker's shape once, in grey: a marker's fill tells its verdict, its colour the activation.
    for marker, name in zip(MARKERS, scan.curves[0].inits):
        _mark(ax, None, marker, "0.6", label=name)
    _mark(ax, None, "*", "0.6", markersize=14, label=f"yours: {scan.yours}")
    _mark(ax, None, "o", "white", label="hollow: gain outside the healthy range")
    ylabel = ("spread the last norm keeps x output growth" if scan.plain
              else "total gain input -> logits (init check)")
    ax.set(xscale="log", yscale="log", xlabel="r of U(-r, r) (initializers: at their equivalent r)", ylabel=ylabel,
           title=f"init-scale scan: {'-'.join(map(str, scan.sizes))}{_with(scan)}, probe batch")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def _with(scan: Scan) -> str:
    """`` with batch norm`` for a normalised scan, else nothing."""
    return f" with {scan.norm} norm" if scan.plain else ""


def _mark(ax: Any, row: Placed | None, marker: str, colour: str, markersize: float = 6.0, label: str | None = None
          ) -> None:
    """One init at (equivalent r, measured gain), hollow when its gain is outside; ``row`` None: a key entry.

    A hollow marker keeps the activation's colour on its edge, a filled one has a black edge.
    """
    x, y = ([row.r], _positive([row.gain])) if row else ([], [])
    inside = row is None or row.position == "inside"
    ax.plot(x, y, marker=marker, markersize=markersize, color=colour, markerfacecolor=colour if inside else "white",
            markeredgecolor="black" if inside else colour,
            markeredgewidth=1.0 if inside else 1.8, linestyle="none", label=label)


def lr_find_figure(result: LRFind, title: str) -> Any:
    """Batch loss (light) and smoothed loss (bold) against lr, log x, with the two suggestions marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    ax.plot(result.lrs, result.losses, color="C0", alpha=0.3, label="batch loss")
    ax.plot(result.lrs, result.smoothed, color="C0", label="smoothed loss")
    for value, label, colour in ((result.steepest(), "steepest descent", "C1"),
                                 (result.minimum_over_10(), "minimum / 10", "C2")):
        if value is not None:
            ax.axvline(value, color=colour, linestyle="--", label=f"{label}: {value:.3g}")
    if result.smoothed:  # the divergence at the end would flatten the interesting part
        low = min(min(result.losses), min(result.smoothed))
        ax.set_ylim(0.9 * low, max(1.2 * result.smoothed[0], 1.1 * low))
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss", title=title)
    ax.legend(fontsize=8)
    return fig


def plot_init_scan(scan: Scan, path: Path) -> Path:
    # The margins are fixed (see init_scan_figure); the bounding-box pass would draw it all twice.
    return save(init_scan_figure(scan), path, tight=False)


def plot_lr_find(result: LRFind, title: str, path: Path) -> Path:
    return save(lr_find_figure(result, title), path)
