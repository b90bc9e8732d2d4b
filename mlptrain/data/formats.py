"""The table of data-set formats ``--dataset PATH`` accepts, and the one function that tells which a path holds.

Each row names a format, describes its layout in one line (the error for a
path that matches none lists every row's, and the docs table is generated from
them), says whether a path looks like it, and loads it into ``Parts``. The rows
are tried in order (Parquet before class folders: a directory of Parquet files
may keep them in a folder such as ``data/``); a new format is one more row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mlptrain.data import csvfile, folders, idxdir, npzfile, parquetfile
from mlptrain.data.datasets import DATASETS, dataset_names, did_you_mean
from mlptrain.data.parts import Parts, Request
from mlptrain.errors import ConfigError, DataError


@dataclass(frozen=True)
class DataFormat:
    """One format: its name, its layout in a line, whether a path holds it, and how to load it."""

    name: str
    layout: str
    splits: str  # what holds the two splits, for the message about a missing one
    example: str
    matches: Callable[[Path], bool]
    load: Callable[[Path, Request], Parts]


FORMATS: dict[str, DataFormat] = {f.name: f for f in (
    DataFormat("idx", "a directory of IDX files: train-images-idx3-ubyte, train-labels-idx1-ubyte, "
               "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (gzipped or not)", "the train-* and t10k-* files",
               "digits/", idxdir.matches, idxdir.load),
    DataFormat("csv", "CSV files DIR/train.csv and DIR/test.csv, or one FILE.csv split by --test-size: a label column "
               "(named label, else the first), then one column per pixel", "train.csv and test.csv",
               "digits.csv", csvfile.matches, csvfile.load),
    DataFormat("npz", "a NumPy archive FILE.npz holding x_train, y_train, x_test, y_test (as Keras's mnist.npz)",
               "x_train, y_train, x_test, y_test", "mnist.npz", npzfile.matches, npzfile.load),
    DataFormat("parquet", "Parquet files as on the Hugging Face hub: DIR/train-*.parquet and DIR/test-*.parquet "
               "(or under DIR/data/), or one FILE.parquet split by --test-size: a column of encoded images and a "
               "label column",
               "train-*.parquet and test-*.parquet", "mnist.parquet", parquetfile.matches, parquetfile.load),
    DataFormat("folders", "class folders of images: DIR/train/<class>/ and DIR/test/<class>/, or DIR/<class>/ "
               "split by --test-size", "train/<class>/ and test/<class>/", "letters/", folders.matches,
               folders.load),
)}


def layouts() -> str:
    """Every format's layout, numbered, for messages: ``(1) a directory of IDX files: ...; (2) ...``."""
    return "; ".join(f"({i}) {f.layout}" for i, f in enumerate(FORMATS.values(), start=1))


def detect(path: Path) -> DataFormat:
    """The format ``path`` holds (the first row that matches); DataError naming every layout otherwise."""
    if not path.exists():
        raise DataError(f"dataset {str(path)!r} does not exist; --dataset takes a known data set ({dataset_names()}) "
                        f"or a path to: {layouts()}")
    for data_format in FORMATS.values():
        if data_format.matches(path):
            return data_format
    raise DataError(f"{path} holds no data set mlptrain can read; --dataset takes a known data set "
                    f"({dataset_names()}) or a path to: {layouts()}")


def check_dataset(name: str, source: str = "--dataset") -> None:
    """ConfigError (a usage error) unless ``name`` is a known data set or a path holding one of the formats; a close
    known name is suggested for a typo, and ``mnist/`` (a directory that is not there) is taken for ``mnist``."""
    if name in DATASETS:
        return
    path = Path(name).expanduser()
    if path.exists():
        try:
            detect(path)
        except DataError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        return
    hint = did_you_mean(name) or f"; a path may hold: {layouts()}"
    raise ConfigError(f"{source} {name!r} is neither a known data set ({dataset_names()}) nor an existing path{hint}")
