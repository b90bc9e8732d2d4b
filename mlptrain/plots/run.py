"""PNG plots of runs: learning curves, per-layer health, the confusion matrix, several runs overlaid."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mlptrain.plots.augment import plot_augmented
from mlptrain.plots.common import pyplot, save
from mlptrain.plots.filters import plot_filters
from mlptrain.plots.norms import plot_norms
from mlptrain.runs.files import WEIGHTS_FILE, load_augmented, load_weights
from mlptrain.runs.report import RunRecord

CURVES_FILE, HEALTH_FILE, CONFUSION_FILE = "curves.png", "health.png", "confusion.png"
HEALTH_PANELS = [  # column, title, log scale
    ("signal", "signal: output's spread across samples", True),
    ("gain", "gain: signal / the layer input's signal", True),
    ("cumulative_gain", "gain product from the input (the warnings' measure)", True),
    ("dead", "dead units (share)", False),
    ("saturated", "saturated outputs (share)", False),
    ("grad_rms", "weight-gradient RMS", True),
    ("weight_rms", "weight RMS", True),
    ("update_ratio", "update / weight per epoch", True),
]
LAYER_BAND = (0.5, 2.0)  # a layer passing its input's signal on within 2x either way


def plot_run(record: RunRecord) -> list[Path]:
    """Write curves.png, health.png, filters.png, norm.png (with a norm), augment.png (with augmentation) and
    (after ``eval``) confusion.png into the run directory."""
    check_readable(record)
    written = [save(curves_figure([record]), record.run_dir / CURVES_FILE)]
    written += plot_filters(record)
    written += plot_norms(record)
    written += plot_augmented(record)
    if record.layer_series():
        written.append(save(health_figure(record), record.run_dir / HEALTH_FILE))
    if record.evaluation is not None:
        written.append(save(confusion_figure(record.evaluation), record.run_dir / CONFUSION_FILE))
    return written


def check_readable(record: RunRecord) -> None:
    """Read the files the PNGs are drawn from (RunDirError naming a damaged one) before any PNG is written."""
    if (record.run_dir / WEIGHTS_FILE).exists():
        load_weights(record.run_dir / WEIGHTS_FILE)
    load_augmented(record.run_dir)


def plot_comparison(records: list[RunRecord], path: Path) -> Path:
    """Several runs' learning curves overlaid in one PNG."""
    return save(curves_figure(records), path)


def _label(record: RunRecord) -> str:
    norm = record.config.get("norm", "none")
    with_norm = f", {norm} norm" if norm != "none" else ""
    return f"{record.name}: {record.config.get('activation')} {record.init}{with_norm}"


def curves_figure(records: list[RunRecord]) -> Any:
    """Loss and accuracy per epoch: training solid, validation dashed, one colour per run.

    The loss panel draws the constant guess's loss log(C) as a reference and
    spans at least a decade around it, so a loss stuck at log(C) looks flat
    instead of being zoomed into a steep-looking curve.
    """
    plt = pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    losses = []
    for i, record in enumerate(records):
        epochs = [m["epoch"] for m in record.history]
        colour = f"C{i % 10}"
        for key, ax in (("loss", loss_ax), ("acc", acc_ax)):
            for part, style in (("train", "-"), ("val", "--")):
                if record.history and f"{part}_{key}" in record.history[0]:
                    values = [m[f"{part}_{key}"] for m in record.history]
                    ax.plot(epochs, values, color=colour, linestyle=style,
                            label=_label(record) if part == "train" else None)
                    losses += values if key == "loss" else []
    _loss_axis(loss_ax, losses, _n_classes(records))
    # The whole 0-100% range, chance marked: a stuck run's wobble between 10.9% and 11.3% must look flat.
    acc_ax.axhline(1 / _n_classes(records), color="grey", linestyle=":", linewidth=1.2)
    acc_ax.set(title="accuracy (solid: train, dashed: validation; dotted: chance)", xlabel="epoch", ylim=(0, 1))
    acc_ax.yaxis.set_major_formatter(_percent())
    acc_ax.legend(fontsize=8, loc="best")
    _integer_epochs(loss_ax)
    _integer_epochs(acc_ax)
    return fig


def _n_classes(records: list[RunRecord]) -> int:
    return next((r.n_classes for r in records if r.n_classes), 10)


def _loss_axis(ax: Any, losses: list[float], n_classes: int) -> None:
    """A log axis with log(C) marked, never narrower than a decade around the losses and log(C)."""
    chance = math.log(n_classes)
    ax.axhline(chance, color="grey", linestyle=":", linewidth=1.2,
               label=f"constant guess: log({n_classes}) = {chance:.3f}")
    ax.set(title="loss (solid: train, dashed: validation)", xlabel="epoch", yscale="log")
    _at_least_a_decade(ax, losses + [chance, chance / 10])
    ax.legend(fontsize=8, loc="lower left")


def _at_least_a_decade(ax: Any, values: list[float]) -> None:
    """Log-axis limits around ``values``, never narrower than a factor of 10: a flat line must look flat."""
    finite = [v for v in values if math.isfinite(v) and v > 0]
    if not finite:
        return
    low, high = min(finite), max(finite)
    middle, half = math.sqrt(low * high), max(math.sqrt(high / low), math.sqrt(10.0))
    ax.set_ylim(middle / half / 1.3, middle * half * 1.3)


def _percent() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0)


def _integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def health_figure(record: RunRecord) -> Any:
    """Per-layer health over the epochs (epoch 0: the init check), one panel per statistic, bands shaded."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(17, 7), layout="constrained")
    series = _health_series(record)
    factor = float(record.config.get("signal_factor") or 10.0)
    bands = {"gain": LAYER_BAND, "cumulative_gain": (1 / factor, factor)}
    for ax, (column, title, log) in zip(axes.flat, HEALTH_PANELS):
        for layer, (start, columns) in series.items():
            values = columns[column]
            if log:  # a log axis cannot show zeros; leave those points out
                values = [v if v > 0 else float("nan") for v in values]
            first = start if column != "update_ratio" else 1  # no update before the first epoch
            ax.plot(range(first, first + len(values)), values, marker="o", markersize=3, label=layer)
        if column in bands:
            ax.axhspan(*bands[column], color="green", alpha=0.12, label="healthy band")
        ax.set(title=title, xlabel="epoch (0: init check)")
        _integer_epochs(ax)
        if log:
            ax.set_yscale("log")
            drawn = [v for line in ax.get_lines() for v in line.get_ydata()]
            _at_least_a_decade(ax, drawn + list(bands.get(column, ())))
        else:
            ax.set_ylim(-0.02, 1.02)
            ax.yaxis.set_major_formatter(_percent())
    axes.flat[0].legend(fontsize=8)
    axes.flat[2].legend(fontsize=8, handles=axes.flat[2].patches[:1])
    fig.suptitle(f"layer health on the probe batch: {_label(record)}")
    return fig


def _health_series(record: RunRecord) -> dict[str, tuple[int, dict[str, list[float]]]]:
    """layer -> (first epoch, column -> values), the init check as epoch 0 where the run has it."""
    init = {row["layer"]: row for row in record.init_health}
    series: dict[str, tuple[int, dict[str, list[float]]]] = {}
    for layer, columns in record.layer_series().items():
        start = 0 if layer in init else 1
        values = {c: ([init[layer][c]] if start == 0 and c != "update_ratio" else []) + v for c, v in columns.items()}
        series[layer] = (start, values)
    running = None
    for layer, (start, columns) in series.items():  # the product of the gains up to and including this layer
        running = columns["gain"] if running is None else [a * b for a, b in zip(running, columns["gain"])]
        columns["cumulative_gain"] = running
    return series


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
