"""Read what ``predict`` is given: image files, directories of them, ``.npy`` arrays and IDX files.

Every input becomes ``Block``s of rows the net can take (``(n, pixels)``,
uint8 0-255 or float32 0-1) or a ``Notice`` saying what went wrong with it;
nothing is raised for a bad input, so one bad file among many does not stop
the others (the caller decides the exit status). Arrays are never unpickled
(``np.load(allow_pickle=False)``); images go through Pillow with its
decompression-bomb limit enforced as an error, not a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from mlptrain.data.images import IMAGE_HINT, image_extensions, read_image
from mlptrain.data.prepare import PREPROCESSING, prepare_image
from mlptrain.errors import DataError

Array = np.ndarray
IDX_SUFFIXES = (".idx", "-ubyte", ".gz")
COMMON_IMAGES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".pnm", ".webp"}


@dataclass
class Block:
    """Rows for the net from one input: ``images`` ``(n, pixels)``; ``indices`` their row numbers
    in an array file (None for an image file); ``blank``: an image with no ink."""

    source: str
    images: Array
    indices: Array | None = None
    blank: bool = False


@dataclass
class Notice:
    """What happened to an input that gave no rows: ``failed`` (an error) or ``skipped`` (a note)."""

    kind: str
    message: str


def read_inputs(paths: list[str], image_shape: tuple[int, int], preprocess: str) -> Iterator[Block | Notice]:
    """Blocks and notices for each input in order; a directory's images in sorted order."""
    if preprocess not in PREPROCESSING:
        raise ValueError(f"unknown preprocessing {preprocess!r}")
    for given in paths:
        path = Path(given)
        if path.is_dir():
            yield from _read_directory(path, given, image_shape, preprocess)
        else:
            yield _read_file(path, given, image_shape, preprocess)


def _read_file(path: Path, given: str, image_shape: tuple[int, int], preprocess: str) -> Block | Notice:
    try:
        if not path.exists():
            raise DataError(f"{given}: no such file or directory; check the path")
        if path.suffix.lower() == ".npy":
            return Block(given, *_rows(load_npy(path, given), given, image_shape))
        name = path.name.lower()
        if name.endswith(IDX_SUFFIXES) or ("idx" in name and path.suffix.lower() not in COMMON_IMAGES):
            return Block(given, *_rows(_load_idx(path, given), given, image_shape))
        image, blank = prepare_image(read_image(path, given), image_shape, preprocess, given)
        return Block(given, image.reshape(1, -1), None, blank)
    except DataError as exc:
        return Notice("failed", str(exc))


def _read_directory(path: Path, given: str, image_shape: tuple[int, int], preprocess: str) -> Iterator[Block | Notice]:
    """The image files in ``path`` and in the folders inside it (class folders: ``letters/test/A/...``), sorted."""
    images, others, unlisted = _directory_images(path)
    if unlisted:
        yield Notice("failed", f"{unlisted[0]}: cannot list the directory ({unlisted[1]})")
        return
    for other in others:
        yield Notice("skipped", f"skipped {other}: not an image file")
    if not images:
        yield Notice("failed", f"{given}: the directory holds no image files; {IMAGE_HINT}, or name the files")
    for image in images:
        yield _read_file(image, str(image), image_shape, preprocess)


def _directory_images(path: Path) -> tuple[list[Path], list[Path], tuple[Path, str] | None]:
    """Image files under ``path`` (recursively, sorted), other files, and a folder that could not be listed."""
    extensions = image_extensions()  # what Pillow can open: a .pdf or .h5 beside the images is skipped
    try:
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        return [], [], (path, str(exc.strerror or exc))
    images = [p for p in entries if p.is_file() and p.suffix.lower() in extensions]
    others = [p for p in entries if p.is_file() and p not in images]
    for folder in (p for p in entries if p.is_dir()):
        inner, inner_others, unlisted = _directory_images(folder)
        if unlisted:
            return [], [], unlisted
        images, others = images + inner, others + inner_others
    return images, others, None


def load_npy(path: Path, given: str) -> Array:
    """A ``.npy`` array, never unpickled; DataError naming the file."""
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(
                f"{given}: the array holds Python objects (a pickle), which predict never loads; "
                "save a plain uint8 or float array with np.save"
            ) from None
        raise DataError(f"{given}: not a readable .npy file ({exc}); save it again with np.save") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{given}: not a readable .npy file ({exc}); save it again with np.save") from None


def _load_idx(path: Path, given: str) -> Array:
    from mlptrain.data.idx import read_idx

    return read_idx(path)


def _rows(array: Array, given: str, image_shape: tuple[int, int]) -> tuple[Array, Array]:
    """An array file's images as ``(n, pixels)`` rows and their indices; DataError for a wrong shape or type."""
    pixels = int(np.prod(image_shape))
    shapes = f"(N, {image_shape[0]}, {image_shape[1]}) or (N, {pixels})"
    if array.ndim not in (2, 3) or array.shape[1:] not in ((pixels,), tuple(image_shape)):
        raise DataError(f"{given}: an array of shape {array.shape}, but the network takes {shapes}; reshape it")
    if not len(array):
        raise DataError(f"{given}: an array of shape {array.shape} holds no images; give at least one row")
    if array.dtype == np.uint8:
        return array.reshape(len(array), pixels), np.arange(len(array))
    if array.dtype.kind != "f":
        raise DataError(f"{given}: an array of {array.dtype}; give uint8 (0-255) or floats (0-1)")
    rows = array.reshape(len(array), pixels).astype(np.float32)
    if not np.isfinite(rows).all() or rows.min() < 0 or rows.max() > 1:
        raise DataError(f"{given}: float values outside [0, 1] (or NaN); scale them to [0, 1] like training did")
    return rows, np.arange(len(array))


def save_png(path: Path, image: Array) -> None:
    """Write an ``(h, w)`` image of floats in [0, 1] as an 8-bit PNG (atomically)."""
    from PIL import Image

    from mlptrain.fsutil import atomic_write

    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    atomic_write(path, lambda f: Image.fromarray(pixels).save(f, format="PNG"))
