"""reciprocal, divide, sqrt, exp, sigmoid against numpy, at the issue's precision targets."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pet.mpc as mpc
from pet.mpc import ring

from .conftest import DataRNG, both

F = 16


def _enc(x):
    return ring.decode(ring.encode(x, F), F)


def _log_uniform(lo, hi):
    return st.floats(np.log10(lo), np.log10(hi), allow_nan=False).map(lambda e: 10.0 ** e)


def test_reciprocal_relative_error_on_the_issue_range_and_its_mirror():
    pos = np.geomspace(1e-2, 1e4, 2000)
    x = np.concatenate([pos, -pos, [1.0, 2.0, 4.0, 0.5, -0.25, 1024.0, -8192.0]])

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        r = mpc.reciprocal(a)
        return s.reveal(r), r.frac

    got, frac = both(prog)
    assert frac == 2 * F
    rel = np.abs(got * x - 1)
    assert rel.max() <= 1e-3, x[rel.argmax()]


@settings(max_examples=20, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 30), elements=_log_uniform(1e-2, 1e4)),
       hnp.arrays(np.bool_, 30))
def test_reciprocal_property(mag, neg):
    x = np.where(neg[: mag.size], -mag, mag)

    def prog(s):
        a = s.share(x if s.party == 1 else None, owner=1)
        return s.reveal(mpc.reciprocal(a))

    got = both(prog)
    assert np.all(np.abs(got * x - 1) <= 1e-3)


def test_divide_shared_and_public():
    test_rng = DataRNG(4)
    x = test_rng.uniform(-1e4, 1e4, 500)
    y = np.where(test_rng.random(500) < 0.5, -1, 1) * np.exp(test_rng.uniform(np.log(1e-2), np.log(1e4), 500))

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        b = s.share(y if s.party == 1 else None, owner=1)
        return s.reveal(a / b), s.reveal(mpc.divide(3.0, b)), s.reveal(a / 8.0)

    q, q3, q8 = both(prog)
    want = _enc(x) / _enc(y)
    ok = np.abs(want) < 2 ** 29
    assert np.all(np.abs(q - want)[ok] <= 1e-3 * np.abs(want[ok]) + 2 * 2.0 ** -F)
    np.testing.assert_allclose(q3, 3.0 / _enc(y), rtol=1e-3, atol=2 * 2.0 ** -F)
    np.testing.assert_allclose(q8, x / 8, rtol=0, atol=2 * 2.0 ** -F)


def test_sqrt():
    x = np.concatenate([np.geomspace(2.0 ** -10, 2.0 ** 29, 800), [1.0, 4.0, 2.0, 0.25, 1e6]])

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        return s.reveal(mpc.sqrt(a))

    got = both(prog)
    want = np.sqrt(_enc(x))
    assert np.all(np.abs(got - want) <= 1e-4 * want + 2 * 2.0 ** -F)


def test_exp_relative_error_on_the_issue_range():
    x = np.concatenate([np.linspace(-10, 5, 3001), [0.0, 1.0, -1.0]])

    def prog(s):
        a = s.share(x if s.party == 1 else None, owner=1)
        e = mpc.exp(a)
        return s.reveal(e), e.frac

    got, frac = both(prog)
    assert frac == 2 * F
    rel = np.abs(got / np.exp(_enc(x)) - 1)
    assert rel.max() <= 1e-3, x[rel.argmax()]


@settings(max_examples=15, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-10, 5, allow_nan=False)))
def test_exp_property(x):
    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        return s.reveal(mpc.exp(a))

    assert np.all(np.abs(both(prog) / np.exp(_enc(x)) - 1) <= 1e-3)


def test_sigmoid_absolute_error():
    x = np.concatenate([np.linspace(-20, 20, 4001), [-1e4, 1e4, -25.0, 25.0, 0.0]])

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        return s.reveal(mpc.sigmoid(a))

    got = both(prog)
    want = 0.5 * (1 + np.tanh(x / 2))
    err = np.abs(got - want)
    assert err.max() <= 1e-3, x[err.argmax()]


@settings(max_examples=15, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-30, 30, allow_nan=False)))
def test_sigmoid_property(x):
    def prog(s):
        a = s.share(x if s.party == 1 else None, owner=1)
        return s.reveal(mpc.sigmoid(a))

    assert np.all(np.abs(both(prog) - 0.5 * (1 + np.tanh(x / 2))) <= 1e-3)


def test_results_rescale_back_to_f():
    x = np.array([0.5, 4.0, -2.0])

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        r = mpc.reciprocal(a).rescale(F)
        return s.reveal(r * a), r.frac

    prod, frac = both(prog)
    assert frac == F
    np.testing.assert_allclose(prod, 1.0, atol=1e-3)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_scalar_shares_wrap_without_overflow_warnings():
    """Indexing one element gives 0-d shares (numpy scalars), whose wrap-around arithmetic
    warns unless written as ufuncs; negation, comparison, reciprocal and division of such a
    value must stay silent and correct."""
    xs = np.linspace(-40.0, -1.0, 24)  # shares are random: many values, so some have bit 63 set

    def prog(s):
        a = s.share(xs if s.party == 0 else None, owner=0)
        b = s.share(np.full(24, 2.5) if s.party == 1 else None, owner=1)
        k = s.share(np.arange(1, 25) if s.party == 0 else None, owner=0)  # integer mode
        out = []
        for i in range(len(xs)):
            ai, bi, ki = a[i:i + 1].sum(), b[i:i + 1].sum(), k[i:i + 1].sum()  # 0-d shares
            values = [-ai, ai < bi, mpc.reciprocal(ai), mpc.divide(bi, ai), mpc.divide(bi, ki)]
            out.append([float(np.reshape(s.reveal(v), -1)[0]) for v in values])
        return np.array(out, dtype=np.float64)

    out = both(prog)
    np.testing.assert_allclose(out[:, 0], -xs, atol=2.0**-16)
    np.testing.assert_array_equal(out[:, 1], 1.0)
    np.testing.assert_allclose(out[:, 2], 1 / xs, rtol=1e-3)
    np.testing.assert_allclose(out[:, 3], 2.5 / xs, rtol=1e-3)
    np.testing.assert_allclose(out[:, 4], 2.5 / np.arange(1, 25), rtol=1e-3)
