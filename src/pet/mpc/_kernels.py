"""numba kernels of :mod:`pet.mpc`: plain loops over uint64 arrays, wrap-around arithmetic.

No validation and no randomness here; the callers (``arithmetic.py``) check shapes and
dtypes. All arithmetic is modulo 2^64 (uint64 overflow wraps in numba as in C).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model


@numba.njit(cache=True, nogil=True)
def matmul_u64(a, b, out):
    """``out[:] = a @ b`` modulo 2^64 for C-contiguous uint64 ``a`` (m, k), ``b`` (k, n).

    i-k-j loop order so the inner loop runs over contiguous rows of ``b`` and ``out``
    (vectorized by LLVM); blocked over ``k`` to keep rows of ``b`` in cache. For fewer than
    8 columns, dot products along ``k`` instead.
    """
    m, kk = a.shape
    n = b.shape[1]
    if n < 8:
        # thin ``b`` (matrix-vector products): dot products over contiguous rows of a copy of
        # ``b.T``, vectorised over ``k`` (the i-k-j loop below would run scalar on n < 8)
        bt = np.empty((n, kk), dtype=np.uint64)
        for k in range(kk):
            for j in range(n):
                bt[j, k] = b[k, j]
        for i in range(m):
            arow = a[i]
            for j in range(n):
                brow = bt[j]
                acc = numba.uint64(0)
                for k in range(kk):
                    acc += arow[k] * brow[k]
                out[i, j] = acc
        return out
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


# -- fused elementwise kernels (1-D contiguous uint64 arrays) -----------------------------


@numba.njit(cache=True, nogil=True)
def sub2(x, a, y, b, out):
    """``out[0] = x - a``, ``out[1] = y - b`` (the two Beaver openings, one buffer)."""
    for i in range(x.shape[0]):
        out[0, i] = x[i] - a[i]
        out[1, i] = y[i] - b[i]


@numba.njit(cache=True, nogil=True)
def beaver_finish(mine, other, a, b, c, party0, r, offset, out):
    """``out = d*b + e*a + c (+ d*e if party0) + r + offset`` with ``d, e`` the opened
    values ``mine + other``. ``r`` may be empty (then no mask is added)."""
    masked = r.shape[0] > 0
    for i in range(out.shape[0]):
        d = mine[0, i] + other[0, i]
        e = mine[1, i] + other[1, i]
        z = d * b[i] + e * a[i] + c[i]
        if party0:
            z += d * e + offset
        if masked:
            z += r[i]
        out[i] = z


@numba.njit(cache=True, nogil=True)
def beaver_finish_xy(mine, other, x, y, c, party0, r, offset, out):
    """:func:`beaver_finish` given the inputs ``x, y`` instead of the masks: the masks are
    ``a = x - mine[0]``, ``b = y - mine[1]`` (``mine`` holds ``x - a`` and ``y - b``), so a
    streamed triple's ``a, b`` need not be read a second time."""
    masked = r.shape[0] > 0
    for i in range(out.shape[0]):
        m0 = mine[0, i]
        m1 = mine[1, i]
        d = m0 + other[0, i]
        e = m1 + other[1, i]
        z = d * (y[i] - m1) + e * (x[i] - m0) + c[i]
        if party0:
            z += d * e + offset
        if masked:
            z += r[i]
        out[i] = z


@numba.njit(cache=True, nogil=True)
def trunc_finish(xp, other, rs, rm, shift, party0, out):
    """Steps 3-5 of the exact truncation (see ``truncation.py``)."""
    up = numba.uint64(64 - shift)
    sh = numba.uint64(shift)
    low = numba.uint64(1) << numba.uint64(62 - shift)
    one = numba.uint64(1)
    s63 = numba.uint64(63)
    for i in range(out.shape[0]):
        c = xp[i] + other[i]
        v = rm[i] * ((one - (c >> s63)) << up) - rs[i]
        if party0:
            v += (c >> sh) - low
        out[i] = v


@numba.njit(cache=True, nogil=True)
def triple_corr(a0, a1, b0, b1, c0, out):
    """Dealer: ``out = (a0 + a1) * (b0 + b1) - c0``."""
    for i in range(out.shape[0]):
        out[i] = (a0[i] + a1[i]) * (b0[i] + b1[i]) - c0[i]


@numba.njit(cache=True, nogil=True)
def trunc_corr(r0, r1, rs0, rm0, shift, out_rs, out_rm):
    """Dealer: corrections for ``r >> shift`` and ``msb(r)`` with ``r = r0 + r1``."""
    sh = numba.uint64(shift)
    s63 = numba.uint64(63)
    for i in range(out_rs.shape[0]):
        r = r0[i] + r1[i]
        out_rs[i] = (r >> sh) - rs0[i]
        out_rm[i] = (r >> s63) - rm0[i]


@numba.njit(cache=True, nogil=True)
def and_corr(a0, a1, b0, b1, c0, out):
    """Dealer: ``out[j] = (a0 ^ a1) & (b0[j] ^ b1[j]) ^ c0[j]``."""
    for j in range(out.shape[0]):
        for i in range(out.shape[1]):
            out[j, i] = ((a0[i] ^ a1[i]) & (b0[j, i] ^ b1[j, i])) ^ c0[j, i]


@numba.njit(cache=True, nogil=True)
def and_prep(x, ys, a, b, out):
    """``out[0] = x ^ a``, ``out[j+1] = ys[j] ^ b[j]`` (the AND-triple openings)."""
    for i in range(x.shape[0]):
        out[0, i] = x[i] ^ a[i]
    for j in range(ys.shape[0]):
        for i in range(x.shape[0]):
            out[j + 1, i] = ys[j, i] ^ b[j, i]


@numba.njit(cache=True, nogil=True)
def and_finish(mine, other, a, b, c, party0, out):
    """``out[j] = d & e_j ^ d & b_j ^ e_j & a ^ c_j`` (``d & e_j`` by party 0 only)."""
    n = mine.shape[1]
    for j in range(out.shape[0]):
        if party0:
            for i in range(n):
                d = mine[0, i] ^ other[0, i]
                e = mine[j + 1, i] ^ other[j + 1, i]
                out[j, i] = (d & b[j, i]) ^ (e & a[i]) ^ c[j, i] ^ (d & e)
        else:
            for i in range(n):
                d = mine[0, i] ^ other[0, i]
                e = mine[j + 1, i] ^ other[j + 1, i]
                out[j, i] = (d & b[j, i]) ^ (e & a[i]) ^ c[j, i]


@numba.njit(cache=True, nogil=True)
def msb_setup(mine, other, rb, party0, g, p, tops):
    """Comparison tree inputs after opening ``c = x + r``: generate ``g = ~c & r``,
    propagate ``p = ~(c ^ r)`` (bit 63 neutral: g = 0, p = 1), and the bits
    ``msb(c) ^ msb(r)`` packed 64 per word (element ``64 w + b`` in bit ``b`` of word ``w``);
    on XOR shares of ``r`` (``rb``), with the public parts added by party 0."""
    top = numba.uint64(1) << numba.uint64(63)
    one = numba.uint64(1)
    s63 = numba.uint64(63)
    for w in range(tops.shape[0]):
        acc = numba.uint64(0)
        for b in range(64):
            i = 64 * w + b
            c = mine[i] + other[i]
            r = rb[i]
            notc = ~c
            g[i] = notc & r & ~top
            t = r >> s63
            if party0:
                p[i] = (notc ^ r) | top
                t ^= c >> s63
            else:
                p[i] = r & ~top
            acc |= (t & one) << numba.uint64(b)
        tops[w] = acc


@numba.njit(cache=True, nogil=True)
def b2a_corr(rho0, rho1, positions, ra0, out):
    """Dealer: ``out[i, j] = bit_{positions[j]}(rho0[i] ^ rho1[i]) - ra0[i, j]``."""
    one = numba.uint64(1)
    for i in range(rho0.shape[0]):
        rho = rho0[i] ^ rho1[i]
        for j in range(positions.shape[0]):
            out[i, j] = ((rho >> numba.uint64(positions[j])) & one) - ra0[i, j]


@numba.njit(cache=True, nogil=True)
def b2a_weighted(e, ra, positions, weights, party0, out):
    """``out[k, i] = sum_j weights[k, j] * bit_ij`` where this party's arithmetic share of
    bit ``j`` of element ``i`` is ``[party0] e_ij + ra[i, j] (1 - 2 e_ij)`` (``e`` the
    opened masked words)."""
    one = numba.uint64(1)
    nk = out.shape[0]
    for i in range(e.shape[0]):
        ei = e[i]
        for k in range(nk):
            acc = numba.uint64(0)
            for j in range(positions.shape[0]):
                ej = (ei >> numba.uint64(positions[j])) & one
                share = ra[i, j] * (one - (ej << one))
                if party0:
                    share += ej
                acc += weights[k, j] * share
            out[k, i] = acc


@numba.njit(cache=True, nogil=True)
def b2a_plain(e, ra, positions, party0, out):
    """``out[i, j]`` = this party's arithmetic share of bit ``positions[j]`` of element
    ``i``: ``[party0] e_ij + ra[i, j] (1 - 2 e_ij)``."""
    one = numba.uint64(1)
    for i in range(e.shape[0]):
        ei = e[i]
        for j in range(positions.shape[0]):
            ej = (ei >> numba.uint64(positions[j])) & one
            share = ra[i, j] * (one - (ej << one))
            if party0:
                share += ej
            out[i, j] = share


# -- exact Z_2^64 matrix products through float64 BLAS ------------------------------------
#
# A uint64 ``x`` is cut into limbs x = x0 + x1 * 2^22 + x2 * 2^43 of 22, 21 and 21 bits. A
# float64 product of two limbs (< 2^44) summed over at most 512 terms stays below 2^53, so
# dgemm computes it exactly. Modulo 2^64 only the limb pairs with shift < 64 matter:
# (0,0) at 0, (0,1) and (1,0) at 22, (0,2) and (2,0) at 43, (1,1) at 44 -- six dgemms.

LIMB_SHIFTS = (0, 22, 43)
LIMB_K = 512  # the largest inner dimension one slab may have


@numba.njit(cache=True, nogil=True)
def split_limbs(x, l0, l1, l2):
    """The three float64 limbs of the uint64 matrix ``x`` (any 2-D shape, C order)."""
    m0 = numba.uint64((1 << 22) - 1)
    m1 = numba.uint64((1 << 21) - 1)
    s1 = numba.uint64(22)
    s2 = numba.uint64(43)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            v = x[i, j]
            l0[i, j] = numba.float64(v & m0)
            l1[i, j] = numba.float64((v >> s1) & m1)
            l2[i, j] = numba.float64(v >> s2)


@numba.njit(cache=True, nogil=True)
def combine_limbs(p00, p01, p10, p02, p20, p11, out):
    """``out += p00 + (p01 + p10) 2^22 + (p02 + p20) 2^43 + p11 2^44`` modulo 2^64, each
    ``p`` an exact integer-valued float64 matrix below 2^53."""
    s22 = numba.uint64(22)
    s43 = numba.uint64(43)
    s44 = numba.uint64(44)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] += (numba.uint64(p00[i, j])
                          + ((numba.uint64(p01[i, j]) + numba.uint64(p10[i, j])) << s22)
                          + ((numba.uint64(p02[i, j]) + numba.uint64(p20[i, j])) << s43)
                          + (numba.uint64(p11[i, j]) << s44))


# -- exact Z_2^64 matrix products with AVX-512 IFMA ---------------------------------------
#
# ``vpmadd52luq`` / ``vpmadd52huq`` multiply the low 52 bits of eight pairs of 64-bit lanes
# and add the low / high 52 bits of the 104-bit products to eight 64-bit accumulators,
# which wrap modulo 2^64 -- exactly the ring we want. Cut ``a = aL + 2^52 aH`` (aL: 52 bits,
# aH: 12 bits), likewise ``b``. Modulo 2^64
#
#     a b = aL bL + 2^52 (aL bH + aH bL)        (the 2^104 aH bH term vanishes)
#         = lo52(aL bL) + 2^52 (hi52(aL bL) + aL bH + aH bL),
#
# and the bracket is only needed modulo 2^12, so aL may be replaced by aL' = a mod 2^12 in
# it. Both cross products come out of ONE 52-bit multiply: with x = aL' + 2^40 aH and
# y = bL' + 2^40 bH (both < 2^52),
#
#     x y = aL' bL'  +  2^40 (aL' bH + aH bL')  +  2^80 aH bH,
#
# where aL' bL' < 2^24. Summed over at most 2^16 terms the first part stays below 2^40,
# so bits 40..51 of the accumulated lo52(x y) are exactly (sum aL' bH + aH bL') mod 2^12
# (lo52 differs from x y by multiples of 2^52, which do not touch bits < 52). Hence, with
# three accumulators P = sum lo52(aL bL), Q = sum hi52(aL bL), R = sum lo52(x y),
#
#     sum a b  =  P + ((Q + (R >> 40)) << 52)      (mod 2^64)
#
# -- three IFMA instructions per eight multiply-adds. Only compiled and called when the
# CPU (as numba targets it) has AVX-512 IFMA; see ``ring_matmul.ifma_available``.

_V8 = ir.VectorType(ir.IntType(64), 8)
IFMA_MR = 4  # rows of the register tile
IFMA_NR = 16  # columns of the register tile (two 8-lane vectors)
IFMA_KC = 256  # inner terms per packed slab (accumulator bound: < 2^16)
IFMA_MC = 256  # rows per packed block of ``a`` (a block is MC * KC * 16 bytes, in L2)


class _U64x8(numba.types.Type):
    """Eight uint64 lanes held in one (zmm) register; only the intrinsics below use it."""

    def __init__(self):
        super().__init__(name="pet.U64x8")


_u64x8 = _U64x8()


@register_model(_U64x8)
class _U64x8Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _V8)


def _lane_ptr(context, builder, aryty, ary, idx):
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.gep(data, [idx])


@intrinsic
def _vload(typingctx, ary, idx):
    """Eight consecutive elements of the 1-D uint64 array ``ary`` from ``idx`` (no checks)."""
    def codegen(context, builder, sig, args):
        p = builder.bitcast(_lane_ptr(context, builder, sig.args[0], args[0], args[1]), _V8.as_pointer())
        return builder.load(p, align=8)
    return _u64x8(ary, idx), codegen


@intrinsic
def _vstore(typingctx, ary, idx, v):
    def codegen(context, builder, sig, args):
        p = builder.bitcast(_lane_ptr(context, builder, sig.args[0], args[0], args[1]), _V8.as_pointer())
        builder.store(args[2], p, align=8)
        return context.get_dummy_value()
    return numba.types.none(ary, idx, v), codegen


@intrinsic
def _vbroadcast(typingctx, ary, idx):
    """``ary[idx]`` in all eight lanes."""
    def codegen(context, builder, sig, args):
        x = builder.load(_lane_ptr(context, builder, sig.args[0], args[0], args[1]), align=8)
        v = builder.insert_element(ir.Constant(_V8, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(v, ir.Constant(_V8, ir.Undefined),
                                      ir.Constant(ir.VectorType(ir.IntType(32), 8), [0] * 8))
    return _u64x8(ary, idx), codegen


@intrinsic
def _vzero(typingctx):
    def codegen(context, builder, sig, args):
        return ir.Constant(_V8, [0] * 8)
    return _u64x8(), codegen


@intrinsic
def _vfinish(typingctx, p, q, r):
    """``p + ((q + (r >> 40)) << 52)`` lane-wise (see the comment above)."""
    def codegen(context, builder, sig, args):
        t = builder.add(args[1], builder.lshr(args[2], ir.Constant(_V8, [40] * 8)))
        return builder.add(args[0], builder.shl(t, ir.Constant(_V8, [52] * 8)))
    return _u64x8(p, q, r), codegen


@intrinsic
def _vadd(typingctx, x, y):
    def codegen(context, builder, sig, args):
        return builder.add(args[0], args[1])
    return _u64x8(x, y), codegen


@numba.njit(cache=True, nogil=True, inline="always")
def _vput(out, src, o, v, acc):
    """``out[o:o+8] = v (+ src[o:o+8] if acc)``."""
    if acc:
        v = _vadd(v, _vload(src, o))
    _vstore(out, o, v)


def _ifma_intrinsic(llvm_name):
    @intrinsic
    def op(typingctx, acc, x, y):
        def codegen(context, builder, sig, args):
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V8, [_V8] * 3), llvm_name)
            return builder.call(fn, args)
        return _u64x8(acc, x, y), codegen
    return op


_lo52 = _ifma_intrinsic("llvm.x86.avx512.vpmadd52l.uq.512")
_hi52 = _ifma_intrinsic("llvm.x86.avx512.vpmadd52h.uq.512")


@numba.njit(cache=True, nogil=True, inline="always")
def _ifma_pack(v):
    """``(aL, x)`` of the uint64 ``v``: its low 52 bits, and ``(v mod 2^12) + 2^40 (v >> 52)``."""
    low52 = v & numba.uint64((1 << 52) - 1)
    x = (v & numba.uint64(0xFFF)) | ((v >> numba.uint64(52)) << numba.uint64(40))
    return low52, x


@numba.njit(cache=True, nogil=True)
def _ifma_pack_b_rows(b, r0, r1, kk0, bp):
    """Rows ``r0:r1`` of the C-contiguous ``b`` into ``bp[:, kk0:kk0 + r1 - r0]`` (see
    ``_ifma_pack_b``): each source row is read once, front to back."""
    n = b.shape[1]
    bf = b.reshape(-1)
    bpf = bp.reshape(-1)
    kcap = bp.shape[1]
    full = n // IFMA_NR
    rest = n - full * IFMA_NR
    for r in range(r1 - r0):
        s = (r0 + r) * n
        for jb in range(full):
            d = (jb * kcap + kk0 + r) * (2 * IFMA_NR)
            for c in range(IFMA_NR):
                lo, x = _ifma_pack(bf[s + c])
                bpf[d + c] = lo
                bpf[d + IFMA_NR + c] = x
            s += IFMA_NR
        if rest:
            d = (full * kcap + kk0 + r) * (2 * IFMA_NR)
            for c in range(IFMA_NR):
                if c < rest:
                    lo, x = _ifma_pack(bf[s + c])
                else:
                    lo = numba.uint64(0)
                    x = numba.uint64(0)
                bpf[d + c] = lo
                bpf[d + IFMA_NR + c] = x


@numba.njit(cache=True, nogil=True)
def _ifma_pack_b(b1, b2, k0, k1, bp):
    """Rows ``k0:k1`` of ``[b1; b2]`` as panels of 16 columns: ``bp[jb, kk, 0:16]`` the low 52
    bits, ``bp[jb, kk, 16:32]`` the ``x`` form; columns past the end are zero."""
    ka = b1.shape[0]
    if k0 < ka:
        _ifma_pack_b_rows(b1, k0, min(k1, ka), 0, bp)
    if k1 > ka:
        s0 = max(k0, ka)
        _ifma_pack_b_rows(b2, s0 - ka, k1 - ka, s0 - k0, bp)


@numba.njit(cache=True, nogil=True)
def _ifma_pack_a_cols(a, i0, i1, c0, c1, kk0, ap):
    """Columns ``c0:c1`` of rows ``i0:i1`` of the C-contiguous ``a`` into
    ``ap[:, kk0:kk0 + c1 - c0]`` (see ``_ifma_pack_a``)."""
    ka = a.shape[1]
    af = a.reshape(-1)
    apf = ap.reshape(-1)
    kcap = ap.shape[1]
    width = c1 - c0
    for ib in range(ap.shape[0]):
        ibase = i0 + ib * IFMA_MR
        d0 = (ib * kcap + kk0) * (2 * IFMA_MR)
        if ibase + IFMA_MR <= i1:
            s0 = ibase * ka + c0
            s1 = s0 + ka
            s2 = s1 + ka
            s3 = s2 + ka
            for kk in range(width):
                d = d0 + kk * (2 * IFMA_MR)
                lo, x = _ifma_pack(af[s0 + kk])
                apf[d] = lo
                apf[d + IFMA_MR] = x
                lo, x = _ifma_pack(af[s1 + kk])
                apf[d + 1] = lo
                apf[d + IFMA_MR + 1] = x
                lo, x = _ifma_pack(af[s2 + kk])
                apf[d + 2] = lo
                apf[d + IFMA_MR + 2] = x
                lo, x = _ifma_pack(af[s3 + kk])
                apf[d + 3] = lo
                apf[d + IFMA_MR + 3] = x
        else:
            for kk in range(width):
                d = d0 + kk * (2 * IFMA_MR)
                for r in range(IFMA_MR):
                    if ibase + r < i1:
                        lo, x = _ifma_pack(af[(ibase + r) * ka + c0 + kk])
                    else:
                        lo = numba.uint64(0)
                        x = numba.uint64(0)
                    apf[d + r] = lo
                    apf[d + IFMA_MR + r] = x


@numba.njit(cache=True, nogil=True)
def _ifma_pack_a(a1, a2, i0, i1, k0, k1, ap):
    """Rows ``i0:i1``, columns ``k0:k1`` of ``[a1 | a2]`` as tiles of 4 rows:
    ``ap[ib, kk, 0:4]`` the low 52 bits, ``ap[ib, kk, 4:8]`` the ``x`` form, for the first
    ``ceil((i1 - i0) / 4)`` tiles; rows past ``i1`` are zero."""
    ka = a1.shape[1]
    tiles = ap[:(i1 - i0 + IFMA_MR - 1) // IFMA_MR]
    if k0 < ka:
        _ifma_pack_a_cols(a1, i0, i1, k0, min(k1, ka), 0, tiles)
    if k1 > ka:
        s0 = max(k0, ka)
        _ifma_pack_a_cols(a2, i0, i1, s0 - ka, k1 - ka, s0 - k0, tiles)


@numba.njit(cache=True, nogil=True)
def matmul2_u64_ifma(a1, b1, a2, b2, c, out):
    """``out[:] = a1 @ b1 + a2 @ b2 + c`` modulo 2^64 (C-contiguous uint64 2-D arrays, all
    of them; ``a2``/``b2`` may have an empty inner dimension; ``c`` is (m, n), or (0, 0)
    for none).

    GotoBLAS-style: slabs of KC inner terms; ``[b1; b2]`` packed per slab into 16-column
    panels, ``[a1 | a2]`` per block of MC rows into 4-row tiles; a 4x16 register tile
    (24 accumulators) runs over the slab with 24 IFMA instructions per inner term.
    Requires AVX-512 IFMA (only call when ``ring_matmul.ifma_available()``).
    """
    m = out.shape[0]
    n = out.shape[1]
    kk_all = a1.shape[1] + a2.shape[1]
    njb = (n + IFMA_NR - 1) // IFMA_NR
    add_c = c.shape[0] > 0
    if kk_all == 0:
        for i in range(m):
            for j in range(n):
                out[i, j] = c[i, j] if add_c else numba.uint64(0)
        return out
    bp = np.empty((njb, min(IFMA_KC, kk_all), 2 * IFMA_NR), dtype=np.uint64)
    ap = np.empty(((min(IFMA_MC, m) + IFMA_MR - 1) // IFMA_MR, min(IFMA_KC, kk_all), 2 * IFMA_MR), dtype=np.uint64)
    tile = np.empty(IFMA_MR * IFMA_NR, dtype=np.uint64)
    of = out.reshape(-1)
    cf = c.reshape(-1)
    for k0 in range(0, kk_all, IFMA_KC):
        k1 = min(kk_all, k0 + IFMA_KC)
        kc = k1 - k0
        first = k0 == 0
        _ifma_pack_b(b1, b2, k0, k1, bp)
        bf = bp.reshape(-1)
        bstride = bp.shape[1] * 2 * IFMA_NR
        for i0 in range(0, m, IFMA_MC):
            i1 = min(m, i0 + IFMA_MC)
            _ifma_pack_a(a1, a2, i0, i1, k0, k1, ap)
            af = ap.reshape(-1)
            astride = ap.shape[1] * 2 * IFMA_MR
            for jb in range(njb):
                for ib in range((i1 - i0 + IFMA_MR - 1) // IFMA_MR):
                    z = _vzero()
                    p00 = z; q00 = z; r00 = z; p01 = z; q01 = z; r01 = z
                    p10 = z; q10 = z; r10 = z; p11 = z; q11 = z; r11 = z
                    p20 = z; q20 = z; r20 = z; p21 = z; q21 = z; r21 = z
                    p30 = z; q30 = z; r30 = z; p31 = z; q31 = z; r31 = z
                    bo = jb * bstride
                    ao = ib * astride
                    for _ in range(kc):
                        bl0 = _vload(bf, bo)
                        bl1 = _vload(bf, bo + 8)
                        by0 = _vload(bf, bo + 16)
                        by1 = _vload(bf, bo + 24)
                        x = _vbroadcast(af, ao)
                        y = _vbroadcast(af, ao + 4)
                        p00 = _lo52(p00, x, bl0); q00 = _hi52(q00, x, bl0); r00 = _lo52(r00, y, by0)
                        p01 = _lo52(p01, x, bl1); q01 = _hi52(q01, x, bl1); r01 = _lo52(r01, y, by1)
                        x = _vbroadcast(af, ao + 1)
                        y = _vbroadcast(af, ao + 5)
                        p10 = _lo52(p10, x, bl0); q10 = _hi52(q10, x, bl0); r10 = _lo52(r10, y, by0)
                        p11 = _lo52(p11, x, bl1); q11 = _hi52(q11, x, bl1); r11 = _lo52(r11, y, by1)
                        x = _vbroadcast(af, ao + 2)
                        y = _vbroadcast(af, ao + 6)
                        p20 = _lo52(p20, x, bl0); q20 = _hi52(q20, x, bl0); r20 = _lo52(r20, y, by0)
                        p21 = _lo52(p21, x, bl1); q21 = _hi52(q21, x, bl1); r21 = _lo52(r21, y, by1)
                        x = _vbroadcast(af, ao + 3)
                        y = _vbroadcast(af, ao + 7)
                        p30 = _lo52(p30, x, bl0); q30 = _hi52(q30, x, bl0); r30 = _lo52(r30, y, by0)
                        p31 = _lo52(p31, x, bl1); q31 = _hi52(q31, x, bl1); r31 = _lo52(r31, y, by1)
                        bo += 2 * IFMA_NR
                        ao += 2 * IFMA_MR
                    ibase = i0 + ib * IFMA_MR
                    jbase = jb * IFMA_NR
                    if ibase + IFMA_MR <= i1 and jbase + IFMA_NR <= n:
                        # whole tile: straight into ``out`` (adding ``out`` or ``c``)
                        acc = add_c or not first
                        src = of if not first else cf
                        o = ibase * n + jbase
                        _vput(of, src, o, _vfinish(p00, q00, r00), acc)
                        _vput(of, src, o + 8, _vfinish(p01, q01, r01), acc)
                        o += n
                        _vput(of, src, o, _vfinish(p10, q10, r10), acc)
                        _vput(of, src, o + 8, _vfinish(p11, q11, r11), acc)
                        o += n
                        _vput(of, src, o, _vfinish(p20, q20, r20), acc)
                        _vput(of, src, o + 8, _vfinish(p21, q21, r21), acc)
                        o += n
                        _vput(of, src, o, _vfinish(p30, q30, r30), acc)
                        _vput(of, src, o + 8, _vfinish(p31, q31, r31), acc)
                        continue
                    # ragged edge: through a scratch tile, element by element
                    _vstore(tile, 0, _vfinish(p00, q00, r00))
                    _vstore(tile, 8, _vfinish(p01, q01, r01))
                    _vstore(tile, 16, _vfinish(p10, q10, r10))
                    _vstore(tile, 24, _vfinish(p11, q11, r11))
                    _vstore(tile, 32, _vfinish(p20, q20, r20))
                    _vstore(tile, 40, _vfinish(p21, q21, r21))
                    _vstore(tile, 48, _vfinish(p30, q30, r30))
                    _vstore(tile, 56, _vfinish(p31, q31, r31))
                    for r in range(min(IFMA_MR, i1 - ibase)):
                        i = ibase + r
                        for cc in range(min(IFMA_NR, n - jbase)):
                            j = jbase + cc
                            v = tile[r * IFMA_NR + cc]
                            if not first:
                                v += of[i * n + j]
                            elif add_c:
                                v += cf[i * n + j]
                            of[i * n + j] = v
    return out
