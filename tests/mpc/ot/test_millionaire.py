"""Dealer-free comparison leaves (random 1-out-of-16 OT on 4-bit digits) and the MSB built
on them, against Python integers."""

import numpy as np
import pytest

import pet.mpc as mpc
from pet.errors import InputError, ProtocolError
from pet.mpc import boolean
from pet.mpc.correlated import spec_from_wire
from pet.mpc.ot.millionaire import CmpLeaves, LeafOT, halves
from pet.mpc.ot.source import OTSource

from .conftest import ints, run_engines

rng = np.random.default_rng(7)
M63 = (1 << 63) - 1


def _msg(word: int, v: int) -> int:
    return (word >> (2 * v)) & 3


@pytest.mark.parametrize("n,chunk", [(1, 1 << 18), (37, 64), (1000, 1 << 10)])
def test_leaf_ots_are_one_out_of_sixteen(n, chunk):
    """For every element and digit the receiver's message is the sender's message at its
    choice nibble; the sender's 16 messages of a digit are not all equal (chunk borders
    anywhere, both directions in one extension)."""
    def fn(eng, p):
        return eng.extend([LeafOT(n, 0), LeafOT(n + 3, 1)])

    r0, r1 = run_engines(fn, chunk=chunk)
    for sent, got in ((r0[0], r1[0]), (r1[1], r0[1])):
        table, choice, mc = sent["table"], ints(got["choice"]), [int(v) for v in got["mc"]]
        assert table.dtype == np.uint32 and table.shape == (len(choice), 16)
        distinct = 0
        for e in range(len(choice)):
            for j in range(16):
                c = (choice[e] >> (4 * j)) & 15
                assert _msg(int(table[e, j]), c) == (mc[e] >> (2 * j)) & 3
                distinct += len({_msg(int(table[e, j]), v) for v in range(16)}) > 1
        assert distinct >= 15 * len(choice)  # 16 random 2-bit messages are all equal w.p. 2^-30


def _msb_ot(x):
    s0 = rng.integers(0, 1 << 63, x.size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)

    def prog(s):
        assert isinstance(s.source, OTSource)
        return boolean.msb(s, s0 if s.party == 0 else x - s0)

    r0, r1 = mpc.run_local(prog, correlations="ot", timeout=120)
    return ints(r0 + r1)


@pytest.mark.parametrize("n", [1, 5, 64, 129, 3000])
def test_msb_with_leaves_matches_python_ints(n):
    edges = [0, 1, M63, 1 << 63, (1 << 64) - 1, (1 << 62), 15, 16, 0xF0F0F0F0F0F0F0F0, M63 - 15]
    x = rng.integers(0, 1 << 64, n, dtype=np.uint64)
    x[:min(n, len(edges))] = np.array(edges[:n], dtype=np.uint64)
    assert _msb_ot(x) == [v >> 63 for v in ints(x)]


def test_msb_with_leaves_on_shares_with_equal_digits():
    """Operands that agree on every digit but the last, on none, or on all (the carry
    cases of the digit tree): shares chosen so ``A`` and ``B`` share long prefixes."""
    cases = []
    for a in (0, 1, M63, 0x123456789ABCDEF, M63 - 1):
        for delta in (-1, 0, 1, 16, -16, 1 << 60):
            b = (a + delta) % (1 << 63)
            x0 = (~a) & M63  # party 0's A = ~x0 mod 2^63
            cases.append((x0 | (rng.integers(0, 2) << 63), b | (int(rng.integers(0, 2)) << 63)))
    x0 = np.array([c[0] for c in cases], dtype=np.uint64)
    x1 = np.array([c[1] for c in cases], dtype=np.uint64)

    def prog(s):
        return boolean.msb(s, x0 if s.party == 0 else x1)

    r0, r1 = mpc.run_local(prog, correlations="ot", timeout=120)
    assert ints(r0 + r1) == [((a + b) % (1 << 64)) >> 63 for a, b in zip(ints(x0), ints(x1))]


def test_comparisons_with_leaves_match_numpy():
    x = np.concatenate([rng.uniform(-1e6, 1e6, 500), [0.0, -0.0, 1.0, -1.0, 2.0**-16, -(2.0**-16), 1e9, -1e9]])
    y = np.concatenate([rng.uniform(-1e6, 1e6, 500), [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1e9, 1e9]])

    def prog(s):
        a, b = s.share(x if s.party == 0 else None, owner=0), s.share(y if s.party == 1 else None, owner=1)
        return [s.reveal(op) for op in (a < b, a <= b, a > b, a >= b, a == b)]

    r0, _ = mpc.run_local(prog, correlations="ot", timeout=120)
    for got, exp in zip(r0, (x < y, x <= y, x > y, x >= y, x == y)):
        np.testing.assert_array_equal(got, exp.astype(np.int64))


def test_msb_rounds_and_online_bytes_with_leaves():
    """7 rounds (2 leaves, 4 tree levels, 1 B2A); with prepared material, the online bytes
    are those of the docstring (8 per received element, 64 per sent one, the tree, b2a)."""
    n = 256

    def prog(s):
        s.prepare([boolean.msb_specs(n, "ot")])
        sent, rounds = s.channel.stats.bytes_sent, s.rounds
        boolean.msb(s, np.arange(n, dtype=np.uint64))
        return s.channel.stats.bytes_sent - sent, s.rounds - rounds

    (b0, r0), (b1, r1) = mpc.run_local(prog, correlations="ot", timeout=120)
    assert r0 == r1 == 7
    payload = 8 * n // 2 + 64 * n // 2 + 8 * 3 * (n // 8 + n // 16 + n // 32) + 8 * 2 * (n // 64) + 8 * (n // 64)
    for b in (b0, b1):
        assert payload <= b <= payload + 7 * 200  # plus framing and tags of the 7 messages


def test_cmpleaf_spec_is_ot_only_and_validated():
    assert CmpLeaves((10,)).fields(0) == (("table", (5, 16)), ("choice", (5,)), ("mc", (5,)))
    assert CmpLeaves((11,)).fields(1) == (("table", (6, 16)), ("choice", (5,)), ("mc", (5,)))
    assert halves(11) == (5, 11)
    for bad in [(3, 4), (-1,), 7, (True,)]:
        with pytest.raises(InputError, match="cmpleaf shape"):
            CmpLeaves(bad)
    with pytest.raises(ProtocolError, match="unknown correlated-randomness kind"):
        spec_from_wire(["cmpleaf", [10]])  # a dealer never serves it
    with pytest.raises(InputError, match="correlations must be"):
        boolean.msb_specs(10, "dealers")


def test_dealer_msb_specs_unchanged():
    assert [s.kind for s in boolean.msb_specs(100)] == ["cmpmask"] + ["and"] * 6 + ["b2a"]
    assert [s.kind for s in boolean.msb_specs(100, "ot")] == ["cmpleaf"] + ["and"] * 4 + ["b2a"]


def _chi2(counts):
    counts = np.asarray(counts, dtype=float)
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("x0_value", [0, M63, 0x0123456789ABCDEF])
def test_leaf_tables_party1_receives_are_uniform_whatever_party0_holds(x0_value):
    """Party 1's view of party 0's leaf tables: every 2-bit entry, and the leaf share it
    decodes (the entry at its own digit XOR its chosen OT message, i.e. party 0's random
    share XOR the leaf: ``lt``, ``eq``), is uniform over 0..3, for a fixed
    party-0 operand (so the tables do not depend on it); the offsets ``d`` party 0
    receives are uniform nibbles."""
    n = 4096
    x1 = rng.integers(0, 1 << 64, n, dtype=np.uint64)
    x0 = np.full(n, x0_value, dtype=np.uint64)
    seen = {}

    def prog(s):
        inner = s.exchange

        def recording(op, payload):
            got = inner(op, payload)
            seen.setdefault((s.party, op.split("(")[0]), got)
            return got

        def correlated(specs, _inner=s.correlated):
            mats = _inner(specs)
            seen[(s.party, "mat")] = mats[0]
            return mats

        s.exchange = recording
        s.correlated = correlated
        return boolean.msb(s, x0 if s.party == 0 else x1)

    r0, r1 = mpc.run_local(prog, correlations="ot", timeout=120)
    assert ints(r0 + r1) == [((int(a) + int(b)) % (1 << 64)) >> 63 for a, b in zip(x0, x1)]
    h, _ = halves(n)
    tables = seen[(1, "cmpleaf-t")]  # party 0's tables for elements 0..h
    assert tables.shape == (h, 16)
    entries = (tables[:, :, None] >> (2 * np.arange(16, dtype=np.uint32))) & 3
    assert _chi2(np.bincount(entries.ravel(), minlength=4)) < 20  # 3 dof, p ~ 2e-4
    own = (x1[:h, None] & np.uint64(M63)) >> (np.uint64(4) * np.arange(16, dtype=np.uint64)) & np.uint64(15)
    decoded = np.take_along_axis(entries, own.astype(np.int64)[:, :, None], axis=2)[:, :, 0]
    mc = seen[(1, "mat")]["mc"]
    share = decoded ^ ((mc[:, None] >> (2 * np.arange(16, dtype=np.uint32))) & 3)
    assert _chi2(np.bincount(share.ravel(), minlength=4)) < 20
    offsets = seen[(0, "cmpleaf-d")]  # party 1's offsets for elements 0..h
    nibbles = (offsets[:, None] >> (np.uint64(4) * np.arange(16, dtype=np.uint64))) & np.uint64(15)
    assert _chi2(np.bincount(nibbles.ravel().astype(np.int64), minlength=16)) < 45  # 15 dof
