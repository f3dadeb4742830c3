"""The gains' reciprocal of ``H + lambda`` (never negative) skips the sign handling:
``pet.mpc.reciprocal(x, positive=True)`` takes 2 rounds less and gives the same values as
the signed form on ``x >= 0``, against numpy."""

import numpy as np

import pet.mpc as mpc


def test_positive_reciprocal_matches_numpy_in_two_rounds_less():
    xs = np.concatenate([np.geomspace(1e-2, 2.0 ** 17 * 0.999, 300), [0.5, 1.0, 65536.0]])

    def prog(s):
        x = s.share(xs if s.party == 0 else None, owner=0)
        r0 = s.rounds
        fast = mpc.reciprocal(x, positive=True)
        r1 = s.rounds
        signed = mpc.reciprocal(x)
        r2 = s.rounds
        return s.reveal(fast), s.reveal(signed), r1 - r0, r2 - r1

    for fast, signed, rounds_fast, rounds_signed in mpc.run_local(prog, timeout=120):
        assert (rounds_fast, rounds_signed) == (26, 28)
        np.testing.assert_allclose(fast, 1.0 / xs, rtol=1e-3)
        np.testing.assert_allclose(fast, signed, rtol=1e-4, atol=2.0 ** -30)
