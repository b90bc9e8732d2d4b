"""Tests for mlptrain.data.idx: round trips, every malformed case, memory safety, properties."""

from __future__ import annotations

import gzip
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mlptrain.data.idx import IDX_TYPES, read_idx, read_images, read_labels, write_idx
from mlptrain.errors import DataError

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
HUGE = 2**32 - 1
SHAPES = [(1,), (7,), (3, 4), (2, 3, 5), (2, 1, 3, 2), (1, 1, 1, 1, 1, 1, 1, 2)]
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def header(code: int, dims: tuple[int, ...], ndim: int | None = None) -> bytes:
    """An IDX header; ``ndim`` overrides the count to build inconsistent headers."""
    count = len(dims) if ndim is None else ndim
    return bytes([0, 0, code, count]) + struct.pack(f">{len(dims)}I", *dims)


def put(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path``, gzip-compressed when the name ends with .gz."""
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def sample(dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """Deterministic values that use the sign and the high bytes of ``dtype``."""
    rng = np.random.default_rng(0)
    if dtype.kind == "f":
        return (rng.standard_normal(shape) * 1e3).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def expect_error(path: Path, match: str, reader=read_idx) -> str:
    """Assert ``reader(path)`` raises DataError naming the file on one line."""
    with pytest.raises(DataError, match=match) as info:
        reader(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


# --- round trips ------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".idx", ".idx.gz"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("code", sorted(IDX_TYPES), ids=hex)
def test_round_trip(tmp_path: Path, code: int, shape: tuple[int, ...], suffix: str) -> None:
    array = sample(IDX_TYPES[code], shape)
    path = tmp_path / f"a{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == IDX_TYPES[code] and back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if suffix.endswith(".gz") else b"\0\0")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


def test_written_bytes_are_big_endian(tmp_path: Path) -> None:
    path = tmp_path / "a.idx"
    write_idx(path, np.array([1, 258], dtype=np.int16))
    assert path.read_bytes() == header(0x0B, (2,)) + b"\x00\x01\x01\x02"


def test_big_endian_input_and_str_path(tmp_path: Path) -> None:
    array = np.arange(6, dtype=">f8").reshape(2, 3)
    write_idx(str(tmp_path / "a.idx.gz"), array)
    back = read_idx(str(tmp_path / "a.idx.gz"))
    assert back.dtype == np.float64 and back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_gzip_detected_by_magic_without_suffix(tmp_path: Path) -> None:
    data = header(0x08, (2, 2)) + bytes([1, 2, 3, 4])
    path = tmp_path / "plain-name"
    path.write_bytes(gzip.compress(data))
    np.testing.assert_array_equal(read_idx(path), [[1, 2], [3, 4]])


def test_read_uint8_is_writable_single_buffer(tmp_path: Path) -> None:
    write_idx(tmp_path / "a.idx", np.zeros((3, 2), np.uint8))
    array = read_idx(tmp_path / "a.idx")
    assert array.flags.writeable and array.base is not None


def test_write_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "a.idx"
    write_idx(path, np.zeros(5, np.uint8))
    write_idx(path, np.ones(2, np.uint8))
    np.testing.assert_array_equal(read_idx(path), [1, 1])


@pytest.mark.parametrize(
    "array",
    [np.zeros(3, np.int64), np.zeros(3, np.float16), np.zeros(3, bool), np.array(5, np.uint8),
     np.zeros((1,) * 9, np.uint8)],
    ids=["int64", "float16", "bool", "0-d", "9-d"],
)
def test_write_rejects_unwritable_arrays(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "a.idx"
    with pytest.raises(DataError, match="cannot write") as info:
        write_idx(path, array)
    assert str(path) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_write_to_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot write"):
        write_idx(tmp_path / "nope" / "a.idx", np.zeros(2, np.uint8))


# --- malformed files ----------------------------------------------------------------

GOOD = header(0x08, (2, 3)) + bytes(6)
MALFORMED = {
    "bad magic": (b"\x01\x00" + GOOD[2:], "two zero bytes, got 01 00 08 02"),
    "unknown type": (
        header(0x07, (2, 3)) + bytes(6), r"unknown IDX type code 0x07.*0x08 \(uint8\)"
    ),
    "ndim zero": (bytes([0, 0, 8, 0]), "declares 0 dimensions, expected 1 to 8"),
    "ndim nine": (header(0x08, (1,) * 9) + b"\0", "declares 9 dimensions, expected 1 to 8"),
    "short magic": (b"\0\0\x08", "expected 4 magic bytes, got only 3 bytes"),
    "short header": (header(0x08, (2,), ndim=3), "3 dimensions need 16 header bytes, got 8"),
    "truncated": (GOOD[:-1], "payload is truncated.* = 6 bytes, file holds 5 bytes"),
    # gzip reading stops one byte past the declared size, so it reports "more than 6".
    "oversized": (GOOD + b"\0", r"oversized.* = 6 bytes, file holds (more than 6|7) bytes"),
    "zero dim with data": (header(0x08, (0, 3)) + b"\0", "payload is oversized"),
}


@pytest.mark.parametrize("suffix", [".idx", ".idx.gz"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed(tmp_path: Path, case: str, suffix: str) -> None:
    data, match = MALFORMED[case]
    expect_error(put(tmp_path / f"bad{suffix}", data), match)


def test_truncated_message_is_exact(tmp_path: Path) -> None:
    path = put(tmp_path / "t.idx", header(0x0C, (4, 5)) + bytes(10))
    message = expect_error(path, "truncated")
    assert "int32 shape (4, 5) = 80 bytes, file holds 10 bytes" in message
    assert "mlptrain data download" in message


@pytest.mark.parametrize("name", ["empty.idx", "empty.idx.gz"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    expect_error(path, "empty")


def test_gzip_of_nothing(tmp_path: Path) -> None:
    expect_error(put(tmp_path / "nothing.gz", b""), "header is truncated.*got no data")


def test_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "missing.idx", "file not found")


def test_directory(tmp_path: Path) -> None:
    expect_error(tmp_path, "is a directory")


def test_not_gzip_despite_suffix(tmp_path: Path) -> None:
    path = tmp_path / "raw.idx.gz"
    path.write_bytes(GOOD)  # a valid raw IDX file with a misleading name
    expect_error(path, "named .gz but is not gzip-compressed")


@pytest.mark.parametrize(
    "damage",
    [
        lambda z: z[:-12],  # stream cut short: EOFError inside gzip
        lambda z: z[:10] + bytes(b ^ 0xFF for b in z[10:20]) + z[20:],  # bad deflate data
        lambda z: z[:-8] + bytes(4) + z[-4:],  # CRC mismatch
        lambda z: z + b"garbage!",  # trailing junk after the member
        lambda z: z[:3] + b"\xff" + z[4:],  # reserved header flags
    ],
    ids=["cut", "deflate", "crc", "trailing", "flags"],
)
def test_corrupt_gzip(tmp_path: Path, damage) -> None:
    compressed = gzip.compress(header(0x08, (64,)) + bytes(range(64)))
    path = tmp_path / "corrupt.idx.gz"
    path.write_bytes(damage(compressed))
    expect_error(path, "gzip")


# --- images and labels --------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".idx", ".idx.gz"])
def test_images_and_labels(tmp_path: Path, suffix: str) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / f"i{suffix}", images)
    write_idx(tmp_path / f"l{suffix}", np.array([7, 1], np.uint8))
    np.testing.assert_array_equal(read_images(tmp_path / f"i{suffix}"), images)
    np.testing.assert_array_equal(read_labels(tmp_path / f"l{suffix}"), [7, 1])


def test_images_may_have_more_dims(tmp_path: Path) -> None:
    write_idx(tmp_path / "i.idx", np.zeros((2, 3, 4, 3), np.uint8))
    assert read_images(tmp_path / "i.idx").shape == (2, 3, 4, 3)


@pytest.mark.parametrize(
    ("array", "reader", "match"),
    [
        (np.zeros(3, np.int32), read_labels,
         r"labels must be unsigned bytes \(type 0x08\), got int32 \(0x0C\)"),
        (np.zeros((2, 2), np.float32), read_images,
         r"images must be unsigned bytes \(type 0x08\), got float32 \(0x0D\)"),
        (np.zeros(5, np.uint8), read_images, r"at least 2 dimensions .*got shape \(5,\)"),
        (np.zeros((2, 3), np.uint8), read_labels, r"labels must have 1 dimension .*\(2, 3\)"),
        (np.zeros((0, 28, 28), np.uint8), read_images, "holds no images"),
        (np.zeros((3, 0), np.uint8), read_images, "holds no images"),
        (np.zeros(0, np.uint8), read_labels, "holds no labels"),
    ],
    ids=["labels-int32", "images-float32", "images-1d", "labels-2d", "no-images", "zero-rows",
         "no-labels"],
)
def test_images_labels_validation(tmp_path: Path, array, reader, match: str) -> None:
    path = tmp_path / "x.idx.gz"
    write_idx(path, array)
    expect_error(path, match, reader)


def test_dtype_checked_before_payload(tmp_path: Path) -> None:
    # A wrong-typed labels file fails on its header, even with a broken payload.
    path = put(tmp_path / "l.idx", header(0x0C, (5,)) + b"\0")
    expect_error(path, "labels must be unsigned bytes", read_labels)


# --- zero dimensions ----------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".idx", ".idx.gz"])
def test_zero_dimension_with_empty_payload_is_an_empty_array(tmp_path: Path, suffix: str) -> None:
    path = put(tmp_path / f"z{suffix}", header(0x0D, (0, 28, 28)))
    array = read_idx(path)
    assert array.shape == (0, 28, 28) and array.dtype == np.float32


def test_zero_dimension_beside_huge_ones(tmp_path: Path) -> None:
    path = put(tmp_path / "z.idx", header(0x0E, (0, HUGE, HUGE, HUGE)))
    expect_error(path, "too large for NumPy")


# --- memory safety -------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".idx", ".idx.gz"])
@pytest.mark.parametrize("code", [0x08, 0x0E])
def test_huge_declared_dims_fail_fast(tmp_path: Path, code: int, suffix: str) -> None:
    path = put(tmp_path / f"huge{suffix}", header(code, (HUGE, HUGE, HUGE)) + bytes(100))
    start = time.perf_counter()
    message = expect_error(path, "payload is truncated")
    assert time.perf_counter() - start < 1.0
    assert f"= {HUGE**3 * IDX_TYPES[code].itemsize} bytes, file holds 100 bytes" in message


@pytest.mark.parametrize("suffix", [".idx", ".idx.gz"])
def test_declared_size_is_never_allocated(tmp_path: Path, suffix: str) -> None:
    # 1 GiB declared would show up in tracemalloc's peak if the reader trusted it.
    path = put(tmp_path / f"big{suffix}", header(0x08, (2**30,)) + bytes(1000))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="truncated"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20


def test_gzip_oversized_stops_early(tmp_path: Path) -> None:
    # 64 MiB of zeros compresses to ~64 KiB; reading must stop after the declared 10 bytes.
    path = tmp_path / "bomb.idx.gz"
    path.write_bytes(gzip.compress(header(0x08, (10,)) + bytes(64 * 2**20), compresslevel=1))
    tracemalloc.start()
    try:
        expect_error(path, "oversized.*file holds more than 10 bytes")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


# --- properties -------------------------------------------------------------------------


def read_or_data_error(path: Path) -> np.ndarray | None:
    """Return the array, or None when read_idx raised DataError (anything else fails)."""
    try:
        array = read_idx(path)
    except DataError as err:
        assert str(path) in str(err) and "\n" not in str(err)
        return None
    assert isinstance(array, np.ndarray)
    return array


@PROPERTY
@given(data=st.binary(max_size=80), suffix=st.sampled_from([".idx", ".idx.gz", ".bin"]))
def test_random_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes, suffix: str) -> None:
    path = tmp_path_factory.mktemp("rb") / f"f{suffix}"
    put(path, data)
    read_or_data_error(path)


@PROPERTY
@given(data=st.binary(max_size=80))
def test_random_bytes_behind_gzip_magic(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("gm") / "f.gz"
    path.write_bytes(b"\x1f\x8b" + data)
    read_or_data_error(path)


@PROPERTY
@given(
    code=st.one_of(st.sampled_from(sorted(IDX_TYPES)), st.integers(0, 255)),
    dims=st.lists(st.one_of(st.integers(0, 4), st.just(HUGE), st.integers(0, HUGE)), max_size=9),
    ndim_delta=st.sampled_from([0, 0, 0, -1, 1]),
    extra=st.integers(-3, 3),
    gz=st.booleans(),
)
def test_random_headers(
    tmp_path_factory: pytest.TempPathFactory,
    code: int, dims: list[int], ndim_delta: int, extra: int, gz: bool,
) -> None:
    ndim = max(0, len(dims) + ndim_delta)
    itemsize = IDX_TYPES[code].itemsize if code in IDX_TYPES else 1
    declared = int(np.prod(dims, dtype=object)) * itemsize if dims else 0
    # Payloads near the declared size, but never more than a few bytes on disk.
    payload = bytes(max(0, min(declared, 64) + extra))
    path = tmp_path_factory.mktemp("rh") / ("f.idx.gz" if gz else "f.idx")
    data = header(code, tuple(dims), ndim=ndim) + payload
    put(path, data)
    array = read_or_data_error(path)
    event("array" if array is not None else "DataError")
    if array is not None:
        # A misdeclared ndim can still make a valid file, with payload bytes read as dims.
        assert array.dtype == IDX_TYPES[code]
        assert 4 + 4 * array.ndim + array.nbytes == len(data)
        if ndim_delta == 0:
            assert array.shape == tuple(dims)


@PROPERTY
@given(
    array=st.sampled_from(list(IDX_TYPES.values())).flatmap(
        lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0))
    ),
    gz=st.booleans(),
)
def test_valid_arrays_round_trip(
    tmp_path_factory: pytest.TempPathFactory, array: np.ndarray, gz: bool
) -> None:
    path = tmp_path_factory.mktemp("rt") / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert back.tobytes() == array.tobytes()  # bit-exact, NaN payloads included


# --- the real MNIST files -----------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.skipif(not MNIST.is_dir(), reason=f"real MNIST files not found at {MNIST}")
@pytest.mark.parametrize(("prefix", "n"), [("train", 60000), ("t10k", 10000)])
def test_real_mnist(prefix: str, n: int) -> None:
    images = read_images(MNIST / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_labels(MNIST / f"{prefix}-labels-idx1-ubyte.gz")
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.uint8
    assert labels.max() == 9 and images.max() == 255
