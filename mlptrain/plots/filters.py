"""filters.png: the first layer's incoming weights as images, at init and after training, side by side.

The initial weights are not stored in a run: they are drawn again from the
run's config and seed exactly as the trainer drew them (``initial_network``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from mlptrain.config import build_config
from mlptrain.plots.common import pyplot, save
from mlptrain.runs.files import WEIGHTS_FILE, load_weights
from mlptrain.runs.report import RunRecord
from mlptrain.train.trainer import initial_network

FILTERS_FILE = "filters.png"
MAX_UNITS = 64

Array = np.ndarray


def plot_filters(record: RunRecord) -> list[Path]:
    """Write filters.png into the run directory ([] when the run has no weights yet)."""
    if not (record.run_dir / WEIGHTS_FILE).exists():
        return []
    return [save(filters_figure(record), record.run_dir / FILTERS_FILE)]


def initial_and_trained(record: RunRecord) -> tuple[Array, Array, tuple[int, ...]]:
    """The first layer's weights ``(inputs, units)`` at init and as saved, and the images' shape."""
    net, meta = load_weights(record.run_dir / WEIGHTS_FILE)
    config = build_config(record.config)
    initial = initial_network(config, net.sizes[0], net.sizes[-1])
    stored = meta.get("image_shape")
    fits = (isinstance(stored, list) and len(stored) == 2 and all(type(d) is int and d > 0 for d in stored)
            and stored[0] * stored[1] == net.sizes[0])  # else damaged meta: the weights still show, square
    return initial.weights[0], net.weights[0], tuple(stored) if fits else _square(net.sizes[0])


def _square(n: int) -> tuple[int, ...]:
    side = math.isqrt(n)
    return (side, side) if side * side == n else (1, n)


def mosaic(weights: Array, shape: tuple[int, ...], units: int = MAX_UNITS) -> Array:
    """Up to ``units`` columns of ``weights`` as images in a square grid, each scaled to [-1, 1], NaN between."""
    count = min(units, weights.shape[1])
    h, w = (shape[0], int(np.prod(shape[1:]))) if len(shape) > 1 else (1, shape[0])
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    grid = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for k in range(count):
        unit = weights[:, k].astype(np.float64)
        peak = np.abs(unit).max()
        r, c = divmod(k, cols)
        grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = (unit / peak if peak else unit).reshape(h, w)
    return grid


def filters_figure(record: RunRecord) -> Any:
    """Two panels: the first layer's filters at init (regenerated) and after training."""
    plt = pyplot()
    initial, trained, shape = initial_and_trained(record)
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.3), layout="constrained")
    count = min(MAX_UNITS, trained.shape[1])
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")  # white: the gaps between the images
    for ax, weights, title in ((axes[0], initial, "at init"), (axes[1], trained, "after training")):
        ax.imshow(mosaic(weights, shape), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
        ax.set(title=f"{title} (RMS {np.sqrt(np.mean(np.square(weights[:, :count], dtype=np.float64))):.3g})",
               xticks=[], yticks=[])
    fig.suptitle(f"{record.name}: first-layer weights of {count} units, each scaled to its largest |w| "
                 f"({record.config.get('activation')} {record.init})")
    return fig
