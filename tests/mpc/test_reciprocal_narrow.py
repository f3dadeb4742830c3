"""``reciprocal(x, positive=True, upper=2^16)`` finds the leading one on 32-bit lanes (two
elements per word): against numpy over the whole domain ``[2^-10, 2^16)``, at and next to
every power of two, at the domain's edges, below it (0), with both correlation sources,
and with fewer rounds and bytes than the 64-bit decomposition; lane arithmetic (A2B and
the prefix OR) against Python integers."""

import numpy as np
import pytest

import pet.mpc as mpc
from pet.errors import InputError
from pet.mpc import boolean

from .conftest import DataRNG, both

F = 16


def _inputs() -> np.ndarray:
    rng = DataRNG(21)
    grid = np.exp(rng.uniform(np.log(2.0 ** -10), np.log(2.0 ** 16 * 0.999), 400))
    powers = 2.0 ** np.arange(-10, 16)
    ulp = 2.0 ** -F
    near = np.concatenate([powers, powers + ulp, powers + 31 * ulp, powers + 32 * ulp, powers - ulp])
    near = near[(near >= 2.0 ** -10) & (near < 2.0 ** 16)]
    return np.concatenate([grid, near, [2.0 ** -10, 2.0 ** 16 - ulp, 1.0, 0.5, 3.0]])


@pytest.mark.parametrize("correlations", ["dealer", "ot"])
def test_positive_reciprocal_on_lanes_matches_numpy(correlations):
    xs = _inputs()
    xs = xs[: 301 if correlations == "ot" else xs.size]  # an odd count: a half-used last word

    def prog(s):
        x = s.share(xs if s.party == 0 else None, owner=0)
        return s.reveal(mpc.reciprocal(x, positive=True, upper=2.0 ** 16))

    got = both(prog, correlations=correlations)
    enc = np.round(xs * 2.0 ** F) / 2.0 ** F  # the encoded input the MPC sees
    np.testing.assert_allclose(got, 1.0 / enc, rtol=1e-4)


def test_positive_reciprocal_below_the_domain_is_zero():
    xs = np.array([0.0, 2.0 ** -12, 2.0 ** -11 - 2.0 ** -16])

    def prog(s):
        x = s.share(xs if s.party == 1 else None, owner=1)
        return s.reveal(mpc.reciprocal(x, positive=True, upper=2.0 ** 16))

    np.testing.assert_array_equal(both(prog), np.zeros(xs.size))


def test_lanes_cost_fewer_rounds_and_bytes_than_the_full_width():
    xs = np.geomspace(1e-2, 1e4, 1000)

    def prog(s):
        x = s.share(xs if s.party == 0 else None, owner=0)
        r0, b0 = s.rounds, s.channel.stats.bytes_sent
        mpc.reciprocal(x, positive=True, upper=2.0 ** 16)
        r1, b1 = s.rounds, s.channel.stats.bytes_sent
        mpc.reciprocal(x)
        r2, b2 = s.rounds, s.channel.stats.bytes_sent
        return r1 - r0, r2 - r1, b1 - b0, b2 - b1

    (r_fast, r_signed, b_fast, b_signed), _ = mpc.run_local(prog, timeout=120)
    assert (r_fast, r_signed) == (24, 28)
    assert b_fast < 0.6 * b_signed


@pytest.mark.parametrize("lane_bits", [8, 16, 32, 64])
def test_a2b_on_lanes_is_the_sum_mod_the_lane(lane_bits):
    rng = DataRNG(lane_bits)
    n = 77
    vals = rng.random(n)  # only to draw words
    x = (np.frombuffer(np.round(vals * 2 ** 53).astype(np.uint64).tobytes(), dtype=np.uint64) * np.uint64(2654435761))

    def prog(s):
        # raw additive shares of x: party 0 holds x - r, party 1 holds r (r from the test RNG)
        r = (DataRNG(99).random(n) * 2 ** 53).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        mine = x - r if s.party == 0 else r
        w = boolean.a2b(s, boolean.pack_lanes(mine, lane_bits), lane_bits=lane_bits)
        other = s.exchange("open", w)
        return w ^ np.asarray(other, dtype=np.uint64)

    got = both(prog)
    P = 64 // lane_bits
    words = -(-n // P)
    mask = (1 << lane_bits) - 1
    want = [0] * words
    for i in range(n):
        lane, j = divmod(i, words)
        want[j] |= (int(x[i]) & mask) << (lane * lane_bits)
    assert [int(v) for v in got] == want


def test_upper_needs_positive_and_a_positive_bound():
    def prog(s):
        x = s.share(np.ones(3) if s.party == 0 else None, owner=0)
        errors = []
        for kwargs in ({"upper": 2.0}, {"positive": True, "upper": 0.0}, {"positive": True, "upper": float("inf")}):
            try:
                mpc.reciprocal(x, **kwargs)
            except InputError as e:
                errors.append(str(e))
        return errors

    errors = both(prog)
    assert len(errors) == 3 and all("upper" in e for e in errors)


def test_bound_above_32_bits_keeps_the_full_width():
    xs = np.array([2.0 ** -10, 1.0, 2.0 ** 16, 2.0 ** 17 * 0.99])

    def prog(s):
        x = s.share(xs if s.party == 0 else None, owner=0)
        r0 = s.rounds
        out = mpc.reciprocal(x, positive=True, upper=2.0 ** 17)
        rounds = s.rounds - r0
        return s.reveal(out), rounds

    got, rounds = both(prog)
    assert rounds == 26
    enc = np.round(xs * 2.0 ** F) / 2.0 ** F
    np.testing.assert_allclose(got, 1.0 / enc, rtol=1e-4)
