"""Every numba kernel of ``pet.mpc._kernels`` and every method of ``pet.mpc.ring_matmul``,
bit for bit against Python-integer arithmetic modulo 2^64.

The oracle never uses numpy uint64 arithmetic (which could share a wrap-around or
conversion bug with the kernels): inputs are turned into Python ints, the formula of the
kernel's docstring is evaluated with ``int`` and ``% 2**64``, and only the final comparison
looks at arrays. Inputs are uniform words plus the edge values 0, 1, 2, 2^62, 2^63 - 1,
2^63, 2^64 - 2, 2^64 - 1 in every operand position; matrix shapes include 1 x k, k x 1 and
sizes that are not multiples of the IFMA tile (4 x 16), slab (256) or limb slab (512).
The IFMA kernel runs only where the CPU has AVX-512 IFMA (``ring_matmul.ifma_available``);
elsewhere its cases are not collected (the other methods still are).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pet.mpc import _kernels, ring_matmul
from pet.mpc.prg import PRG

M = 2 ** 64
MASK = M - 1
EDGES = [0, 1, 2, 1 << 62, (1 << 63) - 1, 1 << 63, M - 2, M - 1]
METHODS = ["loop", "limb"] + (["ifma"] if ring_matmul.ifma_available() else [])


def _words(seed: int, shape) -> np.ndarray:
    return PRG(int(seed).to_bytes(16, "little")).words(shape)


def _with_edges(seed: int, shape, offset: int = 0) -> np.ndarray:
    """Uniform words with the edge values written over the first positions (shifted by
    ``offset`` so that different operands pair different edge values)."""
    x = _words(seed, shape)
    flat = x.reshape(-1)
    for i in range(min(flat.size, 3 * len(EDGES))):
        flat[i] = EDGES[(i + offset) % len(EDGES)]
    return x


def _ints(a) -> list:
    """Python ints of a uint64 array (any shape), as nested lists."""
    return np.asarray(a, dtype=np.uint64).astype(object).tolist()


def _u64(values) -> np.ndarray:
    """A uint64 array from (nested lists of) Python ints in [0, 2^64)."""
    return np.array(values, dtype=object).astype(np.uint64)


def _edge_pairs(n_ops: int):
    """All combinations of edge values for ``n_ops`` operands (as columns of arrays)."""
    combos = list(itertools.product(EDGES, repeat=n_ops))
    return [_u64([c[j] for c in combos]) for j in range(n_ops)]


SIZES = [1, 7, 64, 200]


# -- elementwise kernels --------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def test_sub2(n):
    x, a, y, b = (_with_edges(10 + j, n, j) for j in range(4))
    out = np.empty((2, n), dtype=np.uint64)
    _kernels.sub2(x, a, y, b, out)
    X, A, Y, B = map(_ints, (x, a, y, b))
    assert _ints(out) == [[(X[i] - A[i]) % M for i in range(n)], [(Y[i] - B[i]) % M for i in range(n)]]


def _beaver_oracle(mine, other, a, b, c, party0, r, offset):
    mine, other, a, b, c, r = map(_ints, (mine, other, a, b, c, r))
    out = []
    for i in range(len(a)):
        d = mine[0][i] + other[0][i]
        e = mine[1][i] + other[1][i]
        z = d * b[i] + e * a[i] + c[i]
        if party0:
            z += d * e + offset
        if r:
            z += r[i]
        out.append(z % M)
    return out


@pytest.mark.parametrize("party0", [True, False])
@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("n", SIZES)
def test_beaver_finish(n, party0, masked):
    mine, other = _with_edges(20, (2, n)), _with_edges(21, (2, n), 3)
    a, b, c = (_with_edges(22 + j, n, j + 1) for j in range(3))
    r = _with_edges(25, n, 5) if masked else np.zeros(0, dtype=np.uint64)
    for offset in (0, 1 << 62, M - 1):
        out = np.empty(n, dtype=np.uint64)
        _kernels.beaver_finish(mine, other, a, b, c, party0, r, np.uint64(offset), out)
        assert _ints(out) == _beaver_oracle(mine, other, a, b, c, party0, r, offset)


def test_beaver_finish_all_edge_combinations():
    m0, m1, o0, o1, a = _edge_pairs(5)
    n = a.size
    mine, other = np.stack([m0, m1]), np.stack([o0, o1])
    b, c, r = a[::-1].copy(), m1[::-1].copy(), o0[::-1].copy()
    out = np.empty(n, dtype=np.uint64)
    _kernels.beaver_finish(mine, other, a, b, c, True, r, np.uint64(1 << 62), out)
    assert _ints(out) == _beaver_oracle(mine, other, a, b, c, True, r, 1 << 62)


def _trunc_finish_oracle(xp, other, rs, rm, shift, party0):
    xp, other, rs, rm = map(_ints, (xp, other, rs, rm))
    out = []
    for i in range(len(xp)):
        c = (xp[i] + other[i]) % M
        v = rm[i] * ((1 - (c >> 63)) << (64 - shift)) - rs[i]
        if party0:
            v += (c >> shift) - (1 << (62 - shift))
        out.append(v % M)
    return out


@pytest.mark.parametrize("shift", [1, 16, 32, 40, 62])
@pytest.mark.parametrize("party0", [True, False])
def test_trunc_finish(shift, party0):
    n = 200
    xp, other, rs = (_with_edges(30 + j, n, j) for j in range(3))
    rm = _words(33, n) & np.uint64(1)  # msb(r) shares: any word works for the formula
    rm[:8] = _u64(EDGES)
    out = np.empty(n, dtype=np.uint64)
    _kernels.trunc_finish(xp, other, rs, rm, shift, party0, out)
    assert _ints(out) == _trunc_finish_oracle(xp, other, rs, rm, shift, party0)


def test_trunc_finish_all_edge_combinations():
    xp, other, rs, rm = _edge_pairs(4)
    for shift in (1, 16, 62):
        for party0 in (True, False):
            out = np.empty(xp.size, dtype=np.uint64)
            _kernels.trunc_finish(xp, other, rs, rm, shift, party0, out)
            assert _ints(out) == _trunc_finish_oracle(xp, other, rs, rm, shift, party0)


@pytest.mark.parametrize("n", SIZES)
def test_triple_corr(n):
    a0, a1, b0, b1, c0 = (_with_edges(40 + j, n, j) for j in range(5))
    out = np.empty(n, dtype=np.uint64)
    _kernels.triple_corr(a0, a1, b0, b1, c0, out)
    A0, A1, B0, B1, C0 = map(_ints, (a0, a1, b0, b1, c0))
    assert _ints(out) == [((A0[i] + A1[i]) * (B0[i] + B1[i]) - C0[i]) % M for i in range(n)]


def test_triple_corr_all_edge_combinations():
    a0, a1, b0, b1, c0 = _edge_pairs(5)
    out = np.empty(a0.size, dtype=np.uint64)
    _kernels.triple_corr(a0, a1, b0, b1, c0, out)
    A0, A1, B0, B1, C0 = map(_ints, (a0, a1, b0, b1, c0))
    assert _ints(out) == [((A0[i] + A1[i]) * (B0[i] + B1[i]) - C0[i]) % M for i in range(a0.size)]


@pytest.mark.parametrize("shift", [0, 1, 16, 32, 63])
def test_trunc_corr(shift):
    n = 300
    r0, r1, rs0, rm0 = (_with_edges(50 + j, n, j) for j in range(4))
    out_rs, out_rm = np.empty(n, dtype=np.uint64), np.empty(n, dtype=np.uint64)
    _kernels.trunc_corr(r0, r1, rs0, rm0, shift, out_rs, out_rm)
    R0, R1, RS0, RM0 = map(_ints, (r0, r1, rs0, rm0))
    r = [(R0[i] + R1[i]) % M for i in range(n)]
    assert _ints(out_rs) == [((r[i] >> shift) - RS0[i]) % M for i in range(n)]
    assert _ints(out_rm) == [((r[i] >> 63) - RM0[i]) % M for i in range(n)]


@pytest.mark.parametrize("nb", [1, 2, 5])
@pytest.mark.parametrize("n", SIZES)
def test_and_corr(n, nb):
    a0, a1 = _with_edges(60, n), _with_edges(61, n, 2)
    b0, b1, c0 = (_with_edges(62 + j, (nb, n), j) for j in range(3))
    out = np.empty((nb, n), dtype=np.uint64)
    _kernels.and_corr(a0, a1, b0, b1, c0, out)
    A0, A1, B0, B1, C0 = map(_ints, (a0, a1, b0, b1, c0))
    assert _ints(out) == [[((A0[i] ^ A1[i]) & (B0[j][i] ^ B1[j][i])) ^ C0[j][i] for i in range(n)]
                          for j in range(nb)]


@pytest.mark.parametrize("nb", [0, 1, 3])
@pytest.mark.parametrize("n", SIZES)
def test_and_prep(n, nb):
    x, a = _with_edges(70, n), _with_edges(71, n, 1)
    ys, b = _with_edges(72, (nb, n), 2), _with_edges(73, (nb, n), 3)
    out = np.empty((nb + 1, n), dtype=np.uint64)
    _kernels.and_prep(x, ys, a, b, out)
    X, A, YS, B = map(_ints, (x, a, ys, b))
    assert _ints(out) == [[X[i] ^ A[i] for i in range(n)]] + [[YS[j][i] ^ B[j][i] for i in range(n)]
                                                               for j in range(nb)]


@pytest.mark.parametrize("party0", [True, False])
@pytest.mark.parametrize("nb", [1, 2, 4])
@pytest.mark.parametrize("n", SIZES)
def test_and_finish(n, nb, party0):
    mine, other = _with_edges(80, (nb + 1, n)), _with_edges(81, (nb + 1, n), 4)
    a = _with_edges(82, n, 1)
    b, c = _with_edges(83, (nb, n), 2), _with_edges(84, (nb, n), 5)
    out = np.empty((nb, n), dtype=np.uint64)
    _kernels.and_finish(mine, other, a, b, c, party0, out)
    MI, OT, A, B, C = map(_ints, (mine, other, a, b, c))
    want = []
    for j in range(nb):
        row = []
        for i in range(n):
            d = MI[0][i] ^ OT[0][i]
            e = MI[j + 1][i] ^ OT[j + 1][i]
            v = (d & B[j][i]) ^ (e & A[i]) ^ C[j][i]
            row.append(v ^ (d & e) if party0 else v)
        want.append(row)
    assert _ints(out) == want


def _msb_setup_oracle(mine, other, rb, party0):
    mine, other, rb = map(_ints, (mine, other, rb))
    top = 1 << 63
    g, p, tops = [], [], []
    for w in range(len(mine) // 64):
        acc = 0
        for bit in range(64):
            i = 64 * w + bit
            c = (mine[i] + other[i]) % M
            r = rb[i]
            notc = MASK ^ c
            g.append(notc & r & (MASK ^ top))
            t = r >> 63
            if party0:
                p.append((notc ^ r) | top)
                t ^= c >> 63
            else:
                p.append(r & (MASK ^ top))
            acc |= (t & 1) << bit
        tops.append(acc)
    return g, p, tops


@pytest.mark.parametrize("party0", [True, False])
@pytest.mark.parametrize("words", [1, 3])
def test_msb_setup(words, party0):
    n = 64 * words
    mine, other, rb = (_with_edges(90 + j, n, j) for j in range(3))
    g, p, tops = np.empty(n, np.uint64), np.empty(n, np.uint64), np.empty(words, np.uint64)
    _kernels.msb_setup(mine, other, rb, party0, g, p, tops)
    assert (_ints(g), _ints(p), _ints(tops)) == _msb_setup_oracle(mine, other, rb, party0)


def _even_bits(x: int, start: int) -> int:
    """Bits start, start + 2, ..., start + 62 of ``x`` packed into bits 0..31."""
    return sum(((x >> (start + 2 * k)) & 1) << k for k in range(32))


@pytest.mark.parametrize("m", [1, 2, 5, 64])
def test_split_pairs(m):
    g, p = _with_edges(100, 2 * m), _with_edges(101, 2 * m, 3)
    outs = [np.empty(m, np.uint64) for _ in range(4)]
    _kernels.split_pairs(g, p, *outs)
    G, P = _ints(g), _ints(p)

    def packed(words, start):
        return [_even_bits(words[2 * j], start) | (_even_bits(words[2 * j + 1], start) << 32) for j in range(m)]

    gh, gl, ph, pl = map(_ints, outs)
    assert gh == packed(G, 1) and gl == packed(G, 0)
    assert ph == packed(P, 1) and pl == packed(P, 0)


POSITIONS = [[0], [63], [0, 1, 62, 63], list(range(0, 64, 7)), list(range(64))]


@pytest.mark.parametrize("positions", POSITIONS, ids=lambda p: f"{len(p)}bits")
@pytest.mark.parametrize("n", [1, 7, 100])
def test_b2a_corr(n, positions):
    nb = len(positions)
    rho0, rho1 = _with_edges(110, n), _with_edges(111, n, 2)
    ra0 = _with_edges(112, (n, nb), 4)
    out = np.empty((n, nb), dtype=np.uint64)
    _kernels.b2a_corr(rho0, rho1, np.array(positions, dtype=np.int64), ra0, out)
    R0, R1, RA0 = map(_ints, (rho0, rho1, ra0))
    assert _ints(out) == [[((((R0[i] ^ R1[i]) >> q) & 1) - RA0[i][j]) % M for j, q in enumerate(positions)]
                          for i in range(n)]


def _b2a_share(e: int, ra: int, q: int, party0: bool) -> int:
    ej = (e >> q) & 1
    return (ra * (1 - 2 * ej) + (ej if party0 else 0)) % M


@pytest.mark.parametrize("party0", [True, False])
@pytest.mark.parametrize("positions", POSITIONS, ids=lambda p: f"{len(p)}bits")
@pytest.mark.parametrize("n", [1, 7, 100])
def test_b2a_plain(n, positions, party0):
    nb = len(positions)
    e, ra = _with_edges(120, n), _with_edges(121, (n, nb), 3)
    out = np.empty((n, nb), dtype=np.uint64)
    _kernels.b2a_plain(e, ra, np.array(positions, dtype=np.int64), party0, out)
    E, RA = _ints(e), _ints(ra)
    assert _ints(out) == [[_b2a_share(E[i], RA[i][j], q, party0) for j, q in enumerate(positions)]
                          for i in range(n)]


@pytest.mark.parametrize("party0", [True, False])
@pytest.mark.parametrize("positions", POSITIONS, ids=lambda p: f"{len(p)}bits")
@pytest.mark.parametrize("nk", [1, 3])
def test_b2a_weighted(nk, positions, party0):
    n, nb = 50, len(positions)
    e, ra = _with_edges(130, n), _with_edges(131, (n, nb), 3)
    weights = _with_edges(132, (nk, nb), 6)
    out = np.empty((nk, n), dtype=np.uint64)
    _kernels.b2a_weighted(e, ra, np.array(positions, dtype=np.int64), weights, party0, out)
    E, RA, W = map(_ints, (e, ra, weights))
    assert _ints(out) == [[sum(W[k][j] * _b2a_share(E[i], RA[i][j], q, party0) for j, q in enumerate(positions)) % M
                           for i in range(n)] for k in range(nk)]


# -- matrix products ------------------------------------------------------------------------


def _matmul_oracle(a: np.ndarray, b: np.ndarray) -> list:
    A, B = _ints(a), _ints(b)
    k = len(B)
    n = b.shape[1]
    return [[sum(A[i][t] * B[t][j] for t in range(k)) % M for j in range(n)] for i in range(len(A))]


def _add(x: list, y: list) -> list:
    return [[(u + v) % M for u, v in zip(rx, ry)] for rx, ry in zip(x, y)]


# 1 x k, k x 1, 1 x 1 and sizes off the tile (4 x 16), the IFMA slab (256), the limb slab
# (512) and the loop kernel's k-block (64) and thin-b bound (n < 8)
MATMUL_SHAPES = [(1, 1, 1), (1, 37, 1), (1, 300, 17), (17, 300, 1), (1, 1, 40), (40, 1, 1), (3, 65, 8),
                 (5, 257, 19), (6, 513, 7), (21, 129, 33)]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", MATMUL_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matmul_methods(method, shape):
    m, k, n = shape
    a, b = _with_edges(m * 7 + k, (m, k)), _with_edges(n * 11 + k, (k, n), 3)
    got = ring_matmul.matmul_u64(a, b, method=method)
    assert _ints(got) == _matmul_oracle(a, b)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("fill", [0, 1, 1 << 63, M - 1])
def test_matmul_constant_edge_matrices(method, fill):
    """All entries one edge value, times a matrix holding every edge value."""
    a = np.full((5, 600), np.uint64(fill))
    b = np.tile(_u64(EDGES), (600, 3))[:, :17].copy()
    assert _ints(ring_matmul.matmul_u64(a, b, method=method)) == _matmul_oracle(a, b)
    assert _ints(ring_matmul.matmul_u64(b.T.copy(), a.T.copy(), method=method)) == _matmul_oracle(b.T, a.T)


@pytest.mark.parametrize("method", METHODS)
def test_matmul2_with_addend(method):
    a1, b1 = _with_edges(140, (9, 70)), _with_edges(141, (70, 18), 1)
    a2, b2 = _with_edges(142, (9, 3)), _with_edges(143, (3, 18), 2)
    c = _with_edges(144, (9, 18), 5)
    got = ring_matmul.matmul2_u64(a1, b1, a2, b2, c, method=method)
    assert _ints(got) == _add(_add(_matmul_oracle(a1, b1), _matmul_oracle(a2, b2)), _ints(c))


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 70, 9), (9, 70, 1), (4, 64, 8), (5, 130, 7)])
def test_loop_kernel_directly(shape):
    m, k, n = shape
    a, b = _with_edges(150, (m, k)), _with_edges(151, (k, n), 2)
    out = np.full((m, n), np.uint64(12345))  # overwritten, not accumulated
    _kernels.matmul_u64(a, b, out)
    assert _ints(out) == _matmul_oracle(a, b)


def test_limb_split_and_combine_directly():
    x = _with_edges(160, (3, 9))
    limbs = [np.empty((3, 9)) for _ in range(3)]
    _kernels.split_limbs(x, *limbs)
    for row, l0, l1, l2 in zip(_ints(x), *(lm.tolist() for lm in limbs)):
        for v, a, b, c in zip(row, l0, l1, l2):
            assert (int(a), int(b), int(c)) == (v & (2 ** 22 - 1), (v >> 22) & (2 ** 21 - 1), v >> 43)
            assert int(a) + (int(b) << 22) + (int(c) << 43) == v
    # combine: six exact integer-valued float products below 2^53, added into ``out``
    big = float(2 ** 53 - 1)
    ps = [np.array([[0.0, 1.0, big], [big, 2.0 ** 52, 3.0]]) for _ in range(6)]
    ps[1][0, 0] = big
    start = _with_edges(161, (2, 3))
    out = start.copy()
    _kernels.combine_limbs(*ps, out)
    P = [[[int(v) for v in row] for row in p.tolist()] for p in ps]
    S = _ints(start)
    want = [[(S[i][j] + P[0][i][j] + ((P[1][i][j] + P[2][i][j]) << 22) + ((P[3][i][j] + P[4][i][j]) << 43)
              + (P[5][i][j] << 44)) % M for j in range(3)] for i in range(2)]
    assert _ints(out) == want


@pytest.mark.skipif(not ring_matmul.ifma_available(), reason="this CPU has no AVX-512 IFMA")
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 300, 16), (16, 300, 1), (4, 256, 16), (5, 257, 17),
                                   (259, 20, 3)])
@pytest.mark.parametrize("with_c", [False, True])
def test_ifma_kernel_directly(shape, with_c):
    m, k, n = shape
    a1, b1 = _with_edges(170, (m, k)), _with_edges(171, (k, n), 2)
    a2, b2 = _with_edges(172, (m, 2)), _with_edges(173, (2, n), 4)
    c = _with_edges(174, (m, n), 6) if with_c else np.zeros((0, 0), dtype=np.uint64)
    out = np.empty((m, n), dtype=np.uint64)
    _kernels.matmul2_u64_ifma(a1, b1, a2, b2, c, out)
    want = _add(_matmul_oracle(a1, b1), _matmul_oracle(a2, b2))
    if with_c:
        want = _add(want, _ints(c))
    assert _ints(out) == want
