"""PNG plots of runs: learning curves, per-layer health, the confusion matrix, several runs overlaid, sweeps.

matplotlib is imported here only, with the non-interactive Agg backend, so
the rest of mlptrain (and ``mlptrain --help``) never pays for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlptrain.fsutil import atomic_write
from mlptrain.runreport import RunRecord
from mlptrain.sweepresults import show_value

CURVES_FILE, HEALTH_FILE, CONFUSION_FILE = "curves.png", "health.png", "confusion.png"
HEALTH_PANELS = [  # column, title, log scale
    ("dead", "dead units (share)", False),
    ("saturated", "saturated outputs (share)", False),
    ("act_std", "activation std", True),
    ("grad_rms", "weight-gradient RMS", True),
    ("weight_rms", "weight RMS", True),
    ("update_ratio", "update / weight per epoch", True),
]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
    _pyplot().close(fig)
    return path


def plot_run(record: RunRecord) -> list[Path]:
    """Write curves.png, health.png and (after ``eval``) confusion.png into the run directory."""
    written = [_save(curves_figure([record]), record.run_dir / CURVES_FILE)]
    if record.layer_series():
        written.append(_save(health_figure(record), record.run_dir / HEALTH_FILE))
    if record.evaluation is not None:
        written.append(_save(confusion_figure(record.evaluation), record.run_dir / CONFUSION_FILE))
    return written


def plot_comparison(records: list[RunRecord], path: Path) -> Path:
    """Several runs' learning curves overlaid in one PNG."""
    return _save(curves_figure(records), path)


def _label(record: RunRecord) -> str:
    c = record.config
    scale = f" r={c['init_range']:g}" if c.get("init_range") else ""
    return f"{record.name}: {c.get('activation')} {c.get('init')}{scale}"


def curves_figure(records: list[RunRecord]) -> Any:
    """Loss and accuracy per epoch: training solid, validation dashed, one colour per run."""
    plt = _pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for i, record in enumerate(records):
        epochs = [m["epoch"] for m in record.history]
        colour = f"C{i % 10}"
        for key, ax in (("loss", loss_ax), ("acc", acc_ax)):
            ax.plot(epochs, [m[f"train_{key}"] for m in record.history], color=colour, label=_label(record))
            if record.history and f"val_{key}" in record.history[0]:
                ax.plot(epochs, [m[f"val_{key}"] for m in record.history], color=colour, linestyle="--")
    loss_ax.set(title="loss (solid: train, dashed: validation)", xlabel="epoch", yscale="log")
    acc_ax.set(title="accuracy (solid: train, dashed: validation)", xlabel="epoch")
    acc_ax.legend(fontsize=8, loc="best")
    _integer_epochs(loss_ax)
    _integer_epochs(acc_ax)
    return fig


def _integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def health_figure(record: RunRecord) -> Any:
    """Per-layer health over the epochs (epoch 0: the init check), one panel per statistic."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), layout="constrained")
    series = record.layer_series()
    init = {row["layer"]: row for row in (record.summary or {}).get("init_health", [])}
    for ax, (column, title, log) in zip(axes.flat, HEALTH_PANELS):
        for layer, columns in series.items():
            values = columns[column]
            start = 1
            if layer in init and column in init[layer]:  # update_ratio has no init value
                values, start = [init[layer][column], *values], 0
            if log:  # a log axis cannot show zeros; leave those points out
                values = [v if v > 0 else float("nan") for v in values]
            ax.plot(range(start, start + len(values)), values, marker="o", markersize=3, label=layer)
        ax.set(title=title, xlabel="epoch (0: init)")
        _integer_epochs(ax)
        if log:
            ax.set_yscale("log")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"layer health on the probe batch: {_label(record)}")
    return fig


def confusion_figure(evaluation: dict[str, Any]) -> Any:
    """The confusion matrix from eval.json, counts in each cell."""
    plt = _pyplot()
    confusion = evaluation["confusion"]
    n = len(confusion)
    fig, ax = plt.subplots(figsize=(1 + 0.55 * n, 0.8 + 0.5 * n))
    ax.imshow(confusion, cmap="Blues")
    for t in range(n):
        for p in range(n):
            ax.text(p, t, str(confusion[t][p]), ha="center", va="center", fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", xticks=range(n), yticks=range(n),
           title=f"{evaluation['dataset']}: accuracy {evaluation['accuracy']:.2%}")
    return fig


# --- sweeps ---------------------------------------------------------------------------------

SWEEP_HEATMAP, SWEEP_CURVES = "sweep-heatmap.png", "sweep-curves.png"


def plot_sweep(sweep_dir: Path) -> list[Path]:
    """Test accuracy over the sweep's varying keys: a heatmap for two, curves for one (means over seeds)."""
    from mlptrain.errors import ConfigError, RunDirError
    from mlptrain.sweepresults import group_over_seeds, read_results, read_sweep

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
        return [_save(sweep_heatmap_figure(varying, axes, groups, seeds), sweep_dir / SWEEP_HEATMAP)]
    return [_save(sweep_curves_figure(varying[0], axes[0], groups, seeds), sweep_dir / SWEEP_CURVES)]


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

    plt = _pyplot()
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
    fig.colorbar(image, ax=ax, label="test accuracy", fraction=0.05)
    return fig


def sweep_curves_figure(key: str, values: list[Any], groups: dict[str, Any], seeds: int) -> Any:
    """Mean test and validation accuracy over one varying key, with the seeds' std as error bars."""
    plt = _pyplot()
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
