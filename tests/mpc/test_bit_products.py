"""pet.mpc.bit_products (XOR-shared bits times shared values in one round, from the b2amul
correlation) against Python integers, with the dealer and dealer-free (OT) sources; and
the b2amul spec's wire form and correlation as the dealer computes it."""

import numpy as np
import pytest

import pet.mpc as mpc
from pet.errors import InputError, ProtocolError
from pet.mpc.bit_products import bits_dot, bits_times
from pet.mpc.correlated import B2AMul, spec_from_wire
from pet.mpc.prg import PRG

from .conftest import DataRNG

BITS = (0, 2, 5, 63)
M64 = 1 << 64


def _data(n=300):
    r = DataRNG(11)
    v = r.integers(0, 1 << 62, n, dtype=np.uint64) * np.uint64(4) + r.integers(0, 4, n, dtype=np.uint64)
    x0 = r.integers(0, 1 << 62, n, dtype=np.uint64)  # party 0's XOR share of v
    y = r.integers(-(1 << 40), 1 << 40, n)
    w = r.integers(-(1 << 40), 1 << 40, len(BITS))
    return v, x0, y, w


@pytest.mark.parametrize("correlations", ["dealer", "ot"])
def test_bits_times_and_dot_match_python_integers_in_one_round_each(correlations):
    v, x0, y, w = _data()

    def prog(s):
        ys = s.share(y if s.party == 0 else None, owner=0)
        ws = s.share(w if s.party == 1 else None, owner=1)
        mine = x0 if s.party == 0 else x0 ^ v
        r0 = s.rounds
        a = bits_times(s, mine, BITS, ys)
        r1 = s.rounds
        b = bits_dot(s, mine, BITS, ws)
        return r1 - r0, s.rounds - r1, a.shape, b.shape, s.reveal(a), s.reveal(b)

    for ra, rb, sa, sb, a, b in mpc.run_local(prog, timeout=300, correlations=correlations):
        assert (ra, rb) == (1, 1)
        assert sa == (v.size, len(BITS)) and sb == (v.size,)
        for i in range(v.size):
            bits = [(int(v[i]) >> j) & 1 for j in BITS]
            assert [int(t) % M64 for t in np.asarray(a)[i]] == [(bt * int(y[i])) % M64 for bt in bits]
            assert int(np.asarray(b)[i]) % M64 == sum(bt * int(wj) for bt, wj in zip(bits, w)) % M64


def test_b2amul_correlation_and_wire_form():
    for per_bit in (0, 1):
        spec = B2AMul((7,), (1, 3, 63), per_bit)
        assert spec_from_wire(spec.to_wire()) == spec
        m0, m1 = spec.draw(PRG(b"\x01" * 16), 0), spec.draw(PRG(b"\x02" * 16), 1)
        assert spec.receiver() == 0  # balances the dealer's links (party 1 receives most kinds')
        m0.update(spec.corrections(m0, m1, {}))
        for i in range(7):
            rho = int(m0["rho"][i]) ^ int(m1["rho"][i])
            for j, pos in enumerate(spec.bits):
                bit = (rho >> pos) & 1
                mult = (int(m0["b"][j if per_bit else i]) + int(m1["b"][j if per_bit else i])) % M64
                assert (int(m0["ra"][i, j]) + int(m1["ra"][i, j])) % M64 == bit
                assert (int(m0["rb"][i, j]) + int(m1["rb"][i, j])) % M64 == bit * mult % M64
    with pytest.raises(ProtocolError):
        spec_from_wire(["b2amul", [3], [0], 2])
    with pytest.raises(InputError):
        B2AMul((3,), (), 0)


def test_bit_products_refuse_wrong_operands():
    def prog(s):
        ys = s.share(np.arange(3) if s.party == 0 else None, owner=0)
        with pytest.raises(InputError):
            bits_times(s, np.zeros(4, dtype=np.uint64), (0,), ys)  # 4 words, 3 values
        with pytest.raises(InputError):
            bits_dot(s, np.zeros(3, dtype=np.uint64), (0, 1), ys)  # 2 bits, 3 weights
        with pytest.raises(InputError):
            bits_times(s, np.zeros(3, dtype=np.int64), (0,), ys)
        return True

    assert all(mpc.run_local(prog, timeout=60))
