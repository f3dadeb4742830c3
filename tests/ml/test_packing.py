"""The packed histogram word ``h + 2^T g`` of :mod:`pet.ml.booster`: its public layout keeps
every sum exact, and unpacking the shared sums gives ``G`` and ``H`` exactly (two
truncations of values whose dropped low bits are zero), against Python integers, including
``H`` at both ends of its range ``[0, 2^(T-1))``."""

import math

import numpy as np
import pytest

import pet.mpc as mpc
from pet.ml import booster
from pet.mpc import Shared


@pytest.mark.parametrize("n, logistic", [(2000, True), (32000, True), (100000, True), (10**6, True),
                                         (2000, False), (60000, False)])
def test_layout_keeps_every_sum_in_range(n, logistic):
    S = booster._scale_power(n, 0.25 if logistic else 1.0, 1.0)
    hmax, gmax = (0.25, 1.0) if logistic else (1.0, booster._G_BOUND)
    fp, T = booster._packing(n / S, hmax, gmax)
    assert 0 < fp <= booster.F
    hsum = (n / S) * hmax * 2 ** fp
    gsum = (n / S) * gmax * 2 ** fp
    assert hsum < 2 ** (T - 1)
    assert gsum * 2 ** T < 2 ** 61
    if n / S <= 32000 and logistic:
        assert fp == booster.F  # no precision given up at the tests' sizes
    # the largest fp: one more bit would not fit
    if fp < booster.F:
        T1 = math.ceil(math.log2(hsum * 2 + 1)) + 1
        assert math.log2(gsum * 2 + 1) + T1 > 61


def test_unpack_is_exact_against_python_integers():
    rng = np.random.default_rng(5)  # not-secret: test data
    n_eff, fp = 100000, 14
    fp_, T = booster._packing(n_eff, 0.25, 1.0)
    assert fp_ == fp
    G = rng.integers(-(n_eff << fp), n_eff << fp, size=3000)
    H = rng.integers(0, (n_eff << fp) // 4, size=3000)
    H[:5] = [0, 1, (n_eff << fp) // 4, 2, 0]
    G[:5] = [0, -1, (n_eff << fp) - 1, -(n_eff << fp), 1]
    H[5:8] = [(1 << (T - 1)) - 1, (1 << (T - 2)), (1 << (T - 2)) - 1]
    G[5:8] = [-(n_eff << fp), (n_eff << fp) - 1, 0]
    packed = [(int(h) + (int(g) << T)) % (1 << 64) for g, h in zip(G, H)]
    setup = booster._Setup(0, "m", [1, 1], True, 1.0, 1.0, 1.0, fp, T)

    def prog(s):
        share = np.array(packed, dtype=np.uint64) if s.party == 0 else np.zeros(len(packed), np.uint64)
        # re-randomise: add a uniform mask at party 0 and subtract it at party 1
        mask = np.random.default_rng(9).integers(0, 2**63, size=len(packed), dtype=np.uint64)  # not-secret: test data
        share = share + mask if s.party == 0 else share - mask
        out = booster._unpack(s, setup, Shared(s, share, 0))
        return s.reveal(out)

    for got in mpc.run_local(prog, timeout=120):
        np.testing.assert_array_equal(np.round(got[:, 0] * 2 ** fp), G)
        np.testing.assert_array_equal(np.round(got[:, 1] * 2 ** fp), H)
