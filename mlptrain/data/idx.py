"""Read and write IDX files (the MNIST container format) with full validation.

Layout: two zero bytes, a type-code byte, a byte ``ndim``, ``ndim`` big-endian
uint32 dimensions, then the payload in C order (big-endian for multi-byte types).
Files may be gzip-compressed. Arrays are returned native-endian.

Memory safety: the declared payload size is never trusted for allocation. Raw
files are checked against their size on disk before reading; gzip streams are
read in bounded chunks and rejected as soon as they exceed the declared size.

Zero dimensions: ``read_idx`` accepts a shape with a zero dimension when the
payload is then empty (header and payload agree) and NumPy can represent the
shape; it returns an empty array. ``read_images`` and ``read_labels`` reject
empty data, since there is nothing to train or evaluate on.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from mlptrain.errors import DataError
from mlptrain.fsutil import atomic_write

# Native-endian dtypes: what read_idx returns. On disk multi-byte types are big-endian.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(np.int16),
    0x0C: np.dtype(np.int32),
    0x0D: np.dtype(np.float32),
    0x0E: np.dtype(np.float64),
}
MAX_NDIM = 8
_MAX_DIM = 2**32 - 1
_CHUNK = 1 << 20  # gzip streams are decompressed 1 MiB at a time
_GZIP_MAGIC = b"\x1f\x8b"
_REMEDY = "re-download it with `mlptrain data download`, or check the file"
# BadGzipFile is an OSError; zlib.error and EOFError come from damaged deflate data.
_READ_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error, OSError)

_Check = Callable[[Path, "_Header"], None]


class _Header(NamedTuple):
    """A parsed IDX header: type code, shape, and its own length in bytes."""

    code: int
    shape: tuple[int, ...]
    length: int

    @property
    def dtype(self) -> np.dtype:
        return IDX_TYPES[self.code]

    @property
    def payload(self) -> int:
        # Python ints: a header of eight 2**32-1 dimensions must not overflow.
        return math.prod(self.shape) * self.dtype.itemsize


def read_idx(path: Path | str) -> np.ndarray:
    """Read a raw or gzip IDX file into a native-endian array of its dtype and shape."""
    return _read(Path(path), None)


def read_images(path: Path | str) -> np.ndarray:
    """Read an images file: uint8 of shape ``(n, rows[, cols...])`` with n >= 1."""
    return _read(Path(path), _check_images)


def read_labels(path: Path | str) -> np.ndarray:
    """Read a labels file: uint8 of shape ``(n,)`` with n >= 1."""
    return _read(Path(path), _check_labels)


def write_idx(path: Path | str, array: np.ndarray) -> None:
    """Write ``array`` as IDX, gzip-compressed when ``path`` ends with ``.gz``; atomic."""
    path = Path(path)
    array = np.asarray(array)
    code = _code_for(path, array)
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)
    big = np.ascontiguousarray(array, dtype=IDX_TYPES[code].newbyteorder(">"))
    # A flat uint8 view lets the file write the buffer without a second copy.
    payload = big.reshape(-1).view(np.uint8)

    def write(out: BinaryIO) -> None:
        if _is_gz_name(path):
            # mtime=0 keeps the output byte-for-byte reproducible.
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=out, mtime=0) as gz:
                gz.write(header)
                gz.write(payload)
        else:
            out.write(header)
            out.write(payload)

    _atomic_write(path, write)


# --- reading -----------------------------------------------------------------


def _read(path: Path, check: _Check | None) -> np.ndarray:
    """Open ``path``, pick raw or gzip decoding, and return the validated array."""
    try:
        raw = path.open("rb")
    except FileNotFoundError as err:
        raise DataError(f"{path}: file not found; {_REMEDY}") from err
    except IsADirectoryError as err:
        raise DataError(f"{path}: is a directory, not an IDX file; check the path") from err
    except OSError as err:
        raise DataError(f"{path}: cannot open ({err.strerror}); check the file") from err
    with raw:
        if _is_gzip(raw, path):
            return _read_gzip(raw, path, check)
        return _read_raw(raw, path, check)


def _is_gzip(raw: BinaryIO, path: Path) -> bool:
    """Tell gzip from raw by the magic bytes; a ``.gz`` name must really be gzip."""
    with _guard(path, gz=False):
        head = raw.read(2)
        raw.seek(0)
    if not head:
        raise DataError(f"{path}: file is empty (0 bytes), expected an IDX header; {_REMEDY}")
    is_gz = head == _GZIP_MAGIC
    if _is_gz_name(path) and not is_gz:
        raise DataError(
            f"{path}: named .gz but is not gzip-compressed "
            f"(expected magic 1f 8b, got {head.hex(' ')}); {_REMEDY}"
        )
    return is_gz


def _read_raw(raw: BinaryIO, path: Path, check: _Check | None) -> np.ndarray:
    """Read an uncompressed file, comparing the declared size to the real one first."""
    with _guard(path, gz=False):
        header = _parse_header(raw.read, path)
        if check is not None:
            check(path, header)
        actual = os.fstat(raw.fileno()).st_size - header.length
        if actual != header.payload:
            raise _size_error(path, header, actual)
        buf = bytearray(actual)
        got = raw.readinto(buf)
    if got != actual:  # the file shrank between fstat and read
        raise _size_error(path, header, got)
    return _to_array(buf, header, path)


def _read_gzip(raw: BinaryIO, path: Path, check: _Check | None) -> np.ndarray:
    """Read a gzip file, never buffering more than the declared payload plus one chunk."""
    with _guard(path, gz=True), gzip.GzipFile(fileobj=raw, mode="rb") as stream:
        header = _parse_header(stream.read, path)
        if check is not None:
            check(path, header)
        buf = _read_bounded(stream, path, header)
    return _to_array(buf, header, path)


def _read_bounded(stream: BinaryIO, path: Path, header: _Header) -> bytearray:
    """Read exactly ``header.payload`` bytes from ``stream`` in chunks, or raise."""
    expected = header.payload
    buf = bytearray()
    while True:
        # Ask for at most one byte past the declared size: enough to detect an
        # oversized stream without ever buffering its excess.
        chunk = stream.read(min(_CHUNK, expected - len(buf) + 1))
        if not chunk:
            break
        buf += chunk
        if len(buf) > expected:
            raise _size_error(path, header, expected, more=True)
    if len(buf) < expected:
        raise _size_error(path, header, len(buf))
    return buf


def _parse_header(read: Callable[[int], bytes], path: Path) -> _Header:
    """Parse and validate the magic number and dimensions."""
    magic = read(4)
    if len(magic) < 4:
        what = "no data" if not magic else f"only {len(magic)} bytes"
        raise DataError(
            f"{path}: header is truncated: expected 4 magic bytes, got {what}; {_REMEDY}"
        )
    if magic[:2] != b"\0\0":
        raise DataError(
            f"{path}: not an IDX file: magic number must start with two zero bytes, "
            f"got {magic.hex(' ')}; {_REMEDY}"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        raise DataError(
            f"{path}: unknown IDX type code 0x{code:02X}; known codes: {_known_codes()}; {_REMEDY}"
        )
    if not 1 <= ndim <= MAX_NDIM:
        raise DataError(
            f"{path}: header declares {ndim} dimensions, expected 1 to {MAX_NDIM}; {_REMEDY}"
        )
    dims = read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(
            f"{path}: header is truncated: {ndim} dimensions need {4 + 4 * ndim} header bytes, "
            f"got {4 + len(dims)}; {_REMEDY}"
        )
    return _Header(code, struct.unpack(f">{ndim}I", dims), 4 + 4 * ndim)


def _to_array(buf: bytearray, header: _Header, path: Path) -> np.ndarray:
    """View ``buf`` as the header's dtype and shape, byte-swapping in place if needed."""
    big = header.dtype.newbyteorder(">")
    array = np.frombuffer(buf, dtype=big)
    if not big.isnative:
        # In place, so the one buffer read from disk is the only copy.
        array = array.byteswap(inplace=True).view(header.dtype)
    try:
        return array.reshape(header.shape)
    except ValueError as err:  # only reachable with a zero dimension beside huge ones
        raise DataError(
            f"{path}: header declares shape {_fmt(header.shape)}, too large for NumPy "
            f"even though it is empty; {_REMEDY}"
        ) from err


# --- validation for images and labels -----------------------------------------


def _check_images(path: Path, header: _Header) -> None:
    """Images are uint8 with shape (n, rows[, cols...]) and no zero dimension."""
    _check_uint8(path, header, "images")
    if len(header.shape) < 2:
        raise DataError(
            f"{path}: images must have at least 2 dimensions (n, rows[, cols...]), "
            f"got shape {_fmt(header.shape)}; check that this is an images file"
        )
    if 0 in header.shape:
        raise DataError(f"{path}: holds no images (shape {_fmt(header.shape)}); {_REMEDY}")


def _check_labels(path: Path, header: _Header) -> None:
    """Labels are uint8 with shape (n,), n >= 1."""
    _check_uint8(path, header, "labels")
    if len(header.shape) != 1:
        raise DataError(
            f"{path}: labels must have 1 dimension (n,), got shape {_fmt(header.shape)}; "
            "check that this is a labels file"
        )
    if header.shape[0] == 0:
        raise DataError(f"{path}: holds no labels (shape 0); {_REMEDY}")


def _check_uint8(path: Path, header: _Header, kind: str) -> None:
    """Reject anything but unsigned bytes, before the payload is read."""
    if header.code != 0x08:
        raise DataError(
            f"{path}: {kind} must be unsigned bytes (type 0x08), "
            f"got {header.dtype} (0x{header.code:02X}); check that this is the {kind} file"
        )


# --- writing ---------------------------------------------------------------------


def _code_for(path: Path, array: np.ndarray) -> int:
    """Return the IDX type code for ``array``, or explain why it cannot be written."""
    for code, dtype in IDX_TYPES.items():
        # Compare ignoring byte order: big-endian input is as writable as native.
        if array.dtype.kind == dtype.kind and array.dtype.itemsize == dtype.itemsize:
            break
    else:
        raise DataError(
            f"{path}: cannot write dtype {array.dtype} as IDX; convert with .astype() "
            f"to one of {_known_codes()}"
        )
    if not 1 <= array.ndim <= MAX_NDIM:
        raise DataError(
            f"{path}: cannot write a {array.ndim}-dimensional array as IDX, "
            f"expected 1 to {MAX_NDIM} dimensions; reshape it first"
        )
    if max(array.shape) > _MAX_DIM:
        raise DataError(
            f"{path}: cannot write shape {_fmt(array.shape)} as IDX, "
            f"dimensions are limited to {_MAX_DIM}; split the array"
        )
    return code


def _atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``fsutil.atomic_write``, with I/O failures as one DataError."""
    try:
        atomic_write(path, write)
    except OSError as err:
        raise DataError(
            f"{path}: cannot write ({err.strerror or err}); check the directory exists and is writable"
        ) from err


# --- small helpers -------------------------------------------------------------


@contextmanager
def _guard(path: Path, gz: bool) -> Iterator[None]:
    """Turn I/O and decompression failures inside the block into one DataError."""
    try:
        yield
    except _READ_ERRORS as err:
        what = "corrupt or truncated gzip stream" if gz else "cannot read"
        raise DataError(f"{path}: {what} ({err}); {_REMEDY}") from err


def _size_error(path: Path, header: _Header, actual: int, more: bool = False) -> DataError:
    """The one message for a payload that disagrees with the header.

    ``more`` means the file holds more than ``actual`` bytes (gzip reading stops early).
    """
    kind = "oversized" if more or actual > header.payload else "truncated"
    holds = f"more than {actual}" if more else str(actual)
    return DataError(
        f"{path}: payload is {kind}: header declares {header.dtype} shape {_fmt(header.shape)} "
        f"= {header.payload} bytes, file holds {holds} bytes; {_REMEDY}"
    )


def _is_gz_name(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _known_codes() -> str:
    return ", ".join(f"0x{code:02X} ({dtype})" for code, dtype in IDX_TYPES.items())


def _fmt(shape: tuple[int, ...]) -> str:
    return str(tuple(int(d) for d in shape))  # int(): NumPy shapes may hold np.intp
