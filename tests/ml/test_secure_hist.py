"""Private-matrix products (one party's 0/1 candidate matrix x shared vectors) against
numpy, and what the receiving party sees."""

from __future__ import annotations

import numpy as np

import pet.mpc as mpc
from pet.ml.binning import Binner
from pet.ml.booster import candidate_matrix
from pet.ml.secure_hist import BinCodes


def _data(seed, n=300, f=3):
    rng = np.random.default_rng(seed)  # not-secret: test data
    X = rng.normal(size=(n, f))
    X[rng.random(X.shape) < 0.1] = np.nan
    return X, rng.normal(size=(n, 6))


def test_private_matrix_and_tree_products_equal_numpy():
    Xa, Y = _data(1)
    Xb, _ = _data(2, f=2)
    bins = [Binner(8).fit(Xa), Binner(8).fit(Xb)]
    Cs = [bins[0].indicator(Xa), bins[1].indicator(Xb)]
    codes = [BinCodes(bins[0], Xa), BinCodes(bins[1], Xb)]
    n = Y.shape[0]

    def prog(s):
        p = s.party
        pms = [candidate_matrix(s, q, codes[q] if q == p else None, Cs[q].shape[1], n) for q in (0, 1)]
        y = s.share(Y if p == 1 else None, owner=1)
        single = s.reveal(pms[0] @ y)
        tp = mpc.PreparedProducts(pms, 6)
        first = s.reveal(tp.matmul(y[:, :2]))
        rest = s.reveal(tp.matmul(y[:, 2:]))
        return single, first, rest

    single, first, rest = mpc.run_local(prog)[0]
    joint = np.vstack([Cs[0].T @ Y, Cs[1].T @ Y])
    np.testing.assert_allclose(single, Cs[0].T @ Y, atol=1e-3)
    np.testing.assert_allclose(first, joint[:, :2], atol=1e-3)
    np.testing.assert_allclose(rest, joint[:, 2:], atol=1e-3)


def test_masked_matrix_received_by_the_other_party_is_uniform():
    X, _ = _data(3, n=400)
    b = Binner(8).fit(X)
    codes = BinCodes(b, X)

    def prog(s):
        pm = candidate_matrix(s, 0, codes if s.party == 0 else None, b.n_candidates, X.shape[0])
        return None if s.party == 0 else pm._d

    D = mpc.run_local(prog)[1]
    # the 0/1 matrix is hidden: every bit position of D is balanced
    bits = (D[..., None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    assert np.all(np.abs(bits.mean(axis=(0, 1)) - 0.5) < 0.02)


def test_four_ary_argmax_matches_numpy_with_ties():
    rng = np.random.default_rng(4)  # not-secret: test data
    cases = []
    for k, n in [(1, 3), (3, 4), (5, 2), (17, 2), (70, 3)]:
        x = np.round(rng.normal(size=(k, n)), 1)
        x[rng.random(x.shape) < 0.3] = 0.5  # ties: the lowest index must win
        cases.append(x)

    def prog(s):
        out = []
        for x in cases:
            a = s.share(x if s.party == 0 else None, owner=0)
            t = mpc.tournament(a, axis=0, outputs=("one_hot", "value"), arity=4)
            oh, best = t.one_hot, t.value
            out.append((s.reveal(oh), s.reveal(best)))
        return out

    for x, (oh, best) in zip(cases, mpc.run_local(prog)[0]):
        assert (oh.sum(axis=0) == 1).all() and set(np.unique(oh)) <= {0, 1}
        np.testing.assert_array_equal(np.argmax(oh, axis=0), np.argmax(x, axis=0))
        np.testing.assert_allclose(best, x.max(axis=0), atol=1e-4)
