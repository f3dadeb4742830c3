"""numba kernels of the wide (KKRT, 512-column) OT extension: bit-matrix transposes of
``64 H`` rows at once and the receiver's ``u`` matrix. Bit conventions as in
:mod:`pet.mpc.ot._kernels` (bit ``k`` of a packed vector = bit ``k % 64`` of word ``k // 64``)."""

from __future__ import annotations

import numba
import numpy as np

from pet.mpc.ot._kernels import BLOCKS, transpose_blocks


@numba.njit(cache=True, nogil=True)
def rows_to_ots(rows, out):
    """``rows``: (64 H, W) -- row ``j`` a packed vector over ``64 W`` OTs. ``out``:
    (64 W, H) -- OT ``k``'s ``64 H`` bits (bit ``j`` = bit ``j % 64`` of ``out[k, j // 64]``)."""
    H = rows.shape[0] // 64
    W = rows.shape[1]
    buf = np.empty((64, BLOCKS), dtype=np.uint64)
    for h in range(H):
        w0 = 0
        while w0 < W:
            nb = min(BLOCKS, W - w0)
            for i in range(64):
                for b in range(nb):
                    buf[i, b] = rows[64 * h + i, w0 + b]
            transpose_blocks(buf, nb)
            for b in range(nb):
                base = 64 * (w0 + b)
                for i in range(64):
                    out[base + i, h] = buf[i, b]
            w0 += nb


@numba.njit(cache=True, nogil=True)
def receiver_u(codes, t0, t1, u):
    """KKRT receiver: ``u[j] = t0[j] ^ t1[j] ^ column j of the codewords``, where
    ``codes`` is (H / 2, 64 W, 2) -- word ``h`` of OT ``k``'s codeword is
    ``codes[h // 2, k, h % 2]`` -- and ``t0``, ``t1``, ``u`` are (64 H, W)."""
    H = 2 * codes.shape[0]
    W = codes.shape[1] // 64
    buf = np.empty((64, BLOCKS), dtype=np.uint64)
    for h in range(H):
        w0 = 0
        while w0 < W:
            nb = min(BLOCKS, W - w0)
            for b in range(nb):
                base = 64 * (w0 + b)
                for i in range(64):
                    buf[i, b] = codes[h >> 1, base + i, h & 1]
            transpose_blocks(buf, nb)
            for i in range(64):
                j = 64 * h + i
                for b in range(nb):
                    u[j, w0 + b] = buf[i, b] ^ t0[j, w0 + b] ^ t1[j, w0 + b]
            w0 += nb
