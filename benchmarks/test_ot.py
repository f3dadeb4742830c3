"""pet.mpc.ot benchmarks: base-OT setup, random/correlated OT rates, Beaver and AND triples.

Run (on an otherwise idle machine)::

    .venv/bin/python -m pytest benchmarks/test_ot.py --benchmark-only -q \
        --benchmark-columns=min,median,rounds --benchmark-sort=name

Sizes are small by default; ``PET_BENCH_FULL=1`` uses the issue's 10^6. Two parties run as
threads over an in-memory channel pair; every timing includes a fresh session (base OTs).
``extra_info`` records ``elements``, ``bytes_per_element`` (both directions together) and
``cpu_s_party0``/``cpu_s_party1`` (each party thread's own CPU time, which a loaded
machine does not inflate the way it inflates wall time), ``messages`` (messages both
parties sent: the rounds of the OT setup and extension are about half of it) and ``link``.

With ``--link`` (``conftest.py``; ``--link wan``: loopback, 1 Gbit/s and 100 Mbit/s at
20 ms) every row runs once per link, the in-memory channel shaped at both ends
(``run_parties(link=...)``).
"""

from __future__ import annotations

import time

import pytest
from conftest import link_label, pick

from pet.mpc.ot import OTEngine, RandomOT
from pet.mpc.ot import correlations as corr
from pet.transport import run_parties

N = pick(100_000, 1_000_000)


def _run(work, link=None):
    def party(p):
        def f(ch):
            c0 = time.thread_time()
            eng = OTEngine(ch, p)
            work(eng, p)
            return time.thread_time() - c0, ch.stats.bytes_sent, ch.stats.messages_sent
        return f

    return run_parties(party(0), party(1), timeout=3600, link=link)


def _bench(benchmark, work, elements, link=None):
    out = {}

    def once():
        out["r"] = _run(work, link)

    benchmark.pedantic(once, rounds=3, warmup_rounds=1)
    (c0, b0, m0), (c1, b1, m1) = out["r"]
    benchmark.extra_info.update(elements=elements, bytes_per_element=(b0 + b1) / max(1, elements),
                                cpu_s_party0=c0, cpu_s_party1=c1, messages=m0 + m1, link=link_label(link))


def test_base_ot_setup(benchmark, link):
    _bench(benchmark, lambda eng, p: None, 1, link)


@pytest.mark.parametrize("kind", ["rot", "cot"])
def test_ot_rate_per_role(benchmark, kind, link):
    """``N`` OTs in each direction (each party is sender of N and receiver of N)."""
    n = -(-N // 64) * 64
    if kind == "rot":
        _bench(benchmark, lambda eng, p: eng.extend([RandomOT(n, 0), RandomOT(n, 1)]), n, link)
    else:  # one 64-bit correlated OT per element each way
        _bench(benchmark, lambda eng, p: corr.generate(eng, [("b2a", (n,), (0,))]), n, link)


@pytest.mark.parametrize("kind", ["triple", "and_bits", "and_words", "trunc", "cmpmask"])
def test_correlations(benchmark, kind, link):
    spec = {"triple": ("triple", (N,)), "and_bits": ("and", (N // 64,), 1), "and_words": ("and", (N,), 1),
            "trunc": ("trunc", (N,), 16), "cmpmask": ("cmpmask", (N,))}[kind]
    _bench(benchmark, lambda eng, p: corr.generate(eng, [spec]), N, link)
