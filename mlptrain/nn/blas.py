"""Two BLAS operations NumPy does not expose: an accumulating product and a threaded add.

SGD with momentum wants ``v = mu * v + g`` with ``g = -lr * a.T @ delta``
for every weight matrix. NumPy's ``matmul`` always overwrites its output
(BLAS's ``beta = 0``), so the product needs a buffer of its own and then two
more passes over each weight-sized array (``v *= mu``, ``v += g``); those
passes only move memory, and on a large layer they cost a tenth of a step.
BLAS's ``gemm`` computes ``C = alpha * A @ B + beta * C`` in one call (and
with ``beta = 1`` skips the pass that scales ``C``; optimizers.SGD holds its
velocity so that ``beta = 1`` is all it needs), and its ``axpy``
(``y += alpha * x``) runs on the BLAS threads where ``p += v`` would run on
one core.

Both are called through ctypes in the OpenBLAS that NumPy itself links
(found with threadpoolctl, the library mlptrain already uses to set the BLAS
threads). Anything else (another BLAS, an unknown symbol scheme, arrays that
are not C-contiguous native-endian float32/float64, an output that is
read-only or overlaps an input, sizes the library's index type cannot hold)
takes the NumPy route, which computes
the same values up to the rounding of a sum's order. A self-check against
NumPy decides, once per process, whether the BLAS route is used at all.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

Array = np.ndarray

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112  # CBLAS enum values
# An axpy shorter than this is not worth a foreign call: NumPy's loop is as fast.
_MIN_AXPY = 4096


@dataclass(frozen=True)
class _Kernels:
    """``gemm`` and ``axpy`` per dtype character ('f', 'd'), their argument types bound."""

    gemm: dict[str, Callable[..., None]]
    axpy: dict[str, Callable[..., None]]
    max_index: int  # the largest size the bound integer type holds (2**31 - 1 for a 32-bit OpenBLAS)


def accumulate_product(a: Array, b: Array, out: Array | None, beta: float = 0.0) -> Array:
    """``out = beta * out + a.T @ b``, in place, for ``a`` ``(k, m)``, ``b`` ``(k, n)``, ``out`` ``(m, n)``.

    With ``beta == 0`` this is ``np.matmul(a.T, b, out=out)`` (``out`` may be None:
    a new array); accumulating needs ``out``.
    """
    if not beta:
        return np.matmul(a.T, b, out=out)
    if out is None:
        raise ValueError("accumulating a product needs the array to accumulate into")
    kernels = _kernels()
    k, m = a.shape
    n = b.shape[1]
    addresses = None
    if kernels is not None and b.shape[0] == k and out.shape == (m, n) and max(m, n, k) <= kernels.max_index:
        addresses = _blas_addresses(out, a, b)
    if addresses is None:
        product = a.T @ b  # first: out may overlap a or b (NumPy's way, and its error for shapes that do not fit)
        if beta != 1.0:
            out *= beta
        out += product
        return out
    # Sizes go in as Python ints: the bound argtypes convert them to the library's index type.
    c, a_address, b_address = addresses
    kernels.gemm[out.dtype.char](_ROW_MAJOR, _TRANS, _NO_TRANS, m, n, k, 1.0, a_address, m,
                                 b_address, n, beta, c, n)
    return out


def add_into(target: Array, addend: Array, alpha: float = 1.0) -> None:
    """``target += alpha * addend`` (same shape and dtype), on the BLAS threads when the arrays are large.

    With ``alpha == 1`` bit for bit NumPy's ``+=``: each element is one rounded
    addition either way. Otherwise BLAS may round once (a fused multiply-add)
    where NumPy rounds twice, so the two routes can differ in the last bit.
    """
    kernels = _kernels()
    addresses = None
    if (kernels is not None and _MIN_AXPY <= target.size <= kernels.max_index
            and addend.shape == target.shape):
        addresses = _blas_addresses(target, addend)
    if addresses is None:
        target += addend if alpha == 1.0 else alpha * addend
        return
    y, x = addresses
    kernels.axpy[target.dtype.char](target.size, alpha, x, 1, y, 1)


def _address(x: Array) -> int:
    """Where C-contiguous ``x``'s data starts, for a foreign call."""
    # A ctypes view of the buffer is several times cheaper than x.ctypes.data, and every step takes
    # an address per BLAS operand (benchmarks/NOTES.md). Read-only (and empty) arrays export no
    # writable buffer.
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(x))
    except (TypeError, ValueError):
        return x.ctypes.data


def _blas_addresses(out: Array, *inputs: Array) -> tuple[int, ...] | None:
    """The data addresses of ``out`` and ``inputs`` if BLAS can take them as they are, else None.

    As they are: float32/float64 in the machine's byte order, all of ``out``'s
    dtype, C-contiguous and aligned; ``out`` writable; no input overlapping
    ``out`` (BLAS would read what it has already written). Anything else is
    NumPy's to do, and NumPy raises where it should (a read-only ``out``).
    """
    dtype = out.dtype
    if dtype.char not in _TYPES or not dtype.isnative:
        return None
    for x in (out, *inputs):
        if x.dtype != dtype or not x.flags.c_contiguous or not x.flags.aligned:
            return None
    start = _writable_address(out)
    if start is None:
        return None
    end = start + out.nbytes
    addresses = [start]
    for x in inputs:
        # Both are contiguous, so each occupies [address, address + nbytes): a bounds test is exact,
        # and costs two comparisons where np.shares_memory costs a microsecond a call.
        address = _address(x)
        if address < end and start < address + x.nbytes:
            return None
        addresses.append(address)
    return tuple(addresses)


def _writable_address(x: Array) -> int | None:
    """Where ``x``'s data starts, or None if it may not be written (read-only, a read-only memmap) or is empty."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(x))  # asks for a writable buffer
    except (TypeError, ValueError):
        return None


def kernel_name() -> str:
    """What ``accumulate_product`` and ``add_into`` run on, for run records: e.g. 'openblas 0.3.31', or 'numpy'."""
    library = _numpy_openblas()
    return "numpy" if _kernels() is None or library is None else f"openblas {library.get('version')}"


@functools.cache
def _kernels() -> _Kernels | None:
    """The BLAS kernels, or None when NumPy's BLAS is not an OpenBLAS whose symbols we know."""
    library = _numpy_openblas()
    if library is None:
        return None
    try:
        kernels = _load(ctypes.CDLL(library["filepath"]))
    except (OSError, AttributeError, KeyError):  # not loadable, or not the symbols we expect
        return None
    return kernels if kernels and _agrees_with_numpy(kernels) else None


@functools.cache
def _numpy_openblas() -> dict[str, str] | None:
    """threadpoolctl's record of the OpenBLAS NumPy's matrix products run on, if that is what they run on."""
    from threadpoolctl import threadpool_info

    libraries = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    if len(libraries) != 1 or libraries[0].get("internal_api") != "openblas":
        return None  # another BLAS, or several loaded: we cannot tell which one NumPy calls
    return libraries[0]


# (symbol prefix, suffix, integer type): scipy-openblas wheels (NumPy's own), then plain builds.
_SCHEMES = [
    ("scipy_cblas_", "64_", ctypes.c_int64),
    ("scipy_cblas_", "", ctypes.c_int32),
    ("cblas_", "64_", ctypes.c_int64),
    ("cblas_", "", None),  # a plain build: its int width comes from openblas_get_config
]
# NumPy's dtype character -> BLAS's type letter and the ctypes scalar type.
_TYPES = {"f": ("s", ctypes.c_float), "d": ("d", ctypes.c_double)}


def _load(lib: ctypes.CDLL) -> _Kernels | None:
    for prefix, suffix, int_type in _SCHEMES:
        if not hasattr(lib, f"{prefix}sgemm{suffix}"):
            continue
        int_type = int_type or _plain_int_type(lib)
        if int_type is None:
            return None
        gemm = {c: _bind(lib, f"{prefix}{blas}gemm{suffix}", int_type, scalar, gemm=True)
                for c, (blas, scalar) in _TYPES.items()}
        axpy = {c: _bind(lib, f"{prefix}{blas}axpy{suffix}", int_type, scalar, gemm=False)
                for c, (blas, scalar) in _TYPES.items()}
        return _Kernels(gemm, axpy, 2 ** (8 * ctypes.sizeof(int_type) - 1) - 1)
    return None


def _plain_int_type(lib: ctypes.CDLL) -> type | None:
    """A plain OpenBLAS's index type: 64-bit when built with USE64BITINT, per its config string."""
    if not hasattr(lib, "openblas_get_config"):
        return None
    lib.openblas_get_config.restype = ctypes.c_char_p
    config = lib.openblas_get_config() or b""
    return ctypes.c_int64 if b"USE64BITINT" in config else ctypes.c_int32


def _bind(lib: ctypes.CDLL, name: str, size: type, scalar: type, gemm: bool) -> Callable[..., None]:
    function = getattr(lib, name)
    pointer = ctypes.c_void_p
    if gemm:  # order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc
        function.argtypes = [ctypes.c_int] * 3 + [size] * 3 + [scalar, pointer, size, pointer, size,
                                                                scalar, pointer, size]
    else:  # n, alpha, x, incx, y, incy
        function.argtypes = [size, scalar, pointer, size, pointer, size]
    function.restype = None
    return function


def _agrees_with_numpy(kernels: _Kernels) -> bool:
    """Run both kernels on small arrays of both dtypes and compare with NumPy's results."""
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        a, b, c = (rng.standard_normal(shape).astype(dtype) for shape in ((7, 5), (7, 6), (5, 6)))
        expected = 0.5 * c + a.T @ b
        got = c.copy()
        kernels.gemm[got.dtype.char](_ROW_MAJOR, _TRANS, _NO_TRANS, 5, 6, 7, 1.0, a.ctypes.data, 5,
                                     b.ctypes.data, 6, 0.5, got.ctypes.data, 6)
        summed = c.copy()
        kernels.axpy[c.dtype.char](c.size, 0.5, b[:5].ctypes.data, 1, summed.ctypes.data, 1)
        if not (np.allclose(got, expected, rtol=1e-4) and np.allclose(summed, c + 0.5 * b[:5], rtol=1e-6)):
            return False
    return True
