"""Helpers for the pet.mpc tests: run a two-party program and check both see the same."""

import numpy as np

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


class DataRNG:
    """Reproducible test data from the library's own AES-CTR PRG with a fixed seed
    (test inputs are not secrets; no numpy.random anywhere in the MPC code or tests)."""

    def __init__(self, seed: int):
        from pet.mpc.prg import PRG

        self._prg = PRG(int(seed).to_bytes(16, "little"))

    def random(self, size):
        return (self._prg.words(size) >> np.uint64(11)).astype(np.float64) / 2.0 ** 53

    def uniform(self, lo, hi, size):
        return lo + (hi - lo) * self.random(size)

    def integers(self, lo, hi, size, dtype=np.int64):
        span = int(hi) - int(lo)
        vals = self._prg.words(size) % np.uint64(span)
        if dtype == np.uint64:
            return vals + np.uint64(int(lo))
        return vals.astype(np.int64) + np.int64(lo)

    def normal(self, size):
        u1, u2 = self.random(size), self.random(size)
        return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2 * np.pi * u2)

    def permutation(self, n):
        return np.argsort(self._prg.words(n), kind="stable")
