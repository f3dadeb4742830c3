"""Narrow comparisons (pet.mpc.boolean.msb / pet.mpc.sign_bit with ``bits < 64``) against
Python ints, with the dealer and with the dealer-free OT source."""

import numpy as np
import pytest

import pet.mpc as mpc
from pet.errors import InputError, PrecisionError
from pet.mpc import boolean
from pet.mpc.correlated import AndTriple, CmpMask
from pet.mpc.ot.millionaire import CmpLeaves

from .conftest import DataRNG, both

SOURCES = ["dealer", "ot"]


def _raw_shares(s, x):
    """Shares of the int64 array ``x`` as raw ring elements: party 0 holds a uniform mask,
    so both shares are uniform over all of Z_2^64 (not only their low bits)."""
    mask = s.private_words(x.shape)
    if s.party == 0:
        s.send_to_peer("raw", x.view(np.uint64) - mask)
        return mask
    return s.recv_from_peer("raw")


def _edges(bits):
    h = 1 << (bits - 1)
    return [h - 1, 0, -1, -h + 1, -h, 1, h - 2, -2, h // 2, -(h // 2), h // 2 - 1, -(h // 2) - 1]


def _values(bits, n, seed):
    """``n`` values with -2^(bits-1) <= v < 2^(bits-1): the edges first, then random ones."""
    h = 1 << (bits - 1)
    rand = DataRNG(seed).integers(-h, h, max(0, n))
    vals = np.array(_edges(bits) + [int(v) for v in rand], dtype=np.int64)
    return vals[:n] if n < len(_edges(bits)) else vals[:n]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("bits,n", [(8, 1), (8, 300), (16, 13), (16, 1000), (32, 65), (32, 777),
                                    (12, 200), (24, 130), (5, 70), (31, 100), (40, 90)])
def test_narrow_msb_matches_python_ints(source, bits, n):
    x = _values(bits, n, 1000 * bits + n)
    assert len(x) == n

    def prog(s):
        share = _raw_shares(s, x)
        return s.reveal(mpc.Shared(s, boolean.msb(s, share, bits=bits), 0))

    got = both(prog, correlations=source)
    want = np.array([1 if int(v) < 0 else 0 for v in x], dtype=np.int64)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("source", SOURCES)
def test_narrow_msb_keeps_the_shape_and_mixes_with_full_width(source):
    x8 = _values(8, 24, 5).reshape(2, 3, 4)
    x64 = DataRNG(6).integers(-(1 << 62), 1 << 62, 10)

    def prog(s):
        a = boolean.msb(s, _raw_shares(s, x8), bits=8)
        b = boolean.msb(s, _raw_shares(s, x64))
        return s.reveal(mpc.Shared(s, a, 0)), s.reveal(mpc.Shared(s, b, 0))

    a, b = both(prog, correlations=source)
    assert a.shape == (2, 3, 4)
    np.testing.assert_array_equal(a, (x8 < 0).astype(np.int64))
    np.testing.assert_array_equal(b, (x64 < 0).astype(np.int64))


@pytest.mark.parametrize("source", SOURCES)
def test_sign_bit_narrow_on_fixed_point_values(source):
    # |x| <= 100 at frac 16: the encoding is below 2^23, so 24 bits (lane 32) are exact;
    # values a single ulp from zero must come out right
    v = np.array([100.0, -100.0, 2.0 ** -16, -(2.0 ** -16), 0.0, 37.25, -0.5] * 11)

    def prog(s):
        x = s.share(v if s.party == 0 else None, owner=0)
        a = mpc.sign_bit(x, bits=24)
        b = mpc.sign_bit(x, bound=100.0)  # width chosen from the bound
        return s.reveal(a), s.reveal(b)

    a, b = both(prog, correlations=source)
    np.testing.assert_array_equal(a, (v < 0).astype(np.int64))
    np.testing.assert_array_equal(b, (v < 0).astype(np.int64))


def test_narrow_msb_is_wrong_outside_its_precondition():
    # the precondition is real: 2^7 does not fit 8 bits and comes out "negative" there;
    # the same values with the full-width comparison are right
    x = np.array([1 << 7, (1 << 8) + 5, -(1 << 7) - 1], dtype=np.int64)

    def prog(s):
        share = _raw_shares(s, x)
        return s.reveal(mpc.Shared(s, boolean.msb(s, share, bits=8), 0))

    np.testing.assert_array_equal(both(prog), [1, 0, 0])


def test_declared_bound_that_does_not_fit_is_refused():
    assert boolean.msb_width(0) == 1
    assert boolean.msb_width((1 << 15) - 1) == 16
    assert boolean.msb_width(1 << 15) == 17
    boolean.check_msb_bound((1 << 15) - 1, 16)
    with pytest.raises(PrecisionError, match="16 bits"):
        boolean.check_msb_bound(1 << 15, 16, "x")
    with pytest.raises(PrecisionError):
        boolean.msb_width(1 << 63)
    for bad in (0, 65, 8.0, True, "16"):
        with pytest.raises(InputError, match="bits"):
            boolean.msb_lane(bad)

    def prog(s):
        x = s.share(np.array([1.0, -2.0]) if s.party == 0 else None, owner=0)
        with pytest.raises(PrecisionError, match="sign_bit"):
            mpc.sign_bit(x, bits=16, bound=1.0)  # 2^16 at frac 16 needs 18 bits
        with pytest.raises(InputError):
            mpc.sign_bit(x, bits=16, bound=float("nan"))
        return s.reveal(mpc.sign_bit(x, bits=18, bound=1.0))

    np.testing.assert_array_equal(both(prog), [0, 1])


@pytest.mark.parametrize("bits,lane", [(1, 8), (8, 8), (9, 16), (16, 16), (17, 32), (32, 32), (33, 64), (64, 64)])
def test_msb_lane(bits, lane):
    assert boolean.msb_lane(bits) == lane


def test_msb_specs_describe_the_narrow_material():
    # 1000 elements -> N = 1024; lane 16: 256 packed words, 4 tree levels
    d = boolean.msb_specs(1000, "dealer", bits=16)
    assert d[0] == CmpMask((1024,))
    assert d[1:4] == [AndTriple((128,), 2), AndTriple((64,), 2), AndTriple((32,), 2)]
    assert d[4] == AndTriple((16,), 1)
    assert d[5].shape == (16,)
    o = boolean.msb_specs(1000, "ot", bits=16)
    assert o[0] == CmpLeaves((256,))  # 4 elements per 64-bit leaf operand
    assert o[1:3] == [AndTriple((32,), 2), AndTriple((16,), 1)]
    assert o[3].shape == (16,)
    # the full width is unchanged
    assert boolean.msb_specs(1000) == boolean.msb_specs(1000, "dealer", 64)


@pytest.mark.parametrize("source", SOURCES)
def test_narrow_msb_uses_exactly_the_prefetched_specs(source):
    x = _values(16, 500, 9)

    def prog(s):
        s.prepare(boolean.msb_specs(x.size, source, bits=16))
        share = _raw_shares(s, x)
        sent, rounds = s.channel.stats.bytes_sent, s.rounds
        bits = boolean.msb(s, share, bits=16)
        online = (s.channel.stats.bytes_sent - sent, s.rounds - rounds)
        return s.reveal(mpc.Shared(s, bits, 0)), online

    r0, r1 = mpc.run_local(prog, correlations=source, timeout=300)
    np.testing.assert_array_equal(r0[0], (x < 0).astype(np.int64))
    np.testing.assert_array_equal(r1[0], r0[0])
    # lane 16: dealer 2 + log2(16) = 6 rounds, OT 3 + log2(4) = 5 (64 bits: 8 and 7); about 8
    # (dealer) or 11 (OT) bytes per element and party instead of 33 / 42 -- the offline
    # material was all prepared, so the online part is only the protocol's own messages
    for online in (r0[1], r1[1]):
        assert online[1] == (6 if source == "dealer" else 5)
        assert online[0] < (10 if source == "dealer" else 14) * 512 + 2000


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("arity", [2, 4])
def test_tournament_with_narrow_comparisons(source, arity):
    # values in [0, 2^15) as integers: every difference fits 16 signed bits; the extremes sit at
    # both ends of that range, with ties (the lower index wins) and segments of odd lengths
    rng = DataRNG(11)
    x = rng.integers(0, 1 << 15, 3 * 37).reshape(3, 37)
    x[0, 5] = x[0, 30] = (1 << 15) - 1
    x[1, :] = 0
    x[2, 7] = (1 << 15) - 1
    x[2, 8] = 0
    segs = [1, 12, 24]

    def prog(s):
        xs = s.share(x if s.party == 0 else None, owner=0)
        t = mpc.tournament(xs, axis=1, outputs=("value", "index"), arity=arity, bits=16)
        lo = mpc.min(xs, axis=1, segments=segs, bits=16)
        return s.reveal(t.value), s.reveal(t.index), s.reveal(lo)

    v, i, lo = both(prog, correlations=source, frac_bits=0)
    np.testing.assert_array_equal(v, x.max(axis=1))
    np.testing.assert_array_equal(i, x.argmax(axis=1))
    starts = np.cumsum([0] + segs[:-1])
    np.testing.assert_array_equal(lo, np.minimum.reduceat(x, starts, axis=1))
    with pytest.raises(InputError, match="bits"):
        mpc.tournament(mpc.Shared(None, np.zeros(4, dtype=np.uint64), 0), bits=0)
