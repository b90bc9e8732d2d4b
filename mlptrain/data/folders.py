"""A folder of class folders of images, as torchvision's ImageFolder, Keras's ``image_dataset_from_directory``
and Hugging Face's ``imagefolder`` read them.

Two layouts: ``DIR/train/<class>/*`` and ``DIR/test/<class>/*`` (either alone is
a set with one split), or ``DIR/<class>/*``, one set that ``loading`` splits.
Class names are the folder names, sorted; the images (any format Pillow opens,
searched recursively inside each class folder) of any size, mode and polarity
are prepared by ``data.prepare`` (``data.prepared`` does the work and caches it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mlptrain.data.images import image_extensions
from mlptrain.data.parts import MAX_CLASSES, Parts, Request, Split
from mlptrain.data.prepared import prepare_files
from mlptrain.errors import DataError

SPLITS = ("train", "test")
IMAGE_KINDS = "PNG, JPEG, BMP, TIFF, GIF or any image Pillow opens"


def _subfolders(path: Path) -> list[Path]:
    """The folders directly inside ``path``, hidden ones left out, sorted by name."""
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise DataError(f"{path}: cannot list the folder ({exc.strerror or exc}); check its permissions") from None


def matches(path: Path) -> bool:
    """Whether ``path`` is a directory with at least one (non-hidden) folder in it."""
    return path.is_dir() and bool(_subfolders(path))


def layout(root: Path) -> dict[str, Path]:
    """``{"train": DIR/train, "test": DIR/test}`` (those present) for the split layout, ``{"whole": DIR}`` for
    one level of class folders; DataError when train/ or test/ sits beside other folders (which would they be?)."""
    folders = _subfolders(root)
    named = sorted((p for p in folders if p.name in SPLITS and _subfolders(p)), key=lambda p: SPLITS.index(p.name))
    if not named:
        return {"whole": root}
    others = [p.name for p in folders if p.name not in SPLITS]
    if others:
        raise DataError(f"{root} holds {'/ and '.join(p.name for p in named)}/ beside other folders "
                        f"({', '.join(others[:5])}); put every class folder under train/ and test/, "
                        "or use one level of class folders without train/ and test/")
    return {p.name: p for p in named}


def class_files(split_root: Path) -> dict[str, list[tuple[str, int, int]]]:
    """Class name -> its image files as ``(name relative to split_root, size, mtime_ns)``, found recursively,
    sorted; DataError for a class folder with no images. Plain strings and ``os.scandir``: a folder of 60,000
    images is listed in a fraction of a second, which ``pathlib`` would take seconds for."""
    classes = {}
    extensions = image_extensions()
    for folder in _subfolders(split_root):
        files = _scan(str(folder), folder.name + "/", extensions)
        if not files:
            raise DataError(f"{folder}: the class folder holds no images ({IMAGE_KINDS}); add images or remove it")
        classes[folder.name] = files
    if len(classes) > MAX_CLASSES:
        raise DataError(f"{split_root} holds {len(classes)} class folders; mlptrain takes at most {MAX_CLASSES}")
    return classes


def _scan(folder: str, prefix: str, extensions: frozenset[str]) -> list[tuple[str, int, int]]:
    """``(prefix + relative name, size, mtime_ns)`` of each image file under ``folder``, hidden ones left out."""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as exc:
        raise DataError(f"{folder}: cannot list the folder ({exc.strerror or exc}); check its permissions") from None
    found = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            found += _scan(entry.path, prefix + entry.name + "/", extensions)
        elif "." + entry.name.rpartition(".")[2].lower() in extensions and entry.is_file():
            stat = entry.stat()
            found.append((prefix + entry.name, stat.st_size, stat.st_mtime_ns))
    return found


def load(root: Path, request: Request) -> Parts:
    """The class folders under ``root``, prepared; the labels follow ``request.class_names`` when given, else the
    training folders' names, sorted."""
    splits = layout(root)
    if not request.need_train:
        splits.pop("train", None)
    listed = {split: class_files(path) for split, path in splits.items()}
    # The labels follow the run's classes, else the training folders' (a test/ folder may lack a class).
    names = request.class_names or tuple(listed.get("train") or listed.get("whole") or listed["test"])
    parts = Parts(class_names=names, details={"format": "folders", "layout": "/".join(splits)})
    for split, classes in listed.items():
        unknown = [c for c in classes if c not in names]
        if unknown:
            lacking = "the run was not trained on" if request.class_names else "train/ lacks"
            raise DataError(f"{splits[split]} has class folder {unknown[0]!r}, which {lacking}; the classes are "
                            f"{', '.join(names)}")
        images, labels, record = _prepared_split(splits[split], classes, names, request)
        setattr(parts, split, Split(images, labels, str(splits[split])))
        parts.files[f"{splits[split].name}/"] = record["key"]
        parts.details[split] = {k: record[k] for k in ("images", "blank", "cached")}
    return parts


def _prepared_split(split_root: Path, classes: dict[str, list[tuple[str, int, int]]], names: tuple[str, ...],
                    request: Request) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One split's images prepared (or from the cache) and their labels in ``names``' order."""
    files = [file for listed in classes.values() for file in listed]
    own = np.repeat(np.arange(len(classes)), [len(listed) for listed in classes.values()])
    images, blank, key, cached = prepare_files(split_root, files, request.preparation, request.cache,
                                               request.progress)
    labels = np.array([names.index(c) for c in classes], np.uint8)[own]
    return images, labels, {"key": key, "images": len(files), "blank": blank, "cached": cached}
