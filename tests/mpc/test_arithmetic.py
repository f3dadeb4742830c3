"""Multiplication, truncation and matrix products against plaintext oracles."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pet.mpc as mpc
from pet.errors import InputError
from pet.mpc import _kernels, ring, ring_matmul
from pet.mpc.ring_matmul import matmul_u64
from pet.mpc.truncation import trunc

from .conftest import DataRNG, both

F = 16
ULP = 2.0 ** -F
# the documented product range: |x * y| < 2^(62 - 2f) = 2^30
VALS = st.floats(-3e4, 3e4, allow_nan=False, allow_infinity=False)


def _enc(x):
    return ring.decode(ring.encode(x, F), F)  # the value actually shared


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_fixed_point_mul_within_one_ulp_of_the_encoded_product(data):
    n = data.draw(st.integers(1, 40))
    x = data.draw(hnp.arrays(np.float64, n, elements=VALS))
    y = data.draw(hnp.arrays(np.float64, n, elements=VALS))

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        b = s.share(y if s.party == 1 else None, owner=1)
        return s.reveal(a * b)

    got = both(prog)
    exact = _enc(x) * _enc(y)
    # truncation error is floor or floor + 1 ulp: within 2^-(f-1) as the issue requires
    assert np.all(np.abs(got - exact) <= 2 * ULP)
    assert np.all((got - np.floor(exact / ULP) * ULP) >= -1e-9)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.int64, st.integers(1, 64), elements=st.integers(-(2 ** 62) + 1, 2 ** 62 - 1)),
       st.integers(1, 62))
def test_truncation_is_floor_or_floor_plus_one_over_the_whole_range(x, shift):
    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        t = mpc.Shared(s, trunc(s, a.share, shift), 0)
        return s.reveal(t)

    got = both(prog)
    floor = x >> shift  # arithmetic shift = floor division
    diff = got - floor
    assert np.all((diff == 0) | (diff == 1)), (x, shift, got, floor)


def test_truncation_extremes():
    x = np.array([-(2 ** 62) + 1, 2 ** 62 - 1, 0, -1, 1, 2 ** 16, -(2 ** 16), 2 ** 61, -(2 ** 61) - 1])

    def prog(s):
        a = s.share(x if s.party == 1 else None, owner=1)
        return [s.reveal(mpc.Shared(s, trunc(s, a.share, k), 0)) for k in (1, 16, 32, 61)]

    for k, got in zip((1, 16, 32, 61), both(prog)):
        assert np.all(np.isin(got - (x >> k), (0, 1)))


def test_ten_million_multiplications_none_off_by_more_than_2_ulp():
    """The issue's 10^7 random fixed-point products, in chunks of 10^6."""
    chunks, n = 10, 1_000_000
    # bounded so |x*y| < 2^30 stays inside the documented product range
    test_rng = DataRNG(7)
    xs = [test_rng.uniform(-3e4, 3e4, n) for _ in range(chunks)]
    ys = [test_rng.uniform(-3e4, 3e4, n) for _ in range(chunks)]

    def prog(s):
        worst = 0.0
        for x, y in zip(xs, ys):
            a = s.share(x if s.party == 0 else None, owner=0)
            b = s.share(y if s.party == 1 else None, owner=1)
            got = s.reveal(a * b)
            exact = _enc(x) * _enc(y)
            worst = max(worst, float(np.max(np.abs(got - exact))))
        return worst

    worst = both(prog)
    assert worst <= 2 * ULP


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 7), st.data())
def test_matmul_matches_numpy(m, k, n, data):
    x = data.draw(hnp.arrays(np.float64, (m, k), elements=st.floats(-100, 100, allow_nan=False)))
    y = data.draw(hnp.arrays(np.float64, (k, n), elements=st.floats(-100, 100, allow_nan=False)))
    v = data.draw(hnp.arrays(np.float64, (k,), elements=st.floats(-100, 100, allow_nan=False)))

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        b = s.share(y if s.party == 1 else None, owner=1)
        w = s.share(v if s.party == 1 else None, owner=1)
        return [s.reveal(a @ b), s.reveal(a @ w), s.reveal(w @ b), s.reveal(a @ y), s.reveal(x @ b)]

    ab, aw, wb, ay, xb = both(prog)
    ex, ey, ev = _enc(x), _enc(y), _enc(v)
    tol = 2 * ULP + 1e-9
    np.testing.assert_allclose(ab, ex @ ey, atol=tol, rtol=0)
    np.testing.assert_allclose(aw, ex @ ev, atol=tol, rtol=0)
    np.testing.assert_allclose(wb, ev @ ey, atol=tol, rtol=0)
    # public float operands are encoded too; one truncation
    np.testing.assert_allclose(ay, ex @ ey, atol=tol, rtol=0)
    np.testing.assert_allclose(xb, ex @ ey, atol=tol, rtol=0)


def test_integer_matmul_is_exact_modulo_2_64():
    test_rng = DataRNG(3)
    x = test_rng.integers(-(2 ** 40), 2 ** 40, (13, 17))
    y = test_rng.integers(-(2 ** 20), 2 ** 20, (17, 5))

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        b = s.share(y if s.party == 1 else None, owner=1)
        return s.reveal(a @ b)

    got = both(prog)
    want = (x.astype(object) @ y.astype(object))
    want = np.array([[((int(v) + 2 ** 63) % 2 ** 64) - 2 ** 63 for v in row] for row in want], dtype=np.int64)
    np.testing.assert_array_equal(got, want)


def test_matmul_kernel_against_python_integers():
    test_rng = DataRNG(5)
    a = test_rng.integers(0, 2 ** 63, (9, 70), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = test_rng.integers(0, 2 ** 63, (70, 11), dtype=np.uint64)
    out = matmul_u64(a, b)
    want = (a.astype(object) @ b.astype(object)) % (2 ** 64)
    np.testing.assert_array_equal(out, want.astype(np.uint64))
    # the raw kernel on an empty inner dimension gives zeros
    z = np.empty((2, 3), np.uint64)
    _kernels.matmul_u64(np.zeros((2, 0), np.uint64), np.zeros((0, 3), np.uint64), z)
    assert not z.any()


@pytest.mark.parametrize("shape", [(40, 1100, 120), (130, 512, 70), (64, 513, 300)])
def test_blas_limb_matmul_against_python_integers(shape):
    """Products above the limb threshold (several 512-term slabs, and a remainder slab),
    with values up to 2^64 - 1, equal Python's exact integer products modulo 2^64."""
    m, k, n = shape
    test_rng = DataRNG(11)
    a = test_rng.integers(0, 2 ** 63, (m, k), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = test_rng.integers(0, 2 ** 63, (k, n), dtype=np.uint64) * np.uint64(2)
    a[0, :] = np.uint64(2 ** 64 - 1)
    b[:, 0] = np.uint64(2 ** 64 - 1)
    assert m * k * n >= ring_matmul._LIMB_MIN_WORK
    out = matmul_u64(a, b)
    want = (a.astype(object) @ b.astype(object)) % (2 ** 64)
    np.testing.assert_array_equal(out, want.astype(np.uint64))
    small = np.empty((m, n), np.uint64)
    _kernels.matmul_u64(a, b, small)
    np.testing.assert_array_equal(out, small)


def test_public_multipliers():
    x = np.array([1.5, -2.25, 1000.0])

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        return [s.reveal(a * 3), s.reveal(a * 0.5), s.reveal(a * np.array([2.0, -1.0, 0.001])), s.reveal(2.5 * a),
                s.reveal(a / 4.0)]

    out = both(prog)
    np.testing.assert_array_equal(out[0], x * 3)
    np.testing.assert_allclose(out[1], x * 0.5, atol=2 * ULP)
    np.testing.assert_allclose(out[2], x * np.array([2.0, -1.0, 0.001]), atol=2 * ULP + 1000 * ULP / 2)
    np.testing.assert_allclose(out[3], 2.5 * x, atol=2 * ULP)
    np.testing.assert_allclose(out[4], x / 4, atol=2 * ULP)


def test_small_public_factors_keep_relative_precision():
    """Dividing by a public 1000 (or multiplying by 0.001) must not carry the 0.7% error of
    encoding 0.001 with 16 fractional bits (66 / 2^16)."""
    x = np.array([1e6, -2.5e5, 12345.678, 1.0, 0.0])

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        return [s.reveal(a / 1000.0), s.reveal(a * 0.001), s.reveal(a * np.array([1e-3, 2e-4, 5e-4, 3e-3, 1e-3])),
                s.reveal(a / np.array([1000.0, -700.0, 300.0, 1e4, 500.0]))]

    out = both(prog)
    np.testing.assert_allclose(out[0], x / 1000.0, rtol=2.0**-15, atol=2 * ULP)  # f significant bits
    np.testing.assert_allclose(out[1], x * 0.001, rtol=2.0**-15, atol=2 * ULP)
    # an array takes its extra bits from its largest element: 2e-4 keeps ~12 significant bits here
    np.testing.assert_allclose(out[2], x * np.array([1e-3, 2e-4, 5e-4, 3e-3, 1e-3]), rtol=2.0**-12, atol=2 * ULP)
    np.testing.assert_allclose(out[3], x / np.array([1000.0, -700.0, 300.0, 1e4, 500.0]), rtol=2.0**-11, atol=2 * ULP)


def test_matmul_shape_errors():
    def prog(s):
        a = s.share(np.ones((2, 3)) if s.party == 0 else None, owner=0)
        a @ a

    with pytest.raises(InputError, match="not aligned"):
        mpc.run_local(prog, timeout=30)


def test_private_matrix_reused_for_many_vectors():
    test_rng = DataRNG(11)
    onehot = (test_rng.integers(0, 4, 50)[None, :] == np.arange(4)[:, None]).astype(np.int64)  # (bins, n)
    mf = test_rng.normal((3, 50))
    vecs = [test_rng.normal(50) for _ in range(4)]

    def prog(s):
        pm = s.private_matrix(onehot if s.party == 1 else None, owner=1)
        pf = s.private_matrix(mf if s.party == 0 else None, owner=0)
        out = []
        for v in vecs:
            sv = s.share(v if s.party == 0 else None, owner=0)
            out += [s.reveal(pm @ sv), s.reveal(pf @ sv)]
        V = s.share(np.stack(vecs, 1) if s.party == 0 else None, owner=0)
        out.append(s.reveal(pm.matmul(V)))
        return out

    out = both(prog)
    for i, v in enumerate(vecs):
        np.testing.assert_allclose(out[2 * i], onehot @ _enc(v), atol=1e-9)
        np.testing.assert_allclose(out[2 * i + 1], _enc(mf) @ _enc(v), atol=2 * ULP + 1e-9)
    np.testing.assert_allclose(out[-1], onehot @ _enc(np.stack(vecs, 1)), atol=1e-9)
