"""The decoded-array cache beside the IDX files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mlptrain.data import decoded
from mlptrain.data.idx import read_images, write_idx
from mlptrain.data.loading import load_dataset
from mlptrain.errors import DataError

from synthetic import write_dataset


def test_second_load_comes_from_the_cache_and_is_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = write_dataset(tmp_path / "d")
    first = load_dataset(directory, "d")
    assert len(list(directory.glob("*.decoded.npy"))) == 4 and len(list(directory.glob("*.decoded.json"))) == 4
    monkeypatch.setattr(decoded, "file_digest", lambda path: pytest.fail("hashed again"))
    second = load_dataset(directory, "d")
    np.testing.assert_array_equal(first.train_images, second.train_images)
    np.testing.assert_array_equal(first.test_labels, second.test_labels)
    assert first.files == second.files


def test_a_replaced_source_is_decoded_again(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.zeros((2, 3, 3), np.uint8))
    decoded.load_decoded(path, read_images)
    write_idx(path, np.ones((4, 3, 3), np.uint8))
    os.utime(path, ns=(1, 1))  # a different stamp whatever the clock's resolution
    array, _ = decoded.load_decoded(path, read_images)
    assert array.shape == (4, 3, 3) and array.max() == 1


def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.full((2, 3, 3), 7, np.uint8))
    decoded.load_decoded(path, read_images)
    path.with_name(path.name + ".decoded.npy").write_bytes(b"\x93NUMPY garbage")
    array, _ = decoded.load_decoded(path, read_images)
    assert array.shape == (2, 3, 3) and array.max() == 7
    path.with_name(path.name + ".decoded.json").write_text("{not json")
    assert decoded.load_decoded(path, read_images)[0].max() == 7


def test_a_corrupt_source_is_still_an_error_not_a_cache(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError):
        decoded.load_decoded(path, read_images)
    assert not path.with_name(path.name + ".decoded.json").exists()


def test_unwritable_directory_goes_without_a_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.zeros((2, 3, 3), np.uint8))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(decoded, "atomic_write", refuse)
    array, digest = decoded.load_decoded(path, read_images)
    assert array.shape == (2, 3, 3) and len(digest) == 64
    assert not list(tmp_path.glob("*.decoded.*"))
