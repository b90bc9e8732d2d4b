"""A decoded copy of each IDX file in the cache, so that loading a data set the second time is fast.

``train-images-idx3-ubyte.gz`` gets an entry in the data directory's cache
(``data.cache.ArrayCache``), keyed by the file's absolute path, holding the
array and the source's size, modification time and SHA-256. The entry is used
only while the source's size and time match, so a replaced or re-downloaded
file is decoded and validated afresh; a cache that cannot be written simply
goes without. Nothing is written beside the source files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from mlptrain.data.cache import ArrayCache, cache_key
from mlptrain.fsutil import file_digest


def _stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def load_decoded(path: Path, read: Callable[[Path], np.ndarray], cache: ArrayCache) -> tuple[np.ndarray, str]:
    """The array ``read(path)`` returns and the file's SHA-256, from the cache when it is current."""
    stamp = _stamp(path)
    key = cache_key("idx", str(path.resolve()))
    cached = cache.load(key)
    if cached is not None and {k: cached[1].get(k) for k in stamp} == stamp and "sha256" in cached[1]:
        return cached[0]["array"], str(cached[1]["sha256"])
    array, digest = read(path), file_digest(path)
    cache.store(key, {"array": array}, {**stamp, "sha256": digest, "source": str(path.resolve())})
    return array, digest
