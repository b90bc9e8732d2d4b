"""augment.png: what the net is fed when a run augments its data -- training images and their distortions.

The images come from the run's ``augmented.npz``, written when the run started
by the training pipeline itself (``BatchSource.preview``), so the picture shows
distortions made by the code training uses, not by a re-implementation of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlptrain.plots.common import pyplot, save
from mlptrain.runs.files import load_augmented
from mlptrain.runs.report import RunRecord

AUGMENT_FILE = "augment.png"


def plot_augmented(record: RunRecord) -> list[Path]:
    """Write augment.png into the run directory ([] for a run without augmentation)."""
    loaded = load_augmented(record.run_dir)
    if loaded is None:
        return []
    return [save(augment_figure(record.name, *loaded), record.run_dir / AUGMENT_FILE)]


def tile(images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``images`` (draws + 1, n, pixels) as one picture: a row per image, a column per version, NaN between."""
    columns, rows = images.shape[:2]
    h, w = shape[0], int(np.prod(shape[1:]))
    grid = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1), np.nan)
    for c, r in np.ndindex(columns, rows):
        grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = images[c, r].reshape(h, w) / 255
    return grid


def augment_figure(name: str, images: np.ndarray, shape: tuple[int, ...], augment: list[str]) -> Any:
    plt = pyplot()
    columns, rows = images.shape[:2]
    fig, ax = plt.subplots(figsize=(1.1 * columns + 0.5, 1.1 * rows + 1.0), layout="constrained")
    ax.imshow(tile(images, shape), cmap=plt.get_cmap("gray").with_extremes(bad="white"), vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([(shape[1] + 1) * c + shape[1] / 2 - 0.5 for c in range(columns)],
                  ["as stored", *(f"draw {k}" for k in range(1, columns))])
    ax.set_yticks([])
    ax.xaxis.tick_top()
    fig.suptitle(f"{name}: what the net is fed\naugment: {', '.join(augment)}", fontsize=9)
    return fig
