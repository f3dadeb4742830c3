"""numba kernels of the narrow comparison (:func:`pet.mpc.boolean.msb` with ``bits < 64``):
plain loops, no validation, no randomness.

A narrow comparison works on ``L``-bit lanes (``L`` in 8, 16, 32): element ``i`` of a
packed word array sits in lane ``i % (64 // L)`` (bits ``L (i % K) .. L (i % K) + L - 1``)
of word ``i // (64 // L)``, so the comparison tree of :mod:`pet.mpc.boolean` (which
combines adjacent bit pairs and compacts, :func:`pet.mpc._kernels.split_pairs`) works
within aligned lanes and, after ``log2(L)`` levels, leaves element ``64 w + b`` in bit
``b`` of word ``w`` -- the same layout as the 64-bit tree's output.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def narrow_setup(mine, other, rb, lane, party0, g, p, tops):
    """Comparison tree inputs after opening ``c = (x + r) mod 2^L`` (``L = lane``; ``mine``
    and ``other`` are both parties' ``(x_j + r_j) mod 2^L``): per element, in its lane,
    generate ``g = ~c & r`` and propagate ``p = ~(c ^ r)`` on the low ``L - 1`` bits (bit
    ``L - 1`` neutral: ``g = 0``, ``p = 1``), and ``msb_L(c) ^ msb_L(r)`` packed 64 per
    word (element ``64 w + b`` in bit ``b`` of word ``w``); on the XOR shares ``rb`` of
    ``r`` (its low ``L`` bits), the public parts added by party 0. ``g`` and ``p`` hold
    ``len(mine) * L / 64`` words and are overwritten."""
    one = np.uint64(1)
    L = np.uint64(lane)
    K = 64 // lane
    mask = (one << L) - one
    top = one << (L - one)
    low = top - one
    for w in range(g.shape[0]):
        g[w] = np.uint64(0)
        p[w] = np.uint64(0)
    for w in range(tops.shape[0]):
        acc = np.uint64(0)
        for b in range(64):
            i = 64 * w + b
            c = (np.uint64(mine[i]) + np.uint64(other[i])) & mask
            r = rb[i] & mask
            notc = ~c & mask
            gi = notc & r & low
            t = r >> (L - one)
            if party0:
                pi = ((notc ^ r) & low) | top
                t ^= c >> (L - one)
            else:
                pi = r & low
            sh = np.uint64(lane * (i % K))
            g[i // K] |= gi << sh
            p[i // K] |= pi << sh
            acc |= (t & one) << np.uint64(b)
        tops[w] = acc


@numba.njit(cache=True, nogil=True)
def narrow_operands(x, lane, party0, val, tops):
    """The millionaires' operands of ``msb_L(x_0 + x_1)`` (``L = lane``) packed in lanes:
    party 0 ``A = ~x_0 mod 2^(L-1)``, party 1 ``B = x_1 mod 2^(L-1)`` (the carry into bit
    ``L - 1`` of ``x_0 + x_1`` is ``[A < B]``), element ``i`` in lane ``i % K`` of word
    ``i // K`` of ``val`` (``K = 64 / L``; bit ``L - 1`` of every lane is 0); and bit
    ``L - 1`` of the own share, packed 64 per word (element ``64 w + b`` in bit ``b``)."""
    one = np.uint64(1)
    L = np.uint64(lane)
    K = 64 // lane
    low = (one << (L - one)) - one
    for w in range(val.shape[0]):
        val[w] = np.uint64(0)
    for w in range(tops.shape[0]):
        acc = np.uint64(0)
        for b in range(64):
            i = 64 * w + b
            xi = x[i]
            v = (~xi & low) if party0 else (xi & low)
            val[i // K] |= v << np.uint64(lane * (i % K))
            acc |= ((xi >> (L - one)) & one) << np.uint64(b)
        tops[w] = acc
