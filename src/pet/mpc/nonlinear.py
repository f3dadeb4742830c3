"""Non-linear functions: reciprocal, divide, sqrt, exp, sigmoid.

Building blocks (all shares raw uint64, scales explicit):

* leading-one detection without revealing anything: A2B (7 rounds), a prefix OR from the
  top (6 rounds), ``onehot = m ^ (m >> 1)``, and B2A of the bit positions of the
  supported domain (1 round). Unlike PETAce's division, no magnitude, exponent or
  comparison result is ever opened;
* normalisation ``y = |x| * 2^-(p+1) in [0.5, 1)`` by one product with the shared
  power of two ``sum_p onehot_p 2^(.)`` (integer, public coefficients) and one exact
  truncation;
* Newton iterations at an internal scale of ``W = 28`` fractional bits (values are
  bounded by 4, so products stay far below 2^62).

Output scales: :func:`reciprocal` and :func:`exp` return values with ``2f`` fractional
bits (32 at the default ``f = 16``) so that small results keep their relative precision;
use ``.rescale(f)`` before multiplying them with large values. :func:`divide`,
:func:`sqrt` and :func:`sigmoid` return ``f`` fractional bits.

Domains and precision (``f = 16``; tested against numpy):

* ``reciprocal``: ``2^-10 <= |x| < 2^17``; relative error <= 1e-4 (Newton 5.5e-5 plus rounding) (issue target 1e-3 on
  ``[1e-2, 1e4]`` and its negative mirror). Outside the domain the result is 0.
* ``divide(x, y)``: ``y`` in the reciprocal domain, ``|x| < 2^30`` and ``|x / y| < 2^30``
  (for ``x`` with ``f`` fractional bits: the split product's two halves are
  ``|x| 2^f * |1/y| 2^f`` and ``|x| 2^f * 2^f``, each below ``2^62``); error
  ``<= |x / y| * 1e-4 + 2^-(f-1)``. Outside it the result is wrong (measured: ``2^34 / 3000``
  off by 0.8%, ``2^32 / 1.5`` by 110%), so ``divide(..., check_range=True, bounds=(bx, by_min))``
  raises :class:`~pet.errors.PrecisionError` instead when ``|x| <= bx`` and ``|y| >= by_min``
  cannot guarantee it.
* ``sqrt``: ``2^-f <= x < 2^30``, relative error <= 1e-4 (0 below the domain).
* ``exp``: ``-11 <= x < 11``; relative error <= 1e-4 (issue target 1e-3 on [-10, 5]).
* ``sigmoid``: any ``x`` (clamped to [-20, 20]); absolute error <= 1e-4.
* ``sigmoid(x, method="piecewise")``: ``|x| < 2^40``; absolute error <= 1e-4 (fit 3e-5,
  constant 1 beyond ``|x| = 10``: 4.5e-5, rounding).

Rounds: reciprocal 28, divide 32, sqrt 34, exp 23, sigmoid 41 (``method="piecewise"``: 24,
about half the bytes: 341 instead of about 680 per element and party).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from pet.errors import InputError, PetTypeError, PrecisionError
from pet.mpc import boolean
from pet.mpc.arithmetic import mul_raw
from pet.mpc.compare import sign_bit
from pet.mpc.shared import Shared
from pet.mpc.truncation import trunc

__all__ = ["reciprocal", "divide", "sqrt", "exp", "sigmoid"]

_U = np.uint64
#: internal fractional bits of the Newton iterations and polynomials
W = 28


def _const(session, value: float, scale: int, shape) -> np.ndarray:
    """Party 0's share of a public constant (party 1: zero)."""
    if session.party == 0:
        return np.full(shape, np.int64(round(value * 2.0 ** scale)), dtype=np.int64).view(_U)
    return np.zeros(shape, dtype=_U)


def _leading_one(session, x: np.ndarray, lo: int, hi: int, weights, *, with_sign: bool, lanes: int = 64):
    """Weighted sums ``sum_p weights[k][p - lo] * h_p`` of the one-hot ``h`` of the leading
    one of ``|x|`` (bit positions ``lo..hi-1``), shape ``(K,) + x.shape``, and, if
    ``with_sign``, the shared sign bit.

    For negative ``x`` the bits of ``~x = |x| - 1`` are used (local XOR with the shared
    sign), which only differs when ``|x|`` is a power of two; then the normalised value
    is 1.0 instead of 0.5, still inside the range the Newton steps converge on.
    14 rounds.

    ``lanes=32`` (no sign; the caller guarantees ``0 <= x < 2^32`` as ring elements, and
    ``hi <= 32``): each party reduces its share mod 2^32, which is exact for such ``x``
    (``2^32`` divides ``2^64``), and two elements share a word
    (:func:`~pet.mpc.boolean.pack_lanes`): A2B in 6 rounds, the prefix OR in 5, B2A in 1;
    12 rounds and about 7.5 AND words per element and party instead of 18.
    """
    if lanes == 32:
        if with_sign or hi > 32:
            raise InputError("the 32-bit leading one needs x >= 0 and positions below 32")
        n = x.size
        w = boolean.a2b(session, boolean.pack_lanes(x, 32), lane_bits=32)
        m = boolean.prefix_or_down(session, w, lane_bits=32)
        h = m ^ ((m >> _U(1)) & _U(0x7FFFFFFF7FFFFFFF))
        sums = boolean.b2a_lanes(session, h, 32, n, range(lo, hi), weights)
        return sums.reshape((len(weights),) + x.shape), None
    w = boolean.a2b(session, x)
    if with_sign:
        sign_mask = np.negative(w >> _U(63))  # all ones where this share's bit 63 is set
        w = w ^ sign_mask
    m = boolean.prefix_or_down(session, w)
    h = m ^ (m >> _U(1))
    positions = list(range(lo, hi))
    weights = [list(row) for row in weights]
    if with_sign:
        h = h ^ ((w ^ sign_mask) & _U(1 << 63))  # carry the sign bit in position 63
        positions.append(63)
        weights = [row + [0] for row in weights] + [[0] * (hi - lo) + [1]]
    sums = boolean.b2a_bits(session, h, positions, weights=weights)
    if with_sign:
        return sums[:-1], sums[-1]
    return sums, None


def _newton_recip(session, y: np.ndarray, iters: int = 2) -> np.ndarray:
    """``1 / y`` for ``y in [0.5, 1]`` at scale ``W``: ``z0 = 2.9142 - 2y`` (relative error
    ``|1 - y z0| <= 0.0858``), ``z <- z (2 - y z)`` squares the error: two iterations give
    ``<= 5.5e-5``. 4 rounds per iteration."""
    shape = y.shape
    z = _const(session, 2.9142, W, shape) - (y << _U(1))
    two = _const(session, 2.0, W, shape)
    for _ in range(iters):
        yz = mul_raw(session, y, z, W)
        z = mul_raw(session, z, two - yz, W)
    return z


def _abs(session, x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``x * (1 - 2 s)`` for a shared 0/1 ``s`` (1 round, no truncation)."""
    return x - (mul_raw(session, x, s) << _U(1))


def _recip_raw(session, x: np.ndarray, f: int, positive: bool = False, upper=None):
    """Shares of ``1/x`` at scale ``O`` for ``x`` at scale ``f``; returns ``(share, O)``.
    ``positive``: the caller guarantees ``x >= 0`` (no sign handling: 2 rounds less);
    ``upper``: and ``x < upper`` (with ``upper 2^f <= 2^32``: the 32-bit leading one,
    2 rounds less again)."""
    lo, hi = max(0, f - 10), f + 17
    if hi > 61:
        raise InputError(f"reciprocal needs frac_bits <= 44, got {f}")
    ps = range(lo, hi)
    G = max(0, hi - W)
    K = min(61 - W - f + lo, hi - f + 3)
    if K < hi - f:
        raise InputError(f"reciprocal: unsupported frac_bits {f}")
    O = min(2 * f, K + W)
    lanes, top = 64, hi
    if positive and upper is not None and math.log2(upper) + f <= 32:
        lanes, top = 32, min(hi, max(lo + 1, math.ceil(math.log2(upper) + f)))
        ps = range(lo, top)
    (F1, F2), s = _leading_one(session, x, lo, top, [[1 << (G - p - 1 + W) for p in ps],
                                                     [1 << (K + f - p - 1) for p in ps]],
                               with_sign=not positive, lanes=lanes)
    a = x if positive else _abs(session, x, s)
    y = mul_raw(session, a, F1, G)  # |x| 2^(W-p-1) in [0.5, 1) at scale W
    z = _newton_recip(session, y)
    out = mul_raw(session, z, F2, K + W - O)
    return (out if positive else _abs(session, out, s)), O


def reciprocal(x: Shared, *, positive: bool = False, upper: float | None = None) -> Shared:
    """``1 / x`` (28 rounds; result with ``2f`` fractional bits). See the module docstring
    for the domain; nothing about ``x`` (not even its magnitude) is revealed.
    ``positive=True``: the caller guarantees ``x >= 0`` (e.g. a hessian sum plus lambda);
    the sign handling is skipped (26 rounds, two products less); a negative ``x`` then
    gives 0. ``upper`` (with ``positive=True``): the caller also guarantees ``x < upper``
    (a public bound, e.g. XGBoost's hessian limit 2^16). When ``upper 2^f <= 2^32`` the
    leading one is found on 32-bit lanes, two elements per word (24 rounds, about 40% of
    the A2B and prefix-OR traffic and AND triples); a value at or above ``upper`` is then
    reduced mod ``2^(32 - f)`` and its result is wrong, so the bound must really hold."""
    if not isinstance(x, Shared):
        raise PetTypeError("reciprocal expects a Shared array")
    if upper is not None:
        if not positive:
            raise InputError("reciprocal: upper= needs positive=True")
        if not (isinstance(upper, (int, float)) and math.isfinite(upper) and upper > 0):
            raise InputError("reciprocal: upper must be a positive finite number")
    session = x.session
    if x.frac == 0:
        x = x.rescale(session.frac_bits)
    share, O = _recip_raw(session, x.share, x.frac, positive, upper)
    return Shared(session, share, O)


def divide(x, y, *, check_range: bool = False, bounds=None) -> Shared:
    """``x / y`` elementwise (broadcasting). Shared / public: one truncation round.
    Shared divisor: reciprocal, then a split product that keeps the ``2f``-bit precision
    of ``1/y`` without overflowing (32 rounds).

    Range (shared divisor): ``|x| 2^fx`` and ``|x / y| 2^fx`` below ``2^(62 - f)``, i.e.
    ``|x| < 2^30`` and ``|x / y| < 2^30`` at ``fx = f = 16``, and ``y`` in the reciprocal's
    domain; outside it the result is silently wrong. ``check_range=True`` with
    ``bounds=(bx, by_min)`` (``|x| <= bx``, ``|y| >= by_min``, known or declared) raises
    :class:`~pet.errors.PrecisionError` before any message when they do not guarantee it.
    A public divisor is a public product (:func:`pet.mpc.mul`, its range)."""
    from pet.mpc import arithmetic

    if not isinstance(y, Shared):
        arr = np.asarray(y, dtype=np.float64)
        if np.any(arr == 0):
            raise InputError("division by a public zero")
        checked = {"check_range": True, "bounds": None if bounds is None else (bounds[0], None)} if check_range else {}
        return arithmetic.mul(x, 1.0 / arr, **checked)
    if check_range:
        _check_divide_range(x, y, bounds)
    session = y.session
    r = reciprocal(y)
    f = session.frac_bits
    if not isinstance(x, Shared):
        x = arithmetic.constant(session, np.asarray(x, dtype=np.float64), f)
    if x.frac == 0:
        x = x.rescale(f)
    shift = r.frac - f
    r_hi = trunc(session, r.share, shift)  # scale f
    r_lo = r.share - (r_hi << _U(shift))  # scale r.frac, magnitude < 2 ulp of scale f
    xs, hs = np.broadcast_arrays(x.share, r_hi)
    _, ls = np.broadcast_arrays(x.share, r_lo)
    xs = np.ascontiguousarray(xs)
    both = mul_raw(session, np.concatenate([xs.ravel(), xs.ravel()]),
                   np.concatenate([np.ascontiguousarray(hs).ravel(), np.ascontiguousarray(ls).ravel()]))
    n = xs.size
    hi_part = trunc(session, both[:n], x.frac)
    lo_part = trunc(session, both[n:], x.frac + r.frac - f)
    return Shared(session, (hi_part + lo_part).reshape(xs.shape), f)


def _check_divide_range(x, y: Shared, bounds) -> None:
    """:func:`divide`'s range check for a shared divisor: ``bounds=(bx, by_min)`` against
    its documented domain, before any message."""
    if bounds is None or len(bounds) != 2:
        raise InputError("divide(check_range=True) needs bounds=(bound_x, min_abs_y)")
    bx, by = float(bounds[0]), float(bounds[1])
    if not (math.isfinite(bx) and bx >= 0 and by > 0):
        raise InputError("divide: bounds must be (bound_x >= 0, min_abs_y > 0)")
    if by < 2.0 ** -10:
        raise PrecisionError(f"divide: |y| >= {by:g} reaches below the reciprocal's domain 2^-10 (1/y would be 0)")
    f = y.session.frac_bits
    fx = x.frac if isinstance(x, Shared) and x.frac else f
    cap = 62 - fx - f  # |x| 2^fx * 2^f and |x / y| 2^fx * 2^f below 2^62
    worst = max(bx, bx / by)
    if not worst < 2.0 ** cap:
        raise PrecisionError(f"divide: |x| <= {bx:g} over |y| >= {by:g} needs |x| and |x / y| below 2^{cap} "
                             f"(here 2^{math.log2(worst):.1f}): the quotient would be wrong")


def sqrt(x: Shared) -> Shared:
    """``sqrt(x)`` for ``x >= 0`` (34 rounds, ``f`` fractional bits): normalise to
    ``y in [0.5, 1)``, Newton for ``1/sqrt(y)``, ``sqrt(y) = y / sqrt(y)``, then multiply
    by the shared constant ``2^((p+1-f)/2)`` selected by the one-hot exponent."""
    if not isinstance(x, Shared):
        raise PetTypeError("sqrt expects a Shared array")
    session = x.session
    f = session.frac_bits
    x = x.rescale(f) if x.frac != f else x
    lo, hi = 0, min(61, f + 30)
    ps = range(lo, hi)
    G = max(0, hi - W)
    K = 61 - 16 - (hi - f + 1) // 2 - 1
    (F1, C), _ = _leading_one(session, x.share, lo, hi, [[1 << (G - p - 1 + W) for p in ps],
                                                         [int(round(2.0 ** ((p + 1 - f) / 2 + K))) for p in ps]],
                              with_sign=False)
    y = mul_raw(session, x.share, F1, G)
    shape = y.shape
    r = _const(session, 1.8284, W, shape) - trunc(session, y * _U(round(0.8284 * 2 ** W)), W)
    three = _const(session, 3.0, W, shape)
    for _ in range(3):
        r2 = mul_raw(session, r, r, W)
        yr2 = mul_raw(session, y, r2, W)
        r = mul_raw(session, r, three - yr2, W + 1)
    sy = mul_raw(session, y, r, 2 * W - 16)  # sqrt(y) at scale 16
    out = mul_raw(session, sy, C, 16 + K - f)
    return Shared(session, out, f)


def _exp2(session, t: np.ndarray, f: int, B: int, off: int, out_frac: int) -> np.ndarray:
    """``2^t`` for ``t`` at scale ``f`` with ``t + off in [0, 2^B)``, at scale ``out_frac``.

    ``t' = t + off``: A2B (7 rounds), B2A of the ``B`` integer bits (1 round); the
    fraction ``u = t' - int(t')`` is exact, ``2^u`` by a degree-7 polynomial at scale
    ``W`` (powers in 3 product rounds, one truncation); ``2^int = prod_k (1 + (2^(2^k) - 1)
    b_k)`` by a product tree of integers; one final product and truncation.
    """
    shape = t.shape
    tp = t + _const(session, float(off), f, shape)
    w = boolean.a2b(session, tp)
    eye = [[int(j == k) for j in range(B)] for k in range(B)]
    sums = boolean.b2a_bits(session, w, range(f, f + B), weights=eye + [[1 << (f + k) for k in range(B)]])
    b, ip = sums[:B], sums[B]  # the integer bits, and the integer part at scale f
    u = (tp - ip) << _U(W - f)  # in [0, 1) at scale W, exact
    # powers u^1..u^7 (3 rounds of products)
    p = {1: u}
    p[2] = mul_raw(session, u, u, W)
    r2 = mul_raw(session, np.concatenate([p[2], p[2]]), np.concatenate([u, p[2]]), W)
    n = u.size
    p[3], p[4] = r2[:n].reshape(shape), r2[n:].reshape(shape)
    r3 = mul_raw(session, np.concatenate([p[4], p[4], p[4]]), np.concatenate([u, p[2], p[3]]), W)
    p[5], p[6], p[7] = r3[:n].reshape(shape), r3[n:2 * n].reshape(shape), r3[2 * n:].reshape(shape)
    coeffs = _exp2_coeffs()
    acc = _const(session, coeffs[0], 2 * W, shape)
    for k in range(1, 8):
        acc = acc + p[k] * _U(int(round(coeffs[k] * 2.0 ** W)) % (1 << 64))
    poly = trunc(session, acc, W)  # 2^u at scale W
    # integer factor 2^(int part) = prod_k (1 + (2^(2^k) - 1) b_k)
    one = _const(session, 1.0, 0, shape)
    factors = [one + b[k] * _U((1 << (1 << k)) - 1) for k in range(B)]
    while len(factors) > 1:
        pairs = len(factors) // 2
        left = np.concatenate([factors[2 * i] for i in range(pairs)])
        right = np.concatenate([factors[2 * i + 1] for i in range(pairs)])
        prod = mul_raw(session, left, right)
        nxt = [prod[i * n:(i + 1) * n].reshape(shape) for i in range(pairs)]
        if len(factors) % 2:
            nxt.append(factors[-1])
        factors = nxt
    shift = W + off - out_frac
    if shift < 0:
        raise InputError("exp: output scale too large")
    return mul_raw(session, poly, factors[0], shift)


def _exp2_coeffs() -> list:
    """Least-squares degree-7 fit of ``2^u`` on [0, 1] (Chebyshev nodes), computed once
    per call (pure, deterministic; max error ~1e-9)."""
    nodes = 0.5 - 0.5 * np.cos(np.pi * (np.arange(64) + 0.5) / 64)
    c = np.polynomial.polynomial.polyfit(nodes, 2.0 ** nodes, 7)
    return [float(v) for v in c]


def exp(x: Shared) -> Shared:
    """``e^x`` (23 rounds; result with ``2f`` fractional bits, domain ``[-11, 11)``)."""
    if not isinstance(x, Shared):
        raise PetTypeError("exp expects a Shared array")
    from pet.mpc import arithmetic

    session = x.session
    f = session.frac_bits
    t = arithmetic.mul(x, math.log2(math.e))  # scale max(x.frac, f)
    t = t.rescale(f) if t.frac != f else t
    out_frac = min(2 * f, W + 16)
    return Shared(session, _exp2(session, t.share, f, 5, 16, out_frac), out_frac)


def sigmoid(x: Shared, *, method: str = "exp") -> Shared:
    """``1 / (1 + e^-x)`` with ``f`` fractional bits.

    ``method="exp"`` (the default, 41 rounds, any ``x``) is the construction below;
    ``method="piecewise"`` (24 rounds, about half the bytes, ``|x| < 2^40``) is
    :func:`_sigmoid_piecewise`, built for slow links. Both have absolute error <= 1e-4.

    ``method="exp"``:
    One batched MSB gives ``[x < 0]``, ``[x < 20]``, ``[x < -20]``; ``x`` is clamped to
    [-20, 20] (1 round), ``a = |x|`` (1 round); ``e = 2^(-a log2 e)`` in (0, 1] via
    :func:`_exp2`; ``sigma(a) = 1 / (1 + e)`` by Newton on ``(1 + e) / 2 in (0.5, 1]``;
    ``sigma(x) = sigma(a) + [x < 0] (1 - 2 sigma(a))`` (1 round).
    """
    if not isinstance(x, Shared):
        raise PetTypeError("sigmoid expects a Shared array")
    if method == "piecewise":
        return _sigmoid_piecewise(x)
    if method != "exp":
        raise InputError(f"sigmoid: method must be 'exp' or 'piecewise', got {method!r}")
    from pet.mpc import arithmetic

    session = x.session
    f = session.frac_bits
    x = x.rescale(f) if x.frac != f else x
    shape = x.shape
    n = x.size
    c20 = _const(session, 20.0, f, shape)
    zero = np.zeros(shape, _U)
    both = np.concatenate([x.share.ravel(), (x.share - c20).ravel(), (x.share + c20).ravel()])
    bits = sign_bit(Shared(session, both, f)).share
    s, lt20, ltm20 = (bits[i * n:(i + 1) * n].reshape(shape) for i in range(3))
    # xc = x + (1 - lt20)(20 - x) + ltm20 (-20 - x)
    one = _const(session, 1.0, 0, shape)
    prod = mul_raw(session, np.concatenate([one - lt20, ltm20]), np.concatenate([c20 - x.share, zero - c20 - x.share]))
    xc = x.share + prod[:n].reshape(shape) + prod[n:].reshape(shape)
    a = _abs(session, xc, s)
    t = arithmetic.mul(Shared(session, zero - a, f), math.log2(math.e)).share  # scale f, in [-28.9, 0]
    e = _exp2(session, t, f, 5, 31, W)  # e^-|x| at scale W, in (0, 1]
    d = e + _const(session, 1.0, W, shape)  # 1 + e in (1, 2] at scale W
    z = _newton_recip_scaled(session, d)  # 1 / (d/2) at scale W
    sig_a = trunc(session, z, W + 1 - f)  # 1/(1+e) = z/2 -> scale f
    one_f = _const(session, 1.0, f, shape)
    adj = mul_raw(session, s, one_f - (sig_a << _U(1)))
    return Shared(session, sig_a + adj, f)


def _newton_recip_scaled(session, d: np.ndarray) -> np.ndarray:
    """``1/(d/2)`` at scale ``W`` for ``d in (1, 2]`` at scale ``W`` (so ``d`` read at scale
    ``W + 1`` is ``y = d/2 in (0.5, 1]``)."""
    shape = d.shape
    z = _const(session, 2.9142, W, shape) - d  # 2.9142 - 2y with 2y = d
    two = _const(session, 2.0, W, shape)
    for _ in range(2):  # error 0.0858 -> 7.4e-3 -> 5.5e-5
        yz = mul_raw(session, d, z, W + 1)  # y z at scale W
        z = mul_raw(session, z, two - yz, W)
    return z


#: segment bounds of ``sigma(|x|)`` for :func:`_sigmoid_piecewise` (1 beyond the last)
_PW_BOUNDS = (0.0, 2.0, 4.0, 7.0, 10.0)
#: degree of each segment's polynomial, in ``b = |x| / 16``
_PW_DEGREE = 4
#: fractional bits of the public coefficients (|coefficient| <= 301 < 2^9, so a term
#: ``coefficient * b^j`` stays below 2^(9 + 20 + W) = 2^57)
_PW_COEF_BITS = 20


@functools.cache
def _piecewise_coeffs() -> tuple:
    """Per segment of :data:`_PW_BOUNDS`, the least-squares (Chebyshev nodes) degree-4 fit
    of ``sigma(16 b)`` in ``b``, as integers at scale ``2^_PW_COEF_BITS`` (pure and
    deterministic; max fit error 2.6e-5)."""
    rows = []
    for lo, hi in zip(_PW_BOUNDS[:-1], _PW_BOUNDS[1:]):
        nodes = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (np.arange(80) + 0.5) / 80)
        c = np.polynomial.polynomial.polyfit(nodes / 16.0, 1.0 / (1.0 + np.exp(-nodes)), _PW_DEGREE)
        rows.append(tuple(int(round(float(v) * 2.0 ** _PW_COEF_BITS)) for v in c))
    return tuple(rows)


def _sigmoid_piecewise(x: Shared) -> Shared:
    """``sigma(x)`` from a piecewise polynomial of ``a = |x|`` (24 rounds, per element and
    party about 341 bytes: two bit-sliced MSBs of 33 bytes per value, six products).

    1. ``s = [x < 0]`` (MSB, 8 rounds); ``a = x (1 - 2 s)`` (1 round);
    2. ``c_i = [a >= t_i]`` for the bounds ``t = 2, 4, 7, 10`` (one batched MSB, 8 rounds);
    3. ``b = a / 16`` (local shift to scale ``W``), ``b^2`` then ``b^3, b^4`` (2 x 2 rounds);
    4. every segment's polynomial ``P_i(b)`` locally (public coefficients), and
       ``sigma(a) = P_0 + sum_i c_i (P_{i+1} - P_i)`` with ``P_4 = 1`` (1 round of products
       with the 0/1 ``c_i``; exact in the ring, so the powers' values are irrelevant on
       the segments a row is not in, even when a large ``a`` wraps them);
    5. ``sigma(x) = sigma(a) + s (1 - 2 sigma(a))`` (1 round) and one truncation to ``f``.

    Error: fit <= 2.6e-5, 1 - sigma(10) = 4.5e-5, plus rounding; nothing is opened but
    dealer-masked values."""
    session = x.session
    f = session.frac_bits
    x = x.rescale(f) if x.frac != f else x
    if f > W - 4:
        raise InputError(f"sigmoid(method='piecewise') needs frac_bits <= {W - 4}, got {f}")
    shape = x.shape
    n = x.size
    xs = np.ascontiguousarray(x.share).reshape(n)
    s = boolean.msb(session, xs)
    a = _abs(session, xs, s)
    bounds = _PW_BOUNDS[1:]
    diffs = np.concatenate([a - _const(session, t, f, (n,)) for t in bounds])
    c = _const(session, 1.0, 0, (len(bounds) * n,)) - boolean.msb(session, diffs)  # [a >= t_i]
    b = a << _U(W - 4 - f)  # a / 16 at scale W
    b2 = mul_raw(session, b, b, W)
    b34 = mul_raw(session, np.concatenate([b2, b2]), np.concatenate([b, b2]), W)
    powers = [b, b2, b34[:n], b34[n:]]
    scale = _PW_COEF_BITS + W
    polys = []
    for row in _piecewise_coeffs():
        acc = _const(session, row[0] / 2.0 ** _PW_COEF_BITS, scale, (n,))
        for coef, p in zip(row[1:], powers):
            acc = acc + p * _U(coef % (1 << 64))
        polys.append(acc)
    polys.append(_const(session, 1.0, scale, (n,)))
    steps = np.concatenate([polys[i + 1] - polys[i] for i in range(len(bounds))])
    picked = mul_raw(session, c, steps).reshape(len(bounds), n)
    sig_a = polys[0] + picked.sum(axis=0, dtype=_U)
    adj = mul_raw(session, s, _const(session, 1.0, scale, (n,)) - (sig_a << _U(1)))
    out = trunc(session, sig_a + adj, scale - f)
    return Shared(session, out.reshape(shape), f)
