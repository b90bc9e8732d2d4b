"""A tiny, learnable IDX data set written by the tests (no real data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlptrain.data.datasets import FILE_NAMES
from mlptrain.data.idx import write_idx


def make_images(labels: np.ndarray, shape: tuple[int, int], n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Class ``k`` lights up its own band of rows, faintly, over strong uint8 noise (~95% learnable)."""
    images = rng.integers(0, 200, size=(len(labels), *shape), dtype=np.uint8)
    band = max(1, shape[0] // n_classes)
    for k in range(n_classes):
        images[labels == k, k * band:(k + 1) * band, :] += 40
    return images


def write_dataset(
    directory: Path, n_train: int = 300, n_test: int = 100, n_classes: int = 3,
    shape: tuple[int, int] = (8, 8), seed: int = 0, gz: bool = True,
) -> Path:
    """Write the four IDX files of a synthetic data set into ``directory``."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    train_y = (np.arange(n_train) % n_classes).astype(np.uint8)
    test_y = (np.arange(n_test) % n_classes).astype(np.uint8)
    arrays = [make_images(train_y, shape, n_classes, rng), train_y, make_images(test_y, shape, n_classes, rng), test_y]
    for name, array in zip(FILE_NAMES, arrays):
        write_idx(directory / (name if gz else name.removesuffix(".gz")), array)
    return directory
