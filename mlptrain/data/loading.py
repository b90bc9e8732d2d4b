"""Find a data set (a known name or a path in any of the formats), load it as uint8 arrays, serve float batches.

Images stay uint8 in memory, flattened to ``(n, pixels)``; each minibatch is
scaled to ``[0, 1]`` floats when it is gathered, so the only float copy of the
data is one batch at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlptrain.data.cache import ArrayCache
from mlptrain.data.datasets import DATASETS
from mlptrain.data.download import ProgressFactory, ensure_dataset
from mlptrain.data.formats import FORMATS, detect
from mlptrain.data.idxdir import CLASSES_FILE
from mlptrain.data.parts import SPLIT_SEED, Parts, Preparation, Request, Split, count_of, stratified_split
from mlptrain.errors import DataError

Array = np.ndarray


@dataclass
class Dataset:
    """A training and a test split: images ``(n, pixels)`` uint8, labels ``(n,)`` uint8. A set loaded only to
    evaluate on has no training images (``(0, pixels)``)."""

    name: str
    train_images: Array
    train_labels: Array
    test_images: Array
    test_labels: Array
    image_shape: tuple[int, ...]
    n_classes: int
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    class_names: tuple[str, ...] = ()  # one per class; empty: the class numbers
    preprocess: str = "mnist"  # how image files were (and are, by predict) prepared for the net
    details: dict[str, Any] = field(default_factory=dict)  # format, layout, test split, cache use: for the summary

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.image_shape))


def locate(
    dataset: str, data_dir: Path, mirror: str | None = None, progress: ProgressFactory | None = None
) -> Path:
    """Where ``dataset``'s data is: its directory in the cache for a known name (downloaded and verified there,
    no network when already cached), else the path itself (a directory or a file)."""
    spec = DATASETS.get(dataset)
    if spec is None:
        return Path(dataset).expanduser()
    return ensure_dataset(spec, data_dir, mirror=mirror, progress=progress)


def load_dataset(source: Path, name: str, preparation: Preparation = Preparation(), cache_dir: Path | None = None,
                 *, need_train: bool = True, progress: ProgressFactory | None = None,
                 class_names: tuple[str, ...] = ()) -> Dataset:
    """The data set at ``source`` (a known set's directory, or a path in any format of ``FORMATS``).

    ``cache_dir``: the data directory whose cache keeps decoded and prepared arrays (None: no cache);
    ``need_train`` False loads the test split only (a set to evaluate on may have nothing else);
    ``class_names``: the classes the labels must follow (a trained run's), for formats that name them.
    """
    data_format = FORMATS["idx"] if name in DATASETS and source.is_dir() else detect(source)
    request = Request(preparation, ArrayCache(cache_dir), need_train, progress, tuple(class_names))
    parts = data_format.load(source, request)
    train, test = _splits(parts, source, preparation, need_train, data_format.splits)
    n_classes = len(parts.class_names) if parts.class_names else int((train or test).labels.max()) + 1
    if test.labels.max() >= n_classes:
        raise DataError(f"{test.source} has label {int(test.labels.max())}, but the training labels only go up to "
                        f"{n_classes - 1}")
    pixels = int(np.prod(test.images.shape[1:]))
    empty = (np.zeros((0, pixels), np.uint8), np.zeros(0, np.uint8))
    train_images, train_labels = (train.images.reshape(len(train.images), -1), train.labels) if train else empty
    return Dataset(
        name=name, train_images=train_images, train_labels=train_labels,
        test_images=test.images.reshape(len(test.images), -1), test_labels=test.labels,
        image_shape=tuple(int(d) for d in test.images.shape[1:]), n_classes=n_classes, files=parts.files,
        class_names=parts.class_names or class_names_for(source, name, n_classes),
        preprocess=preparation.preprocess, details=parts.details,
    )


def _splits(parts: Parts, source: Path, preparation: Preparation, need_train: bool,
            hint: str) -> tuple[Split | None, Split]:
    """The training split (None when not needed and not there) and the test split, checked: present, not empty,
    of one image shape. A set without a test split of its own is divided by ``preparation.test_size``; ``hint``
    says what holds the two splits in the set's format."""
    train, test = parts.train, parts.test
    if parts.whole is not None:
        train, test = split_whole(parts.whole, preparation.test_size)
        parts.details["test_split"] = {"test_size": preparation.test_size, "seed": SPLIT_SEED,
                                       "n_test": len(test.labels)}
    if test is None:
        raise DataError(f"{source} has no test split; give the test images too ({hint})")
    if need_train and train is None:
        raise DataError(f"{source} has only a test split, which is enough for mlptrain eval but not for training; "
                        f"give the training images too ({hint})")
    for split in (train, test):
        if split is not None and len(split.labels) == 0:
            raise DataError(f"{split.source} holds no images (an empty split); add some")
    if train is not None and train.images.shape[1:] != test.images.shape[1:]:
        raise DataError(f"{test.source} holds images of shape {test.images.shape[1:]} but {train.source} holds "
                        f"{train.images.shape[1:]}; both splits must match")
    return train, test


def split_whole(whole: Split, test_size: int | float) -> tuple[Split, Split]:
    """A set without a test split divided into training and test splits: ``test_size`` images (a count or a
    fraction) held out, each class in proportion, the same ones every time (``SPLIT_SEED``)."""
    n = len(whole.labels)
    held = count_of(test_size, n)
    if not 0 < held < n:
        raise DataError(f"--test-size {test_size} holds out {held} of the {n} images of {whole.source}, leaving "
                        f"{'no test' if held <= 0 else 'no training'} images (an empty split); choose a count "
                        f"from 1 to {n - 1} or a fraction")
    kept, held_out = stratified_split(whole.labels, test_size)
    return (Split(whole.images[kept], whole.labels[kept], f"{whole.source} (training part)"),
            Split(whole.images[held_out], whole.labels[held_out], f"{whole.source} (test part)"))


def class_names_for(source: Path, name: str, n_classes: int) -> tuple[str, ...]:
    """The names of a data set's classes: the table's for a known data set, else ``classes.txt`` in a directory
    data set (one name per line) when present, else the class numbers."""
    spec = DATASETS.get(name)
    if spec is not None and len(spec.class_names) == n_classes:
        return spec.class_names
    path = source / CLASSES_FILE
    if not source.is_dir() or not path.is_file():
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


def gather_batch(images: Array, indices: Array | slice, dtype: np.dtype | type) -> Array:
    """Rows ``indices`` of uint8 ``images`` as floats in ``[0, 1]``, shape ``(len(indices), pixels)``."""
    # astype then an in-place multiply: both are SIMD loops, faster than one mixed-type multiply
    # or np.take into a reused buffer (benchmarks/NOTES.md, "Tried and dropped").
    batch = images[indices].astype(dtype)
    batch *= 1.0 / 255.0
    return batch
