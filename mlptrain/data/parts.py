"""What every data-set format reads into, and the rules they share: pixel and label values, split sizes.

A format's loader returns ``Parts``: a training and a test ``Split`` (either
may be absent), or one ``whole`` split for a set without a test split of its
own, which ``loading`` divides by ``test_size``. Pixels end up uint8 0-255 and
labels uint8 class numbers, as the IDX files have them, whatever the source held.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlptrain.data.cache import ArrayCache
from mlptrain.data.download import ProgressFactory
from mlptrain.errors import DataError

Array = np.ndarray
MAX_CLASSES = 256  # labels are stored as uint8, as in IDX files
SPLIT_SEED = 0  # the test split of a set without one: the same images whatever the run's --seed


@dataclass(frozen=True)
class Preparation:
    """How a user's data set becomes arrays. ``preprocess``/``image_size``: class-folder images (``mnist``: prepared
    as MNIST was, to ``image_size`` x ``image_size``; ``none``: as they are, all one size); ``image_shape``: the
    ``(height, width)`` of a CSV or archive row (None: square); ``test_size``: a count or a fraction of a set
    without a test split held out as its test split."""

    preprocess: str = "mnist"
    image_size: int = 28
    image_shape: tuple[int, int] | None = None
    test_size: int | float = 0.2


@dataclass(frozen=True)
class Request:
    """What a format's loader is asked for: the preparation, the cache, whether the training split is wanted (not
    to evaluate), a progress factory for a long first preparation, and the class names the labels must follow
    (a trained run's, when evaluating; empty: the data set's own)."""

    preparation: Preparation
    cache: ArrayCache
    need_train: bool = True
    progress: ProgressFactory | None = None
    class_names: tuple[str, ...] = ()


@dataclass
class Split:
    """Images ``(n, height, width)`` uint8 and labels ``(n,)`` uint8, and where they came from (for messages)."""

    images: Array
    labels: Array
    source: str


@dataclass
class Parts:
    """What a format's loader read: the splits there are, class names when the format has them, provenance."""

    train: Split | None = None
    test: Split | None = None
    whole: Split | None = None  # no test split of its own: divided by Preparation.test_size
    class_names: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # file -> sha256 (or a listing's digest)
    details: dict[str, Any] = field(default_factory=dict)  # for the run's summary: layout, cache use, ...


def parse_size(value: Any) -> int | float:
    """A count (``5000``) or a fraction (``0.1``, ``"10%"``) of a set; ValueError saying what is allowed."""
    allowed = "a count (a whole number such as 5000) or a fraction (such as 0.1 or 10%)"
    if isinstance(value, str):
        text = value.strip()
        try:
            if text.endswith("%"):
                value = float(text[:-1]) / 100
                if value == 0:
                    return 0
            elif re.fullmatch(r"[+]?\d+", text):
                value = int(text)
            else:
                value = float(text)
        except ValueError:
            raise ValueError(allowed) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(allowed)
    if isinstance(value, int):
        if not 0 <= value <= 10_000_000:
            raise ValueError(allowed + ", the count at most 10000000")
        return value
    if not (math.isfinite(value) and 0 < value < 1):
        raise ValueError(allowed + ", the fraction above 0 and below 1")
    return float(value)


def count_of(size: int | float, n: int) -> int:
    """The number of images ``size`` (a count, or a fraction of ``n``) stands for; a fraction keeps at least one."""
    if isinstance(size, float):
        return max(1, round(size * n))
    return size


def stratified_split(labels: Array, size: int | float, seed: int = SPLIT_SEED) -> tuple[Array, Array]:
    """Indices ``(kept, held_out)``, sorted: ``size`` images held out at random, each class in proportion."""
    n = len(labels)
    held = count_of(size, n)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    # Round-robin over the classes in a random order within each: the held-out images are spread over the
    # classes in proportion, to within one image.
    rank = np.empty(n, np.float64)
    for k in np.unique(labels):
        members = order[labels[order] == k]
        rank[members] = (np.arange(len(members)) + rng.random()) / len(members)
    chosen = order[np.argsort(rank[order], kind="stable")[:held]]
    mask = np.zeros(n, bool)
    mask[chosen] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def pixels_to_uint8(values: Array, where: str) -> Array:
    """Pixel values as uint8: integers 0-255 as they are, floats in [0, 1] scaled by 255, floats in [0, 255]
    rounded; DataError naming ``where`` otherwise."""
    if values.dtype == np.uint8:
        return values
    if values.dtype.kind not in "iuf":
        raise DataError(f"{where}: pixel values of type {values.dtype}; give numbers, 0-255 or 0-1")
    if values.size == 0:
        return values.astype(np.uint8)
    low, high = float(values.min()), float(values.max())
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high > 255:
        raise DataError(f"{where}: pixel values from {low:g} to {high:g}; give 0-255 or 0-1")
    if values.dtype.kind == "f" and high <= 1.0:
        return np.rint(values * 255.0).astype(np.uint8)
    return np.rint(values).astype(np.uint8)


def labels_to_uint8(values: Array, where: str, unit: str = "image", first_number: int = 0) -> Array:
    """Class numbers ``(n,)`` (or ``(n, 1)``) as uint8; DataError naming ``where`` and the first bad one (``unit``
    ``first_number`` + its index: ``image 0``, ``line 2``) for anything but whole numbers from 0 to 255."""
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise DataError(f"{where}: labels of shape {values.shape}; give one class number per image, shape (n,)")
    if values.dtype.kind not in "iuf":
        raise DataError(f"{where}: labels of type {values.dtype}; give whole numbers from 0 to {MAX_CLASSES - 1}")
    bad = (values < 0) | (values >= MAX_CLASSES)
    if values.dtype.kind == "f":
        bad |= ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where}: label {float(values[first]):g} ({unit} {first + first_number}) is out of range; "
                        f"labels are class numbers, whole numbers from 0 to {MAX_CLASSES - 1}")
    return values.astype(np.uint8)


def square_shape(pixels: int, shape: tuple[int, int] | None, where: str) -> tuple[int, int]:
    """The ``(height, width)`` of rows of ``pixels`` values: ``shape`` when given (it must fit), else a square."""
    if shape is not None:
        if shape[0] * shape[1] != pixels:
            raise DataError(f"{where}: rows of {pixels} pixels do not fit --image-shape {shape[0]},{shape[1]} "
                            f"({shape[0] * shape[1]} pixels); give the images' own height and width")
        return shape
    side = math.isqrt(pixels)
    if side * side != pixels or side == 0:
        raise DataError(f"{where}: rows of {pixels} pixels are not square images; give their height and width "
                        "with --image-shape H,W")
    return side, side
