"""Record-and-replay prefetch: the same results, and later runs of a block are served from
material requested at the block's start (no request inside the block)."""

import numpy as np

import pet.mpc as mpc
from pet.mpc.prefetch import Prefetcher


def _block(session, x):
    y = mpc.mul(x, x)
    z = mpc.reciprocal(y + 1.0)
    return session.reveal(mpc.tournament(z, outputs=("value", "one_hot"), arity=4).value)


def test_replayed_blocks_are_prefetched_and_exact():
    data = np.array([0.5, -1.25, 2.0, 3.5, -0.75])

    def prog(session):
        x = session.share(data if session.party == 0 else None, owner=0)
        pre = Prefetcher(session)
        requests = []
        original = session.source._request

        def counting(specs):
            requests.append(len(specs))
            return original(specs)

        session.source._request = counting  # this party's client only
        out = []
        for _ in range(3):
            before = len(requests)
            with pre.block("b"):
                inside = len(requests)
                out.append(_block(session, x))
                out.append((inside - before, len(requests) - inside))
        del session.source._request
        return out

    r0, r1 = mpc.run_local(prog, timeout=300)
    expect = np.max(1.0 / (data ** 2 + 1.0))
    for r in (r0, r1):
        for v in r[0::2]:
            np.testing.assert_allclose(v, expect, atol=1e-3)
        (pre1, in1), (pre2, in2), (pre3, in3) = r[1::2]
        # first run: every request inside the block; later runs: all of them at its start
        assert pre1 == 0 and in1 > 0
        assert (pre2, in2) == (in1, 0) and (pre3, in3) == (in1, 0)


def test_sources_without_prefetch_are_used_as_is():
    def prog(session):
        session.source, saved = None, session.source
        try:
            with Prefetcher(session).block("k"):
                return session.reveal(session.share(np.arange(3.0) if session.party == 0 else None, owner=0))
        finally:
            session.source = saved

    for r in mpc.run_local(prog, timeout=60):
        np.testing.assert_allclose(r, np.arange(3.0))
