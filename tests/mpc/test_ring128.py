"""The wide ring Z_2^128 (pet.mpc.ring128): kernels and protocols bit-exact against
Python integers mod 2^128, with both correlated sources (dealer and OT)."""

import numpy as np
import pytest

import pet.mpc as mpc
from pet.errors import PrecisionError
from pet.mpc import _kernels128 as K
from pet.mpc import ring128
from pet.mpc.correlated import Triple128, WrapBit, spec_from_wire
from pet.mpc.prg import PRG

from .conftest import both

SOURCES = ["dealer", "ot"]
M = 1 << 128
_prg = PRG(bytes(range(16)))


def _words(n):
    return _prg.words((n, 2))


def _int(w):
    return int(w[0]) | (int(w[1]) << 64)


def _signed(v):
    v %= M
    return v - M if v >> 127 else v


def _ints(arr):
    return [_int(w) for w in np.asarray(arr).reshape(-1, 2)]


def _as_words(values):
    return np.array([[v % M & (2 ** 64 - 1), (v % M) >> 64] for v in values], dtype=np.uint64)


def test_kernels_match_python_ints():
    n = 500
    x, y = _words(n), _words(n)
    # edge words: carries across the limb boundary, all ones, zero
    x[:4] = [[2 ** 64 - 1, 0], [2 ** 64 - 1, 2 ** 64 - 1], [0, 0], [1, 2 ** 63]]
    y[:4] = [[1, 0], [2 ** 64 - 1, 2 ** 64 - 1], [5, 7], [2 ** 64 - 1, 2 ** 63]]
    xs, ys = _ints(x), _ints(y)
    out = np.empty_like(x)
    K.add(x, y, out)
    assert _ints(out) == [(a + b) % M for a, b in zip(xs, ys)]
    K.sub(x, y, out)
    assert _ints(out) == [(a - b) % M for a, b in zip(xs, ys)]
    K.mul(x, y, out)
    assert _ints(out) == [(a * b) % M for a, b in zip(xs, ys)]
    for s in (0, 1, 63, 64, 65, 127):
        K.shift_left(x, s, out)
        assert _ints(out) == [(a << s) % M for a in xs]
    k = np.array([-3, 5, -(2 ** 62), 2 ** 62 + 7] * (n // 4), dtype=np.int64)
    K.scale_int(x, k, out)
    assert _ints(out) == [(a * int(c)) % M for a, c in zip(xs, k)]
    acc = np.zeros((1, 2), dtype=np.uint64)
    K.sum_rows(x.reshape(n, 1, 2), acc)
    assert _int(acc[0]) == sum(xs) % M


def test_encode_decode_round_trip():
    vals = np.array([0.0, 1.5, -1.5, 1e15, -1e15, 1e30, -1e30, -2.0 ** -20, 3.0 ** 40])
    for f in (0, 16, 20):
        w = ring128.encode(vals, f)
        exact = [int(np.rint(v * 2.0 ** f)) for v in vals]
        assert [_signed(v) for v in _ints(w)] == exact
        np.testing.assert_allclose(np.asarray(ring128.decode(w, f), dtype=np.float64),
                                   np.rint(vals * 2.0 ** f) / 2.0 ** f, rtol=1e-15)
    ints = np.array([0, -1, 2 ** 62, -(2 ** 63)], dtype=np.int64)
    assert ring128.decode(ring128.encode(ints, 0), 0).tolist() == ints.tolist()
    big = ring128.decode(_as_words([2 ** 100, -(2 ** 100) - 3]), 0)
    assert big.tolist() == [2 ** 100, -(2 ** 100) - 3]
    with pytest.raises(PrecisionError):
        ring128.encode(np.array([2.0 ** 120]), 8)
    with pytest.raises(PrecisionError):
        ring128.encode(np.array([np.nan]), 0)


def test_specs_wire_and_dealer_corrections():
    t = Triple128((3, 4))
    assert t.to_wire() == ["triple128", [3, 4]]
    assert spec_from_wire(["triple128", [3, 4]]) == t
    assert spec_from_wire(["wrapbit", [7]]) == WrapBit((7,))
    # the dealer's correction makes c = a * b mod 2^128
    p0, p1 = PRG(b"\x01" * 16), PRG(b"\x02" * 16)
    m0, m1 = t.draw(p0, 0), t.draw(p1, 1)
    c1 = t.corrections(m0, m1, {})["c"]
    a = [(u + v) % M for u, v in zip(_ints(m0["a"]), _ints(m1["a"]))]
    b = [(u + v) % M for u, v in zip(_ints(m0["b"]), _ints(m1["b"]))]
    c = [(u + v) % M for u, v in zip(_ints(m0["c"]), _ints(c1))]
    assert c == [(x * y) % M for x, y in zip(a, b)]
    w = WrapBit((100,))
    m0, m1 = w.draw(p0, 0), w.draw(p1, 1)
    assert set(np.unique(m0["wbit"])) <= {0, 1} and set(np.unique(m1["wbit"])) <= {0, 1}
    wp = w.corrections(m0, m1, {})["wprod"] + m0["wprod"]
    np.testing.assert_array_equal(wp, m0["wbit"] * m1["wbit"])


@pytest.mark.parametrize("source", SOURCES)
def test_correlated_material_is_correct(source):
    def prog(s):
        t, w = s.correlated([Triple128((70,)), WrapBit((130,))])
        return [t["a"], t["b"], t["c"], w["wbit"], w["wprod"]]

    r0, r1 = mpc.run_local(prog, correlations=source, timeout=300)
    a = [(u + v) % M for u, v in zip(_ints(r0[0]), _ints(r1[0]))]
    b = [(u + v) % M for u, v in zip(_ints(r0[1]), _ints(r1[1]))]
    c = [(u + v) % M for u, v in zip(_ints(r0[2]), _ints(r1[2]))]
    assert c == [(x * y) % M for x, y in zip(a, b)]
    np.testing.assert_array_equal(r0[4] + r1[4], r0[3] * r1[3])


def _share_wide(s, values, owner, frac=0):
    """Share wide values exactly (Python ints, test helper): the owner's share is the
    encoding minus a random mask, sent as a 64-bit pair of arrays over the session."""
    if s.party == owner:
        enc = _as_words(values)
        mask = s.private_words(enc.shape)
        d = np.empty_like(enc)
        K.sub(enc, mask, d)
        s.exchange("test-share128", d)
        return ring128.Shared128(s, mask, frac)
    got = s.exchange("test-share128", None)
    return ring128.Shared128(s, got, frac)


BIG_X = [3, -7, 2 ** 100 + 12345, -(2 ** 90) - 1, 2 ** 62 - 1, -(2 ** 62), 10 ** 20, -(10 ** 25), 0, 1]
BIG_Y = [5, 2 ** 20, -3, 2 ** 30 + 7, -(2 ** 60), 2 ** 61, -(10 ** 10), 7, 2 ** 120, 1]  # last: equal


@pytest.mark.parametrize("source", SOURCES)
def test_wide_arithmetic_bit_exact(source):
    def prog(s):
        x = _share_wide(s, BIG_X, 0)
        y = _share_wide(s, BIG_Y, 1)
        prod = x * y
        return [s.reveal(v) for v in (x + y, x - y, -x, prod, x.scaled(np.int64(-3)), x.sum(), x < y, x > y,
                                      x <= y, x >= y, x < 0, x == y, x != x, ring128.where(x < y, x, y))]

    got = both(prog, correlations=source)
    py = list(zip(BIG_X, BIG_Y))
    assert got[0].tolist() == [_signed(a + b) for a, b in py]
    assert got[1].tolist() == [_signed(a - b) for a, b in py]
    assert got[2].tolist() == [-a for a in BIG_X]
    assert got[3].tolist() == [_signed(a * b) for a, b in py]
    assert got[4].tolist() == [-3 * a for a in BIG_X]
    assert got[5].tolist() == sum(BIG_X)
    assert got[6].tolist() == [int(a < b) for a, b in py]
    assert got[7].tolist() == [int(a > b) for a, b in py]
    assert got[8].tolist() == [int(a <= b) for a, b in py]
    assert got[9].tolist() == [int(a >= b) for a, b in py]
    assert got[10].tolist() == [int(a < 0) for a in BIG_X]
    assert got[11].tolist() == [int(a == b) for a, b in py]
    assert got[12].tolist() == [0] * len(BIG_X)
    assert got[13].tolist() == [min(a, b) for a, b in py]


@pytest.mark.parametrize("source", SOURCES)
def test_lift_truncate_and_back(source):
    x64 = np.array([0, 1, -1, 2 ** 61, -(2 ** 61), 2 ** 62 - 1, -(2 ** 62) + 1, 123456789, -987654321] * 8,
                   dtype=np.int64)
    wide = [2 ** 125 - 1, -(2 ** 125), 2 ** 100 + 2 ** 40 + 5, -(2 ** 70) - 3, 7, -7, 0, 2 ** 64, -(2 ** 64)]

    def prog(s):
        a = s.share(x64 if s.party == 0 else None, owner=0)
        a128 = a.to_ring(128)
        w = _share_wide(s, wide, 1)
        outs = [s.reveal(a128), s.reveal(a128.to_ring(64))]
        for sh in (1, 16, 63, 64, 100):
            outs.append(s.reveal(w.rescale(0) if False else ring128.Shared128(s, ring128.trunc_words(s, w.share, sh),
                                                                               0)))
        return outs

    got = both(prog, correlations=source)
    assert got[0].tolist() == x64.tolist()
    assert got[1].tolist() == x64.tolist()
    for sh, g in zip((1, 16, 63, 64, 100), got[2:]):
        for v, r in zip(wide, g.tolist()):
            assert r - (v >> sh) in (0, 1), (sh, v, r)  # floor or one ulp more
            if sh == 100:
                assert r - (v >> sh) in (0, 1)


@pytest.mark.parametrize("source", SOURCES)
def test_fixed_point_products_and_conversions(source):
    """Money x income style values: 64-bit shared inputs, the product in the wide ring,
    a sum over many rows, and the result back in the 64-bit ring after truncation."""
    n = 300
    amount = np.linspace(-4.3e4, 4.3e4, n)
    income = np.linspace(1.2e5, 3e3, n)

    def prog(s):
        a = s.share(amount if s.party == 0 else None, owner=0, frac_bits=16)
        b = s.share(income if s.party == 1 else None, owner=1, frac_bits=16)
        p = a.to_ring(128) * b  # Shared128 * Shared: b is lifted; raw 32 fractional bits, kept 16
        tot = p.sum()
        small = (p * 1e-6).rescale(16)
        return [s.reveal(p), s.reveal(tot), s.reveal(small.to_ring(64)), s.reveal(p.rescale(4)),
                s.reveal(a.to_ring(128) * 2.5)]

    got = both(prog, correlations=source)
    ea = np.rint(amount * 2 ** 16) / 2 ** 16
    eb = np.rint(income * 2 ** 16) / 2 ** 16
    np.testing.assert_allclose(got[0], ea * eb, rtol=0, atol=2 ** -15)
    np.testing.assert_allclose(got[1], np.sum(ea * eb), rtol=1e-12)
    np.testing.assert_allclose(got[2], ea * eb * 1e-6, rtol=0, atol=1e-3)
    np.testing.assert_allclose(got[3], ea * eb, rtol=0, atol=2 ** -3)
    np.testing.assert_allclose(got[4], ea * 2.5, rtol=0, atol=2 ** -15)


@pytest.mark.parametrize("source", SOURCES)
def test_limbs_group_sums(source):
    """Wide values summed per group through a 64-bit 0/1 matrix product on 26-bit limbs."""
    vals = [10 ** 30, -(10 ** 29), 2 ** 100, -5, 7, 2 ** 64 + 1, -(2 ** 64), 123]
    groups = np.array([0, 1, 0, 1, 2, 2, 0, 2])
    H = np.eye(3, dtype=np.int64)[groups]

    def prog(s):
        w = _share_wide(s, vals, 0)
        L = ring128.split_limbs(w)                      # (8, 5) 64-bit
        Hs = s.share(H if s.party == 1 else None, owner=1)
        S = Hs.T @ L                                    # (3, 5) 64-bit matrix product
        return s.reveal(ring128.join_limbs(S, 0))

    got = both(prog, correlations=source)
    assert got.tolist() == [sum(v for v, g in zip(vals, groups) if g == k) for k in range(3)]


def test_check_range_refuses():
    def prog(s):
        x = ring128.constant(s, np.array([1e15]), 0)
        with pytest.raises(PrecisionError):
            x.mul(x, check_range=True, bounds=(1e20, 1e20))
        return s.reveal(x.mul(x, check_range=True, bounds=(1e15, 1e15)))

    assert both(prog)[0] == 10 ** 30


@pytest.mark.parametrize("source", SOURCES)
def test_sign_exact_at_limb_edges(source):
    """Values whose low limb is 0 or all ones (the carry of the low limbs decides the
    sign): each repeated 64 times, so the random shares take both low-bit parities (an
    approximate carry gets about half of these wrong; the exact one none)."""
    edge = [0, -1, 1, 2 ** 64, -(2 ** 64), 2 ** 64 - 1, -(2 ** 64) + 1, 2 ** 120, -(2 ** 120), 2 ** 125 - 1,
            -(2 ** 125)]
    vals = edge * 64

    def prog(s):
        x = _share_wide(s, vals, 0)
        return s.reveal(ring128.sign_bit(x))

    got = both(prog, correlations=source)
    assert got.tolist() == [int(v < 0) for v in vals]
