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
