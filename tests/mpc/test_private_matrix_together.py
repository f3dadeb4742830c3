"""pet.mpc.private_matrix.setup_together: both parties' private matrices set up in ONE
exchange (each party's masked matrix travels while it receives the other's), products
against numpy."""

import numpy as np
import pytest

import pet.mpc as mpc
from pet.errors import InputError
from pet.mpc.private_matrix import PreparedProducts, setup_together

from .conftest import DataRNG


def test_both_owners_matrices_in_one_exchange_give_numpy_products():
    r = DataRNG(5)
    n = 30
    m0 = r.integers(0, 2, (4, n))
    m1 = r.integers(-3, 4, (6, n))
    y = r.integers(-1000, 1000, (n, 3))

    def prog(s):
        mine = s.party
        pms = [mpc.PrivateMatrix(s, (m0, m1)[p] if p == mine else None, p, frac_bits=0,
                                 shape=(m0, m1)[p].shape, defer_setup=True) for p in (0, 1)]
        r0, b0 = s.rounds, s.channel.stats.bytes_sent
        setup_together(pms)
        rounds, sent = s.rounds - r0, s.channel.stats.bytes_sent - b0
        v = s.share(y if s.party == 1 else None, owner=1)
        single = [s.reveal(pm @ v) for pm in pms]
        both = s.reveal(PreparedProducts(pms, 3).matmul(v))
        with pytest.raises(InputError):
            setup_together(pms)  # already set up
        return rounds, sent, single, both

    for p, (rounds, sent, single, both) in enumerate(mpc.run_local(prog, timeout=120)):
        assert rounds == 1
        own = (m0, m1)[p].size * 8
        assert own <= sent <= own + 2000  # its own masked matrix only, in the one message
        np.testing.assert_array_equal(np.asarray(single[0]), m0 @ y)
        np.testing.assert_array_equal(np.asarray(single[1]), m1 @ y)
        np.testing.assert_array_equal(np.asarray(both), np.concatenate([m0 @ y, m1 @ y]))


def test_defer_setup_needs_the_public_shape():
    def prog(s):
        with pytest.raises(InputError):
            mpc.PrivateMatrix(s, np.eye(2) if s.party == 0 else None, 0, frac_bits=0, defer_setup=True)
        return True

    assert all(mpc.run_local(prog, timeout=60))
