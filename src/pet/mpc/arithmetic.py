"""Arithmetic on shared values: linear operations (local), Beaver multiplication and
matrix products (1 round + 1 truncation round for fixed point).

Scale rules: every :class:`~pet.mpc.shared.Shared` carries ``frac`` (fractional bits).
``x + y`` first brings both to the larger ``frac`` (local multiply by a power of two);
``x * y`` and ``x @ y`` produce ``max(x.frac, y.frac)`` fractional bits, truncating the
raw product (``x.frac + y.frac`` bits) by ``min(x.frac, y.frac)`` with the exact
protocol of :mod:`.truncation`. A product of a fixed-point value with an integer (or a
comparison bit) therefore needs no truncation.

Precision: with ``f`` fractional bits, add/sub are exact on the encoded values; a
fixed-point product is within ``2^-f`` of the exact product of the encoded inputs
(truncation error < 1 ulp), hence within ``2^-(f-1)`` of the real product when the
inputs were rounded on encoding (for inputs of magnitude <= 1; in general add
``|x| + |y|`` ulps of input rounding). Products must stay below ``2^(62 - 2f)`` in
magnitude before truncation (see :mod:`.ring`).
"""

from __future__ import annotations

import math

import numpy as np

from pet.errors import InputError, PetTypeError
from pet.mpc import _kernels, ring
from pet.mpc.correlated import MatmulTriple, Triple, field_pieces, material_source
from pet.mpc.ring_matmul import matmul2_u64, matmul_u64
from pet.mpc.shared import Shared
from pet.mpc.truncation import trunc, trunc_masked, trunc_spec, trunc_with

_EMPTY = np.zeros(0, dtype=np.uint64)
_ZERO = np.uint64(0)
_OFFSET = np.uint64(1 << 62)

__all__ = ["add", "sub", "neg", "mul", "matmul", "rescale", "public_to_ring", "constant", "mul_specs", "matmul_specs"]


def _integral(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "biu" or (arr.dtype.kind == "f" and bool(np.all(np.isfinite(arr)))
                                       and bool(np.all(arr == np.rint(arr))))


def public_to_ring(value, frac: int) -> np.ndarray:
    """A public value encoded with ``frac`` fractional bits (range-checked)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise PetTypeError(f"expected a numeric public value, got dtype {arr.dtype}")
    return ring.encode(arr, frac)


def constant(session, value, frac: int = 0) -> Shared:
    """A public constant as a (trivially) shared value: party 0 holds it, party 1 zero."""
    enc = public_to_ring(value, frac)
    return Shared(session, enc if session.party == 0 else np.zeros_like(enc), frac)


def rescale(x: Shared, frac: int) -> Shared:
    """``x`` re-encoded with ``frac`` fractional bits (up: local; down: 1 round)."""
    frac = ring.check_frac_bits(frac)
    if frac == x.frac:
        return x
    if frac > x.frac:
        return Shared(x.session, x.share << np.uint64(frac - x.frac), frac)
    return Shared(x.session, trunc(x.session, x.share, x.frac - frac), frac)


def _pair(x: Shared, y: Shared):
    if x.session is not y.session:
        raise PetTypeError("Shared values belong to different sessions")
    top = max(x.frac, y.frac)
    return rescale(x, top), rescale(y, top)


def add(x: Shared, y) -> Shared:
    """``x + y`` (local, exact). ``y`` may be Shared or public (party 0 adds it)."""
    if isinstance(y, Shared):
        x, y = _pair(x, y)
        return Shared(x.session, x.share + y.share, x.frac)
    arr = np.asarray(y)
    if not _integral(arr) and x.frac == 0:
        x = rescale(x, x.session.frac_bits)
    enc = public_to_ring(arr, x.frac)
    share = x.share + enc if x.session.party == 0 else x.share + np.zeros_like(enc)
    return Shared(x.session, share, x.frac)


def neg(x: Shared) -> Shared:
    """``-x`` (local)."""
    return Shared(x.session, np.negative(x.share), x.frac)  # wraps mod 2^64, no scalar warning


def sub(x: Shared, y) -> Shared:
    """``x - y`` (local)."""
    if isinstance(y, Shared):
        return add(x, neg(y))
    return add(x, -np.asarray(y))


def _beaver_open(session, op, d, e):
    got = session.exchange(op, [d, e])
    if not (isinstance(got, list) and len(got) == 2):
        from pet.errors import ProtocolError
        raise ProtocolError("malformed Beaver opening")
    return d + np.asarray(got[0], dtype=np.uint64), e + np.asarray(got[1], dtype=np.uint64)


def mul_specs(size: int, shift: int) -> list:
    """Dealer material of one elementwise product of ``size`` elements truncated by
    ``shift`` (``min`` of the operands' fractional bits) -- for
    ``session.source.prefetch``."""
    specs = [Triple((int(size),))]
    if shift:
        specs.append(trunc_spec((int(size),), shift))
    return specs


def matmul_specs(m: int, k: int, n: int, shift: int) -> list:
    """Dealer material of one ``(m, k) @ (k, n)`` shared product truncated by ``shift``."""
    specs = [MatmulTriple(int(m), int(k), int(n))]
    if shift:
        specs.append(trunc_spec((int(m), int(n)), shift))
    return specs


def mul_raw(session, x: np.ndarray, y: np.ndarray, shift: int = 0) -> np.ndarray:
    """Shares of ``(x * y) >> shift`` for equal-shape share arrays.

    Beaver (1 round, 16 bytes per element each way): with a triple ``c = a*b``, open
    ``d = x - a`` and ``e = y - b`` (uniform, reveal nothing); ``x*y = d*e + d*b + e*a + c``
    (party 0 adds ``d*e``). Then, if ``shift``, exact truncation (1 more round, 8 bytes),
    with its masking ``+ r + 2^62`` fused into the Beaver step (numba kernels).
    Correlated randomness: one triple (+ one trunc), requested in one batch.
    """
    shape = x.shape
    n = x.size
    mats = session.correlated(mul_specs(n, shift))
    t = mats[0]
    if getattr(t, "stream", None) is not None and t.stream("a") is not None:  # a streamed triple
        return _mul_streamed(session, x, y, shift, mats).reshape(shape)
    mine = np.empty((2, n), dtype=np.uint64)
    _kernels.sub2(np.ascontiguousarray(x).reshape(n), t["a"], np.ascontiguousarray(y).reshape(n), t["b"], mine)
    other = session.exchange(f"mul{shape}", mine)
    other = np.asarray(other, dtype=np.uint64).reshape(2, n)
    z = np.empty(n, dtype=np.uint64)
    party0 = session.party == 0
    if not shift:
        _kernels.beaver_finish(mine, other, t["a"], t["b"], t["c"], party0, _EMPTY, _ZERO, z)
        return z.reshape(shape)
    tm = mats[1]
    _kernels.beaver_finish(mine, other, t["a"], t["b"], t["c"], party0, tm["r"], _OFFSET, z)
    return trunc_masked(session, z, shift, tm).reshape(shape)


def _mul_streamed(session, x: np.ndarray, y: np.ndarray, shift: int, mats: list) -> np.ndarray:
    """:func:`mul_raw` with a streamed triple (:meth:`~pet.mpc.correlated.Spec.streamed`:
    the dealer's large triples and truncation pairs): the same protocol, messages and
    bytes, but the PRG fields are read in pieces into reused buffers (never whole arrays)
    and the second Beaver step recovers ``a, b`` from ``x - d_i``, ``y - e_i``. Returns the
    flat result."""
    n = x.size
    xf = np.ascontiguousarray(x).reshape(n)
    yf = np.ascontiguousarray(y).reshape(n)
    t = mats[0]
    # the openings and the masked product are sent and then done with: reused buffers
    scratch = getattr(session, "scratch", None)
    mine = (scratch("mul.open", 2 * n) if scratch else np.empty(2 * n, dtype=np.uint64)).reshape(2, n)
    for i0, m, (a, b) in field_pieces([material_source(t, "a"), material_source(t, "b")], n):
        _kernels.sub2(xf[i0:i0 + m], a, yf[i0:i0 + m], b, mine[:, i0:i0 + m])
    other = session.exchange(f"mul{x.shape}", mine)
    other = np.asarray(other, dtype=np.uint64).reshape(2, n)
    z = scratch("mul.masked", n) if scratch and shift else np.empty(n, dtype=np.uint64)
    party0 = session.party == 0
    sources = [material_source(t, "c")] + ([material_source(mats[1], "r")] if shift else [])
    for i0, m, fields in field_pieces(sources, n):
        piece = slice(i0, i0 + m)
        r, offset = (fields[1], _OFFSET) if shift else (_EMPTY, _ZERO)
        _kernels.beaver_finish_xy(mine[:, piece], other[:, piece], xf[piece], yf[piece], fields[0], party0, r, offset,
                                  z[piece])
    if not shift:
        return z
    return trunc_masked(session, z, shift, mats[1])


def mul(x: Shared, y, *, frac: int | None = None, check_range: bool = False, bounds=None) -> Shared:
    """Elementwise ``x * y`` with numpy broadcasting.

    Shared * Shared: Beaver (1 round) plus a truncation round when both are fixed point.
    Shared * public integer: local. Shared * public non-integer: local product then one
    truncation round (exact truncation is interactive); a public factor below 1 in
    magnitude is encoded with up to ``f`` extra fractional bits (see :func:`_extra_bits`),
    so dividing by a public constant is accurate to ``f`` significant bits of ``1/c``.

    Range: the raw product ``|x| 2^fx * |y| 2^fy`` (both operands' fractional bits, before
    truncation) must stay below ``2^62``; with ``f = 16`` on both sides that is
    ``|x * y| < 2^30`` (about 1.07e9). Outside it the result **wraps silently** (the
    parties cannot see the values). ``check_range=True`` with ``bounds=(bx, by)`` (known
    or declared bounds ``|x| <= bx``, ``|y| <= by``; ``by`` defaults to ``max |y|`` for a
    public ``y``) raises :class:`~pet.errors.PrecisionError` instead, before any message.

    ``frac``: fractional bits of the result (default: the larger of the operands'). For
    Shared * Shared the truncation to ``frac`` is folded into the product's one truncation
    (``x.frac + y.frac - frac`` bits), so choosing a coarser output costs no extra round;
    callers that plan their own precision per value (pet.sql) use it to keep the raw
    product in range.
    """
    session = x.session
    if check_range:
        _check_mul_range(x, y, bounds)
    if frac is not None:
        frac = ring.check_frac_bits(frac)
    if isinstance(y, Shared):
        if y.session is not session:
            raise PetTypeError("Shared values belong to different sessions")
        xs, ys = np.broadcast_arrays(x.share, y.share)
        xs, ys = np.ascontiguousarray(xs), np.ascontiguousarray(ys)
        if frac is None:
            shift = min(x.frac, y.frac)
            return Shared(session, mul_raw(session, xs, ys, shift), max(x.frac, y.frac))
        raw = x.frac + y.frac
        shift = max(0, raw - frac)
        out = Shared(session, mul_raw(session, xs, ys, shift), raw - shift)
        return out if out.frac == frac else rescale(out, frac)
    if frac is not None:
        return rescale(mul(x, y), frac)
    arr = np.asarray(y)
    if arr.dtype.kind not in "biuf":
        raise PetTypeError(f"cannot multiply a Shared value by dtype {arr.dtype}")
    if _integral(arr):
        return Shared(session, x.share * public_to_ring(arr, 0), x.frac)
    f = session.frac_bits
    extra = _extra_bits(arr, f)
    prod = x.share * public_to_ring(arr, f + extra)
    shift = min(x.frac, f)
    return Shared(session, trunc(session, np.ascontiguousarray(prod), shift + extra), max(x.frac, f))


def _check_mul_range(x: Shared, y, bounds) -> None:
    """PrecisionError if ``x * y`` with ``|x| <= bx``, ``|y| <= by`` could leave the range."""
    from pet.errors import PrecisionError

    pub = not isinstance(y, Shared)
    if bounds is None and not pub:
        raise InputError("mul(check_range=True) needs bounds=(bound_x, bound_y) for two shared operands")
    if bounds is None:
        raise InputError("mul(check_range=True) needs bounds=(bound_x, None) for a shared operand")
    bx, by = bounds
    if by is None and pub:
        by = float(np.max(np.abs(np.asarray(y, dtype=np.float64)))) if np.size(y) else 0.0
    if pub:
        arr = np.asarray(y)
        fy = 0 if _integral(arr) else x.session.frac_bits + _extra_bits(arr, x.session.frac_bits)
    else:
        fy = y.frac
    raw = float(bx) * 2.0 ** x.frac * float(by) * 2.0 ** fy
    if not raw < 2.0 ** ring.SAFE_BITS:
        raise PrecisionError(f"mul: |x| <= {float(bx):g} (frac {x.frac}) times |y| <= {float(by):g} (frac {fy}) "
                             f"needs 2^{math.log2(raw) if raw > 0 else 0:.1f} before truncation, above the "
                             f"safe range 2^{ring.SAFE_BITS}: the product would wrap")


def _extra_bits(arr: np.ndarray, f: int) -> int:
    """Extra fractional bits for a public factor below 1 in magnitude, so that it keeps
    ``f`` significant bits instead of ``f`` absolute ones (``0.001`` with 16 bits is 66/2^16,
    0.7% off; with 16 + 9 bits, 0.001% off). ``max|arr| * 2^extra <= 1``, so the local
    product is no larger than a product by a factor of magnitude 1 -- the same range.
    One truncation serves the whole array, so an array takes its extra bits from its
    largest element: much smaller elements keep fewer significant bits."""
    top = float(np.max(np.abs(arr))) if arr.size else 0.0
    if not 0.0 < top < 1.0:
        return 0
    return int(min(f, math.floor(-math.log2(top))))


def _as_2d(shape, left: bool):
    if len(shape) == 1:
        return ((1, shape[0]) if left else (shape[0], 1)), True
    if len(shape) == 2:
        return shape, False
    raise InputError(f"matmul supports 1-D and 2-D operands, got shape {shape}")


def matmul(x, y) -> Shared:
    """Matrix product ``x @ y`` of 1-D/2-D operands (numpy semantics for 1-D).

    Shared @ Shared uses a matrix triple ``C = A @ B`` (1 round; each party sends
    ``(m*k + k*n) * 8`` bytes): open ``D = X - A`` and ``E = Y - B``; party 0 computes
    ``D @ (E + B0) + A0 @ E + C0``, party 1 ``D @ B1 + A1 @ E + C1`` (one fused Z_2^64
    product with inner dimension ``2k`` each, :func:`~pet.mpc.ring_matmul.matmul2_u64`).
    Fixed point adds one truncation round on the ``m*n`` result.
    Shared @ public is local (plus a truncation round for non-integer public values).
    """
    xs = isinstance(x, Shared)
    ys = isinstance(y, Shared)
    session = x.session if xs else y.session
    xshape = x.shape if xs else np.shape(x)
    yshape = y.shape if ys else np.shape(y)
    (m, k), squeeze_l = _as_2d(tuple(xshape), True)
    (k2, n), squeeze_r = _as_2d(tuple(yshape), False)
    if k != k2:
        raise InputError(f"matmul: shapes {tuple(xshape)} and {tuple(yshape)} are not aligned")
    out_shape = tuple(([] if squeeze_l else [m]) + ([] if squeeze_r else [n]))
    if xs and ys:
        if x.session is not y.session:
            raise PetTypeError("Shared values belong to different sessions")
        shift = min(x.frac, y.frac)
        mats = session.correlated(matmul_specs(m, k, n, shift))
        t = mats[0]
        X = x.share.reshape(m, k)
        Y = y.share.reshape(k, n)
        D, E = _beaver_open(session, f"matmul{(m, k, n)}", X - t["a"], Y - t["b"])
        # one fused product [D | A_i] @ [B_i (+ E at party 0); E], then + C_i (party 1's C
        # comes from the dealer: ask for it only after the product, so the two overlap)
        Bi = E + t["b"] if session.party == 0 else t["b"]
        Z = matmul2_u64(D, Bi, t["a"], E)
        Z += t["c"]
        if shift:
            Z = trunc_with(session, Z, shift, mats[1])
        return Shared(session, Z.reshape(out_shape), max(x.frac, y.frac))
    # one side public
    pub = np.asarray(y if xs else x)
    sh = x if xs else y
    if pub.dtype.kind not in "biuf":
        raise PetTypeError(f"cannot multiply a Shared value by dtype {pub.dtype}")
    pf = 0 if _integral(pub) else session.frac_bits
    enc = public_to_ring(pub, pf)
    if xs:
        Z = matmul_u64(sh.share.reshape(m, k), enc.reshape(k, n))
    else:
        Z = matmul_u64(enc.reshape(m, k), sh.share.reshape(k, n))
    shift = min(sh.frac, pf)
    Z = trunc(session, Z, shift)
    return Shared(session, Z.reshape(out_shape), max(sh.frac, pf))
