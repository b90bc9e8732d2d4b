"""norm.png: a normalised run's learned scales and shifts (and batch norm's running statistics), per hidden layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlptrain.nn.norms import NormLayers
from mlptrain.plots.common import pyplot, save
from mlptrain.runs.files import WEIGHTS_FILE, load_weights
from mlptrain.runs.report import RunRecord, norm_arrays

NORM_FILE = "norm.png"
# Each array's panel: the title's words, and whether it spans decades (a unit's variance can be 1e-4 or 1e2).
PANELS = {"scale": ("scale (gamma) per unit, learned", False), "shift": ("shift (beta) per unit, learned", False),
          "running mean": ("running mean per unit, for inference", False),
          "running var": ("running variance per unit, for inference", True)}


def plot_norms(record: RunRecord) -> list[Path]:
    """Write norm.png into the run directory ([] when the run has no weights yet, or its net no norm)."""
    if not (record.run_dir / WEIGHTS_FILE).exists():
        return []
    norm = load_weights(record.run_dir / WEIGHTS_FILE)[0].norm
    if norm is None:
        return []
    return [save(norm_figure(norm, record.name), record.run_dir / NORM_FILE)]


def norm_figure(norm: NormLayers, name: str) -> Any:
    """One panel per array (scale, shift; batch norm: running mean, variance): a box of its units per hidden
    layer, the value at init dotted."""
    plt = pyplot()
    arrays = norm_arrays(norm)
    fig, axes = plt.subplots(1, len(arrays), figsize=(4.2 * len(arrays), 4.2), layout="constrained", squeeze=False)
    layers = [f"hidden{i + 1}" for i in range(len(norm.scales))]
    for ax, (array, init, values) in zip(axes[0], arrays):
        title, log = PANELS[array]
        ax.boxplot([np.asarray(v, dtype=np.float64) for v in values], showmeans=True)
        ax.set_xticks(range(1, len(layers) + 1), layers)
        ax.axhline(init, color="grey", linestyle=":", label=f"at init: {init:g}")
        ax.set(title=title, xlabel="hidden layer (box: its units; triangle: mean)")
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.suptitle(f"{name}: {norm.kind.name} norm parameters in {WEIGHTS_FILE} (eps {norm.eps:g})")
    return fig
