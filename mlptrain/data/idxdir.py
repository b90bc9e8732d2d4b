"""A directory of IDX files, the format MNIST ships in: a training pair and a test pair of images and labels.

The file names are the ones every MNIST-family set uses (``FILE_NAMES``),
gzipped or not. A directory with the test pair only (``t10k-*``) is a set to
evaluate on. ``write_set`` writes any data set in this format (``mlptrain data import``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlptrain.data.datasets import FILE_NAMES
from mlptrain.data.decoded import load_decoded
from mlptrain.data.idx import read_images, read_labels, write_idx
from mlptrain.data.parts import Parts, Request, Split
from mlptrain.errors import DataError
from mlptrain.fsutil import atomic_write

PAIRS = {"train": FILE_NAMES[:2], "test": FILE_NAMES[2:]}  # split -> (images file, labels file)
CLASSES_FILE = "classes.txt"  # optional, in a directory data set beside its files: one class name per line


def _find(directory: Path, name: str) -> Path | None:
    """``name`` in ``directory``, gzipped (``.gz``) or not; None when neither is there."""
    return next((p for p in (directory / name, directory / name.removesuffix(".gz")) if p.is_file()), None)


def matches(path: Path) -> bool:
    """Whether ``path`` is a directory holding any of the four IDX files."""
    return path.is_dir() and any(_find(path, name) for name in FILE_NAMES)


def find_pairs(directory: Path) -> dict[str, tuple[Path, Path]]:
    """Split -> (images file, labels file) for each split whose two files are there; DataError for half a pair."""
    found = {}
    for split, names in PAIRS.items():
        paths = [_find(directory, name) for name in names]
        if all(paths):
            found[split] = (paths[0], paths[1])
        elif any(paths):
            missing = names[paths.index(None)]
            raise DataError(f"{directory} lacks {missing}; an IDX data set directory needs the four files "
                            f"{', '.join(FILE_NAMES)} (gzipped or not), or the two t10k files of a test set")
    return found


def load(directory: Path, request: Request) -> Parts:
    """The splits of an IDX directory, each file decoded (or taken from the cache) and cross-checked."""
    parts = Parts(details={"format": "idx"})
    for split, (images_path, labels_path) in find_pairs(directory).items():
        if split == "train" and not request.need_train:
            continue
        (images, images_digest), (labels, labels_digest) = (load_decoded(images_path, read_images, request.cache),
                                                            load_decoded(labels_path, read_labels, request.cache))
        if len(images) != len(labels):
            raise DataError(f"{images_path.name} holds {len(images)} images but {labels_path.name} holds "
                            f"{len(labels)} labels; the files do not belong together")
        parts.files |= {images_path.name: images_digest, labels_path.name: labels_digest}
        setattr(parts, split, Split(images, labels, images_path.name))
    return parts


def write_set(out: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]], class_names: tuple[str, ...]) -> list[Path]:
    """Write images ``(n, h, w)`` uint8 and labels per split (``train``, ``test``) as gzipped IDX files, and
    ``classes.txt`` (one name per line, in label order), into ``out``; DataError when it already holds a data set."""
    taken = [p.name for p in (out / name for name in (*FILE_NAMES, CLASSES_FILE)) if p.exists()]
    taken += [name.removesuffix(".gz") for name in FILE_NAMES if (out / name.removesuffix(".gz")).exists()]
    if taken:
        raise DataError(f"{out} already holds {', '.join(taken)}; choose another --out, or delete them first")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {out}: {exc.strerror or exc}; choose a writable directory") from None
    written = []
    for split, (images, labels) in splits.items():
        for name, array in zip(PAIRS[split], (images, labels)):
            write_idx(out / name, array)
            written.append(out / name)
    text = "".join(f"{name}\n" for name in class_names).encode()
    try:
        atomic_write(out / CLASSES_FILE, lambda f: f.write(text))
    except OSError as exc:
        raise DataError(f"cannot write {out / CLASSES_FILE}: {exc.strerror or exc}") from None
    return [*written, out / CLASSES_FILE]
