"""Helpers for the pet.mpc tests: run a two-party program and check both see the same."""

import numpy as np
import pytest

import pet.mpc as mpc


def both(fn, *args, frac_bits=16, **kwargs):
    """Run ``fn`` with run_local; the two parties' results must be identical; return one."""
    r0, r1 = mpc.run_local(fn, *args, frac_bits=frac_bits, timeout=300, **kwargs)
    _same(r0, r1)
    return r0


def _same(a, b):
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


@pytest.fixture
def rng():
    # test data only (never secrets): a seeded generator makes failures reproducible
    return np.random.default_rng(20261122)
