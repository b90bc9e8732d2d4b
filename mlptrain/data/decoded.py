"""A decoded-array cache beside each IDX file, so that loading a data set the second time is fast.

``train-images-idx3-ubyte.gz`` gets ``train-images-idx3-ubyte.gz.decoded.npy``
(the array, read back with one ``np.load``) and ``….decoded.json`` (the source
file's size, modification time and SHA-256, and the array's shape and dtype),
written in that order so the JSON marks a complete cache. The cache is used
only while the source's size and time match and the array is what the JSON
says, so a replaced or re-downloaded file is decoded and validated afresh; a
directory that cannot be written simply goes without a cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mlptrain.fsutil import atomic_write, file_digest


def _paths(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + ".decoded.npy"), path.with_name(path.name + ".decoded.json")


def _stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def load_decoded(path: Path, read: Callable[[Path], np.ndarray]) -> tuple[np.ndarray, str]:
    """The array ``read(path)`` returns and the file's SHA-256, from the cache when it is current."""
    stamp = _stamp(path)
    cached = _read_cache(path, stamp)
    if cached is not None:
        return cached
    array, digest = read(path), file_digest(path)
    _write_cache(path, array, {**stamp, "sha256": digest, "shape": list(array.shape), "dtype": array.dtype.str})
    return array, digest


def _write_cache(path: Path, array: np.ndarray, record: dict[str, Any]) -> None:
    npy, meta = _paths(path)
    try:
        atomic_write(npy, lambda f: np.save(f, array, allow_pickle=False))
        atomic_write(meta, lambda f: f.write(json.dumps(record).encode()))
    except OSError:
        pass  # read-only data: no cache, just slower loads


def _read_cache(path: Path, stamp: dict[str, int]) -> tuple[np.ndarray, str] | None:
    npy, meta = _paths(path)
    try:
        record = json.loads(meta.read_text())
        if {k: record.get(k) for k in stamp} != stamp:
            return None
        array = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, AttributeError):
        return None  # absent, stale or damaged: decode the source again
    if list(array.shape) != record.get("shape") or array.dtype.str != record.get("dtype"):
        return None
    return array, str(record["sha256"])
