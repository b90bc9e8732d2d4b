"""Where mlptrain keeps what it downloads and prepares, and the cache of prepared arrays in it.

The data directory is ``$MLPTRAIN_DATA_DIR`` when set (``--data-dir`` overrides
both), else the per-user cache directory: ``$XDG_CACHE_HOME/mlptrain``,
``~/.cache/mlptrain`` when that is unset (``%LOCALAPPDATA%\\mlptrain`` on
Windows). Known data sets are downloaded into ``<data dir>/<name>/``; arrays
decoded or prepared from any data set go to ``<data dir>/prepared/<key>/``,
never beside the user's own files, which may be shared, read-only or under
version control. An entry is ``<name>.npy`` per array and ``record.json``,
written last, so an entry without a readable record is incomplete and ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mlptrain.fsutil import atomic_write

DATA_DIR_ENV = "MLPTRAIN_DATA_DIR"
PREPARED = "prepared"
RECORD = "record.json"
DEFAULT_DATA_DIR_TEXT = "$XDG_CACHE_HOME/mlptrain, else ~/.cache/mlptrain"  # for help texts and docs


def default_data_dir() -> Path:
    """``$MLPTRAIN_DATA_DIR``, else the per-user cache directory's ``mlptrain`` folder."""
    given = os.environ.get(DATA_DIR_ENV)
    if given:
        return Path(given).expanduser()
    return user_cache_dir() / "mlptrain"


def user_cache_dir() -> Path:
    """The per-user cache root, as pip and the XDG base-directory spec have it: ``$XDG_CACHE_HOME`` or
    ``~/.cache`` (``%LOCALAPPDATA%`` on Windows). A relative ``XDG_CACHE_HOME`` is ignored, as the spec says."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"])
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"


def cache_key(*parts: Any) -> str:
    """A short hex digest of ``parts`` (plain JSON values): the name of a cache entry."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ArrayCache:
    """Named arrays with a JSON record under ``root/prepared/<key>/``; ``root`` None: no cache at all."""

    def __init__(self, root: Path | None) -> None:
        self.root = None if root is None else Path(root) / PREPARED

    def load(self, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """The arrays and record stored under ``key``; None when absent, incomplete or damaged."""
        if self.root is None:
            return None
        entry = self.root / key
        try:
            record = json.loads((entry / RECORD).read_text(encoding="utf-8"))
            arrays = {}
            for name, (shape, dtype) in record["arrays"].items():
                array = np.load(entry / f"{name}.npy", allow_pickle=False)
                if list(array.shape) != shape or array.dtype.str != dtype:
                    return None
                arrays[name] = array
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # absent, stale or damaged: decode the source again
        return arrays, record

    def store(self, key: str, arrays: dict[str, np.ndarray], record: dict[str, Any]) -> bool:
        """Write an entry (the arrays, then the record); False, and nothing half-written left, when the cache
        cannot be written (read-only, full): the data is simply decoded again next time."""
        if self.root is None:
            return False
        entry = self.root / key
        shapes = {name: [list(a.shape), a.dtype.str] for name, a in arrays.items()}
        try:
            entry.mkdir(parents=True, exist_ok=True)
            for name, array in arrays.items():
                atomic_write(entry / f"{name}.npy", lambda f, a=array: np.save(f, a, allow_pickle=False))
            atomic_write(entry / RECORD, lambda f: f.write(json.dumps({**record, "arrays": shapes}).encode()))
        except OSError:
            shutil.rmtree(entry, ignore_errors=True)
            return False
        return True
