"""mlptrain.nn.blas: the accumulating product and the threaded add, on BLAS and on the NumPy fallback."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mlptrain.nn import blas

DTYPES = [np.float32, np.float64]


@pytest.fixture(params=["blas", "numpy"])
def route(request, monkeypatch) -> str:
    """Run the test on BLAS (skipped where NumPy's BLAS is not one we can call) and on the fallback."""
    if request.param == "numpy":
        monkeypatch.setattr(blas, "_kernels", lambda: None)
    elif blas._kernels() is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS mlptrain knows how to call")
    return request.param


def arrays(dtype, k=9, m=70, n=65, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape).astype(dtype) for shape in ((k, m), (k, n), (m, n)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", [0.9, 1.0, -0.5])
def test_accumulate_product_is_beta_times_out_plus_the_product(route: str, dtype, beta: float) -> None:
    a, b, out = arrays(dtype)
    expected = beta * out + a.T @ b
    result = blas.accumulate_product(a, b, out, beta)
    assert result is out and out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_beta_zero_is_numpys_matmul_bit_for_bit(route: str, dtype) -> None:
    a, b, out = arrays(dtype)
    np.testing.assert_array_equal(blas.accumulate_product(a, b, None), np.matmul(a.T, b))
    assert blas.accumulate_product(a, b, out) is out
    np.testing.assert_array_equal(out, np.matmul(a.T, b))


def test_accumulating_needs_an_array_to_accumulate_into() -> None:
    a, b, _ = arrays(np.float32)
    with pytest.raises(ValueError, match="accumulate into"):
        blas.accumulate_product(a, b, None, 0.9)


def test_arrays_blas_cannot_take_as_they_are_go_through_numpy(route: str) -> None:
    a, b, _ = arrays(np.float32, m=70, n=130)
    out = np.ones((70, 130), np.float32)[:, ::2]  # a strided view: not C-contiguous
    a_view = np.asfortranarray(a)  # same values, another layout
    expected = 0.9 * out + a.T @ b[:, ::2]
    blas.accumulate_product(a_view, b[:, ::2], out, 0.9)
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_read_only_inputs_are_read_where_they_are(route: str) -> None:
    """BLAS gets their address the slow way (no writable buffer to view), with the same result."""
    a, b, out = arrays(np.float32)
    expected = out + a.T @ b
    a.flags.writeable = b.flags.writeable = False
    blas.accumulate_product(a, b, out, 1.0)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    target, addend = np.zeros(10_000, np.float32), np.frombuffer(np.ones(10_000, np.float32).tobytes(), np.float32)
    blas.add_into(target, addend, 2.0)
    np.testing.assert_array_equal(target, np.full(10_000, 2.0, np.float32))


def test_shapes_that_do_not_fit_raise_as_numpy_does_instead_of_reaching_blas(route: str) -> None:
    a, b, _ = arrays(np.float32)
    wrong = np.zeros((a.shape[1], b.shape[1] + 1), np.float32)
    with pytest.raises(ValueError):
        blas.accumulate_product(a, b, wrong, 0.9)
    with pytest.raises(ValueError):
        blas.add_into(np.zeros(10_000, np.float32), np.zeros(9_999, np.float32))


def test_other_dtypes_take_the_numpy_route(route: str) -> None:
    a, b, out = (x.astype(np.float16) for x in arrays(np.float32))
    expected = 0.5 * out.astype(np.float32) + a.T.astype(np.float32) @ b.astype(np.float32)
    blas.accumulate_product(a, b, out, 0.5)
    np.testing.assert_allclose(out, expected, rtol=1e-2, atol=0.1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [10, 100_000])
def test_add_into_is_plus_equals_bit_for_bit(route: str, dtype, size: int) -> None:
    rng = np.random.default_rng(1)
    target, addend = (rng.standard_normal(size).astype(dtype) for _ in range(2))
    expected = target + addend
    blas.add_into(target, addend)
    np.testing.assert_array_equal(target, expected)


def test_numpys_own_openblas_is_used_when_it_is_there() -> None:
    """A wheel of NumPy links an OpenBLAS: a silent fall back to NumPy would cost speed unnoticed."""
    from threadpoolctl import threadpool_info

    blas_libraries = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    if [lib.get("internal_api") for lib in blas_libraries] != ["openblas"]:
        pytest.skip(f"NumPy's BLAS here is {blas_libraries}")
    assert blas.kernel_name().startswith("openblas ")


def test_kernels_failing_the_self_check_are_not_used(monkeypatch) -> None:
    monkeypatch.setattr(blas, "_agrees_with_numpy", lambda kernels: False)
    blas._kernels.cache_clear()
    try:
        assert blas._kernels() is None and blas.kernel_name() == "numpy"
    finally:
        monkeypatch.undo()
        blas._kernels.cache_clear()


@pytest.mark.parametrize("config, expected", [(b"OpenBLAS 0.3 USE64BITINT DYNAMIC_ARCH", ctypes.c_int64),
                                              (b"OpenBLAS 0.3 DYNAMIC_ARCH", ctypes.c_int32)])
def test_a_plain_openblas_says_its_index_width_in_its_config(config: bytes, expected: type) -> None:
    def openblas_get_config() -> bytes:
        return config

    assert blas._plain_int_type(SimpleNamespace(openblas_get_config=openblas_get_config)) is expected
    assert blas._plain_int_type(SimpleNamespace()) is None  # no way to tell: do not guess


def test_a_library_without_known_symbols_gives_no_kernels() -> None:
    assert blas._load(SimpleNamespace()) is None


# --- the guards: what BLAS cannot take as it is goes to NumPy (issue 21) ---------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_big_endian_arrays_are_computed_on_their_values_not_their_bytes(route: str, dtype) -> None:
    a, b, out = (x.astype(np.dtype(dtype).newbyteorder(">")) for x in arrays(dtype))
    expected = 0.5 * out.astype(dtype) + a.astype(dtype).T @ b.astype(dtype)
    blas.accumulate_product(a, b, out, 0.5)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    target, addend = (np.arange(10_000, dtype=np.dtype(dtype).newbyteorder(">")) for _ in range(2))
    blas.add_into(target, addend, 2.0)
    np.testing.assert_array_equal(target, 3.0 * np.arange(10_000))


def test_a_read_only_output_raises_as_numpy_does(route: str) -> None:
    a, b, out = arrays(np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        blas.accumulate_product(a, b, out, 1.0)
    target = np.zeros(10_000, np.float32)
    target.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        blas.add_into(target, np.ones(10_000, np.float32))
    assert not target.any()
    np.testing.assert_array_equal(out, list(arrays(np.float32))[2])  # nothing written


MEMMAP_CHILD = """
import sys
import numpy as np
from mlptrain.nn import blas
np.ones(10_000, np.float32).tofile(sys.argv[1])
target = np.memmap(sys.argv[1], dtype=np.float32, mode="r")
try:
    blas.add_into(target, np.ones(10_000, np.float32))
except ValueError as exc:
    print(exc)
"""


def test_a_read_only_memmap_raises_instead_of_crashing_the_process(tmp_path: Path) -> None:
    """In a child process: a segmentation fault there fails this test instead of ending the suite."""
    done = subprocess.run([sys.executable, "-c", MEMMAP_CHILD, str(tmp_path / "ones.f32")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"exit status {done.returncode}: {done.stderr}"
    assert "read-only" in done.stdout
    np.testing.assert_array_equal(np.fromfile(tmp_path / "ones.f32", np.float32), np.ones(10_000, np.float32))


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_an_output_overlapping_an_input_gets_the_value_of_the_inputs_before_the_call(route: str, beta: float) -> None:
    rng = np.random.default_rng(2)
    a = rng.standard_normal((64, 64)).astype(np.float32)
    expected = beta * a + a.T @ a
    blas.accumulate_product(a, a, a, beta)
    np.testing.assert_allclose(a, expected, rtol=1e-5, atol=1e-4)
    x = rng.standard_normal(20_000).astype(np.float32)
    expected = x[:10_000] + 2.0 * x[5_000:15_000]
    blas.add_into(x[:10_000], x[5_000:15_000], 2.0)  # overlapping views of one array
    np.testing.assert_allclose(x[:10_000], expected, rtol=1e-6)


def test_sizes_beyond_the_bound_index_type_go_through_numpy(monkeypatch) -> None:
    """A 32-bit-index OpenBLAS would wrap sizes >= 2**31; here the bound is lowered to see the route taken."""
    kernels = blas._kernels()
    if kernels is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS mlptrain knows how to call")
    calls = []

    def spy(table):
        return {c: (lambda *args, f=f: calls.append(args) or f(*args)) for c, f in table.items()}

    small = blas._Kernels(spy(kernels.gemm), spy(kernels.axpy), max_index=64)
    monkeypatch.setattr(blas, "_kernels", lambda: small)
    a, b, out = arrays(np.float32, k=9, m=70, n=65)  # 70 > 64
    expected = out + a.T @ b
    blas.accumulate_product(a, b, out, 1.0)
    blas.add_into(np.zeros(10_000, np.float32), np.ones(10_000, np.float32))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert calls == []
    blas.accumulate_product(*arrays(np.float32, k=9, m=60, n=50), 1.0)  # fits: BLAS takes it
    assert len(calls) == 1
    assert kernels.max_index in (2**31 - 1, 2**63 - 1)
