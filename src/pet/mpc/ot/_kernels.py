"""numba kernels of the OT engine: plain loops, no validation, no randomness.

Bit conventions: a packed bit vector is a uint64 array, bit ``k`` of the vector is bit
``k % 64`` of word ``k // 64`` (little-endian words, least significant bit first), so a
uint64 array's memory read as bytes with ``bitorder="little"`` is the same vector.
"""

from __future__ import annotations

import numba
import numpy as np

BLOCKS = 32  # 64x64 blocks transposed together (the inner loop over blocks vectorises)


@numba.njit(cache=True, nogil=True, inline="always")
def transpose_blocks(buf, nb):
    """Transpose ``nb`` 64x64 bit blocks in place: ``buf[i, b]`` is row ``i`` of block ``b``
    (bit ``c`` = column ``c``); afterwards row ``c`` holds the former column ``c``."""
    j = 32
    m = np.uint64(0x00000000FFFFFFFF)
    while j != 0:
        sj = np.uint64(j)
        k = 0
        while k < 64:
            for i in range(k, k + j):
                for b in range(nb):
                    lo = buf[i, b]
                    hi = buf[i + j, b]
                    t = ((lo >> sj) ^ hi) & m
                    buf[i + j, b] = hi ^ t
                    buf[i, b] = lo ^ (t << sj)
            k += 2 * j
        j >>= 1
        m = m ^ (m << np.uint64(j))


@numba.njit(cache=True, nogil=True)
def transpose_rows_to_ots(rows, out):
    """``rows``: (128, W) -- row ``j`` is a packed vector over ``64 W`` OTs. ``out``:
    (64 W, 2) -- OT ``k``'s 128 bits (bit ``j`` = bit ``j % 64`` of ``out[k, j // 64]``)."""
    W = rows.shape[1]
    buf = np.empty((64, BLOCKS), dtype=np.uint64)
    for h in range(2):
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
def transpose_ots_to_rows(ots, rows, nrows):
    """Inverse of :func:`transpose_rows_to_ots` for the first ``nrows`` rows (1..128):
    ``ots`` (64 W, 2) -> ``rows`` (nrows, W)."""
    W = ots.shape[0] // 64
    buf = np.empty((64, BLOCKS), dtype=np.uint64)
    for h in range((nrows + 63) // 64):
        w0 = 0
        while w0 < W:
            nb = min(BLOCKS, W - w0)
            for b in range(nb):
                base = 64 * (w0 + b)
                for i in range(64):
                    buf[i, b] = ots[base + i, h]
            transpose_blocks(buf, nb)
            for i in range(min(64, nrows - 64 * h)):
                for b in range(nb):
                    rows[64 * h + i, w0 + b] = buf[i, b]
            w0 += nb


@numba.njit(cache=True, nogil=True)
def receiver_u(t0, t1, choice, u):
    """IKNP receiver: ``u[j] = t0[j] ^ t1[j] ^ choice`` for the 128 rows."""
    for j in range(t0.shape[0]):
        for w in range(t0.shape[1]):
            u[j, w] = t0[j, w] ^ t1[j, w] ^ choice[w]


@numba.njit(cache=True, nogil=True)
def sender_q(g, u, s_bits):
    """IKNP sender, in place: ``g[j] ^= u[j]`` where base choice bit ``s_j`` is 1."""
    for j in range(g.shape[0]):
        if s_bits[j]:
            for w in range(g.shape[1]):
                g[j, w] ^= u[j, w]


@numba.njit(cache=True, nogil=True)
def tweak_xor_block(y, z, n, counter, hi, start, m):
    """``z[i] = y[i] ^ (counter + (start + i) mod m, hi)`` for ``i < n``."""
    for i in range(n):
        kk = (start + i) % m
        z[i, 0] = y[i, 0] ^ (counter + np.uint64(kk))
        z[i, 1] = y[i, 1] ^ hi


@numba.njit(cache=True, nogil=True)
def xor_block_out(o, y, n, out, start):
    """``out[start + i] = o[i] ^ y[i]`` for ``i < n`` (the TCCR output)."""
    for i in range(n):
        out[start + i, 0] = o[i, 0] ^ y[i, 0]
        out[start + i, 1] = o[i, 1] ^ y[i, 1]


@numba.njit(cache=True, nogil=True)
def both_inputs(q, s0, s1, out):
    """``out[:m] = q``, ``out[m:] = q ^ s`` (the sender's two hash inputs per OT)."""
    m = q.shape[0]
    for k in range(m):
        out[k, 0] = q[k, 0]
        out[k, 1] = q[k, 1]
        out[m + k, 0] = q[k, 0] ^ s0
        out[m + k, 1] = q[k, 1] ^ s1


# -- Gilboa products: OT 64 e + i carries bit i of element e, message width 64 - i ---------


@numba.njit(cache=True, nogil=True)
def gilboa_send(h0, h1, a, corr, share):
    """Sender of ``len(a)`` Gilboa products: for OT ``(e, i)`` with ``x0 = h0[64e+i, 0]``
    the correction ``(x0 + a[e] - h1[64e+i, 0]) mod 2^(64-i)`` is appended to the bit
    stream ``corr`` (64 - i bits); ``share[e] = -sum_i 2^i x0``."""
    full = np.uint64(0xFFFFFFFFFFFFFFFF)
    cur = np.uint64(0)
    pos = 0
    nw = 0
    for e in range(a.shape[0]):
        ae = a[e]
        acc = np.uint64(0)
        for i in range(64):
            k = 64 * e + i
            x0 = h0[k, 0]
            acc += x0 << np.uint64(i)
            w = 64 - i
            v = (x0 + ae - h1[k, 0]) & (full >> np.uint64(i))
            cur |= v << np.uint64(pos)
            if pos + w >= 64:
                corr[nw] = cur
                nw += 1
                cur = (v >> np.uint64(64 - pos)) if pos > 0 else np.uint64(0)
                pos = pos + w - 64
            else:
                pos += w
        share[e] = np.uint64(0) - acc
    if pos > 0:
        corr[nw] = cur


@numba.njit(cache=True, nogil=True)
def gilboa_recv(ht, b, corr, share):
    """Receiver of Gilboa products with choice bits ``b`` (bit ``i`` of ``b[e]``):
    ``y = ht[64e+i, 0] + b_i * d`` with ``d`` read from ``corr`` (64 - i bits);
    ``share[e] = sum_i 2^i y``."""
    full = np.uint64(0xFFFFFFFFFFFFFFFF)
    one = np.uint64(1)
    nw = 0
    pos = 0
    for e in range(b.shape[0]):
        be = b[e]
        acc = np.uint64(0)
        for i in range(64):
            w = 64 - i
            v = corr[nw] >> np.uint64(pos)
            if pos + w > 64:
                v |= corr[nw + 1] << np.uint64(64 - pos)
            if pos + w >= 64:
                nw += 1
                pos = pos + w - 64
            else:
                pos += w
            v &= full >> np.uint64(i)
            y = ht[64 * e + i, 0] + ((be >> np.uint64(i)) & one) * v
            acc += y << np.uint64(i)
        share[e] = acc


# -- bit products: OT p * n + e carries bit positions[p] of element e (position-major) -----


@numba.njit(cache=True, nogil=True)
def gather_bits(words, positions, npad, out):
    """Position-major packed bits: bit ``p * npad + e`` of ``out`` = bit
    ``positions[p]`` of ``words[e]`` (``npad`` a multiple of 64, ``out`` zeroed)."""
    one = np.uint64(1)
    n = words.shape[0]
    for p in range(positions.shape[0]):
        sh = np.uint64(positions[p])
        base = p * npad
        for e in range(n):
            k = base + e
            out[k >> 6] |= ((words[e] >> sh) & one) << np.uint64(k & 63)


@numba.njit(cache=True, nogil=True)
def bitprod_send(h0, h1, lo, npad, n, sbits, widths, weights, corr, out):
    """Sender of bit products for OTs ``lo .. lo + len(h0)`` (position-major): for OT
    ``(p, e)`` with sender bit ``s``, append ``(x0 + s - h1) mod 2^w_p`` (``w_p`` bits) to
    ``corr`` and add ``-weights[:, p] * x0`` to ``out[:, e]`` (padding OTs skipped)."""
    one = np.uint64(1)
    full = np.uint64(0xFFFFFFFFFFFFFFFF)
    cur = np.uint64(0)
    pos = 0
    nw = 0
    K = weights.shape[0]
    for kk in range(h0.shape[0]):
        k = lo + kk
        p = k // npad
        e = k - p * npad
        if e >= n:
            continue
        w = widths[p]
        if w == 0:
            continue
        x0 = h0[kk, 0]
        s = (sbits[k >> 6] >> np.uint64(k & 63)) & one
        v = (x0 + s - h1[kk, 0]) & (full >> np.uint64(64 - w))
        for q in range(K):
            out[q, e] -= weights[q, p] * x0
        cur |= v << np.uint64(pos)
        if pos + w >= 64:
            corr[nw] = cur
            nw += 1
            cur = (v >> np.uint64(64 - pos)) if pos > 0 else np.uint64(0)
            pos = pos + w - 64
        else:
            pos += w
    if pos > 0:
        corr[nw] = cur


@numba.njit(cache=True, nogil=True)
def bitprod_recv(ht, lo, npad, n, rbits, widths, weights, corr, out):
    """Receiver of bit products: ``y = ht + r * d mod 2^w_p``; ``out[:, e] +=
    weights[:, p] * y``."""
    one = np.uint64(1)
    full = np.uint64(0xFFFFFFFFFFFFFFFF)
    pos = 0
    nw = 0
    K = weights.shape[0]
    for kk in range(ht.shape[0]):
        k = lo + kk
        p = k // npad
        e = k - p * npad
        if e >= n:
            continue
        w = widths[p]
        if w == 0:
            continue
        v = corr[nw] >> np.uint64(pos)
        if pos + w > 64:
            v |= corr[nw + 1] << np.uint64(64 - pos)
        if pos + w >= 64:
            nw += 1
            pos = pos + w - 64
        else:
            pos += w
        v &= full >> np.uint64(64 - w)
        r = (rbits[k >> 6] >> np.uint64(k & 63)) & one
        y = ht[kk, 0] + r * v
        for q in range(K):
            out[q, e] += weights[q, p] * y


@numba.njit(cache=True, nogil=True)
def bitprod_local(words, positions, weights, out):
    """``out[q, e] = sum_p weights[q, p] * bit_p(words[e])``: this party's own bits'
    part of the arithmetic shares, ``x0 ^ x1 = x0 + x1 - 2 x0 x1``."""
    one = np.uint64(1)
    for e in range(words.shape[0]):
        we = words[e]
        for q in range(weights.shape[0]):
            acc = np.uint64(0)
            for p in range(positions.shape[0]):
                acc += weights[q, p] * ((we >> np.uint64(positions[p])) & one)
            out[q, e] = acc


# -- vector Gilboa products (matrix triples): OT 64 e + i carries bit i of Y.flat[e] -------


@numba.njit(cache=True, nogil=True)
def vgilboa_send(e0, e1, ot_lo, n, xt, corr, share):
    """Sender of a matrix Gilboa product ``X @ Y`` (``xt = X.T``, (k, m); ``Y`` (k, n) at
    the receiver): for OT ``o = ot_lo + r`` (element ``e = o // 64`` = ``(l, j)`` of ``Y``,
    bit ``i = o % 64``) with expanded pads ``e0[r, :m]``, ``e1[r, :m]`` the correction
    ``e0 + X[:, l] - e1`` goes to ``corr[r]`` and ``share[j] -= 2^i e0``."""
    m = xt.shape[1]
    for r in range(e0.shape[0]):
        o = ot_lo + r
        e = o // 64
        i = np.uint64(o % 64)
        l = e // n
        j = e % n
        for q in range(m):
            a = e0[r, q]
            corr[r, q] = a + xt[l, q] - e1[r, q]
            share[j, q] -= a << i


@numba.njit(cache=True, nogil=True)
def vgilboa_recv(et, ot_lo, n, y, corr, share):
    """Receiver side of :func:`vgilboa_send`: ``v = et + b corr`` with ``b`` bit ``i`` of
    ``y[e]`` (``y`` = ``Y.flat``), ``share[j] += 2^i v``."""
    m = share.shape[1]
    one = np.uint64(1)
    for r in range(et.shape[0]):
        o = ot_lo + r
        e = o // 64
        i = np.uint64(o % 64)
        j = e % n
        b = (y[e] >> i) & one
        for q in range(m):
            share[j, q] += (et[r, q] + b * corr[r, q]) << i


# -- wrap-bit truncation (dealer-free form of pet.mpc.truncation) -------------------------


@numba.njit(cache=True, nogil=True)
def wrap_mask_bits(xp, own, packed):
    """``packed`` (zeroed, ceil(n/64) words): bit ``i`` = ``msb(xp[i]) ^ own[i]``."""
    for i in range(xp.shape[0]):
        packed[i >> 6] |= ((xp[i] >> np.uint64(63)) ^ own[i]) << np.uint64(i & 63)


@numba.njit(cache=True, nogil=True)
def wrap_trunc_finish(xp, own, prod, dw, ew, shift, party0, out):
    """This party's share of ``x' >> shift`` minus the offset (see
    :func:`pet.mpc.truncation.trunc_masked`): ``d``/``e`` = party 0's/1's opened bits
    ``msb ^ own`` (packed), ``prod`` this party's share of ``2^(64-s) a b``."""
    one = np.uint64(1)
    s = np.uint64(shift)
    C = (one << np.uint64(64 - shift)) if shift > 0 else np.uint64(0)
    adj = (one - (one << np.uint64(62 - shift))) if shift > 0 else np.uint64(0) - (one << np.uint64(62))
    for i in range(xp.shape[0]):
        d = (dw[i >> 6] >> np.uint64(i & 63)) & one
        e = (ew[i >> 6] >> np.uint64(i & 63)) & one
        p = prod[i]
        if d != e:
            p = np.uint64(0) - p  # (1 - 2d)(1 - 2e) = -1
        if party0:
            t = C * (d & e)
            if e:
                t += (np.uint64(0) - C * own[i]) if d else C * own[i]
        else:
            t = np.uint64(0)
            if d:
                t = (np.uint64(0) - C * own[i]) if e else C * own[i]
        mm = t + p  # share of 2^(64-s) m0 m1
        x = xp[i]
        w = C * (x >> np.uint64(63)) - mm  # share of 2^(64-s) (m0 + m1 - m0 m1)
        o = (x >> s) - w
        if party0:
            o += adj
        out[i] = o


# -- 1-out-of-16 random OT from four 1-out-of-2 random OTs (comparison leaves) -----------
#
# OT ``64 e + 4 j + i`` is bit ``i`` of digit ``j`` of element ``e``. Message ``v`` (0..15,
# 2 bits) of digit ``j`` is ``XOR_i slot(v without bit i)`` of the pad ``h_{v_i}`` of OT
# ``i``, where slot ``w`` (0..7) is bits ``2w, 2w+1`` of the pad's low word. Every slot of
# a pad the receiver does not know feeds exactly one message, so the 15 messages other
# than the chosen one are uniform given the receiver's view (Naor-Pinkas 1-out-of-N from
# log N 1-out-of-2 OTs, with the PRF on 8 points read off one hash output).


def leaf_spread_table() -> np.ndarray:
    """``lut[i, b, half, x]`` (uint32): the 4 two-bit slots of byte ``x`` (slots
    ``4 half .. 4 half + 3`` of a pad) moved to the message positions they feed: slot ``w``
    of the pad of OT ``i`` with bit ``b`` goes to message ``v`` = ``w`` with ``b`` inserted
    at bit ``i``, i.e. to bits ``2v, 2v+1`` of the digit's table word."""
    lut = np.zeros((4, 2, 2, 256), dtype=np.uint32)
    for i in range(4):
        for b in range(2):
            for half in range(2):
                for x in range(256):
                    t = 0
                    for q in range(4):
                        w = 4 * half + q
                        v = (w & ((1 << i) - 1)) | (b << i) | ((w >> i) << (i + 1))
                        t |= ((x >> (2 * q)) & 3) << (2 * v)
                    lut[i, b, half, x] = t
    return lut


@numba.njit(cache=True, nogil=True)
def leaf_send(h0, h1, table, lut):
    """Sender: ``table[e, j]`` (uint32) packs the 16 two-bit messages of digit ``j`` of
    element ``e`` (message ``v`` in bits ``2v, 2v+1``) for the OTs of ``h0``/``h1``; each
    pad's 8 slots are spread to their messages with ``lut`` (:func:`leaf_spread_table`)."""
    ff = np.uint64(0xFF)
    eight = np.uint64(8)
    for e in range(table.shape[0]):
        for j in range(16):
            k = 64 * e + 4 * j
            tab = np.uint32(0)
            for i in range(4):
                a = h0[k + i, 0]
                b = h1[k + i, 0]
                tab ^= lut[i, 0, 0, a & ff] ^ lut[i, 0, 1, (a >> eight) & ff] \
                    ^ lut[i, 1, 0, b & ff] ^ lut[i, 1, 1, (b >> eight) & ff]
            table[e, j] = tab


@numba.njit(cache=True, nogil=True)
def leaf_recv(ht, choice, mc):
    """Receiver: ``mc[e]`` (uint32) packs the chosen message of every digit ``j`` (bits
    ``2j, 2j+1``); the choice of digit ``j`` is nibble ``j`` of ``choice[e]``."""
    one = np.uint64(1)
    two = np.uint64(2)
    three = np.uint64(3)
    seven = np.uint64(7)
    fifteen = np.uint64(15)
    for e in range(mc.shape[0]):
        c = choice[e]
        out = np.uint64(0)
        for j in range(16):
            cj = (c >> np.uint64(4 * j)) & fifteen
            k = 64 * e + 4 * j
            # slot of OT i = the choice without bit i (shift = 2 * slot)
            m = (ht[k, 0] >> ((cj >> one) << one)) & three
            m ^= (ht[k + 1, 0] >> (((cj & one) | ((cj >> two) << one)) << one)) & three
            m ^= (ht[k + 2, 0] >> (((cj & three) | ((cj >> three) << two)) << one)) & three
            m ^= (ht[k + 3, 0] >> ((cj & seven) << one)) & three
            out |= m << np.uint64(2 * j)
        mc[e] = np.uint32(out)


@numba.njit(cache=True, nogil=True)
def leaf_tables(val, d, table, rnd, sender_is_a, out, g, p):
    """Comparison leaves, sender side, online: for digit ``j`` of element ``e`` (own digit
    ``s``, the receiver's offset nibble ``d_j``) entry ``v`` of ``out[e, j]`` is
    ``M[v ^ d_j] ^ R_j ^ (lt(v) | eq(v) << 1)`` with ``lt(v) = [s < v]`` (this party holds
    the left operand) or ``[v < s]``, ``eq(v) = [s == v]``, and ``R_j`` = bits ``2j, 2j+1``
    of ``rnd[e]`` (this party's shares). Writes the shares into the packed leaf words:
    bit ``16 (e % 4) + j`` of ``g[e // 4]`` (lt) and ``p[e // 4]`` (eq)."""
    three = np.uint64(3)
    fifteen = np.uint64(15)
    for e in range(val.shape[0]):
        x = val[e]
        de = d[e]
        r = rnd[e]
        gw = np.uint64(0)
        pw = np.uint64(0)
        for j in range(16):
            s = np.int64((x >> np.uint64(4 * j)) & fifteen)
            dj = np.int64((de >> np.uint64(4 * j)) & fifteen)
            rj = (r >> np.uint64(2 * j)) & three
            m = np.uint64(table[e, j])
            t = np.uint64(0)
            for v in range(16):
                if sender_is_a:
                    lt = 1 if s < v else 0
                else:
                    lt = 1 if v < s else 0
                eq = 1 if s == v else 0
                f = np.uint64(lt | (eq << 1))
                t |= (((m >> np.uint64(2 * (v ^ dj))) & three) ^ rj ^ f) << np.uint64(2 * v)
            out[e, j] = np.uint32(t)
            gw |= (rj & np.uint64(1)) << np.uint64(j)
            pw |= (rj >> np.uint64(1)) << np.uint64(j)
        sh = np.uint64(16 * (e % 4))
        g[e // 4] |= gw << sh
        p[e // 4] |= pw << sh


@numba.njit(cache=True, nogil=True)
def leaf_open(val, tables, mc, g, p):
    """Comparison leaves, receiver side, online: the share of digit ``j`` (own digit
    ``b``) is entry ``b`` of ``tables[e, j]`` XOR bits ``2j, 2j+1`` of ``mc[e]``; packed
    as in :func:`leaf_tables`."""
    three = np.uint64(3)
    fifteen = np.uint64(15)
    for e in range(val.shape[0]):
        x = val[e]
        mce = np.uint64(mc[e])
        gw = np.uint64(0)
        pw = np.uint64(0)
        for j in range(16):
            b = (x >> np.uint64(4 * j)) & fifteen
            o = ((np.uint64(tables[e, j]) >> (b << np.uint64(1))) & three) ^ ((mce >> np.uint64(2 * j)) & three)
            gw |= (o & np.uint64(1)) << np.uint64(j)
            pw |= (o >> np.uint64(1)) << np.uint64(j)
        sh = np.uint64(16 * (e % 4))
        g[e // 4] |= gw << sh
        p[e // 4] |= pw << sh


@numba.njit(cache=True, nogil=True)
def msb_operands(x, party0, val, tops):
    """The millionaires' operands of ``msb(x_0 + x_1)``: party 0 ``A = ~x_0 mod 2^63``,
    party 1 ``B = x_1 mod 2^63`` (the carry into bit 63 is ``[A < B]``), and the own
    share's top bits packed 64 per word (element ``64 w + b`` in bit ``b`` of word ``w``)."""
    low = np.uint64(0x7FFFFFFFFFFFFFFF)
    s63 = np.uint64(63)
    for w in range(tops.shape[0]):
        acc = np.uint64(0)
        for b in range(64):
            i = 64 * w + b
            xi = x[i]
            val[i] = (~xi & low) if party0 else (xi & low)
            acc |= (xi >> s63) << np.uint64(b)
        tops[w] = acc
