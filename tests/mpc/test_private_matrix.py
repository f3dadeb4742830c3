"""PrivateMatrix options (public shape, owner-side local product) and PreparedProducts
(column slices of one mask, both parties' matrices in one round) against numpy."""

import numpy as np
import pytest

import pet.mpc as mpc
from pet.errors import InputError, PetTypeError

from .conftest import DataRNG, both

F = 16


def _enc(x):
    return mpc.ring.decode(mpc.ring.encode(x, F), F)


def _data(seed):
    r = DataRNG(seed)
    n = 40
    m0 = (r.integers(0, 2, (5, n))).astype(np.int64)  # party 0's 0/1 matrix
    m1 = r.integers(-3, 4, (7, n))  # party 1's integer matrix
    y = r.normal((n, 6))
    return m0, m1, y


def test_local_product_and_public_shape_give_the_dense_result_without_a_header_round():
    m0, _, y = _data(1)
    calls = []

    def local(Y):  # the owner's own way to compute M @ Y modulo 2^64
        calls.append(Y.shape)
        return mpc.ring_matmul.matmul_u64(m0.astype(np.uint64), Y)

    def prog(s):
        own = s.party == 0
        r = s.rounds
        pm = mpc.PrivateMatrix(s, m0 if own else None, 0, frac_bits=0, shape=m0.shape,
                               local_product=local if own else None)
        setup_rounds = s.rounds - r  # the owner sends, the other party receives: 0 / 1
        v = s.share(y if s.party == 1 else None, owner=1)
        dense = s.private_matrix(m0 if own else None, owner=0)
        return setup_rounds, s.reveal(pm @ v), s.reveal(dense @ v), (pm._m is None) if own else True

    r0, r1 = mpc.run_local(prog, timeout=300)
    assert (r0[0], r1[0]) == (0, 1)  # the masked matrix only: no header exchange
    _, got, want, no_copy = r0
    np.testing.assert_array_equal(r1[1], got)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, m0 @ _enc(y), atol=1e-9)
    assert calls == [(40, 6)] and no_copy


def test_prepared_products_match_numpy_use_fresh_columns_and_one_round_each():
    m0, m1, y = _data(2)
    mf = DataRNG(3).normal((4, 40))

    def prog(s):
        p0 = s.private_matrix(m0 if s.party == 0 else None, owner=0)
        p1 = s.private_matrix(m1 if s.party == 1 else None, owner=1)
        v = s.share(y if s.party == 0 else None, owner=0)
        prep = mpc.PreparedProducts([p0, p1], 6)
        out, costs = [], []
        for cols in (slice(0, 1), slice(1, 4), slice(4, 6)):
            before, r = s.channel.stats.snapshot(), s.rounds
            z = prep.matmul(v[:, cols])
            costs.append((s.rounds - r, (s.channel.stats - before).bytes_sent))
            out.append(s.reveal(z))
        try:
            prep.matmul(v[:, :1])
        except InputError as exc:
            out.append(str(exc))
        # all matrices of one owner: a one-way message per product; a fixed-point matrix
        pf = s.private_matrix(mf if s.party == 1 else None, owner=1)
        one_way = mpc.PreparedProducts([pf], 2)
        r = s.rounds
        z = one_way.matmul(v[:, :2])
        one_way_rounds = s.rounds - r
        out.append(s.reveal(z))
        return out, costs, one_way_rounds

    r0, r1 = mpc.run_local(prog, timeout=300)
    # party 0 sends its masked block one way, party 1 (the owner) receives it; then truncation
    assert (r0[2], r1[2]) == (1, 2)
    (o1, o2, o3, err, mixed), costs = r0[:2]
    np.testing.assert_array_equal(np.hstack(r1[0][:3]), np.hstack([o1, o2, o3]))
    ey = _enc(y)
    full = np.vstack([m0 @ ey, m1 @ ey])
    np.testing.assert_allclose(np.hstack([o1, o2, o3]), full, atol=1e-9)
    assert "6 prepared" in err
    for (rounds, sent), t in zip(costs, (1, 3, 2)):
        assert rounds == 1
        assert 8 * 40 * t <= sent < 8 * 40 * t + 200  # one masked (n x t) block per party
    np.testing.assert_allclose(mixed, _enc(mf) @ ey[:, :2], atol=4 * 2.0 ** -F)


def test_prepared_products_refuse_mixed_scales_and_bad_columns():
    def prog(s):
        a = s.private_matrix(np.eye(3, dtype=np.int64) if s.party == 0 else None, owner=0)
        b = s.private_matrix(np.eye(3) if s.party == 0 else None, owner=0)
        errs = []
        for args in [([a, b], 2), ([a], 0), ([], 2)]:
            try:
                mpc.PreparedProducts(*args)
            except (InputError, PetTypeError) as exc:
                errs.append(type(exc).__name__)
        return errs

    assert both(prog) == ["InputError", "InputError", "PetTypeError"]


def test_local_product_only_at_the_owner():
    def prog(s):
        mpc.PrivateMatrix(s, np.eye(2) if s.party == 0 else None, 0, frac_bits=0, shape=(2, 2),
                          local_product=lambda y: y)  # the non-owner passes one too: refused

    with pytest.raises(InputError, match="local_product"):
        mpc.run_local(prog, timeout=30)
