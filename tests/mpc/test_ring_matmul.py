"""Exact Z_2^64 matrix products (``pet.mpc.ring_matmul``) against Python-integer products.

Every kernel (the numba loop, the float64 limb path and, on CPUs that have it, the AVX-512
IFMA kernel) must give ``a @ b mod 2^64`` bit for bit, for any uint64 values, any shape
(odd sizes, shapes either side of every tile / slab / threshold size) and any memory layout.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pet.errors import InputError
from pet.mpc import _kernels, ring_matmul
from pet.mpc.prg import PRG
from pet.mpc.ring_matmul import ifma_available, matmul2_u64, matmul_u64

MASK = 2 ** 64 - 1
TOP = np.uint64(MASK)
METHODS = ["loop", "limb"] + (["ifma"] if ifma_available() else [])


def _words(seed: int, shape) -> np.ndarray:
    return PRG(int(seed).to_bytes(16, "little")).words(shape)


def _extreme(seed: int, shape) -> np.ndarray:
    """Uniform uint64 words with whole rows/columns of 0 and 2^64 - 1 and some single
    extreme entries -- the values that stress the limb/IFMA splits and accumulators."""
    x = _words(seed, shape)
    if x.size:
        x.flat[:: max(1, x.size // 7)] = TOP
        x.flat[1 :: max(1, x.size // 5)] = 0
        x[0, :] = TOP
        x[-1, :] = 0
        x[:, 0] = TOP
    return x


def _oracle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b mod 2^64`` with Python integers (slow, obviously right)."""
    m, n = a.shape[0], b.shape[1]
    if a.shape[1] == 0:
        return np.zeros((m, n), dtype=np.uint64)
    prod = a.astype(object) @ b.astype(object)
    return np.array([[int(v) & MASK for v in row] for row in prod], dtype=np.uint64).reshape(m, n)


# shapes either side of the IFMA tile (4 x 16), slab (KC = 256), row block (MC = 256),
# the auto-dispatch thresholds and the loop kernel's thin-``b`` path (n < 8), plus
# degenerate ones
SHAPES = [
    (1, 1, 1), (3, 5, 7), (4, 1, 16), (4, 16, 16), (5, 17, 17), (15, 9, 15), (16, 8, 8), (17, 3, 9),
    (33, 255, 31), (12, 256, 48), (9, 257, 20), (257, 40, 18), (256, 11, 16), (7, 513, 33),
    (30, 200, 1), (9, 70, 7), (2, 0, 3), (0, 4, 5), (6, 4, 0),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_every_kernel_matches_python_integers(method, shape):
    m, k, n = shape
    a = _extreme(m * 1000 + k, (m, k))
    b = _extreme(n * 1000 + k + 1, (k, n))
    got = matmul_u64(a, b, method=method)
    assert got.dtype == np.uint64 and got.shape == (m, n) and got.flags.c_contiguous
    np.testing.assert_array_equal(got, _oracle(a, b))


@pytest.mark.parametrize("method", METHODS)
def test_all_ones_long_inner_dimension(method):
    """2^64 - 1 everywhere over several slabs: the worst case for every accumulator bound
    (e.g. the IFMA cross-term word, whose low garbage must stay below 2^40 per slab)."""
    m, k, n = 18, 1100, 21
    a = np.full((m, k), TOP)
    b = np.full((k, n), TOP)
    b[::3] = np.uint64((1 << 52) - 1)  # low 52 bits set, top 12 clear
    a[:, ::5] = np.uint64(0xFFF << 52 | 0xFFF)  # top 12 and low 12 bits set
    np.testing.assert_array_equal(matmul_u64(a, b, method=method), _oracle(a, b))


@pytest.mark.parametrize("method", METHODS)
def test_non_contiguous_inputs(method):
    base_a = _words(1, (40, 90))
    base_b = _words(2, (70, 60))
    a = base_a[::2, 3:73]  # (20, 70), strided rows
    b = base_b[:, ::3]  # (70, 20), strided columns
    at = np.ascontiguousarray(_words(3, (70, 20))).T  # Fortran-ordered (20, 70)
    assert not a.flags.c_contiguous and not b.flags.c_contiguous and not at.flags.c_contiguous
    np.testing.assert_array_equal(matmul_u64(a, b, method=method), _oracle(a, b))
    np.testing.assert_array_equal(matmul_u64(at, b, method=method), _oracle(at, b))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(5, 7, 3, 9), (40, 100, 300, 33), (20, 256, 1, 17), (16, 0, 12, 16)])
def test_matmul2_is_the_sum_of_two_products_plus_c(method, shape):
    m, k1, k2, n = shape
    a1, b1 = _extreme(11, (m, k1)), _extreme(12, (k1, n))
    a2, b2 = _extreme(13, (m, k2)), _extreme(14, (k2, n))
    c = _extreme(15, (m, n))
    want = _oracle(a1, b1) + _oracle(a2, b2)
    np.testing.assert_array_equal(matmul2_u64(a1, b1, a2, b2, method=method), want)
    np.testing.assert_array_equal(matmul2_u64(a1, b1, a2, b2, c, method=method), want + c)
    np.testing.assert_array_equal(matmul2_u64(a1, b1, None, None, c, method=method), _oracle(a1, b1) + c)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 40), k=st.integers(0, 70), n=st.integers(1, 40), seed=st.integers(0, 2 ** 32))
def test_auto_dispatch_matches_python_integers(m, k, n, seed):
    a = _words(seed, (m, k))
    b = _words(seed + 1, (k, n))
    want = _oracle(a, b)
    np.testing.assert_array_equal(matmul_u64(a, b), want)
    for method in METHODS:
        np.testing.assert_array_equal(matmul_u64(a, b, method=method), want)


def test_auto_picks_by_shape(monkeypatch):
    pick = ring_matmul._method
    monkeypatch.setattr(ring_matmul, "ifma_available", lambda: True)
    assert pick("auto", 512, 512, 512) == "ifma"
    assert pick("auto", 512, 512, 1) != "ifma"  # thin: whole 16-column tiles do not pay
    assert pick("auto", 1, 512, 512) != "ifma"
    assert pick("auto", 8, 8, 8) == "loop"
    monkeypatch.setattr(ring_matmul, "ifma_available", lambda: False)
    assert pick("auto", 512, 512, 512) == "limb"
    assert pick("auto", 8, 8, 8) == "loop"
    with pytest.raises(InputError, match="IFMA"):
        pick("ifma", 512, 512, 512)
    with pytest.raises(InputError, match="method"):
        pick("fast", 4, 4, 4)


def test_ifma_detection_follows_numba_cpu_features(monkeypatch):
    from numba.core import config

    detect = ring_matmul.ifma_available.__wrapped__
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+avx512f,-avx512ifma")
    assert detect() is False
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+avx512f,+avx512ifma,+evex512")
    assert detect() is True
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+avx512f,+avx512ifma,-evex512")
    assert detect() is False
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx2,+avx512f,+avx512ifma,+evex512")
    monkeypatch.setattr(config, "DISABLE_JIT", True)
    assert detect() is False


def test_shape_errors():
    a = np.zeros((3, 4), np.uint64)
    with pytest.raises(InputError, match="not aligned"):
        matmul_u64(a, np.zeros((5, 2), np.uint64))
    with pytest.raises(InputError, match="2-D"):
        matmul_u64(np.zeros(4, np.uint64), np.zeros((4, 2), np.uint64))
    with pytest.raises(InputError, match="second product"):
        matmul2_u64(a, np.zeros((4, 2), np.uint64), np.zeros((3, 5), np.uint64), np.zeros((4, 2), np.uint64))
    with pytest.raises(InputError, match="both"):
        matmul2_u64(a, np.zeros((4, 2), np.uint64), a, None)
    with pytest.raises(InputError, match="c must have shape"):
        matmul2_u64(a, np.zeros((4, 2), np.uint64), None, None, np.zeros((2, 3), np.uint64))


def test_ifma_kernel_writes_every_output_element():
    """The raw kernel overwrites ``out`` (no stale values survive), with and without ``c``,
    across several slabs and row blocks with ragged edges. On a CPU without IFMA the kernel
    cannot run: asking for it must then be a clear error, never a wrong product."""
    m, k, n = 261, 300, 35
    if not ifma_available():
        with pytest.raises(InputError, match="IFMA"):
            matmul_u64(_extreme(21, (m, k)), _extreme(22, (k, n)), method="ifma")
        return
    a, b = _extreme(21, (m, k)), _extreme(22, (k, n))
    c = _extreme(23, (m, n))
    none = np.zeros((0, 0), np.uint64)
    empty_a, empty_b = np.zeros((m, 0), np.uint64), np.zeros((0, n), np.uint64)
    want = _oracle(a, b)
    out = np.full((m, n), TOP)
    _kernels.matmul2_u64_ifma(a, b, empty_a, empty_b, none, out)
    np.testing.assert_array_equal(out, want)
    out = np.full((m, n), TOP)
    split = [np.ascontiguousarray(x) for x in (a[:, :100], b[:100], a[:, 100:], b[100:])]
    _kernels.matmul2_u64_ifma(*split, c, out)
    np.testing.assert_array_equal(out, want + c)
