"""The booster prefetches a whole tree's correlated randomness at the tree's start
(:class:`pet.mpc.prefetch.Prefetcher`); that only helps over a slow dealer link if using
the first prefetched material waits for *its* correction, not for the whole block's: the
rest keeps streaming in behind the computation (``DealerClient._drain(upto=...)``)."""

import numpy as np

import pet.mpc as mpc
from pet.mpc.prefetch import Prefetcher


def test_first_use_of_a_prefetched_block_leaves_the_rest_streaming():
    data = np.array([0.5, -1.25, 2.0, 3.5])

    def prog(session):
        x = session.share(data if session.party == 0 else None, owner=0)
        pre = Prefetcher(session)
        seen = []
        for _ in range(2):
            with pre.block("b"):
                y = mpc.mul(x, x)  # the block's first request
                pending_after_first = len(session.source._pending)
                z = mpc.mul(y, x)
                w = mpc.mul(z, x)
                seen.append((pending_after_first, session.reveal(w)))
        return seen

    for party, seen in enumerate(mpc.run_local(prog, timeout=120)):
        for _, value in seen:
            np.testing.assert_allclose(value, data ** 4, rtol=1e-3, atol=1e-3)
        if party == 1:  # the party that receives the dealer's corrections
            # replayed block: after its first product, the two later products' corrections
            # are still outstanding (old behaviour: every one of them was drained at once)
            assert seen[1][0] == 2, seen
