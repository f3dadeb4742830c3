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
