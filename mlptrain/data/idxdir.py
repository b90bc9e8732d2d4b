"""A directory of IDX files, the format MNIST ships in: a training pair and a test pair of images and labels.

The file names are the ones every MNIST-family set uses (``FILE_NAMES``),
gzipped or not. A directory with the test pair only (``t10k-*``) is a set to
evaluate on.
"""

from __future__ import annotations

from pathlib import Path

from mlptrain.data.datasets import FILE_NAMES
from mlptrain.data.decoded import load_decoded
from mlptrain.data.idx import read_images, read_labels
from mlptrain.data.parts import Parts, Request, Split
from mlptrain.errors import DataError

PAIRS = {"train": FILE_NAMES[:2], "test": FILE_NAMES[2:]}  # split -> (images file, labels file)


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
