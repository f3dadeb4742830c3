"""``pet.mpc.sigmoid(x, method="piecewise")``: the cheaper sigmoid for slow links, against
numpy, with its rounds and bytes next to the default's (counted, not timed)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pet.mpc as mpc
from pet.errors import InputError


def _run(x, method, owner=0):
    def prog(s):
        a = s.share(x if s.party == owner else None, owner=owner)
        r0, b0 = s.rounds, s.channel.stats.bytes_sent
        y = mpc.sigmoid(a, method=method)
        rounds, sent = s.rounds - r0, s.channel.stats.bytes_sent - b0
        return s.reveal(y), rounds, sent

    return mpc.run_local(prog, timeout=300)


def _ref(x):
    return 0.5 * (1 + np.tanh(x / 2))


def test_piecewise_absolute_error_on_every_segment_and_far_out():
    edges = [-10.0, -7.0, -4.0, -2.0, 0.0, 2.0, 4.0, 7.0, 10.0]
    x = np.concatenate([np.linspace(-30, 30, 12001), edges, np.nextafter(edges, 0.0),
                        [1e4, -1e4, 1e9, -1e9, 2.0 ** 39, -(2.0 ** 39)]])
    for got, _, _ in _run(x, "piecewise"):
        err = np.abs(got - _ref(x))
        assert err.max() <= 1e-4, x[err.argmax()]
        assert np.all((got >= 0) & (got <= 1))


def test_piecewise_costs_fewer_rounds_and_about_half_the_bytes():
    x = np.linspace(-12, 12, 4096)
    (e0, e_rounds, e_bytes), _ = _run(x, "exp")
    (p0, p_rounds, p_bytes), _ = _run(x, "piecewise")
    assert (e_rounds, p_rounds) == (41, 24)
    assert p_bytes <= 0.55 * e_bytes, (p_bytes, e_bytes)
    assert p_bytes / x.size <= 345  # bytes per element sent by one party
    assert np.abs(p0 - e0).max() <= 2e-4


def test_default_method_is_unchanged_and_unknown_methods_are_refused():
    x = np.array([-3.0, 0.5, 8.0])
    (got, rounds, _), _ = _run(x, "exp")
    assert rounds == 41 and np.abs(got - _ref(x)).max() <= 1e-4

    def prog(s):
        a = s.share(x if s.party == 0 else None, owner=0)
        with pytest.raises(InputError, match="method"):
            mpc.sigmoid(a, method="taylor")
        return True

    assert mpc.run_local(prog, timeout=60) == [True, True]


@settings(max_examples=15, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-40, 40, allow_nan=False)))
def test_piecewise_property(x):
    for got, _, _ in _run(x, "piecewise", owner=1):
        assert np.all(np.abs(got - _ref(x)) <= 1e-4)
