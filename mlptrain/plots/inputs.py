"""inputs.png: a few training images exactly as the run's net receives them, each under its class name.

The images are loaded again through the data pipeline itself
(``data.loading.load_dataset``, from the prepared cache when it is there) with
the run's own preparation, as ``eval`` uses it (``experiment.run_preparation``:
``preprocess``, the image size the network takes, ``test_size``), so a class
folder of dark-on-light photos shows up as the white-on-black 28x28 digits-to-be
the net was trained on. Nothing is downloaded: when the run's data is no longer
where it was, ``plot_inputs`` raises a DataError saying so and the other
figures stand. Augmentation is not drawn here: its distortions are random on
every epoch, and augment.png already shows draws made by the training code
itself (its first column is these images as stored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlptrain.data.datasets import DATASETS
from mlptrain.data.download import ProgressFactory
from mlptrain.data.loading import Dataset, load_dataset
from mlptrain.errors import DataError
from mlptrain.experiment import run_preparation
from mlptrain.plots.augment import AUGMENT_FILE
from mlptrain.plots.common import pyplot, save
from mlptrain.runs.files import WEIGHTS_FILE, load_weights
from mlptrain.runs.report import RunRecord

INPUTS_FILE = "inputs.png"
COUNT, COLUMNS = 32, 8  # a small grid: every class of a 10- or 26-class set shows at least once


def plot_inputs(record: RunRecord, data_dir: Path, progress: ProgressFactory | None = None) -> Path:
    """Write inputs.png into the run directory; DataError (one line: why) when the run's data cannot be loaded.

    ``data_dir``: the cache of downloaded and prepared data (where a known data set is looked for, and the
    prepared arrays of a user's own); ``progress``: for preparing images afresh when their cache is gone."""
    data = run_training_data(record, data_dir, progress)
    chosen = pick(data.train_labels, COUNT)
    images = data.train_images[chosen].reshape(len(chosen), *data.image_shape)
    names = [data.class_names[k] if k < len(data.class_names) else str(k) for k in data.train_labels[chosen]]
    title = _title(record, data)
    return save(inputs_figure(images, names, title), record.run_dir / INPUTS_FILE)


def run_training_data(record: RunRecord, data_dir: Path, progress: ProgressFactory | None = None) -> Dataset:
    """The run's data set, loaded and prepared as the run had it; DataError when it is gone (never downloaded)."""
    meta: dict[str, Any] = dict((record.summary or {}).get("dataset") or {})
    names: tuple[str, ...] = ()
    if (record.run_dir / WEIGHTS_FILE).exists():
        _, weights_meta = load_weights(record.run_dir / WEIGHTS_FILE)
        meta = {**weights_meta, **meta}
        stored = weights_meta.get("class_names")
        names = tuple(str(n) for n in stored) if isinstance(stored, list) else ()  # the labels follow the run's
    name = str(record.config.get("dataset") or meta.get("name") or "mnist")
    source = _source(name, meta.get("directory"), data_dir)
    return load_dataset(source, name, run_preparation(record.run_dir, meta), data_dir, class_names=names,
                        progress=progress)


def _source(name: str, recorded: str | None, data_dir: Path) -> Path:
    """Where the run's data is now: where the run found it, else (a known set) its place in ``data_dir``."""
    places = [Path(recorded)] if recorded else []
    places.append(data_dir / name if name in DATASETS else Path(name).expanduser())
    for place in places:
        if place.exists():
            return place
    remedy = (f"download it again (mlptrain data download {name}) or give --data-dir where it is cached"
              if name in DATASETS else "put it back there to draw them")
    raise DataError(f"the run's data set {name} is no longer at {places[0]} (moved or deleted), and plot re-reads "
                    f"the training images from it (never downloading); {remedy}")


def pick(labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of up to ``count`` images, the classes taken in turn (the first of each, then the second, ...)."""
    members = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    chosen: list[int] = []
    for rank in range(max((len(m) for m in members), default=0)):
        chosen += [int(m[rank]) for m in members if rank < len(m)]
        if len(chosen) >= count:
            break
    return np.array(chosen[:count], dtype=np.int64)


def tile(images: np.ndarray, columns: int) -> np.ndarray:
    """``images`` (n, h, w) uint8 as one picture in [0, 1]: ``columns`` to a row, NaN (drawn white) between, with
    room above each row for the class names."""
    n, h, w = images.shape
    rows, gap = -(-n // columns), _gap(h)
    grid = np.full((rows * (h + gap), min(n, columns) * (w + 1) - 1), np.nan)
    for i in range(n):
        r, c = divmod(i, columns)
        top = r * (h + gap) + gap
        grid[top:top + h, c * (w + 1):c * (w + 1) + w] = images[i] / 255
    return grid


def _gap(height: int) -> int:
    return max(3, round(height * 0.4))


def inputs_figure(images: np.ndarray, names: list[str], title: str) -> Any:
    """The images in a grid, as the net's inputs (0 black, 1 white, pixel for pixel), each under its class name."""
    plt = pyplot()
    n, h, w = images.shape
    columns = min(n, COLUMNS)
    rows = -(-n // columns)
    fig, ax = plt.subplots(figsize=(1.0 * columns + 0.4, 1.35 * rows + 0.7), layout="constrained")
    ax.imshow(tile(images, columns), cmap=plt.get_cmap("gray").with_extremes(bad="white"), vmin=0, vmax=1,
              interpolation="nearest")
    for i, name in enumerate(names):
        r, c = divmod(i, columns)
        ax.text(c * (w + 1) + (w - 1) / 2, r * (h + _gap(h)) + _gap(h) - 1, name, ha="center", va="bottom",
                fontsize=7)
    ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    return fig


def _title(record: RunRecord, data: Dataset) -> str:
    """What the grid is: the run, the data set, the preparation, and where augmentation is shown."""
    shape = "x".join(str(d) for d in reversed(data.image_shape))
    decoded = data.details.get("format") in ("folders", "parquet")  # image files: the preparation applies
    how = f"prepared: {data.preprocess}, " if decoded else ""
    augment = record.config.get("augment") or []
    listed = augment if isinstance(augment, str) else ", ".join(str(a) for a in augment)
    note = f"\ntrained with augment: {listed}; its random distortions are in {AUGMENT_FILE}" if augment else ""
    name = Path(data.name).name or data.name
    return f"{record.name}: training images of {name} as the net receives them ({how}{shape} pixels){note}"
