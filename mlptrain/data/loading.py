"""Find a data set (known name or directory), load it as uint8 arrays, and serve float batches.

Images stay uint8 in memory, flattened to ``(n, pixels)``; each minibatch is
scaled to ``[0, 1]`` floats when it is gathered, so the only float copy of the
data is one batch at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlptrain.data.datasets import DATASETS, FILE_NAMES, dataset_names
from mlptrain.data.decoded import load_decoded
from mlptrain.data.download import ProgressFactory, ensure_dataset
from mlptrain.data.idx import read_images, read_labels
from mlptrain.errors import DataError

Array = np.ndarray
CLASSES_FILE = "classes.txt"  # optional, beside a directory data set's IDX files


@dataclass
class Dataset:
    """A training and a test split: images ``(n, pixels)`` uint8, labels ``(n,)`` uint8."""

    name: str
    train_images: Array
    train_labels: Array
    test_images: Array
    test_labels: Array
    image_shape: tuple[int, ...]
    n_classes: int
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    class_names: tuple[str, ...] = ()  # one per class; empty: the class numbers

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.image_shape))


def locate(
    dataset: str, data_dir: Path, mirror: str | None = None, progress: ProgressFactory | None = None
) -> Path:
    """The directory holding ``dataset``'s files: downloaded into the cache for a known
    name (verified, no network when already cached), or the directory itself."""
    spec = DATASETS.get(dataset)
    if spec is None:
        return Path(dataset).expanduser()
    return ensure_dataset(spec, data_dir, mirror=mirror, progress=progress)


def find_files(directory: Path) -> list[Path]:
    """The four IDX files in ``directory``, gzipped (``.gz``) or not, in FILE_NAMES order."""
    if not directory.is_dir():
        raise DataError(
            f"dataset {str(directory)!r} is neither a known data set ({dataset_names()}) "
            "nor a directory"
        )
    found, missing = [], []
    for name in FILE_NAMES:
        candidates = [directory / name, directory / name.removesuffix(".gz")]
        path = next((p for p in candidates if p.is_file()), None)
        (found if path else missing).append(path or name)
    if missing:
        raise DataError(
            f"{directory} lacks {', '.join(map(str, missing))}; an IDX data set directory needs "
            f"the four files {', '.join(FILE_NAMES)} (gzipped or not)"
        )
    return found


def load_dataset(directory: Path, name: str) -> Dataset:
    """Read and cross-check the four IDX files in ``directory``."""
    train_x, train_y, test_x, test_y = find_files(directory)
    (train_images, d1), (test_images, d2) = load_decoded(train_x, read_images), load_decoded(test_x, read_images)
    (train_labels, d3), (test_labels, d4) = load_decoded(train_y, read_labels), load_decoded(test_y, read_labels)
    _check_counts(train_x, train_images, train_y, train_labels)
    _check_counts(test_x, test_images, test_y, test_labels)
    if train_images.shape[1:] != test_images.shape[1:]:
        raise DataError(
            f"{test_x.name} holds images of shape {test_images.shape[1:]} but "
            f"{train_x.name} holds {train_images.shape[1:]}; both splits must match"
        )
    n_classes = int(train_labels.max()) + 1
    if test_labels.max() >= n_classes:
        raise DataError(
            f"{test_y.name} has label {int(test_labels.max())}, but the training labels "
            f"only go up to {n_classes - 1}"
        )
    return Dataset(
        name=name,
        train_images=train_images.reshape(len(train_images), -1),
        train_labels=train_labels,
        test_images=test_images.reshape(len(test_images), -1),
        test_labels=test_labels,
        image_shape=tuple(int(d) for d in train_images.shape[1:]),
        n_classes=n_classes,
        files={p.name: d for p, d in zip((train_x, train_y, test_x, test_y), (d1, d3, d2, d4))},
        class_names=class_names(directory, name, n_classes),
    )


def class_names(directory: Path, name: str, n_classes: int) -> tuple[str, ...]:
    """The names of a data set's classes: the table's for a known data set, else ``directory/classes.txt``
    (one name per line) when present, else the class numbers."""
    spec = DATASETS.get(name)
    if spec is not None and len(spec.class_names) == n_classes:
        return spec.class_names
    path = directory / CLASSES_FILE
    if not path.is_file():
        return tuple(str(k) for k in range(n_classes))
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is unreadable ({exc}); write one class name per line in UTF-8") from None
    if len(names) != n_classes:
        raise DataError(
            f"{path} names {len(names)} classes but the labels have {n_classes}; "
            "write one name per line, in label order, or delete the file to use the numbers"
        )
    return tuple(names)


def _check_counts(images_path: Path, images: Array, labels_path: Path, labels: Array) -> None:
    if len(images) != len(labels):
        raise DataError(
            f"{images_path.name} holds {len(images)} images but {labels_path.name} holds "
            f"{len(labels)} labels; the files do not belong together"
        )


def gather_batch(images: Array, indices: Array | slice, dtype: np.dtype | type) -> Array:
    """Rows ``indices`` of uint8 ``images`` as floats in ``[0, 1]``, shape ``(len(indices), pixels)``."""
    # astype then an in-place multiply: both are SIMD loops, faster than one mixed-type multiply
    # or np.take into a reused buffer (benchmarks/NOTES.md, "Tried and dropped").
    batch = images[indices].astype(dtype)
    batch *= 1.0 / 255.0
    return batch
