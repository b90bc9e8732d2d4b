"""Parquet files as the Hugging Face hub holds image data sets: a column of encoded images and a label column.

Two layouts: a directory of split files (``train-00000-of-00002.parquet``,
``train.parquet`` or ``train/0000.parquet``, and the same for ``test``, in the
directory itself or one level down, under ``data/`` or a subset's folder such
as ``mnist/``; several shards per split are read in name order), or one
``FILE.parquet`` that ``loading`` splits. The image column holds encoded image
files (PNG, JPEG, ...): Hugging Face's Image feature, a struct ``{bytes,
path}``, or a plain binary column; the label column is the one named ``label``,
else the only integer column. Class names come from Hugging Face's ClassLabel
feature in the schema's metadata when it names them, else they are the class
numbers. The images are decoded with Pillow and prepared as class-folder
images are (``prepared.prepare_encoded``, on every core for many), and cached
keyed by the files' names, sizes and modification times and the preparation.
Needs pyarrow (the ``parquet`` extra), imported only when such a set is loaded.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mlptrain.data.cache import cache_key
from mlptrain.data.parts import Parts, Request, Split, labels_to_uint8
from mlptrain.data.prepared import code_digest, prepare_all, prepare_encoded, stack_images
from mlptrain.errors import DataError, MissingDependency

SPLITS = ("train", "test")
SUFFIX = ".parquet"
INSTALL = "pip install 'mlptrain[parquet]'"
LABEL = "label"
IMAGE_NAMES = ("image", "img")  # preferred when several columns hold bytes
IMAGE_HINT = ("give the images as encoded files (PNG, JPEG, ...) in a binary column or in Hugging Face's Image "
              "feature, a struct {bytes, path}")


def matches(path: Path) -> bool:
    """A ``*.parquet`` file, or a directory holding train or test Parquet files (see the module's docstring)."""
    if path.is_file():
        return path.suffix.lower() == SUFFIX
    return path.is_dir() and any(_split_of(file) for file in _candidates(path))


def _candidates(root: Path) -> list[Path]:
    """The ``.parquet`` files in ``root``, in its folders, and in their train/ and test/ folders; hidden ones left
    out. ``os.scandir``: a class folder of 60,000 images beside them is listed in milliseconds."""
    found: list[Path] = []

    def scan(folder: str, depth: int) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.name.lower().endswith(SUFFIX) and entry.is_file():
                found.append(Path(entry.path))
            elif entry.is_dir() and (depth == 0 or (depth == 1 and entry.name in SPLITS)):
                scan(entry.path, depth + 1)

    scan(str(root), 0)
    return found


def _split_of(file: Path) -> str | None:
    """``train`` or ``test`` for a file named ``train.parquet``/``train-*.parquet`` or inside a ``train/`` folder."""
    stem = file.name[:-len(SUFFIX)].lower()
    for split in SPLITS:
        if stem == split or stem.startswith(split + "-") or file.parent.name == split:
            return split
    return None


def split_files(root: Path) -> dict[str, list[Path]]:
    """``{"train": shards, "test": shards}`` (those present), each sorted by name; DataError when the files belong
    to several subsets (``mnist/`` and ``fashion/``: which one?)."""
    shards: dict[str, list[Path]] = {}
    homes = set()
    for file in _candidates(root):
        split = _split_of(file)
        if split:
            shards.setdefault(split, []).append(file)
            homes.add(file.parent.parent if file.parent.name == split else file.parent)
    if len(homes) > 1:
        places = ", ".join(sorted(f"{os.path.relpath(home, root)}/" for home in homes))
        raise DataError(f"{root} holds the train and test Parquet files of several subsets ({places}); give the "
                        "folder of one of them as --dataset")
    return {split: sorted(shards[split]) for split in SPLITS if split in shards}


def _pyarrow(path: Path) -> Any:
    """``pyarrow.parquet``; MissingDependency saying how to install it."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependency(f"{path} is a Parquet data set, and reading it needs pyarrow: {INSTALL}") from None
    return pq


def load(path: Path, request: Request) -> Parts:
    """The splits of a Parquet data set: ``path``'s own rows (a file) or its train and test files."""
    pq = _pyarrow(path)
    files = {"whole": [path]} if path.is_file() else split_files(path)
    if not request.need_train:
        files.pop("train", None)
    parts = Parts(details={"format": "parquet", "layout": "/".join(files) if path.is_dir() else "file"})
    names: list[str] | None = None
    for split, shards in files.items():
        images, labels, record = _prepared_split(pq, shards, request)
        source = str(shards[0]) if len(shards) == 1 else f"{shards[0].parent}/{split}-*{SUFFIX}"
        setattr(parts, split, Split(images, labels, source))
        for shard in shards:
            parts.files[os.path.relpath(shard, path) if path.is_dir() else shard.name] = record["key"]
        parts.details[split] = {k: record[k] for k in ("images", "blank", "cached", "columns")}
        names = names or record["class_names"]
    if names and all(len(names) > int(s.labels.max(initial=0)) for s in (parts.train, parts.test, parts.whole) if s):
        parts.class_names = tuple(names)
    return parts


@functools.cache
def _own_digest() -> str:
    """This module's code: how it picks columns and reads rows is part of what a cache entry depends on."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def _prepared_split(pq: Any, shards: list[Path], request: Request) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One split's images prepared and its labels, from the cache while the files and the preparation are the
    same; the record says the cache key, counts, the columns read and the class names found."""
    preparation = request.preparation
    stats = [(str(s.resolve()), s.stat().st_size, s.stat().st_mtime_ns) for s in shards]
    size = preparation.image_size if preparation.preprocess == "mnist" else None
    key = cache_key_for(stats, preparation.preprocess, size)
    cached = request.cache.load(key)
    if cached is not None:
        arrays, record = cached
        return arrays["images"], arrays["labels"], {**record, "key": key, "cached": True}
    encoded: list[tuple[bytes, str]] = []
    labels: list[np.ndarray] = []
    found: dict[str, Any] = {}
    for shard in shards:
        rows, shard_labels, found = _read_shard(pq, shard, found)
        encoded += rows
        labels.append(shard_labels)
    if not encoded:
        raise DataError(f"{shards[0] if len(shards) == 1 else shards[0].parent}: the "
                        f"{'file' if len(shards) == 1 else 'split'} holds no rows (an empty split); add images")
    images, blanks = prepare_all(encoded, preparation, request.progress, f"preparing {shards[0].name}",
                                 prepare_encoded)
    stacked = stack_images(images, [given for _, given in encoded])
    record = {"source": stats[0][0], "blank": int(sum(blanks)), "images": len(encoded),
              "columns": found["columns"], "class_names": found["class_names"]}
    all_labels = np.concatenate(labels)
    request.cache.store(key, {"images": stacked, "labels": all_labels}, record)
    return stacked, all_labels, {**record, "key": key, "cached": False}


def cache_key_for(stats: list[tuple[str, int, int]], preprocess: str, size: int | None) -> str:
    """The cache entry of a split: its files (path, size, mtime), the preparation, and the code that reads them."""
    return cache_key("parquet", code_digest(), _own_digest(), preprocess, size, stats)


def _read_shard(pq: Any, shard: Path, found: dict[str, Any]) -> tuple[list[tuple[bytes, str]], np.ndarray,
                                                                       dict[str, Any]]:
    """One file's encoded images, each named ``FILE row K``, and its labels ``(n,)`` uint8; the columns and class
    names found (``found``: the first shard's, which later shards must have too)."""
    import pyarrow as pa

    try:
        schema = pq.read_schema(shard)
        if not found:
            found = {"columns": _columns(schema, shard), "class_names": _class_names(schema)}
        image, label = found["columns"]["image"], found["columns"]["label"]
        missing = [c for c in (image, label) if c not in schema.names]
        if missing:
            raise DataError(f"{shard} lacks column {missing[0]!r}, which the first file has; every file of a data "
                            "set holds the same columns")
        table = pq.read_table(shard, columns=[image, label])
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{shard}: not a readable Parquet file ({exc}); export it again") from None
    labels = labels_to_uint8(table.column(label).to_numpy(zero_copy_only=False), f"{shard}: column {label!r}",
                             unit="row")
    return _encoded_rows(table.column(image), shard), labels, found


def _columns(schema: Any, shard: Path) -> dict[str, str]:
    """``{"image": name, "label": name}``: the image-bytes column and the class-number column of ``schema``."""
    import pyarrow as pa

    names = ", ".join(schema.names) or "none"
    integers = [f.name for f in schema if pa.types.is_integer(f.type)]
    label = next((f.name for f in schema if f.name.lower() == LABEL), None)
    if label is None:
        if len(integers) != 1:
            which = f"{', '.join(integers)} are all integers" if integers else f"no integer column (the columns: " \
                                                                               f"{names})"
            raise DataError(f"{shard}: no label column: {which}; name the class-number column {LABEL}")
        label = integers[0]
    candidates = [f.name for f in schema if _holds_bytes(f.type)]
    if not candidates:
        raise DataError(f"{shard}: no image column (the columns: {names}); {IMAGE_HINT}")
    image = next((c for c in candidates if c.lower() in IMAGE_NAMES), candidates[0] if len(candidates) == 1 else None)
    if image is None:
        raise DataError(f"{shard}: which column holds the images? {', '.join(candidates)} all hold bytes; name it "
                        "image")
    return {"image": image, "label": label}


def _holds_bytes(data_type: Any) -> bool:
    """A binary column, or a struct with a binary ``bytes`` field (Hugging Face's Image feature)."""
    import pyarrow as pa

    def binary(t: Any) -> bool:
        return pa.types.is_binary(t) or pa.types.is_large_binary(t)

    if pa.types.is_struct(data_type):
        index = data_type.get_field_index("bytes")
        return index >= 0 and binary(data_type.field(index).type)
    return binary(data_type)


def _class_names(schema: Any) -> list[str] | None:
    """The names of Hugging Face's ClassLabel feature in the schema's metadata, when it has one; else None."""
    try:
        info = json.loads((schema.metadata or {}).get(b"huggingface", b"{}"))
        features = info.get("info", {}).get("features", {})
        for feature in features.values():
            if isinstance(feature, dict) and feature.get("_type") == "ClassLabel" and feature.get("names"):
                return [str(name) for name in feature["names"]]
    except (ValueError, AttributeError, TypeError):
        pass  # metadata of another shape: the class numbers will do
    return None


def _encoded_rows(column: Any, shard: Path) -> list[tuple[bytes, str]]:
    """Each row's encoded image and its name for messages; DataError for a row without image bytes."""
    import pyarrow as pa

    values, paths = [], []
    for chunk in column.chunks:
        if pa.types.is_struct(chunk.type):
            values += chunk.field("bytes").to_pylist()
            path_field = chunk.type.get_field_index("path")
            paths += chunk.field("path").to_pylist() if path_field >= 0 else [None] * len(chunk)
        else:
            values += chunk.to_pylist()
            paths += [None] * len(chunk)
    for row, (value, path) in enumerate(zip(values, paths)):
        if not value:
            held = f"only the path {path!r}" if path else "nothing"
            raise DataError(f"{shard} row {row}: the image column holds {held}, no image bytes; export the data set "
                            "with the images embedded")
    return [(value, f"{shard} row {row}") for row, value in enumerate(values)]
