"""Comparisons, selection and argmax against numpy."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pet.mpc as mpc
from pet.errors import InputError, PetTypeError
from pet.mpc import boolean, ring

from .conftest import DataRNG, both

F = 16
ULP = 2.0 ** -F


def _enc(x):
    return ring.decode(ring.encode(x, F), F)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.int64, st.integers(1, 200), elements=st.integers(-(2 ** 63), 2 ** 63 - 1)))
def test_msb_is_exact_for_every_ring_element(x):
    def prog(s):
        # share raw ring elements (the full 64-bit range, beyond the encoding's safe range)
        mask = s.private_words(x.shape) if s.party == 0 else None
        if s.party == 0:
            s.send_to_peer("raw", x.view(np.uint64) - mask)
            share = mask
        else:
            share = s.recv_from_peer("raw")
        return s.reveal(mpc.Shared(s, boolean.msb(s, share), 0))

    np.testing.assert_array_equal(both(prog), (x < 0).astype(np.int64))


@settings(max_examples=20, deadline=None)
@given(hnp.arrays(np.int64, st.integers(1, 50), elements=st.integers(-(2 ** 63), 2 ** 63 - 1)))
def test_a2b_gives_the_bits(x):
    def prog(s):
        mask = s.private_words(x.shape)
        if s.party == 0:
            s.send_to_peer("raw", x.view(np.uint64) - mask)
            share = mask
        else:
            share = s.recv_from_peer("raw")
        w = boolean.a2b(s, share)
        return w ^ s.exchange("open", w)

    np.testing.assert_array_equal(both(prog), x.view(np.uint64))


VALS = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_comparisons_match_numpy(data):
    n = data.draw(st.integers(1, 60))
    x = data.draw(hnp.arrays(np.float64, n, elements=VALS))
    # include exact ties and differences of one ulp
    y = x.copy()
    kind = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 3)))
    other = data.draw(hnp.arrays(np.float64, n, elements=VALS))
    y = np.where(kind == 0, other, np.where(kind == 1, x, np.where(kind == 2, x + ULP, x - ULP)))
    ex, ey = _enc(x), _enc(y)

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        b = s.share(y if s.party == 1 else None, owner=1)
        R = s.reveal
        return [R(a < b), R(a <= b), R(a > b), R(a >= b), R(a == b), R(a != b), R(a < 0.5), R(3 > b)]

    out = both(prog)
    want = [ex < ey, ex <= ey, ex > ey, ex >= ey, ex == ey, ex != ey, ex < 0.5, 3 > ey]
    for got, w in zip(out, want):
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, w.astype(np.int64))


def test_comparison_extremes_of_the_safe_range():
    big = 2.0 ** 45
    x = np.array([big, -big, big, -big, 0.0, ULP])
    y = np.array([-big, big, big - ULP, -big + ULP, -ULP, 0.0])

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        b = s.share(y if s.party == 1 else None, owner=1)
        return s.reveal(a < b), s.reveal(a == b)

    lt, eq = both(prog)
    np.testing.assert_array_equal(lt, (x < y).astype(int))
    np.testing.assert_array_equal(eq, (x == y).astype(int))


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_where_maximum_minimum_relu(data):
    n = data.draw(st.integers(1, 40))
    x = _enc(data.draw(hnp.arrays(np.float64, n, elements=VALS)))
    y = _enc(data.draw(hnp.arrays(np.float64, n, elements=VALS)))

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        b = s.share(y if s.party == 1 else None, owner=1)
        R = s.reveal
        return [R(mpc.where(a < b, a, b)), R(mpc.maximum(a, b)), R(mpc.minimum(a, b)), R(mpc.relu(a)),
                R(mpc.where(a > 0, 1.0, -2.0)), R(mpc.where(a > 0, a, 7))]

    out = both(prog)
    want = [np.where(x < y, x, y), np.maximum(x, y), np.minimum(x, y), np.maximum(x, 0), np.where(x > 0, 1.0, -2.0),
            np.where(x > 0, x, 7)]
    for got, w in zip(out, want):
        np.testing.assert_array_equal(got, w)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_argmax_and_max_match_numpy(data):
    rows = data.draw(st.integers(1, 4))
    cols = data.draw(st.integers(1, 13))
    # values on a grid of 2^-(f-3) so the top two differ by at least that (or tie exactly)
    ints = data.draw(hnp.arrays(np.int64, (rows, cols), elements=st.integers(-50, 50)))
    x = ints * 2.0 ** -(F - 3)

    def prog(s):
        a = s.share(x if s.party == 1 else None, owner=1)
        R = s.reveal
        return [R(mpc.argmax(a, axis=1)), R(mpc.argmax(a, axis=0)), R(mpc.argmax(a, axis=1, one_hot=True)),
                R(mpc.max(a, axis=1)), R(mpc.max(a, axis=0)), R(mpc.argmin(a, axis=1)), R(mpc.min(a, axis=1))]

    out = both(prog)
    onehot = np.zeros_like(ints)
    onehot[np.arange(rows), x.argmax(1)] = 1
    want = [x.argmax(1), x.argmax(0), onehot, x.max(1), x.max(0), x.argmin(1), x.min(1)]
    for got, w in zip(out, want):
        np.testing.assert_array_equal(got, w)


def test_argmax_of_a_long_vector():
    test_rng = DataRNG(2)
    x = test_rng.permutation(1000) * 1.0

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        return s.reveal(mpc.argmax(a)), s.reveal(mpc.max(a))

    idx, mx = both(prog)
    assert idx == x.argmax() and mx == x.max()


def test_compare_errors():
    def prog(s):
        a = s.share(np.ones(2) if s.party == 0 else None, owner=0)
        errs = []
        for call in (lambda: mpc.where(a, a, a), lambda: mpc.where(np.ones(2), a, a), lambda: bool(a < a)):
            try:
                call()
            except (InputError, PetTypeError) as exc:
                errs.append(type(exc).__name__)
        return errs

    assert both(prog) == ["InputError", "PetTypeError", "PetTypeError"]
