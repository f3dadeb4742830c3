"""numba kernels of :mod:`pet.mpc.he`: small modular arithmetic on uint64 without 128-bit
products (Horner steps whose partial sums stay below 2^64)."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["limbs_mod64", "limbs_mod", "add_flood", "garner_mod64"]


@numba.njit(cache=True, inline="always")
def _mulhi(a, b):
    """High 64 bits of the 128-bit product a * b (32-bit halves)."""
    m32 = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)
    al, ah, bl, bh = a & m32, a >> s32, b & m32, b >> s32
    p0, p1, p2, p3 = al * bl, al * bh, ah * bl, ah * bh
    mid = (p0 >> s32) + (p1 & m32) + (p2 & m32)
    return p3 + (p1 >> s32) + (p2 >> s32) + (mid >> s32)


@numba.njit(cache=True, inline="always")
def _mulmod_shoup(a, w, wp, q):
    """a * w mod q with Shoup's precomputed wp = floor(w 2^64 / q) (w < q < 2^63, any a)."""
    r = a * w - _mulhi(a, wp) * q
    return r - q if r >= q else r


@numba.njit(cache=True, inline="always")
def _mulmod46(a, b, t):
    """a * b mod t for a, b < t < 2^47: 16-bit Horner steps (r*2^16 + d*b < 2^64)."""
    r = np.uint64(0)
    for s in range(48, -1, -16):
        d = (a >> np.uint64(s)) & np.uint64(0xFFFF)
        r = (r * np.uint64(65536) + d * b) % t
    return r


@numba.njit(cache=True)
def limbs_mod64(words):
    """sum_i words[i] 2^(16 i) mod 2^64 per column of (limbs, M) 16-bit limbs."""
    limbs, M = words.shape
    out = np.zeros(M, dtype=np.uint64)
    for i in range(min(limbs, 4)):
        sh = np.uint64(16 * i)
        for j in range(M):
            out[j] += words[i, j] << sh
    return out


@numba.njit(cache=True)
def limbs_mod(words, t, add):
    """(sum_i words[i] 2^(16 i) + add) mod t per column, t < 2^47, add < t."""
    limbs, M = words.shape
    out = np.empty(M, dtype=np.uint64)
    for j in range(M):
        r = np.uint64(0)
        for i in range(limbs - 1, -1, -1):
            r = (r * np.uint64(65536) + words[i, j]) % t
        out[j] = (r + add) % t
    return out


def add_flood(c0, q, flood_bits, rnd):
    """Add to ``c0`` (L, N) (RNS form, primes ``q``) the integer ``f = u - 2^F`` per
    coefficient, ``u = a 2^120 + b 2^60 + c`` uniform in ``[0, 2^(F+1))`` from the words
    ``rnd`` (3, N) (``F <= 179``)."""
    hi_bits = flood_bits + 1 - 120
    a = rnd[0] >> np.uint64(64 - hi_bits) if hi_bits > 0 else np.zeros_like(rnd[0])
    b = rnd[1] & np.uint64((1 << min(60, max(0, flood_bits + 1 - 60))) - 1)
    c = rnd[2] & np.uint64((1 << min(60, flood_bits + 1)) - 1)
    qi = [int(x) for x in q]
    consts = np.array([[pow(2, 120, x), (pow(2, 120, x) << 64) // x, pow(2, 60, x), (pow(2, 60, x) << 64) // x,
                        pow(2, flood_bits, x)] for x in qi], dtype=np.uint64)
    _add_flood(c0, q, a, b, c, consts)


@numba.njit(cache=True)
def _add_flood(c0, q, a, b, c, consts):
    L, N = c0.shape
    for i in range(L):
        qi = q[i]
        for j in range(N):
            v = _mulmod_shoup(a[j], consts[i, 0], consts[i, 1], qi)
            v += _mulmod_shoup(b[j], consts[i, 2], consts[i, 3], qi) + c[j] % qi + (qi - consts[i, 4])
            c0[i, j] = (c0[i, j] + v % qi) % qi


@numba.njit(cache=True)
def _garner(res, ts, inv, radix, out):
    L, M = res.shape
    a = np.empty(L, dtype=np.uint64)
    for e in range(M):
        acc = np.uint64(0)
        for i in range(L):
            ti = ts[i]
            x = res[i, e] % ti
            for j in range(i):
                x = (x + ti - a[j] % ti) % ti
                x = _mulmod46(x, inv[j, i], ti)
            a[i] = x
            acc += x * radix[i]
        out[e] = acc


def garner_mod64(residues, ts):
    """The integer W in [0, prod ts) with W = residues[i] mod ts[i], reduced mod 2^64
    (Garner's mixed radix: W = a_0 + a_1 t_0 + a_2 t_0 t_1 + ...)."""
    L = len(ts)
    tl = [int(t) for t in ts]
    inv = np.zeros((L, L), dtype=np.uint64)
    radix = np.zeros(L, dtype=np.uint64)
    prod = 1
    for i in range(L):
        radix[i] = prod % (1 << 64)
        prod *= tl[i]
        for j in range(i):
            inv[j, i] = pow(tl[j], -1, tl[i])
    out = np.empty(residues.shape[1], dtype=np.uint64)
    _garner(np.ascontiguousarray(residues), np.asarray(ts, dtype=np.uint64), inv, radix, out)
    return out


@numba.njit(cache=True)
def uniform_mod(words, t):
    """(words[0] 2^64 + words[1]) mod t per column of (2, M) uniform words: uniform mod t
    within t / 2^128 per value (t < 2^47)."""
    M = words.shape[1]
    c = np.uint64(18446744073709551615) % t + np.uint64(1)  # 2^64 mod t (t is not a power of 2)
    out = np.empty(M, dtype=np.uint64)
    for j in range(M):
        out[j] = (_mulmod46(words[0, j] % t, c % t, t) + words[1, j] % t) % t
    return out
