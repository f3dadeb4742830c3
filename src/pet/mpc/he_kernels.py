"""numba kernels of :mod:`pet.mpc.he`: modular arithmetic on uint64 without 128-bit products
(32-bit halves and Shoup's precomputed quotients): flooding, and the encoding of a message
mod 2^64 into the ciphertext modulus ``Q`` and back."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["add_flood", "scaled_consts", "encode_scaled", "decode_scaled"]


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


@numba.njit(cache=True, nogil=True)
def _add_flood(c0, q, a, b, c, consts):
    L, N = c0.shape
    for i in range(L):
        qi = q[i]
        for j in range(N):
            v = _mulmod_shoup(a[j], consts[i, 0], consts[i, 1], qi)
            v += _mulmod_shoup(b[j], consts[i, 2], consts[i, 3], qi) + c[j] % qi + (qi - consts[i, 4])
            c0[i, j] = (c0[i, j] + v % qi) % qi


# -- the 2^64 plaintext in the ciphertext-modulus domain (one pass, no CRT over t) ------------

def scaled_consts(q):
    """Constants of :func:`encode_scaled` / :func:`decode_scaled` for the RNS primes ``q``
    (each < 2^62) of ``Q = prod q``: ``Q = D 2^64 + rho``; per prime ``D mod q_i`` and
    ``(Q/q_i)^-1 mod q_i`` (with Shoup's precomputations), ``2^64 div q_i`` and
    ``2^64 mod q_i`` (with Shoup's)."""
    ql = [int(x) for x in q]
    Q = 1
    for x in ql:
        Q *= x
    D, rho = divmod(Q, 1 << 64)
    rows = []
    for x in ql:
        d = D % x
        inv = pow(Q // x, -1, x)
        g, h = divmod(1 << 64, x)
        rows.append([d, (d << 64) // x, inv, (inv << 64) // x, g, h, (h << 64) // x])
    return np.array(rows, dtype=np.uint64), np.uint64(rho)


@numba.njit(cache=True, nogil=True)
def _encode_scaled(vals, q, consts, rho, out):
    L = q.shape[0]
    M = vals.shape[0]
    s63 = np.uint64(63)
    for j in range(M):
        v = vals[j]
        r = _mulhi(rho, v) + ((rho * v) >> s63)  # round(rho v / 2^64) < 2^64
        for i in range(L):
            qi = q[i]
            out[i, j] = (_mulmod_shoup(v, consts[i, 0], consts[i, 1], qi) + r % qi) % qi


def encode_scaled(vals, q, consts, rho):
    """``round(Q v / 2^64) mod q_i`` (L, M) for ``v`` in ``[0, 2^64)`` (M,) uint64: the
    message ``v mod 2^64`` scaled into ``Z_Q`` (Cheetah's encoding; rounding error <= 1/2)."""
    vals = np.ascontiguousarray(vals, dtype=np.uint64).reshape(-1)
    out = np.empty((len(q), vals.shape[0]), dtype=np.uint64)
    _encode_scaled(vals, np.asarray(q, dtype=np.uint64), consts, rho, out)
    return out


@numba.njit(cache=True, nogil=True)
def _decode_scaled(res, q, consts, out):
    L, M = res.shape
    for j in range(M):
        whole = np.uint64(0)
        frac = 0.0
        for i in range(L):
            qi = q[i]
            a = _mulmod_shoup(res[i, j] % qi, consts[i, 2], consts[i, 3], qi)  # a_i = v_i (Q/q_i)^-1
            quo = _mulhi(a, consts[i, 6])  # floor(a h_i / q_i), maybe one short
            rem = a * consts[i, 5] - quo * qi
            if rem >= qi:
                rem -= qi
                quo += np.uint64(1)
            whole += a * consts[i, 4] + quo
            frac += np.float64(rem) / np.float64(qi)
        out[j] = whole + np.uint64(np.floor(frac + 0.5))


def decode_scaled(res, q, consts):
    """``round(2^64 v / Q) mod 2^64`` per column of residues ``v mod q_i`` (L, M): with
    ``a_i = v_i (Q/q_i)^-1 mod q_i``, ``2^64 v / Q = sum_i a_i 2^64 / q_i`` minus a multiple
    of 2^64, so the integer parts are summed mod 2^64 and the fractions in float64 (exact
    enough: the noise bound keeps the true fraction within 1/4 of an integer)."""
    res = np.ascontiguousarray(res, dtype=np.uint64)
    out = np.empty(res.shape[1], dtype=np.uint64)
    _decode_scaled(res, np.asarray(q, dtype=np.uint64), consts, out)
    return out


# -- products in the NTT domain (Montgomery, releases the GIL) ---------------------------------

def mont_consts(q):
    """Per prime ``q_i`` (odd, < 2^62): ``-q_i^-1 mod 2^64`` and ``2^128 mod q_i`` (to enter
    Montgomery form), (L, 2) uint64."""
    return np.array([[(-pow(int(x), -1, 1 << 64)) % (1 << 64), pow(2, 128, int(x))] for x in q], dtype=np.uint64)


@numba.njit(cache=True, inline="always")
def _mont(a, b, q, qneg):
    """``a b 2^-64 mod q`` for ``a, b < q < 2^62`` (Montgomery reduction of the 128-bit product)."""
    hi = _mulhi(a, b)
    lo = a * b
    m = lo * qneg
    t = hi + _mulhi(m, q) + (np.uint64(1) if lo != np.uint64(0) else np.uint64(0))
    return t - q if t >= q else t


@numba.njit(cache=True, nogil=True)
def to_montgomery(words, q, mc):
    """Words (..., L, N) (each < q_i) times 2^64 mod q_i, in place."""
    L, N = words.shape[-2], words.shape[-1]
    flat = words.reshape(-1, L, N)
    for p in range(flat.shape[0]):
        for i in range(L):
            qi, qn, r2 = q[i], mc[i, 0], mc[i, 1]
            for j in range(N):
                flat[p, i, j] = _mont(flat[p, i, j], r2, qi, qn)


@numba.njit(cache=True, nogil=True)
def ntt_mac(cts, pts, live, q, mc, acc):
    """``acc (2, L, N) = sum_a cts[a] (2, L, N) * pts[a] (L, N) mod q_i`` pointwise (NTT
    domain) over the ``a`` with ``live[a]``; ``pts`` in Montgomery form."""
    L, N = acc.shape[1], acc.shape[2]
    acc[:] = 0
    for a in range(cts.shape[0]):
        if not live[a]:
            continue
        for c in range(2):
            for i in range(L):
                qi, qn = q[i], mc[i, 0]
                for j in range(N):
                    v = acc[c, i, j] + _mont(cts[a, c, i, j], pts[a, i, j], qi, qn)
                    acc[c, i, j] = v - qi if v >= qi else v


@numba.njit(cache=True, nogil=True)
def lift_inplace(data, rnd, q):
    """Wire form in place: ``data[r, i, j] += (rnd[r, i, j] & 15) * q[i]`` for RNS words
    ``data`` viewed as (R, L, M) (each ``< q[i] < 2^60``, so the sum stays below 2^64) and
    random bytes ``rnd`` of the same shape (no temporaries: the arrays are hundreds of MB)."""
    R, L, M = data.shape
    for r in range(R):
        for i in range(L):
            qi = q[i]
            for j in range(M):
                data[r, i, j] += np.uint64(rnd[r, i, j] & np.uint8(15)) * qi


@numba.njit(cache=True, nogil=True)
def reduce_into(data, q, out):
    """``out[r, i, j] = data[r, i, j] mod q[i]`` for (R, L, M) wire words."""
    R, L, M = data.shape
    for r in range(R):
        for i in range(L):
            qi = q[i]
            for j in range(M):
                out[r, i, j] = data[r, i, j] % qi


@numba.njit(cache=True, nogil=True)
def add_mod_inplace(x, y, q):
    """``x[i, j] = (x[i, j] + y[i, j]) mod q[i]`` for residues ``x, y < q[i] < 2^63``."""
    L, M = x.shape
    for i in range(L):
        qi = q[i]
        for j in range(M):
            s = x[i, j] + y[i, j]
            x[i, j] = s - qi if s >= qi else s
