"""The decoded-array cache of IDX files, kept in the data directory, never beside the files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mlptrain.data import decoded
from mlptrain.data.cache import PREPARED, ArrayCache
from mlptrain.data.idx import read_images, write_idx
from mlptrain.data.loading import load_dataset
from mlptrain.errors import DataError

from synthetic import write_dataset


def entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / PREPARED).iterdir()) if (cache_dir / PREPARED).is_dir() else []


def test_second_load_comes_from_the_cache_and_is_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = write_dataset(tmp_path / "d")
    before = sorted(directory.iterdir())
    first = load_dataset(directory, "d", cache_dir=tmp_path / "cache")
    assert sorted(directory.iterdir()) == before  # nothing written into the user's data directory
    assert len(entries(tmp_path / "cache")) == 4
    monkeypatch.setattr(decoded, "file_digest", lambda path: pytest.fail("hashed again"))
    second = load_dataset(directory, "d", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(first.train_images, second.train_images)
    np.testing.assert_array_equal(first.test_labels, second.test_labels)
    assert first.files == second.files


def test_without_a_cache_directory_nothing_is_written(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "d")
    before = sorted(p for p in tmp_path.rglob("*"))
    load_dataset(directory, "d")
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_a_replaced_source_is_decoded_again(tmp_path: Path) -> None:
    path, cache = tmp_path / "train-images-idx3-ubyte.gz", ArrayCache(tmp_path / "cache")
    write_idx(path, np.zeros((2, 3, 3), np.uint8))
    decoded.load_decoded(path, read_images, cache)
    write_idx(path, np.ones((4, 3, 3), np.uint8))
    os.utime(path, ns=(1, 1))  # a different stamp whatever the clock's resolution
    array, _ = decoded.load_decoded(path, read_images, cache)
    assert array.shape == (4, 3, 3) and array.max() == 1


def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    path, cache = tmp_path / "train-images-idx3-ubyte.gz", ArrayCache(tmp_path / "cache")
    write_idx(path, np.full((2, 3, 3), 7, np.uint8))
    decoded.load_decoded(path, read_images, cache)
    [entry] = entries(tmp_path / "cache")
    (entry / "array.npy").write_bytes(b"\x93NUMPY garbage")
    array, _ = decoded.load_decoded(path, read_images, cache)
    assert array.shape == (2, 3, 3) and array.max() == 7
    (entry / "record.json").write_text("{not json")
    assert decoded.load_decoded(path, read_images, cache)[0].max() == 7


def test_a_corrupt_source_is_still_an_error_not_a_cache(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError):
        decoded.load_decoded(path, read_images, ArrayCache(tmp_path / "cache"))
    assert entries(tmp_path / "cache") == []


def test_unwritable_cache_goes_without(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlptrain.data import cache as cache_module

    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.zeros((2, 3, 3), np.uint8))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cache_module, "atomic_write", refuse)
    array, digest = decoded.load_decoded(path, read_images, ArrayCache(tmp_path / "cache"))
    assert array.shape == (2, 3, 3) and len(digest) == 64
    assert entries(tmp_path / "cache") == []  # no half-written entry left
