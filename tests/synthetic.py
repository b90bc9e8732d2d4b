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


def make_strokes(labels: np.ndarray, shape: tuple[int, int], n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """MNIST-like: a dark background (faint noise) and a bright stroke per class (class ``k`` a bar at its own
    place, rows for even ``k``, columns for odd), off the border, jittered by a pixel."""
    images = rng.integers(0, 30, size=(len(labels), *shape), dtype=np.uint8)
    spots = np.linspace(2, min(shape) - 3, max(1, (n_classes + 1) // 2)).round().astype(int)
    for i, k in enumerate(labels):
        at = spots[k // 2] + rng.integers(-1, 2)
        brightness = rng.integers(150, 256)
        if k % 2 == 0:
            images[i, at, 2:-2] = brightness
        else:
            images[i, 2:-2, at] = brightness
    return images


def write_images(directory: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
                 ) -> Path:
    """Write given ``(images, labels)`` training and test splits as the four IDX files of a data set."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in zip(FILE_NAMES, [train[0], train[1], test[0], test[1]]):
        write_idx(directory / name, array)
    return directory


def write_strokes(directory: Path, n_train: int = 300, n_test: int = 100, n_classes: int = 3,
                  shape: tuple[int, int] = (10, 10), seed: int = 0, dark_on_light: bool = False) -> Path:
    """A ``make_strokes`` data set; ``dark_on_light`` inverts it (255 - pixel), as a scan of ink on paper is."""
    rng = np.random.default_rng(seed)
    splits = []
    for n in (n_train, n_test):
        labels = (np.arange(n) % n_classes).astype(np.uint8)
        images = make_strokes(labels, shape, n_classes, rng)
        splits.append((255 - images if dark_on_light else images, labels))
    return write_images(directory, *splits)
