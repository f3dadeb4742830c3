"""numba kernels of :mod:`pet.mpc`: plain loops over uint64 arrays, wrap-around arithmetic.

No validation and no randomness here; the callers (``arithmetic.py``) check shapes and
dtypes. All arithmetic is modulo 2^64 (uint64 overflow wraps in numba as in C).
"""

from __future__ import annotations

import numba
import numpy as np


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
