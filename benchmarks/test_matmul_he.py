"""Dealer-free matrix products from homomorphic encryption (pet.mpc.he) against the dealer.

Issue target: a 256 x 256 fixed-point product of two secret matrices, two parties and no
dealer, at least as fast as SPU 0.9.5's Cheetah in the same run (measured 5.5 s including
its setup on the 2-core development machine); 512 x 512 reported.

Run (on an otherwise idle machine)::

    .venv/bin/python -m pytest benchmarks/test_matmul_he.py --benchmark-only -q \\
        --benchmark-columns=min,median,rounds

Size: ``PET_MATMUL_N`` (default 128; 512 with ``PET_BENCH_FULL=1``). Two parties as threads
over an in-memory channel (``run_local``), a fresh session per run (HE keys and contexts
included: the same "setup included" as the Cheetah figure). ``extra_info``: ``n``,
``peer_bytes`` (both parties' peer-channel bytes together), ``dealer_bytes`` (what the
dealer sends, dealer path only) and ``cpu_s_party0/1`` (each party thread's own CPU time).
Cheetah's same-run figure: ``/work/peers-venv/bin/python /work/shared/peers/spu_matmul.py``
when that venv (spu==0.9.5) exists.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from conftest import pick

import pet.mpc as mpc
from pet.mpc import he

N = int(os.environ.get("PET_MATMUL_N", 0)) or pick(128, 512)


def _prog(A, B):
    def prog(s):
        c0 = time.thread_time()
        a = s.share(A if s.party == 0 else None, owner=0)
        b = s.share(B if s.party == 1 else None, owner=1)
        out = s.reveal(a @ b)
        dealer = getattr(s.source, "channel", None)
        dealer_bytes = dealer.stats.bytes_received if dealer is not None and s.source.kind == "dealer" else 0
        return out, time.thread_time() - c0, s.channel.stats.bytes_sent, dealer_bytes, \
            getattr(s.source, "matrix_backend", None)
    return prog


@pytest.mark.parametrize("source", ["dealer", "ot"])
def test_secret_matmul(benchmark, source):
    if source == "ot" and not he.HE_AVAILABLE:
        pytest.skip("pet[he] (seal-python) not installed: the dealer-free path would be the O(n^3) OT one")
    rng = np.random.default_rng(1)
    A, B = rng.uniform(-4, 4, (N, N)), rng.uniform(-4, 4, (N, N))
    res = {}

    def once():
        res["r"] = mpc.run_local(_prog(A, B), correlations=source, timeout=3600)

    benchmark.pedantic(once, rounds=1, warmup_rounds=0)
    r0, r1 = res["r"]
    np.testing.assert_allclose(r0[0], A @ B, atol=0.05 * np.sqrt(N))
    assert source == "dealer" or r0[4] == "he"
    benchmark.extra_info.update(n=N, peer_bytes=r0[2] + r1[2], dealer_bytes=r0[3] + r1[3], cpu_s_party0=r0[1],
                                cpu_s_party1=r1[1], load_average=os.getloadavg()[0])
