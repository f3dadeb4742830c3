"""numba kernels of :mod:`pet.mpc`: plain loops over uint64 arrays, wrap-around arithmetic.

No validation and no randomness here; the callers (``arithmetic.py``) check shapes and
dtypes. All arithmetic is modulo 2^64 (uint64 overflow wraps in numba as in C).
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def matmul_u64(a, b, out):
    """``out[:] = a @ b`` modulo 2^64 for C-contiguous uint64 ``a`` (m, k), ``b`` (k, n).

    i-k-j loop order so the inner loop runs over contiguous rows of ``b`` and ``out``
    (vectorized by LLVM); blocked over ``k`` to keep rows of ``b`` in cache.
    """
    m, kk = a.shape
    n = b.shape[1]
    for i in range(m):
        for j in range(n):
            out[i, j] = 0
    block = 64
    for k0 in range(0, kk, block):
        k1 = min(kk, k0 + block)
        for i in range(m):
            orow = out[i]
            for k in range(k0, k1):
                aik = a[i, k]
                brow = b[k]
                for j in range(n):
                    orow[j] += aik * brow[j]
    return out


@numba.njit(cache=True, inline="always")
def _even32(x):
    """Bits 0, 2, ..., 62 of ``x`` compressed into bits 0..31."""
    x = x & numba.uint64(0x5555555555555555)
    x = (x | (x >> numba.uint64(1))) & numba.uint64(0x3333333333333333)
    x = (x | (x >> numba.uint64(2))) & numba.uint64(0x0F0F0F0F0F0F0F0F)
    x = (x | (x >> numba.uint64(4))) & numba.uint64(0x00FF00FF00FF00FF)
    x = (x | (x >> numba.uint64(8))) & numba.uint64(0x0000FFFF0000FFFF)
    x = (x | (x >> numba.uint64(16))) & numba.uint64(0x00000000FFFFFFFF)
    return x


@numba.njit(cache=True, nogil=True)
def split_pairs(g, p, gh, gl, ph, pl):
    """One level of the comparison tree, local part.

    Input words ``g[2j], g[2j+1]`` (likewise ``p``) hold adjacent groups of bit pairs
    ``(2i+1, 2i)``; output word ``j`` packs, for both input words, the odd ("high") bits
    into ``gh``/``ph`` and the even ("low") bits into ``gl``/``pl``: word ``2j`` in bits
    0..31 and word ``2j+1`` in bits 32..63. XOR-linear, so it applies to shares.
    """
    one = numba.uint64(1)
    s32 = numba.uint64(32)
    for j in range(gh.shape[0]):
        a = g[2 * j]
        b = g[2 * j + 1]
        gl[j] = _even32(a) | (_even32(b) << s32)
        gh[j] = _even32(a >> one) | (_even32(b >> one) << s32)
        a = p[2 * j]
        b = p[2 * j + 1]
        pl[j] = _even32(a) | (_even32(b) << s32)
        ph[j] = _even32(a >> one) | (_even32(b >> one) << s32)


# -- fused elementwise kernels (1-D contiguous uint64 arrays) -----------------------------


@numba.njit(cache=True, nogil=True)
def sub2(x, a, y, b, out):
    """``out[0] = x - a``, ``out[1] = y - b`` (the two Beaver openings, one buffer)."""
    for i in range(x.shape[0]):
        out[0, i] = x[i] - a[i]
        out[1, i] = y[i] - b[i]


@numba.njit(cache=True, nogil=True)
def beaver_finish(mine, other, a, b, c, party0, r, offset, out):
    """``out = d*b + e*a + c (+ d*e if party0) + r + offset`` with ``d, e`` the opened
    values ``mine + other``. ``r`` may be empty (then no mask is added)."""
    masked = r.shape[0] > 0
    for i in range(out.shape[0]):
        d = mine[0, i] + other[0, i]
        e = mine[1, i] + other[1, i]
        z = d * b[i] + e * a[i] + c[i]
        if party0:
            z += d * e + offset
        if masked:
            z += r[i]
        out[i] = z


@numba.njit(cache=True, nogil=True)
def trunc_finish(xp, other, rs, rm, shift, party0, out):
    """Steps 3-5 of the exact truncation (see ``truncation.py``)."""
    up = numba.uint64(64 - shift)
    sh = numba.uint64(shift)
    low = numba.uint64(1) << numba.uint64(62 - shift)
    one = numba.uint64(1)
    s63 = numba.uint64(63)
    for i in range(out.shape[0]):
        c = xp[i] + other[i]
        v = rm[i] * ((one - (c >> s63)) << up) - rs[i]
        if party0:
            v += (c >> sh) - low
        out[i] = v


@numba.njit(cache=True, nogil=True)
def triple_corr(a0, a1, b0, b1, c0, out):
    """Dealer: ``out = (a0 + a1) * (b0 + b1) - c0``."""
    for i in range(out.shape[0]):
        out[i] = (a0[i] + a1[i]) * (b0[i] + b1[i]) - c0[i]


@numba.njit(cache=True, nogil=True)
def trunc_corr(r0, r1, rs0, rm0, shift, out_rs, out_rm):
    """Dealer: corrections for ``r >> shift`` and ``msb(r)`` with ``r = r0 + r1``."""
    sh = numba.uint64(shift)
    s63 = numba.uint64(63)
    for i in range(out_rs.shape[0]):
        r = r0[i] + r1[i]
        out_rs[i] = (r >> sh) - rs0[i]
        out_rm[i] = (r >> s63) - rm0[i]


@numba.njit(cache=True, nogil=True)
def and_corr(a0, a1, b0, b1, c0, out):
    """Dealer: ``out[j] = (a0 ^ a1) & (b0[j] ^ b1[j]) ^ c0[j]``."""
    for j in range(out.shape[0]):
        for i in range(out.shape[1]):
            out[j, i] = ((a0[i] ^ a1[i]) & (b0[j, i] ^ b1[j, i])) ^ c0[j, i]


@numba.njit(cache=True, nogil=True)
def and_prep(x, ys, a, b, out):
    """``out[0] = x ^ a``, ``out[j+1] = ys[j] ^ b[j]`` (the AND-triple openings)."""
    for i in range(x.shape[0]):
        out[0, i] = x[i] ^ a[i]
    for j in range(ys.shape[0]):
        for i in range(x.shape[0]):
            out[j + 1, i] = ys[j, i] ^ b[j, i]


@numba.njit(cache=True, nogil=True)
def and_finish(mine, other, a, b, c, party0, out):
    """``out[j] = d & e_j ^ d & b_j ^ e_j & a ^ c_j`` (``d & e_j`` by party 0 only)."""
    n = mine.shape[1]
    for j in range(out.shape[0]):
        if party0:
            for i in range(n):
                d = mine[0, i] ^ other[0, i]
                e = mine[j + 1, i] ^ other[j + 1, i]
                out[j, i] = (d & b[j, i]) ^ (e & a[i]) ^ c[j, i] ^ (d & e)
        else:
            for i in range(n):
                d = mine[0, i] ^ other[0, i]
                e = mine[j + 1, i] ^ other[j + 1, i]
                out[j, i] = (d & b[j, i]) ^ (e & a[i]) ^ c[j, i]


@numba.njit(cache=True, nogil=True)
def msb_setup(mine, other, rb, party0, g, p, tops):
    """Comparison tree inputs after opening ``c = x + r``: generate ``g = ~c & r``,
    propagate ``p = ~(c ^ r)`` (bit 63 neutral: g = 0, p = 1), and the bits
    ``msb(c) ^ msb(r)`` packed 64 per word (element ``64 w + b`` in bit ``b`` of word ``w``);
    on XOR shares of ``r`` (``rb``), with the public parts added by party 0."""
    top = numba.uint64(1) << numba.uint64(63)
    one = numba.uint64(1)
    s63 = numba.uint64(63)
    for w in range(tops.shape[0]):
        acc = numba.uint64(0)
        for b in range(64):
            i = 64 * w + b
            c = mine[i] + other[i]
            r = rb[i]
            notc = ~c
            g[i] = notc & r & ~top
            t = r >> s63
            if party0:
                p[i] = (notc ^ r) | top
                t ^= c >> s63
            else:
                p[i] = r & ~top
            acc |= (t & one) << numba.uint64(b)
        tops[w] = acc


@numba.njit(cache=True, nogil=True)
def b2a_corr(rho0, rho1, positions, ra0, out):
    """Dealer: ``out[i, j] = bit_{positions[j]}(rho0[i] ^ rho1[i]) - ra0[i, j]``."""
    one = numba.uint64(1)
    for i in range(rho0.shape[0]):
        rho = rho0[i] ^ rho1[i]
        for j in range(positions.shape[0]):
            out[i, j] = ((rho >> numba.uint64(positions[j])) & one) - ra0[i, j]


@numba.njit(cache=True, nogil=True)
def b2a_weighted(e, ra, positions, weights, party0, out):
    """``out[k, i] = sum_j weights[k, j] * bit_ij`` where this party's arithmetic share of
    bit ``j`` of element ``i`` is ``[party0] e_ij + ra[i, j] (1 - 2 e_ij)`` (``e`` the
    opened masked words)."""
    one = numba.uint64(1)
    nk = out.shape[0]
    for i in range(e.shape[0]):
        ei = e[i]
        for k in range(nk):
            acc = numba.uint64(0)
            for j in range(positions.shape[0]):
                ej = (ei >> numba.uint64(positions[j])) & one
                share = ra[i, j] * (one - (ej << one))
                if party0:
                    share += ej
                acc += weights[k, j] * share
            out[k, i] = acc


@numba.njit(cache=True, nogil=True)
def b2a_plain(e, ra, positions, party0, out):
    """``out[i, j]`` = this party's arithmetic share of bit ``positions[j]`` of element
    ``i``: ``[party0] e_ij + ra[i, j] (1 - 2 e_ij)``."""
    one = numba.uint64(1)
    for i in range(e.shape[0]):
        ei = e[i]
        for j in range(positions.shape[0]):
            ej = (ei >> numba.uint64(positions[j])) & one
            share = ra[i, j] * (one - (ej << one))
            if party0:
                share += ej
            out[i, j] = share


# -- exact Z_2^64 matrix products through float64 BLAS ------------------------------------
#
# A uint64 ``x`` is cut into limbs x = x0 + x1 * 2^22 + x2 * 2^43 of 22, 21 and 21 bits. A
# float64 product of two limbs (< 2^44) summed over at most 512 terms stays below 2^53, so
# dgemm computes it exactly. Modulo 2^64 only the limb pairs with shift < 64 matter:
# (0,0) at 0, (0,1) and (1,0) at 22, (0,2) and (2,0) at 43, (1,1) at 44 -- six dgemms.

LIMB_SHIFTS = (0, 22, 43)
LIMB_K = 512  # the largest inner dimension one slab may have


@numba.njit(cache=True, nogil=True)
def split_limbs(x, l0, l1, l2):
    """The three float64 limbs of the uint64 matrix ``x`` (any 2-D shape, C order)."""
    m0 = numba.uint64((1 << 22) - 1)
    m1 = numba.uint64((1 << 21) - 1)
    s1 = numba.uint64(22)
    s2 = numba.uint64(43)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            v = x[i, j]
            l0[i, j] = numba.float64(v & m0)
            l1[i, j] = numba.float64((v >> s1) & m1)
            l2[i, j] = numba.float64(v >> s2)


@numba.njit(cache=True, nogil=True)
def combine_limbs(p00, p01, p10, p02, p20, p11, out):
    """``out += p00 + (p01 + p10) 2^22 + (p02 + p20) 2^43 + p11 2^44`` modulo 2^64, each
    ``p`` an exact integer-valued float64 matrix below 2^53."""
    s22 = numba.uint64(22)
    s43 = numba.uint64(43)
    s44 = numba.uint64(44)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] += (numba.uint64(p00[i, j])
                          + ((numba.uint64(p01[i, j]) + numba.uint64(p10[i, j])) << s22)
                          + ((numba.uint64(p02[i, j]) + numba.uint64(p20[i, j])) << s43)
                          + (numba.uint64(p11[i, j]) << s44))
