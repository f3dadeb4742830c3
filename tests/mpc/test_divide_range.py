"""divide's documented range (|x| < 2^30 and |x / y| < 2^30 at f = 16) against numpy, and
its checked mode: bounds that cannot guarantee it raise PrecisionError before any message."""

import numpy as np
import pytest

from pet import mpc
from pet.errors import InputError, PrecisionError

from .conftest import DataRNG


def _divide(xs, ys, **kw):
    def prog(s):
        a = s.share(xs if s.party == 0 else None, owner=0)
        b = s.share(ys if s.party == 1 else None, owner=1)
        try:
            return s.reveal(mpc.divide(a, b, **kw)), None
        except PrecisionError as exc:
            return exc, None
    return mpc.run_local(prog)


def test_quotients_inside_the_documented_range_are_accurate():
    rng = DataRNG(11)
    n = 400
    ys = np.where(rng.random(n) < 0.5, -1, 1) * np.exp(rng.uniform(np.log(2.0 ** -9), np.log(2.0 ** 16), n))
    # |x| just under both limits: |x| < 2^30 and |x / y| < 2^30
    cap = 2.0 ** 30 * 0.99
    xs = np.where(rng.random(n) < 0.5, -1, 1) * np.minimum(cap, cap * np.abs(ys)) * rng.uniform(0.5, 1.0, n)
    got = _divide(xs, ys)[0][0]
    enc = np.round(xs * 2.0 ** 16) / 2.0 ** 16, np.round(ys * 2.0 ** 16) / 2.0 ** 16  # the shared inputs
    want = enc[0] / enc[1]
    assert np.all(np.abs(got - want) <= np.abs(want) * 1e-4 + 2.0 ** -15)


def test_checked_divide_refuses_the_bounds_that_gave_wrong_quotients_at_both_parties():
    xs, ys = np.array([1.37 * 2.0 ** 32]), np.array([1.5])
    unchecked = _divide(xs, ys)[0][0]
    assert abs(unchecked[0] - xs[0] / ys[0]) > 1e-3 * xs[0] / ys[0]  # what the check prevents
    for bounds in [(2.0 ** 34, 3000.0), (1.37 * 2.0 ** 32, 1.5), (1.0, 2.0 ** -12)]:
        outs = _divide(xs, ys, check_range=True, bounds=bounds)
        assert all(isinstance(o[0], PrecisionError) for o in outs), bounds
        assert "divide" in str(outs[0][0])


def test_checked_divide_inside_the_range_equals_the_unchecked_one():
    xs, ys = np.array([1e9, -3.5e4, 7.0]), np.array([3000.0, -2.0, 2.5])
    checked = _divide(xs, ys, check_range=True, bounds=(1e9, 2.0))[0][0]
    np.testing.assert_allclose(checked, xs / ys, rtol=1e-4, atol=2.0 ** -14)


def test_checked_divide_needs_its_bounds():
    def prog(s):
        b = s.share(np.array([2.0]) if s.party == 1 else None, owner=1)
        a = s.share(np.array([1.0]) if s.party == 0 else None, owner=0)
        with pytest.raises(InputError, match="bounds"):
            mpc.divide(a, b, check_range=True)
        with pytest.raises(InputError, match="bounds"):
            mpc.divide(a, 3.0, check_range=True)
        return s.reveal(mpc.divide(a, 4.0, check_range=True, bounds=(1.0, None)))
    for out in mpc.run_local(prog):
        np.testing.assert_allclose(out, [0.25], atol=2.0 ** -15)
