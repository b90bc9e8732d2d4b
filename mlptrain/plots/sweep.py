"""PNG plots of a sweep: test accuracy over its varying keys, with the spread over the seeds.

Two varying keys: a heatmap, each cell the mean ± sample std. One key: curves
with the std as error bars, on a categorical axis when the values are not
numbers. Three or more: small multiples, one heatmap of the first two keys
per combination of the others.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

from mlptrain.plots.common import pyplot, save
from mlptrain.sweep.results import show_value
from mlptrain.sweep.summary import Point

SWEEP_HEATMAP, SWEEP_CURVES = "sweep-heatmap.png", "sweep-curves.png"
MAX_PANELS = 36  # small multiples past this many panels are unreadable: the figure says to use summary.csv
PANEL_COLUMNS = 3


def plot_sweep(sweep_dir: Path) -> list[Path]:
    """Test accuracy over the sweep's varying keys: a heatmap (or one per value of the others), or curves."""
    from mlptrain.errors import ConfigError, RunDirError
    from mlptrain.sweep.results import read_results, read_sweep
    from mlptrain.sweep.summary import summarize

    info = read_sweep(sweep_dir)
    if info.get("kind") == "search":
        from mlptrain.plots.search import plot_search

        return plot_search(sweep_dir)
    varying, grid, records = info["varying"], info["spec"]["grid"], read_results(sweep_dir)
    if not records:
        raise RunDirError(f"{sweep_dir} has no finished trial to plot yet")
    if not varying:
        raise ConfigError(f"{sweep_dir} varies only the seed: its spread is in summary.csv; there is no axis to plot")
    points = {json.dumps([p.params[k] for k in varying]): p for p in summarize(records, varying)}
    axes = [_axis_values(grid[key]) for key in varying]
    seeds = len(info["spec"]["seeds"])
    if len(varying) == 1:
        return [save(sweep_curves_figure(varying[0], axes[0], points, seeds), sweep_dir / SWEEP_CURVES)]
    panels = list(itertools.product(*axes[2:]))
    if len(panels) > MAX_PANELS:
        raise ConfigError(f"{sweep_dir} would need {len(panels)} heatmaps (one per value of "
                          f"{', '.join(varying[2:])}); more than {MAX_PANELS} are unreadable: see summary.csv")
    return [save(sweep_heatmap_figure(varying, axes, points, seeds), sweep_dir / SWEEP_HEATMAP)]


def _axis_values(values: list[Any]) -> list[Any]:
    """Numbers ascending (a log grid reads left to right); anything else in the spec's order."""
    return sorted(values) if _numeric(values) else list(values)


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _cell(point: Point | None) -> tuple[float, str]:
    """Colour value and text of a heatmap cell: mean ± std of the test accuracy in %, or why there is none."""
    if point is None:
        return float("nan"), "not run"
    broken = {s: n for s, n in point.statuses.items() if s != "complete"}
    note = "\n" + "\n".join(f"{n} {s}" for s, n in broken.items()) if broken else ""
    stat = point.test_acc
    if stat is None:
        return float("nan"), note.strip() or "-"
    spread = f"\n± {100 * stat.std:.1f}" if stat.std is not None else ""
    return stat.mean, f"{100 * stat.mean:.1f}{spread}{note}"


def _seeds_text(seeds: int) -> str:
    return f"mean ± sample std over {seeds} seeds" if seeds > 1 else "one seed"


def sweep_heatmap_figure(keys: list[str], axes: list[list[Any]], points: dict[str, Point], seeds: int) -> Any:
    """Rows: the first varying key; columns: the second; one panel per combination of the others."""
    plt = pyplot()
    rows, cols, others = axes[0], axes[1], list(itertools.product(*axes[2:]))
    n_cols = min(PANEL_COLUMNS, len(others))
    n_rows = math.ceil(len(others) / n_cols)
    width, height = 1.5 + 1.0 * len(cols), 1.2 + 0.75 * len(rows)
    fig, grid = plt.subplots(n_rows, n_cols, figsize=(width * n_cols + 0.8, height * n_rows + 0.5),
                             layout="constrained", squeeze=False)
    image = None
    for ax, rest in zip(grid.flat, others):
        image = _heatmap(ax, keys, rows, cols, rest, points)
        if rest:
            ax.set_title(", ".join(f"{k}={show_value(v)}" for k, v in zip(keys[2:], rest)), fontsize=9)
    for ax in list(grid.flat)[len(others):]:
        ax.set_visible(False)
    fig.suptitle(f"test accuracy % ({_seeds_text(seeds)}; grey: no result)", fontsize=10)
    from matplotlib.ticker import PercentFormatter

    fig.colorbar(image, ax=grid, label="test accuracy", fraction=0.05 / n_cols, format=PercentFormatter(1.0))
    return fig


def _heatmap(ax: Any, keys: list[str], rows: list[Any], cols: list[Any], rest: tuple, points: dict[str, Point]) -> Any:
    import numpy as np

    plt = pyplot()
    values = np.full((len(rows), len(cols)), np.nan)
    texts = {}
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            values[i, j], texts[i, j] = _cell(points.get(json.dumps([r, c, *rest])))
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")  # grey: no test accuracy (diverged, failed, not run)
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for (i, j), text in texts.items():
        dark = np.isnan(values[i, j]) or values[i, j] > 0.6
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black" if dark else "white")
    ax.set(xticks=range(len(cols)), xticklabels=[show_value(c) for c in cols], xlabel=keys[1],
           yticks=range(len(rows)), yticklabels=[show_value(r) for r in rows], ylabel=keys[0])
    return image


def sweep_curves_figure(key: str, values: list[Any], points: dict[str, Point], seeds: int) -> Any:
    """Mean test and validation accuracy over one varying key, the seeds' sample std as error bars."""
    from matplotlib.ticker import PercentFormatter

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    numeric = _numeric(values)
    xs = values if numeric else list(range(len(values)))
    series = (("test_acc", "test", "-o", -0.06), ("val_acc", "validation (best epoch)", "--s", 0.06))
    for attr, label, style, shift in series:
        stats = [getattr(points.get(json.dumps([v])), attr, None) for v in values]
        ax.errorbar(xs if numeric else [x + shift for x in xs], [s.mean if s else float("nan") for s in stats],
                    yerr=[s.std if s and s.std is not None else 0.0 for s in stats],
                    fmt=style if numeric else style.lstrip("-"), capsize=3, label=label)
    if numeric and min(values) > 0 and max(values) / min(values) >= 100:
        ax.set_xscale("log")
    if not numeric:  # categories: evenly spaced, no line implying an order between them
        ax.set_xticks(xs, [show_value(v) for v in values])
        ax.set_xlim(-0.5, len(values) - 0.5)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(xlabel=key, ylabel="accuracy", title=f"accuracy over {key} ({_seeds_text(seeds)})")
    ax.legend()
    return fig
