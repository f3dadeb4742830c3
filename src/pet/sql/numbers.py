"""Range analysis and representation choice for the values a cross-party query computes
in MPC (issue 21: a number is right, or refused -- never wrapped).

Every value entering MPC has a **magnitude class** ``k`` (``|v| < 2^k``) and a
**representation** (:class:`Rep`: ring bits and fractional bits ``frac``). Classes come
from the columns (each party computes ``max |v|`` of its own columns over the joined rows
and the parties exchange only the class ``k``, or the user declares bounds) and are
propagated through the plan by the rules below, before any MPC work; both parties run
the same rules on the same classes, so they choose the same representations, or raise
the same :class:`~pet.errors.PrecisionError`.

Rules (``w = k + frac`` is the *width* of a value: its encoding is below ``2^w``):

* storage: every shared value must have ``w <= WIDTH`` (61; the exact truncation of
  :mod:`pet.mpc.truncation` needs ``|x| < 2^62`` and comparisons need the difference of
  two values to fit the signed ring);
* a float column gets ``frac = clamp(TARGET - k, 0, 52)`` (``TARGET`` = 30 bits of
  precision relative to its bound); integer and boolean values have ``frac = 0`` (exact);
* ``a + b``: ``k = max(ka, kb) + 1``, ``frac = min(max(fa, fb), WIDTH - k)``;
* ``a * b`` (Beaver): the raw product has ``(ka + fa) + (kb + fb)`` bits, which must be
  ``<= WIDTH``: the operand with more fractional bits is truncated first until it fits;
  the result keeps ``frac = min(fa + fb, clamp(TARGET - k, 0, 52))``; two integers
  whose ``ka + kb > WIDTH`` are refused;
* ``SUM`` over ``n`` joined rows: ``k = k_row + ceil(log2 n)``; the row value is
  truncated first if needed so the sum fits; ``AVG``, ``MIN``, ``MAX`` keep ``k_row``;
  ``COUNT`` is exact;
* every value also carries an absolute **error bound** ``err`` (input rounding
  ``2^-(frac+1)``, one ulp per truncation, ``|a| err_b + |b| err_a`` for a product,
  ``n err_row`` for a sum, the documented relative error of divisions).

The **precision criterion** (docs/sql.md "Precision and ranges"): every revealed value
``v`` of a bound ``2^k`` satisfies ``|v - exact| <= 1e-6 * 2^k``; a value whose error
bound exceeds ``REL_TARGET * 2^k`` is refused with PrecisionError, as is a value whose
width exceeds the ring.

**The wide ring** (:mod:`pet.mpc.ring128`, ``Rep(ring_bits=128)``): when a query does not
fit the 64-bit ring (the pre-check refuses it), the planner runs the rules again with the
wide ring allowed (:func:`wide_ring`): every value that fits the 64-bit ring precisely
(its error bound within ``REL_TARGET / 16`` of its bound for a product) stays there, and a
value that does not -- a product, sum, or difference whose width exceeds 61 bits, or a
product that would lose too much precision -- is held in Z_2^128 with width ``<=
WIDE_WIDTH`` (125) and class ``k <= WIDE_MAX_CLASS`` (95: about 4e28, leaving 30 bits for
fractions; ``1e15 x 1e15 = 1e30`` is refused). A query that fits the 64-bit ring is
planned exactly as before (same rounds and bytes). The wide ring serves ``+ - *``,
SUM, AVG (the sum is brought back to the 64-bit ring before dividing), comparisons and
multiplication by public constants; MIN/MAX and CASE of wide values are refused.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from pet.errors import PrecisionError

__all__ = ["Rep", "Num", "WIDTH", "WIDE_WIDTH", "WIDE_MAX_CLASS", "TARGET", "REL_TARGET", "class_of", "leaf",
           "literal", "rule", "sum_of", "count_of", "avg_of", "extreme_of", "check", "decimals_for", "wide_ring",
           "wide_enabled", "compare_ring"]

WIDTH = 61
TARGET = 30
MAX_FRAC = 52  # float64 carries 53 bits: encodings of small magnitudes keep them
REL_TARGET = 1e-6
ZERO = -200          # class of an all-zero column
MAX_CLASS = 1100     # a class larger than this is refused as is
WIDE_WIDTH = 125     # widths in the wide ring Z_2^128 (its truncation needs |x| < 2^126)
WIDE_MAX_CLASS = 95  # largest magnitude class held in the wide ring (30 bits left for fractions)
#: Error of a 64-bit product, relative to its bound, above which the wide ring takes it.
WIDE_PRODUCT_SLACK = 1.0 / 16

_WIDE = contextvars.ContextVar("pet_sql_wide_ring", default=False)


@contextlib.contextmanager
def wide_ring(enabled: bool = True):
    """Within the block, the rules may place values in the wide ring Z_2^128 (see the
    module doc); both parties enter it together (the same pre-check outcome)."""
    token = _WIDE.set(bool(enabled))
    try:
        yield
    finally:
        _WIDE.reset(token)


def wide_enabled() -> bool:
    return _WIDE.get()


def _ring_name(ring: int) -> str:
    return "128-bit ring" if ring == 128 else "64-bit ring"


def _max_width(ring: int) -> int:
    return WIDE_WIDTH if ring == 128 else WIDTH


def _ring_for(k: int, width: int, rings) -> int:
    """The ring a value of class ``k`` and ``width`` is held in (operands' ``rings``),
    or 0 if none holds it."""
    if 128 not in rings and width <= WIDTH:
        return 64
    if (128 in rings or _WIDE.get()) and width <= WIDE_WIDTH and k <= WIDE_MAX_CLASS:
        return 128
    return 0


def _no_ring(rings) -> str:
    return "the 128-bit ring" if (128 in rings or _WIDE.get()) else "the 64-bit ring"


@dataclass(frozen=True)
class Rep:
    """How a value is held in MPC: a ring of ``ring_bits`` (64, or 128 for the wide ring
    of :mod:`pet.mpc.ring128`) and ``frac`` fractional bits."""
    ring_bits: int = 64
    frac: int = 0

    @property
    def width(self) -> int:
        return self.ring_bits - 3


@dataclass(frozen=True)
class Num:
    """Numeric facts about one value: ``|v| < 2^k``, its representation's ``frac``, an
    absolute error bound ``err``; ``dec`` is the decimal scale ``s`` of an exact DECIMAL
    held as the integer ``v * 10^s`` (then ``k`` bounds that integer, ``frac = 0``)."""
    k: int
    frac: int
    err: float
    dec: int | None = None
    approx: bool = False  # error follows a secret division's documented ~1e-4 (not checked)
    prep: int | None = None  # AVG: the frac its SUM is brought to before dividing
    ring: int = 64  # 128: held in the wide ring (pet.mpc.ring128.Shared128)
    wide_div: bool = False  # AVG: divide its (wide) SUM in the wide ring (avg_of)
    limbs: tuple | None = None  # AVG under an owned count: (prep, f1, f2) of values.mul_fine

    @property
    def width(self) -> int:
        return self.k + self.frac

    @property
    def rep(self) -> Rep:
        return Rep(self.ring, self.frac)

    @property
    def bound(self) -> float:
        """Bound of the real value."""
        b = 2.0 ** self.k
        return b / 10.0 ** self.dec if self.dec else b


def class_of(arr) -> int | None:
    """The smallest ``k`` with ``max |arr| < 2^k`` (None for an empty or all-zero array)."""
    a = np.asarray(arr, dtype=np.float64)
    if a.size == 0:
        return None
    m = float(np.max(np.abs(a)))
    if m == 0.0:
        return None
    if not math.isfinite(m):
        return MAX_CLASS
    return min(math.frexp(m)[1], MAX_CLASS)


def _k(k) -> int:
    return ZERO if k is None else max(int(k), ZERO)


def _frac_for(k: int, kind: str) -> int:
    if kind in ("int", "bool"):
        return 0
    return max(0, min(MAX_FRAC, TARGET - k))


def _ulp(frac: int) -> float:
    return 2.0 ** -frac


def _refuse(what: str, k: int, why: str) -> PrecisionError:
    return PrecisionError(f"{what}: magnitude bound 2^{k} ({2.0 ** k:.3g}); {why} (docs/sql.md, "
                          "'Precision and ranges')")


def leaf(k, kind: str, what: str, dec: int | None = None) -> Num:
    """A column (or group key) of class ``k`` and ``kind``; ``dec``: exact decimal scale."""
    k = _k(k)
    if dec is not None:
        if k > WIDTH:
            raise _refuse(what, k, f"DECIMAL scaled by 10^{dec} exceeds the 64-bit ring")
        return Num(k, 0, 0.0, dec)
    f = _frac_for(k, kind)
    if k + f > WIDTH:
        raise _refuse(what, k, "exceeds the 64-bit ring")
    return Num(k, f, 0.0 if kind in ("int", "bool") else 0.5 * _ulp(f))


def literal(value, kind: str, what: str = "a constant") -> Num:
    arr = np.asarray(value, dtype=np.float64)
    kind = "int" if kind in ("int", "bool") and np.all(arr == np.rint(arr)) else kind
    k = class_of(arr)
    if _WIDE.get() and k is not None and WIDTH < k <= WIDE_MAX_CLASS:
        return Num(k, 0, 0.0 if kind in ("int", "bool") else 0.5, ring=128)  # a constant of the wide ring
    return leaf(k, kind, what)


def _trunc_to(n: Num, f: int) -> Num:
    """``n`` re-held with ``f <= n.frac`` fractional bits (one truncation: +1 ulp)."""
    if f >= n.frac:
        return n
    return dataclasses.replace(n, frac=f, err=n.err + _ulp(f))


def to_float(n: Num) -> Num:
    """An exact DECIMAL re-held as a float (times the public ``10^-s``)."""
    if n.dec is None:
        return n
    c = 10.0 ** -n.dec
    return scale_public(Num(n.k, 0, 0.0, ring=n.ring), class_of(c), c)[0]


def scale_public(x: Num, kc: int, c) -> tuple[Num, int, int]:
    """``x * c`` for a public ``c`` of class ``kc``: (result, frac ``x`` must have first,
    frac bits ``c`` is encoded with; 0 for an integral ``c``: a local product). A
    non-integral ``c`` gets as many fractional bits as the ring allows, at least 26
    significant bits (``x`` is truncated first if needed), then one truncation."""
    kc = _k(kc)
    k = x.k + kc
    W = _max_width(x.ring)
    if x.ring == 128 and k > WIDE_MAX_CLASS:
        raise _refuse("a product with a constant", k, "exceeds the 128-bit ring")
    arr = np.asarray(c, dtype=np.float64)
    if bool(np.all(arr == np.rint(arr))):
        xf = min(x.frac, W - kc - x.k)
        if xf < 0:
            raise _refuse("a product with a constant", k, f"exceeds the {_ring_name(x.ring)}")
        t = _trunc_to(x, xf)
        return Num(k, xf, t.err * 2.0 ** kc, x.dec if x.dec is not None and xf == 0 else None,
                   ring=x.ring), xf, 0
    x = to_float(x)
    xf = max(0, min(x.frac, W - 26 - x.k))
    fc = min(62, W - (x.k + xf) - kc)
    if fc + kc < 20:
        raise _refuse("a product with a constant", k, f"cannot keep enough precision in the {_ring_name(x.ring)}")
    t = _trunc_to(x, xf)
    fo = min(_frac_for(k, "float"), xf + fc)
    err = t.err * 2.0 ** kc + 2.0 ** x.k * 0.5 * _ulp(fc) + _ulp(fo)
    return Num(k, fo, err, ring=x.ring), xf, fc


def rule(op: str, a: Num, b: Num | None, what: str) -> tuple[Num, list]:
    """Result of ``op`` on operands ``a``, ``b`` and the fracs the operands must have
    first (``[fa, fb]``; a smaller frac than the operand's means one truncation)."""
    if op in ("neg", "abs"):
        return a, [a.frac]
    if op == "tofloat":
        a = to_float(a)
        return a, [a.frac]
    if op in ("lt", "le", "gt", "ge", "eq", "ne"):
        ring, f = compare_ring(a, b)
        if not ring:
            raise _refuse(what, max(a.k, b.k) + 1, "a comparison whose difference exceeds "
                          + _no_ring((a.ring, b.ring)))
        a, b = _compare_operands(a, b)
        return Num(1, 0, 0.0), [min(a.frac, f), min(b.frac, f)]
    if op in ("and", "or", "not"):
        return Num(1, 0, 0.0), [0, 0]
    if op in ("add", "sub", "case"):
        rings = (a.ring, b.ring)
        if op == "case" and 128 in rings:
            raise _refuse(what, max(a.k, b.k), "CASE of a value held in the 128-bit ring is not supported")
        if a.dec is not None and b.dec is not None and a.dec == b.dec:
            k = max(a.k, b.k) + 1
            ring = _ring_for(k, k, rings) if op != "case" else (64 if k <= WIDTH else 0)
            if not ring:
                raise _refuse(what, k, "exceeds " + _no_ring(rings))
            return Num(k, 0, 0.0, a.dec, ring=ring), [0, 0]
        a, b = to_float(a), to_float(b)
        k = max(a.k, b.k) + (0 if op == "case" else 1)
        top = max(a.frac, b.frac)
        ring = _ring_for(k, k + min(top, max(0, WIDTH - k)), rings) if op != "case" else (64 if k <= WIDTH else 0)
        f = min(top, _max_width(ring) - k) if ring else -1
        if f < 0:
            raise _refuse(what, k, "exceeds " + _no_ring(rings))
        fa, fb = min(a.frac, f), min(b.frac, f)
        err = (max if op == "case" else (lambda u, v: u + v))(
            _trunc_to(a, fa).err, _trunc_to(b, fb).err)
        return Num(k, f, err, ring=ring), [fa, fb]
    if op in ("mul", "mulinv"):
        k = a.k + b.k
        rings = (a.ring, b.ring)
        if a.dec is not None and b.dec is not None:
            ring = _ring_for(k, k, rings)
            if not ring:
                raise _refuse(what, k, "a product of exact decimals exceeding " + _no_ring(rings))
            return Num(k, 0, 0.0, a.dec + b.dec, ring=ring), [0, 0]
        if (a.dec is not None and b.frac == 0 and b.err == 0) or (b.dec is not None and a.frac == 0 and a.err == 0):
            ring = _ring_for(k, k, rings)
            if not ring:
                raise _refuse(what, k, "a product of exact values exceeding " + _no_ring(rings))
            return Num(k, 0, 0.0, a.dec if a.dec is not None else b.dec, ring=ring), [0, 0]
        a, b = to_float(a), to_float(b)
        narrow = _product(a, b, k, WIDTH) if 128 not in rings else None
        if narrow is not None and (not _WIDE.get() or narrow[0].err <= REL_TARGET * WIDE_PRODUCT_SLACK * 2.0 ** k):
            return narrow
        wide = _product(a, b, k, WIDE_WIDTH, 128) if (128 in rings or _WIDE.get()) and k <= WIDE_MAX_CLASS \
            else None
        if wide is not None:
            return wide
        if narrow is not None:
            return narrow
        raise _refuse(what, k, "a product exceeding " + _no_ring(rings))
    raise PrecisionError(f"no range rule for operator {op}")


def _product(a: Num, b: Num, k: int, W: int, ring: int = 64):
    """A float product in a ring of width ``W``: (Num, [fa, fb]) or None if none fits."""
    fa, fb = a.frac, b.frac
    while (a.k + fa) + (b.k + fb) > W and (fa > 0 or fb > 0):
        if fa >= fb:
            fa -= 1
        else:
            fb -= 1
    if (a.k + fa) + (b.k + fb) > W:
        return None
    ta, tb = _trunc_to(a, fa), _trunc_to(b, fb)
    fo = min(fa + fb, _frac_for(k, "float") if fa + fb else 0)
    err = 2.0 ** a.k * tb.err + 2.0 ** b.k * ta.err + ta.err * tb.err
    if fa + fb > fo:
        err += _ulp(fo)
    return Num(k, fo, err, ring=ring), [fa, fb]


def _compare_operands(a: Num, b: Num):
    if (a.dec is None) != (b.dec is None) or (a.dec is not None and a.dec != b.dec):
        return to_float(a), to_float(b)
    return a, b


def compare_ring(a: Num, b: Num) -> tuple[int, int]:
    """(ring, common frac) of the difference a comparison of ``a`` and ``b`` takes the
    sign of (ring 0: none holds it)."""
    a, b = _compare_operands(a, b)
    k = max(a.k, b.k) + 1
    top = max(a.frac, b.frac)
    ring = _ring_for(k, k + min(top, max(0, WIDTH - k)), (a.ring, b.ring))
    return ring, (min(top, _max_width(ring) - k) if ring else -1)


def sum_of(row: Num, n: int, what: str) -> tuple[Num, int]:
    """SUM over at most ``n`` rows: (the sum's Num, the frac the row must have first)."""
    grow = max(0, int(math.ceil(math.log2(max(n, 1)))))
    k = row.k + grow
    ring = _ring_for(k, k + min(row.frac, max(0, WIDTH - k)), (row.ring,))
    if not ring:
        raise _refuse(what, k, f"a sum over {n} rows exceeding " + _no_ring((row.ring,)))
    f = min(row.frac, _max_width(ring) - k)
    r = _trunc_to(row, f)
    return Num(k, f, r.err * max(n, 1), row.dec, row.approx, ring=ring), f


def count_of(n: int) -> Num:
    return Num(max(1, int(math.ceil(math.log2(n + 1)))), 0, 0.0)


def divide_shift(n: int) -> int:
    """AVG under a secret count divides by ``count * 2^-s``, which must lie in
    pet.mpc.divide's domain ``[2^-10, 2^17)`` for counts ``1..n``."""
    return max(0, count_of(n).k - 17)


def avg_of(row: Num, total: Num, count_kind: str, session_frac: int, what: str, n: int = 1) -> Num:
    """AVG = SUM / COUNT: the row's bound. The division (pet.sql.execute._average_plain)
    runs on the sum brought to ``prep`` fractional bits: a public count multiplies by a
    24-bit reciprocal in 12-bit limbs (``|x| < 2^(46 - f)``), an owned count by a
    reciprocal in two limbs (:func:`_owned_division`), a secret count uses pet.mpc.divide
    and one residual step (:func:`_secret_division`). Relative error: about 2^-23
    (public); the owned and the secret count's are bounded by their functions and held to
    the 1e-6 criterion like every other value."""
    ks = to_float(total).k if total.dec is not None else total.k
    fs = total.frac if total.dec is None else to_float(total).frac
    kr = to_float(row).k
    if count_kind == "pub":
        prep = min(fs, 46 - ks) if fs else min(session_frac, 46 - ks)
        rel, approx = 2.0 ** -22, False
    elif count_kind == "own":
        own = _owned_division(row, kr, ks, fs, session_frac, n)
        if own is not None:
            return own
        if total.ring == 128 or _WIDE.get():
            return _wide_avg(row, total, ks, fs, kr, session_frac, what)
        raise _refuse(what, ks, "an average whose sum is too large to divide precisely in the 64-bit ring")
    else:
        return _secret_division(row, kr, ks, session_frac, n, what)
    if prep < 1 and count_kind in ("pub", "own") and (total.ring == 128 or _WIDE.get()):
        return _wide_avg(row, total, ks, fs, kr, session_frac, what)
    if prep < 1:
        raise _refuse(what, ks, "an average whose sum is too large to divide in the 64-bit ring")
    row = to_float(row)
    k = row.k
    f = max(prep, session_frac) if count_kind != "pub" else prep
    err = row.err + 2.0 ** -prep + rel * 2.0 ** k + 2 * _ulp(f)
    return Num(k, f, err, None, approx or row.approx, prep)


def _owned_division_err(row_err: float, kr: int, n: int, prep: int, f1: int, f2: int) -> float:
    """Error bound of AVG = SUM * (1/count) under a count one party owns
    (pet.sql.values.mul_fine with limbs ``(prep, f1, f2)``): the sum's own error (at most
    ``count * row_err``, divided by the count), its truncation to ``prep`` bits, the
    truncations of the two products and of the final rescale, and the reciprocal's error
    ``2^-(f1 + f2 + 1)`` times ``|sum| <= n * 2^kr``."""
    return (row_err + 2.0 ** -prep + 3.0 * 2.0 ** -max(prep, f1)
            + max(n, 1) * 2.0 ** (kr - f1 - f2 - 1))


def _owned_division_fits(kr: int, ks: int, prep: int, f1: int, f2: int) -> bool:
    """The raw products of pet.sql.values.mul_fine stay in the 64-bit ring's safe range:
    ``x * hi`` is below ``(avg + sum 2^-(f1+1)) 2^(prep + f1)``, ``x * lo`` below ``sum
    2^(prep + f2 - 1)``; the rescale of ``x * lo`` needs ``max(prep, f2) + f1 <= 63``."""
    from pet.mpc.ring import MAX_FRAC_BITS

    return (1 <= prep and 1 <= f1 <= MAX_FRAC_BITS and 1 <= f2 <= MAX_FRAC_BITS
            and kr + prep + f1 <= WIDTH and ks + prep <= WIDTH and ks + prep + f2 - 1 <= WIDTH
            and max(prep, f2) + f1 <= 63)


def _owned_division(row: Num, kr: int, ks: int, fs: int, session_frac: int, n: int) -> Num | None:
    """AVG under a count known to its owner only: the owner shares ``1/count`` in two limbs
    and the sum is multiplied by both (pet.sql.values.mul_fine; 3 rounds). The limbs
    default to the session's ``f`` bits each (``1/count`` to ``2^-33``: relative error up
    to ``count * 2^-33``, 5.8e-6 for a group of 50,000 rows); when that error bound exceeds
    the precision criterion, the limb sizes and the sum's ``prep`` bits are chosen to
    minimise it (same rounds and bytes). None when no choice meets the criterion (the
    wide ring takes it, or it is refused)."""
    row = to_float(row)
    top = fs if fs else session_frac
    # an all-zero (or empty) column's class: no criterion, as in check()
    target = REL_TARGET * 2.0 ** kr if kr > ZERO + 10 else math.inf
    prep = min(top, WIDTH - session_frac - kr, WIDTH + 1 - session_frac - ks)
    choice = None
    if _owned_division_fits(kr, ks, prep, session_frac, session_frac):
        err = _owned_division_err(row.err, kr, n, prep, session_frac, session_frac)
        if err <= target:
            choice = (err, prep, session_frac, session_frac)
    if choice is None:
        for p in range(1, min(top, WIDTH) + 1):
            f1 = min(52, WIDTH - kr - p, 63 - p)
            f2 = min(52, WIDTH + 1 - ks - p)
            if f1 < 1 or f2 < 1:
                continue
            f1 = min(f1, 63 - max(p, f2))
            if not _owned_division_fits(kr, ks, p, f1, f2):
                continue
            err = _owned_division_err(row.err, kr, n, p, f1, f2)
            if choice is None or err < choice[0]:
                choice = (err, p, f1, f2)
    if choice is None or choice[0] > target:
        return None
    err, prep, f1, f2 = choice
    f = max(prep, f1)
    return Num(row.k, f, err, None, row.approx, prep, limbs=(prep, f1, f2))


#: Relative error of pet.mpc.divide (its documented ~1e-4).
DIVIDE_REL = 1e-4
#: Largest |quotient| class pet.mpc.divide holds at f = 16 (``|q| 2^(2f) < 2^62``).
DIVIDE_MAX_CLASS = 29
#: Width of pet.mpc.divide's numerator (``|x| 2^f < 2^44``): its low product multiplies
#: the numerator's words by up to 2^17 and wraps beyond (measured: 3e10 / 3000 at f = 16 is
#: 6.5e-3 off, 3e12 / 1234 177%), a limit its docstring does not state.
DIVIDE_NUM_WIDTH = 44


def _secret_division(row: Num, kr: int, ks: int, session_frac: int, n: int, what: str) -> Num:
    """AVG under a secret count (pet.sql.execute._average_plain): ``q = divide(sum 2^t,
    count 2^-s) = avg 2^(s + t)`` at the session's ``f`` bits, then one residual step
    ``q + 2^-s divide(sum 2^(s + t) - q count, count 2^-s)`` (the product with the integer
    count is exact). ``s`` (:func:`divide_shift`) puts counts up to ``n`` in divide's
    domain; ``t`` reads the sum's words at ``f + t`` bits as ``f`` bits (no operation), so
    the quotient's ``f`` absolute bits become ``f + s + t`` bits of the average: the
    average of small values keeps its relative precision (``t < 0`` for large sums: fewer
    bits). Constraints: ``|q| < 2^29`` (``kr + s + t <= 29``), divide's numerator
    ``|sum 2^t| 2^f < 2^44`` (:data:`DIVIDE_NUM_WIDTH`; the residual's ``sum 2^(s + t)``
    then is in range too), ``s <= 10``. Error: the residual step squares divide's relative
    error (``2 * 1e-4^2``) plus a few ulps at ``f + t`` bits."""
    f = session_frac
    sh = divide_shift(n)
    t = min(DIVIDE_MAX_CLASS - kr - sh, DIVIDE_NUM_WIDTH - f - ks, MAX_FRAC - f - sh)
    if sh > 10 or t < -f or kr + sh > DIVIDE_MAX_CLASS:
        raise _refuse(what, ks, "an average under a secret count too large to divide in the 64-bit ring")
    row = to_float(row)
    err = row.err + 2.0 * DIVIDE_REL ** 2 * 2.0 ** kr + 10.0 * 2.0 ** -(f + t)
    return Num(row.k, f + sh + t, err, None, row.approx, f + t)


#: Fractional bits of the reciprocal of a count in a wide-ring division.
INV_BITS = 50


def _wide_avg(row: Num, total: Num, ks: int, fs: int, kr: int, session_frac: int, what: str) -> Num:
    """AVG of a sum held in the wide ring, for a public or owned count: the sum (at
    ``prep`` bits, ``ks + prep + INV_BITS <= 125``) times the reciprocal at
    :data:`INV_BITS` bits in Z_2^128 (pet.sql.execute._average_wide), then the quotient
    back in the 64-bit ring (``kr + f <= 61``). Relative error about 2^-50."""
    prep = min(fs if fs else session_frac, WIDE_WIDTH - INV_BITS - ks)
    f = min(max(session_frac, _frac_for(kr, "float")), WIDTH - kr)
    if prep < 0 or f < 0:
        raise _refuse(what, ks, "an average too large for the 128-bit ring")
    row = to_float(row)
    err = row.err + 2.0 ** -prep + 2.0 ** (ks - INV_BITS) + 2 * _ulp(f)
    return Num(row.k, f, err, None, row.approx, prep, wide_div=True)


def extremes_rep(nums) -> tuple[int, int]:
    """(common frac, sentinel class) of a batch of MIN/MAX columns: ``B = 2^(K+1)`` with
    ``K`` the largest class, every column at ``f = min(max frac, WIDTH - K - 2)``."""
    K = max(n.k for n in nums)
    f = min(max(n.frac for n in nums), WIDTH - K - 2)
    return f, K + 1


def extreme_of(row: Num, what: str) -> Num:
    if row.ring == 128:
        raise _refuse(what, row.k, "MIN/MAX of a value held in the 128-bit ring is not supported")
    if row.k + 2 > WIDTH:
        raise _refuse(what, row.k, "MIN/MAX of a value exceeding the 64-bit ring")
    return row


def check(n: Num, what: str) -> Num:
    """Refuse ``n`` if its error bound exceeds the precision criterion."""
    if n.width > _max_width(n.ring):
        raise _refuse(what, n.k, f"exceeds the {_ring_name(n.ring)}")
    if n.dec is None and not n.approx and n.err > REL_TARGET * 2.0 ** n.k and n.k > ZERO + 10:
        raise _refuse(what, n.k, f"its error bound {n.err:.3g} exceeds {REL_TARGET:g} of the bound "
                      f"(too little precision left in the {_ring_name(n.ring)})")
    return n


def decimals_for(n: Num) -> int | None:
    """Decimal places to round a revealed float to: the precision actually carried
    (None: leave as is)."""
    if n.dec is not None or n.err <= 0 or n.approx:
        return None
    # two digits beyond the error bound: rounding adds at most err / 20 (never past the criterion)
    return max(0, min(15, int(math.floor(-math.log10(n.err))) + 2))
