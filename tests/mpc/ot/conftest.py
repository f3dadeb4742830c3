"""Helpers for the OT-engine tests: two engines joined by an in-memory channel pair."""

import numpy as np

from pet.mpc.ot import OTEngine
from pet.transport import run_parties


def run_engines(fn, chunk=1 << 18, timeout=300):
    """``fn(engine, party)`` in both parties, each with its own fresh OTEngine."""

    def party(p):
        def f(ch):
            return fn(OTEngine(ch, p, chunk=chunk), p)
        return f

    return run_parties(party(0), party(1), timeout=timeout)


def ints(a) -> list:
    return [int(v) for v in np.asarray(a, dtype=np.uint64).reshape(-1)]


M64 = (1 << 64) - 1
