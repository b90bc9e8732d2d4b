"""Read what ``predict`` is given: image files, directories of them, ``.npy`` arrays and IDX files.

Every input becomes ``Block``s of rows the net can take (``(n, pixels)``,
uint8 0-255 or float32 0-1) or a ``Notice`` saying what went wrong with it;
nothing is raised for a bad input, so one bad file among many does not stop
the others (the caller decides the exit status). Arrays are never unpickled
(``np.load(allow_pickle=False)``); images go through Pillow with its
decompression-bomb limit enforced as an error, not a warning.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from mlptrain.errors import DataError
from mlptrain.infer.preprocess import PREPROCESSING, mnist_style

Array = np.ndarray
IMAGE_HINT = "give a PNG, JPEG, BMP, GIF, TIFF or PGM file"
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
        image, blank = image_rows(read_image(path, given), given, image_shape, preprocess)
        return Block(given, image.reshape(1, -1), None, blank)
    except DataError as exc:
        return Notice("failed", str(exc))


def _read_directory(path: Path, given: str, image_shape: tuple[int, int], preprocess: str) -> Iterator[Block | Notice]:
    extensions = _image_extensions()
    try:
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        yield Notice("failed", f"{given}: cannot list the directory ({exc.strerror or exc})")
        return
    images = [p for p in entries if p.is_file() and p.suffix.lower() in extensions]
    for other in (p for p in entries if p not in images):
        yield Notice("skipped", f"skipped {other}: not an image file")
    if not images:
        yield Notice("failed", f"{given}: the directory holds no image files; {IMAGE_HINT}, or name the files")
    for image in images:
        yield _read_file(image, str(image), image_shape, preprocess)


def _image_extensions() -> set[str]:
    from PIL import Image

    Image.init()  # registers every format plugin, and with it their file extensions
    return set(Image.registered_extensions())


def read_image(path: Path, given: str) -> Array:
    """The image at ``path`` as grayscale floats in [0, 1], ``(height, width)``; DataError naming the file."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    with warnings.catch_warnings():
        # Over MAX_IMAGE_PIXELS Pillow only warns (up to twice that, then it raises): refuse both.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                image.load()  # decode now: a truncated file fails here, not later
                # A phone stores a photo unrotated plus an EXIF orientation tag: turn it upright.
                return _gray(ImageOps.exif_transpose(image), given)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DataError(
                f"{given}: refused as a possible decompression bomb: {exc} (Pillow's limit, "
                f"Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS}); scale the image down first"
            ) from None
        except UnidentifiedImageError:
            raise DataError(f"{given}: not an image Pillow can read; {IMAGE_HINT}") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise DataError(f"{given}: unreadable or truncated image ({exc}); open and re-save it") from None


def _gray(image, given: str) -> Array:
    """Grayscale floats in [0, 1]; transparency is laid over white paper."""
    from PIL import Image

    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float32)
        if not (np.isfinite(values).all() and values.min() >= 0):  # a float TIFF can hold anything
            raise DataError(f"{given}: pixel values that are NaN, infinite or negative; save it as an 8-bit or "
                            "16-bit image")
        return values / (65535.0 if values.max() > 255 else 255.0)
    if "A" in image.mode or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    gray *= 1.0 / 255.0  # as data.loading.gather_batch scales uint8, to the last bit
    return gray


def image_rows(gray: Array, given: str, image_shape: tuple[int, int], preprocess: str) -> tuple[Array, bool]:
    """One image as the net's input ``image_shape`` floats, and whether it had no ink."""
    if preprocess == "mnist":
        return mnist_style(gray, image_shape)
    if gray.shape != tuple(image_shape):
        raise DataError(
            f"{given}: the image is {_size(gray.shape)} but the network takes {_size(image_shape)}; "
            "resize it, or use --preprocess mnist"
        )
    return gray.astype(np.float32), not gray.any()


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
    if array.ndim not in (2, 3) or array.shape[1:] not in ((pixels,), tuple(image_shape)) or not len(array):
        raise DataError(f"{given}: an array of shape {array.shape}, but the network takes {shapes}; reshape it")
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


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]} pixels" if len(shape) == 2 else str(shape)
