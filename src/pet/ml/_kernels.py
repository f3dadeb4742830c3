"""numba kernels of :mod:`pet.ml`: plain loops over uint64 arrays (arithmetic wraps
modulo 2^64), no validation and no randomness; the callers check shapes and dtypes."""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def bin_sums_u64(codes, y, out):
    """``out[codes[i, f], :] += y[i, :]`` for every row ``i`` and feature ``f``
    (``out`` zeroed by the caller): the per-bin sums of every feature at once."""
    n, nf = codes.shape
    t = y.shape[1]
    for i in range(n):
        for f in range(nf):
            row = out[codes[i, f]]
            for j in range(t):
                row[j] += y[i, j]
    return out


@numba.njit(cache=True, nogil=True)
def dense_matmul_u64(a, b, out):
    """``out[:] = a @ b`` modulo 2^64 for ``a`` (m, k), ``b`` (k, t) with small ``t``
    (i-k-j order, blocked over ``k`` so the rows of ``b`` stay in cache)."""
    m, kk = a.shape
    t = b.shape[1]
    for i in range(m):
        for j in range(t):
            out[i, j] = 0
    block = 4096
    for k0 in range(0, kk, block):
        k1 = min(kk, k0 + block)
        for i in range(m):
            orow = out[i]
            arow = a[i]
            for k in range(k0, k1):
                aik = arow[k]
                brow = b[k]
                for j in range(t):
                    orow[j] += aik * brow[j]
    return out
