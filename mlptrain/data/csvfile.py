"""CSV files of images, as Kaggle's digit recognizer has them: ``label,pixel0,pixel1,...`` one image per row.

``DIR/train.csv`` and ``DIR/test.csv`` (either alone is a set with one split),
or one ``FILE.csv`` that ``loading`` splits. The label column is the one named
``label`` (any case), else the first; the header row is optional (a first row
with a word in it is one); pixel values are 0-255 or 0-1; rows are square
images unless ``Preparation.image_shape`` says otherwise. Parsed arrays are
cached, keyed by the file's path, size and modification time.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from mlptrain.data.cache import ArrayCache, cache_key
from mlptrain.data.parts import Parts, Request, Split, labels_to_uint8, pixels_to_uint8, square_shape
from mlptrain.errors import DataError

SPLIT_FILES = {"train": "train.csv", "test": "test.csv"}


def matches(path: Path) -> bool:
    """A ``.csv`` file, or a directory holding ``train.csv`` or ``test.csv``."""
    if path.is_file():
        return path.suffix.lower() == ".csv"
    return path.is_dir() and any((path / name).is_file() for name in SPLIT_FILES.values())


def load(path: Path, request: Request) -> Parts:
    """The splits of a CSV data set: ``path``'s own rows (a file) or its ``train.csv`` and ``test.csv``."""
    parts = Parts(details={"format": "csv"})
    shape = request.preparation.image_shape
    if path.is_file():
        parts.whole = read_csv(path, shape, request.cache)
        return parts
    for split, name in SPLIT_FILES.items():
        if (path / name).is_file() and (request.need_train or split == "test"):
            setattr(parts, split, read_csv(path / name, shape, request.cache))
    return parts


def read_csv(path: Path, shape: tuple[int, int] | None, cache: ArrayCache) -> Split:
    """One CSV file as images ``(n, h, w)`` uint8 and labels, from the cache while the file is unchanged."""
    stat = path.stat()
    key = cache_key("csv", str(path.resolve()), stat.st_size, stat.st_mtime_ns, shape)
    cached = cache.load(key)
    if cached is not None:
        return Split(cached[0]["images"], cached[0]["labels"], str(path))
    header = _header(path)
    table = _parse(path, header)
    label_column = _label_column(header)
    first_line = 2 if header else 1
    labels = labels_to_uint8(table[:, label_column], str(path), unit="line", first_number=first_line)
    pixels = np.delete(table, label_column, axis=1)
    height, width = square_shape(pixels.shape[1], shape, str(path))
    images = pixels_to_uint8(pixels, str(path)).reshape(len(pixels), height, width)
    cache.store(key, {"images": images, "labels": labels}, {"source": str(path.resolve())})
    return Split(images, labels, str(path))


def _header(path: Path) -> list[str] | None:
    """The first row's names, lower-cased, when it is a header (any field not a number); else None."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            first = next(csv.reader(stream), None)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as a UTF-8 text file ({exc}); save it as CSV text") from None
    if first is None:
        raise DataError(f"{path}: the file is empty; a CSV data set has a label column, then one column per pixel")
    return [name.strip().lower() for name in first] if not all(map(_is_number, first)) else None


def _label_column(header: list[str] | None) -> int:
    return header.index("label") if header and "label" in header else 0


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse(path: Path, header: list[str] | None) -> np.ndarray:
    """The rows as a float32 table ``(n, columns)``; DataError naming the first bad line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # loadtxt warns of an empty file: the check below says more
        try:
            table = np.loadtxt(path, delimiter=",", skiprows=1 if header else 0, dtype=np.float32, ndmin=2,
                               encoding="utf-8-sig")
        except ValueError as exc:
            _diagnose(path, header)
            raise DataError(f"{path}: not a table of numbers ({exc}); check the file") from None
    if len(table) == 0:
        raise DataError(f"{path}: holds no rows of images (an empty split); add rows, one image per line")
    if table.shape[1] < 2:
        raise DataError(f"{path}: rows of {table.shape[1]} value; a row is a label, then one column per pixel")
    return table


def _diagnose(path: Path, header: list[str] | None) -> None:
    """Raise a DataError naming the first row of the wrong length or with a value that is not a number."""
    with path.open(encoding="utf-8-sig", newline="") as stream:
        rows = csv.reader(stream)
        expected = len(header) if header else None
        for line, row in enumerate(rows, start=1):
            if header and line == 1 or not row:
                continue
            expected = expected or len(row)
            if len(row) != expected:
                raise DataError(f"{path} line {line}: {len(row)} values, but the rows have {expected} (a label and "
                                f"{expected - 1} pixels); every row is one image of the same size")
            for column, text in enumerate(row):
                if not _is_number(text):
                    name = header[column] if header else f"column {column + 1}"
                    what = "labels are class numbers" if column == _label_column(header) else \
                        "pixel values are numbers from 0 to 255 (or 0 to 1)"
                    raise DataError(f"{path} line {line}, {name}: {text!r} is not a number; {what}")
