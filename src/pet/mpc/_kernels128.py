"""numba kernels of the wide ring Z_2^128 (:mod:`pet.mpc.ring128`): two uint64 limbs.

An element is a pair of uint64 words ``(lo, hi)`` with value ``lo + 2^64 hi``; an array
of ``n`` elements is a C-contiguous ``(n, 2)`` uint64 array (column 0 = low limb). All
arithmetic is modulo 2^128. No validation and no randomness here: the callers check
shapes and dtypes.
"""

from __future__ import annotations

import numba
import numpy as np

_M32 = np.uint64(0xFFFFFFFF)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)


@numba.njit(cache=True, nogil=True, inline="always")
def _mul64(a, b):
    """Full product of two uint64 words: ``(lo, hi)`` of the 128-bit result."""
    m32 = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)
    al, ah = a & m32, a >> s32
    bl, bh = b & m32, b >> s32
    ll = al * bl
    lh = al * bh
    hl = ah * bl
    hh = ah * bh
    mid = (ll >> s32) + (lh & m32) + (hl & m32)
    lo = (ll & m32) | (mid << s32)
    hi = hh + (lh >> s32) + (hl >> s32) + (mid >> s32)
    return lo, hi


@numba.njit(cache=True, nogil=True, inline="always")
def _mul128(alo, ahi, blo, bhi):
    """``a * b mod 2^128``."""
    lo, hi = _mul64(alo, blo)
    return lo, hi + alo * bhi + ahi * blo


@numba.njit(cache=True, nogil=True, inline="always")
def _add128(alo, ahi, blo, bhi):
    lo = alo + blo
    return lo, ahi + bhi + (np.uint64(1) if lo < alo else np.uint64(0))


@numba.njit(cache=True, nogil=True, inline="always")
def _sub128(alo, ahi, blo, bhi):
    lo = alo - blo
    return lo, ahi - bhi - (np.uint64(1) if alo < blo else np.uint64(0))


@numba.njit(cache=True, nogil=True, inline="always")
def _shl128(lo, hi, s):
    """``(lo, hi) << s`` for ``0 <= s < 128``."""
    if s == 0:
        return lo, hi
    if s < 64:
        return lo << np.uint64(s), (hi << np.uint64(s)) | (lo >> np.uint64(64 - s))
    return np.uint64(0), lo << np.uint64(s - 64)


@numba.njit(cache=True, nogil=True, inline="always")
def _shr128(lo, hi, s):
    """Logical ``(lo, hi) >> s`` for ``0 <= s < 128``."""
    if s == 0:
        return lo, hi
    if s < 64:
        return (lo >> np.uint64(s)) | (hi << np.uint64(64 - s)), hi >> np.uint64(s)
    return hi >> np.uint64(s - 64), np.uint64(0)


@numba.njit(cache=True, nogil=True)
def add(x, y, out):
    """``out = x + y`` (n, 2)."""
    for i in range(x.shape[0]):
        out[i, 0], out[i, 1] = _add128(x[i, 0], x[i, 1], y[i, 0], y[i, 1])


@numba.njit(cache=True, nogil=True)
def sub(x, y, out):
    """``out = x - y`` (n, 2)."""
    for i in range(x.shape[0]):
        out[i, 0], out[i, 1] = _sub128(x[i, 0], x[i, 1], y[i, 0], y[i, 1])


@numba.njit(cache=True, nogil=True)
def mul(x, y, out):
    """``out = x * y`` elementwise (n, 2)."""
    for i in range(x.shape[0]):
        out[i, 0], out[i, 1] = _mul128(x[i, 0], x[i, 1], y[i, 0], y[i, 1])


@numba.njit(cache=True, nogil=True)
def sum_rows(x, out):
    """``out[j] = sum_i x[i, j]`` for ``x`` (m, k, 2), ``out`` (k, 2) zeroed."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[j, 0], out[j, 1] = _add128(out[j, 0], out[j, 1], x[i, j, 0], x[i, j, 1])


@numba.njit(cache=True, nogil=True)
def triple_corr(a0, a1, b0, b1, c0, out):
    """Dealer: ``out = (a0 + a1)(b0 + b1) - c0`` (the receiver's ``c`` of a 128-bit
    Beaver triple)."""
    for i in range(a0.shape[0]):
        alo, ahi = _add128(a0[i, 0], a0[i, 1], a1[i, 0], a1[i, 1])
        blo, bhi = _add128(b0[i, 0], b0[i, 1], b1[i, 0], b1[i, 1])
        clo, chi = _mul128(alo, ahi, blo, bhi)
        out[i, 0], out[i, 1] = _sub128(clo, chi, c0[i, 0], c0[i, 1])


@numba.njit(cache=True, nogil=True)
def beaver_finish(d, e, a, b, c, party0, out):
    """``out = c + d b + e a (+ d e at party 0)`` with opened ``d = x - a``, ``e = y - b``."""
    for i in range(d.shape[0]):
        lo, hi = c[i, 0], c[i, 1]
        tlo, thi = _mul128(d[i, 0], d[i, 1], b[i, 0], b[i, 1])
        lo, hi = _add128(lo, hi, tlo, thi)
        tlo, thi = _mul128(e[i, 0], e[i, 1], a[i, 0], a[i, 1])
        lo, hi = _add128(lo, hi, tlo, thi)
        if party0:
            tlo, thi = _mul128(d[i, 0], d[i, 1], e[i, 0], e[i, 1])
            lo, hi = _add128(lo, hi, tlo, thi)
        out[i, 0], out[i, 1] = lo, hi


@numba.njit(cache=True, nogil=True)
def scale_int(x, k, out):
    """``out = x * k`` for int64 ``k`` (broadcast: ``k`` has ``n`` entries)."""
    for i in range(x.shape[0]):
        kv = k[i]
        klo = np.uint64(kv)
        khi = np.uint64(0) - np.uint64(1) if kv < 0 else np.uint64(0)
        out[i, 0], out[i, 1] = _mul128(x[i, 0], x[i, 1], klo, khi)


@numba.njit(cache=True, nogil=True)
def shift_left(x, s, out):
    """``out = x << s`` (``0 <= s < 128``)."""
    for i in range(x.shape[0]):
        out[i, 0], out[i, 1] = _shl128(x[i, 0], x[i, 1], s)


@numba.njit(cache=True, nogil=True)
def lift_words(x, out):
    """Sign-extend int64 words to 128 bits (an encoding, not a sharing)."""
    for i in range(x.shape[0]):
        out[i, 0] = x[i]
        out[i, 1] = np.uint64(0) - (x[i] >> np.uint64(63))


# -- the wrap bit (lift 64 -> 128 and truncation in Z_2^128) -------------------------------


@numba.njit(cache=True, nogil=True, inline="always")
def _and_share(i, own, prod, dw, ew, party0):
    """This party's share (mod 2^64) of ``m0 m1`` where party 0 opened ``d = m0 ^ a``
    and party 1 ``e = m1 ^ b``: ``de + d(1-2e) b + e(1-2d) a + (1-2d)(1-2e) ab``."""
    one = np.uint64(1)
    d = (dw[i >> 6] >> np.uint64(i & 63)) & one
    e = (ew[i >> 6] >> np.uint64(i & 63)) & one
    p = prod[i]
    if d != e:
        p = np.uint64(0) - p
    t = np.uint64(0)
    if party0:
        t = d & e
        if e:
            t += (np.uint64(0) - own[i]) if d else own[i]
    elif d:
        t = (np.uint64(0) - own[i]) if e else own[i]
    return t + p


@numba.njit(cache=True, nogil=True)
def mask_bits(top, own, packed):
    """``packed`` (zeroed, ceil(n/64) words): bit ``i`` = ``msb(top[i]) ^ own[i]``."""
    for i in range(top.shape[0]):
        packed[i >> 6] |= ((top[i] >> np.uint64(63)) ^ own[i]) << np.uint64(i & 63)


@numba.njit(cache=True, nogil=True)
def lift_finish(xp, own, prod, dw, ew, party0, out):
    """This party's 128-bit share of ``x`` from its 64-bit share ``xp`` of ``x' = x +
    2^62`` (``x' in [0, 2^63)``): ``x' = xp_0 + xp_1 - 2^64 w`` with ``w = m0 OR m1``,
    ``m_p = msb(xp_p)``; the share is ``(xp, -[w])`` minus ``2^62`` at party 0."""
    off = np.uint64(1) << np.uint64(62)
    for i in range(xp.shape[0]):
        mm = _and_share(i, own, prod, dw, ew, party0)
        w = (xp[i] >> np.uint64(63)) - mm
        lo, hi = xp[i], np.uint64(0) - w
        if party0:
            lo, hi = _sub128(lo, hi, off, np.uint64(0))
        out[i, 0], out[i, 1] = lo, hi


@numba.njit(cache=True, nogil=True)
def trunc_finish(xp, own, prod, dw, ew, shift, party0, out):
    """This party's share of ``x >> shift`` (``1 <= shift <= 64``) from its share ``xp``
    of ``x' = x + 2^126`` (``x' in [0, 2^127)``): ``(xp >> s) - 2^(128-s) [w]``, party 0
    adds ``1 - 2^(126-s)``; the sum is ``floor(x / 2^s)`` or one more."""
    for i in range(xp.shape[0]):
        mm = _and_share(i, own, prod, dw, ew, party0)
        w = (xp[i, 1] >> np.uint64(63)) - mm  # share of w mod 2^64 (enough: times 2^(128-s), s <= 64)
        lo, hi = _shr128(xp[i, 0], xp[i, 1], shift)
        wlo, whi = _shl128(w, np.uint64(0), 128 - shift)
        lo, hi = _sub128(lo, hi, wlo, whi)
        if party0:
            lo, hi = _add128(lo, hi, np.uint64(1), np.uint64(0))
            olo, ohi = _shl128(np.uint64(1), np.uint64(0), 126 - shift)
            lo, hi = _sub128(lo, hi, olo, ohi)
        out[i, 0], out[i, 1] = lo, hi


# -- 128-bit Gilboa products (OT source) ---------------------------------------------------


@numba.njit(cache=True, nogil=True)
def gilboa_send(h0, h1, lo, a, corr, share):
    """Sender of OTs ``lo .. lo + len(h0)`` of 128-bit Gilboa products (OT ``128 e + i``
    carries bit ``i`` of element ``e``): correction ``x0 + a[e] - x1`` (2 words), and
    ``share[e] -= 2^i x0``."""
    for j in range(h0.shape[0]):
        k = lo + j
        e = k >> 7
        i = k & 127
        clo, chi = _add128(h0[j, 0], h0[j, 1], a[e, 0], a[e, 1])
        corr[2 * j], corr[2 * j + 1] = _sub128(clo, chi, h1[j, 0], h1[j, 1])
        tlo, thi = _shl128(h0[j, 0], h0[j, 1], i)
        share[e, 0], share[e, 1] = _sub128(share[e, 0], share[e, 1], tlo, thi)


@numba.njit(cache=True, nogil=True)
def gilboa_recv(ht, lo, b, corr, share):
    """Receiver: ``y = ht + b_i * corr``; ``share[e] += 2^i y``."""
    for j in range(ht.shape[0]):
        k = lo + j
        e = k >> 7
        i = k & 127
        bit = (b[e, i >> 6] >> np.uint64(i & 63)) & np.uint64(1)
        ylo, yhi = ht[j, 0], ht[j, 1]
        if bit:
            ylo, yhi = _add128(ylo, yhi, corr[2 * j], corr[2 * j + 1])
        tlo, thi = _shl128(ylo, yhi, i)
        share[e, 0], share[e, 1] = _add128(share[e, 0], share[e, 1], tlo, thi)


@numba.njit(cache=True, nogil=True)
def and_finish(own, prod, dw, ew, party0, out):
    """This party's share (mod 2^64) of ``m0 m1`` (the opened bits of :func:`mask_bits`)."""
    for i in range(out.shape[0]):
        out[i] = _and_share(i, own, prod, dw, ew, party0)
