"""PNG plots of a sweep: a heatmap of test accuracy over two varying keys, or curves over one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlptrain.plots.common import pyplot, save
from mlptrain.sweep.results import show_value

SWEEP_HEATMAP, SWEEP_CURVES = "sweep-heatmap.png", "sweep-curves.png"


def plot_sweep(sweep_dir: Path) -> list[Path]:
    """Test accuracy over the sweep's varying keys: a heatmap for two, curves for one (means over seeds)."""
    from mlptrain.errors import ConfigError, RunDirError
    from mlptrain.sweep.results import group_over_seeds, read_results, read_sweep

    info = read_sweep(sweep_dir)
    varying, grid, records = info["varying"], info["spec"]["grid"], read_results(sweep_dir)
    if not records:
        raise RunDirError(f"{sweep_dir} has no finished trial to plot yet")
    if len(varying) not in (1, 2):
        raise ConfigError(f"a sweep plot draws one or two varying keys; {sweep_dir} varies {len(varying)}"
                          f"{': ' + ', '.join(varying) if varying else ''}; look at results.csv instead")
    groups = {json.dumps([g.params[k] for k in varying]): g for g in group_over_seeds(records, varying)}
    axes = [_axis_values(grid[key]) for key in varying]
    seeds = len(info["spec"]["seeds"])
    if len(varying) == 2:
        return [save(sweep_heatmap_figure(varying, axes, groups, seeds), sweep_dir / SWEEP_HEATMAP)]
    return [save(sweep_curves_figure(varying[0], axes[0], groups, seeds), sweep_dir / SWEEP_CURVES)]


def _axis_values(values: list[Any]) -> list[Any]:
    """Numbers ascending (a log grid reads left to right); anything else in the spec's order."""
    return sorted(values) if _numeric(values) else list(values)


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _cell(group: Any) -> tuple[float, str]:
    """Colour value and text of a heatmap cell: mean test accuracy in %, or why there is none."""
    if group is None:
        return float("nan"), "not run"
    broken = {s: n for s, n in group.statuses.items() if s != "complete"}
    note = "\n" + "\n".join(f"{n} {s}" for s, n in sorted(broken.items())) if broken else ""
    if group.test_acc is None:
        return float("nan"), note.strip() or "-"
    return group.test_acc[0], f"{100 * group.test_acc[0]:.1f}{note}"


def sweep_heatmap_figure(keys: list[str], axes: list[list[Any]], groups: dict[str, Any], seeds: int) -> Any:
    """Rows: the first varying key; columns: the second; colour and text: mean test accuracy."""
    import numpy as np

    plt = pyplot()
    rows, cols = axes
    values = np.full((len(rows), len(cols)), np.nan)
    fig, ax = plt.subplots(figsize=(1.5 + 0.95 * len(cols), 1.4 + 0.6 * len(rows)), layout="constrained")
    texts = {}
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            values[i, j], texts[i, j] = _cell(groups.get(json.dumps([r, c])))
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")  # grey: no test accuracy (diverged, failed, not run)
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for (i, j), text in texts.items():
        dark = np.isnan(values[i, j]) or values[i, j] > 0.6
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black" if dark else "white")
    ax.set(xticks=range(len(cols)), xticklabels=[show_value(c) for c in cols], xlabel=keys[1],
           yticks=range(len(rows)), yticklabels=[show_value(r) for r in rows], ylabel=keys[0],
           title=f"test accuracy % (mean over {seeds} seed{'s' if seeds != 1 else ''})")
    from matplotlib.ticker import PercentFormatter

    fig.colorbar(image, ax=ax, label="test accuracy", fraction=0.05, format=PercentFormatter(1.0))
    return fig


def sweep_curves_figure(key: str, values: list[Any], groups: dict[str, Any], seeds: int) -> Any:
    """Mean test and validation accuracy over one varying key, with the seeds' std as error bars."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    numeric = _numeric(values)
    xs = values if numeric else list(range(len(values)))
    for attr, label, style in (("test_acc", "test", "-o"), ("val_acc", "validation (best epoch)", "--s")):
        stats = [getattr(groups.get(json.dumps([v])), attr, None) for v in values]
        ax.errorbar(xs, [s[0] if s else float("nan") for s in stats], yerr=[s[1] if s else 0.0 for s in stats],
                    fmt=style, capsize=3, label=label)
    if numeric and min(values) > 0 and max(values) / min(values) >= 100:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(xs, [show_value(v) for v in values])
    ax.set(xlabel=key, ylabel="accuracy", title=f"accuracy over {key} (mean ± std over {seeds} "
           f"seed{'s' if seeds != 1 else ''})")
    ax.legend()
    return fig
