"""PNG plots of runs: learning curves, per-layer health, the confusion matrix, several runs overlaid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlptrain.plots.common import pyplot, save
from mlptrain.plots.filters import plot_filters
from mlptrain.runs.report import RunRecord

CURVES_FILE, HEALTH_FILE, CONFUSION_FILE = "curves.png", "health.png", "confusion.png"
HEALTH_PANELS = [  # column, title, log scale
    ("dead", "dead units (share)", False),
    ("saturated", "saturated outputs (share)", False),
    ("act_std", "activation std", True),
    ("grad_rms", "weight-gradient RMS", True),
    ("weight_rms", "weight RMS", True),
    ("update_ratio", "update / weight per epoch", True),
]


def plot_run(record: RunRecord) -> list[Path]:
    """Write curves.png, health.png, filters.png and (after ``eval``) confusion.png into the run directory."""
    written = [save(curves_figure([record]), record.run_dir / CURVES_FILE)]
    written += plot_filters(record)
    if record.layer_series():
        written.append(save(health_figure(record), record.run_dir / HEALTH_FILE))
    if record.evaluation is not None:
        written.append(save(confusion_figure(record.evaluation), record.run_dir / CONFUSION_FILE))
    return written


def plot_comparison(records: list[RunRecord], path: Path) -> Path:
    """Several runs' learning curves overlaid in one PNG."""
    return save(curves_figure(records), path)


def _label(record: RunRecord) -> str:
    c = record.config
    scale = f" r={c['init_range']:g}" if c.get("init_range") else ""
    return f"{record.name}: {c.get('activation')} {c.get('init')}{scale}"


def curves_figure(records: list[RunRecord]) -> Any:
    """Loss and accuracy per epoch: training solid, validation dashed, one colour per run."""
    plt = pyplot()
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
    plt = pyplot()
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
    plt = pyplot()
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
