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
width exceeds the ring. A future Z_2^128 representation (``Rep(ring_bits=128)``) plugs
in here: :func:`choose` would pick it when the 64-bit one does not hold the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pet.errors import PrecisionError

__all__ = ["Rep", "Num", "WIDTH", "TARGET", "REL_TARGET", "class_of", "leaf", "literal", "rule",
           "sum_of", "count_of", "avg_of", "extreme_of", "check", "decimals_for"]

WIDTH = 61
TARGET = 30
MAX_FRAC = 52  # float64 carries 53 bits: encodings of small magnitudes keep them
REL_TARGET = 1e-6
ZERO = -200          # class of an all-zero column
MAX_CLASS = 1100     # a class larger than this is refused as is


@dataclass(frozen=True)
class Rep:
    """How a value is held in MPC: a ring of ``ring_bits`` and ``frac`` fractional bits.
    Only 64-bit rings exist today (``ring_bits=128`` is the planned wide ring)."""
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

    @property
    def width(self) -> int:
        return self.k + self.frac

    @property
    def rep(self) -> Rep:
        return Rep(64, self.frac)

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
    return leaf(class_of(arr), "int" if kind in ("int", "bool") and np.all(arr == np.rint(arr)) else kind, what)


def _trunc_to(n: Num, f: int) -> Num:
    """``n`` re-held with ``f <= n.frac`` fractional bits (one truncation: +1 ulp)."""
    if f >= n.frac:
        return n
    return Num(n.k, f, n.err + _ulp(f), n.dec, n.approx)


def to_float(n: Num) -> Num:
    """An exact DECIMAL re-held as a float (times the public ``10^-s``)."""
    if n.dec is None:
        return n
    c = 10.0 ** -n.dec
    return scale_public(Num(n.k, 0, 0.0), class_of(c), c)[0]


def scale_public(x: Num, kc: int, c) -> tuple[Num, int, int]:
    """``x * c`` for a public ``c`` of class ``kc``: (result, frac ``x`` must have first,
    frac bits ``c`` is encoded with; 0 for an integral ``c``: a local product). A
    non-integral ``c`` gets as many fractional bits as the ring allows, at least 26
    significant bits (``x`` is truncated first if needed), then one truncation."""
    kc = _k(kc)
    k = x.k + kc
    arr = np.asarray(c, dtype=np.float64)
    if bool(np.all(arr == np.rint(arr))):
        xf = min(x.frac, WIDTH - kc - x.k)
        if xf < 0:
            raise _refuse("a product with a constant", k, "exceeds the 64-bit ring")
        t = _trunc_to(x, xf)
        return Num(k, xf, t.err * 2.0 ** kc, x.dec if x.dec is not None and xf == 0 else None), xf, 0
    x = to_float(x)
    xf = max(0, min(x.frac, WIDTH - 26 - x.k))
    fc = min(62, WIDTH - (x.k + xf) - kc)
    if fc + kc < 20:
        raise _refuse("a product with a constant", k, "cannot keep enough precision in the 64-bit ring")
    t = _trunc_to(x, xf)
    fo = min(_frac_for(k, "float"), xf + fc)
    err = t.err * 2.0 ** kc + 2.0 ** x.k * 0.5 * _ulp(fc) + _ulp(fo)
    return Num(k, fo, err), xf, fc


def rule(op: str, a: Num, b: Num | None, what: str) -> tuple[Num, list]:
    """Result of ``op`` on operands ``a``, ``b`` and the fracs the operands must have
    first (``[fa, fb]``; a smaller frac than the operand's means one truncation)."""
    if op in ("neg", "abs"):
        return a, [a.frac]
    if op == "tofloat":
        a = to_float(a)
        return a, [a.frac]
    if op in ("lt", "le", "gt", "ge", "eq", "ne"):
        if (a.dec is None) != (b.dec is None) or (a.dec is not None and a.dec != b.dec):
            a, b = to_float(a), to_float(b)
        k = max(a.k, b.k) + 1
        f = min(max(a.frac, b.frac), WIDTH - k)
        if f < 0:
            raise _refuse(what, k, "a comparison whose difference exceeds the 64-bit ring")
        return Num(1, 0, 0.0), [min(a.frac, f), min(b.frac, f)]
    if op in ("and", "or", "not"):
        return Num(1, 0, 0.0), [0, 0]
    if op in ("add", "sub", "case"):
        if a.dec is not None and b.dec is not None and a.dec == b.dec:
            k = max(a.k, b.k) + 1
            if k > WIDTH:
                raise _refuse(what, k, "exceeds the 64-bit ring")
            return Num(k, 0, 0.0, a.dec), [0, 0]
        a, b = to_float(a), to_float(b)
        k = max(a.k, b.k) + (0 if op == "case" else 1)
        f = min(max(a.frac, b.frac), WIDTH - k)
        if f < 0:
            raise _refuse(what, k, "exceeds the 64-bit ring")
        fa, fb = min(a.frac, f), min(b.frac, f)
        err = (max if op == "case" else (lambda u, v: u + v))(
            _trunc_to(a, fa).err, _trunc_to(b, fb).err)
        return Num(k, f, err), [fa, fb]
    if op in ("mul", "mulinv"):
        k = a.k + b.k
        if a.dec is not None and b.dec is not None:
            if k > WIDTH:
                raise _refuse(what, k, "a product of exact decimals exceeding the 64-bit ring")
            return Num(k, 0, 0.0, a.dec + b.dec), [0, 0]
        if (a.dec is not None and b.frac == 0 and b.err == 0) or (b.dec is not None and a.frac == 0 and a.err == 0):
            if k > WIDTH:
                raise _refuse(what, k, "a product of exact values exceeding the 64-bit ring")
            return Num(k, 0, 0.0, a.dec if a.dec is not None else b.dec), [0, 0]
        a, b = to_float(a), to_float(b)
        fa, fb = a.frac, b.frac
        while (a.k + fa) + (b.k + fb) > WIDTH and (fa > 0 or fb > 0):
            if fa >= fb:
                fa -= 1
            else:
                fb -= 1
        if (a.k + fa) + (b.k + fb) > WIDTH:
            raise _refuse(what, k, "a product exceeding the 64-bit ring")
        ta, tb = _trunc_to(a, fa), _trunc_to(b, fb)
        fo = min(fa + fb, _frac_for(k, "float") if fa + fb else 0)
        err = 2.0 ** a.k * tb.err + 2.0 ** b.k * ta.err + ta.err * tb.err
        if fa + fb > fo:
            err += _ulp(fo)
        return Num(k, fo, err), [fa, fb]
    raise PrecisionError(f"no range rule for operator {op}")


def sum_of(row: Num, n: int, what: str) -> tuple[Num, int]:
    """SUM over at most ``n`` rows: (the sum's Num, the frac the row must have first)."""
    grow = max(0, int(math.ceil(math.log2(max(n, 1)))))
    k = row.k + grow
    if k > WIDTH:
        raise _refuse(what, k, f"a sum over {n} rows exceeding the 64-bit ring")
    f = min(row.frac, WIDTH - k)
    r = _trunc_to(row, f)
    return Num(k, f, r.err * max(n, 1), row.dec, row.approx), f


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
    reciprocal in two ``f``-bit limbs (``k + f + 17 <= 61``), a secret count uses
    pet.mpc.divide at the session's ``f`` (``k <= 19``). Relative error: about 2^-23
    (public), ``count * 2^-33`` (owned), 1e-4 (secret): the latter two are *approximate*
    (documented, not held to the 1e-6 criterion)."""
    ks = to_float(total).k if total.dec is not None else total.k
    fs = total.frac if total.dec is None else to_float(total).frac
    kr = to_float(row).k
    if count_kind == "pub":
        prep = min(fs, 46 - ks) if fs else min(session_frac, 46 - ks)
        rel, approx = 2.0 ** -22, False
    elif count_kind == "own":
        # x * hi: the raw product is about avg * 2^(f + 16); x * lo: below sum * 2^(f + 15)
        prep = min(fs if fs else session_frac, WIDTH - 16 - kr, WIDTH - 15 - ks)
        rel, approx = 2.0 ** -20, True
    else:
        # pet.mpc.divide at the session's f: |quotient| = |avg| * 2^s < 2^30
        prep = session_frac if (kr + divide_shift(n) <= 29 and ks + session_frac <= WIDTH) else -1
        rel, approx = 1e-4, True
    if prep < 1:
        raise _refuse(what, ks, "an average whose sum is too large to divide in the 64-bit ring")
    row = to_float(row)
    k = row.k
    f = max(prep, session_frac) if count_kind != "pub" else prep
    err = row.err + 2.0 ** -prep + rel * 2.0 ** k + 2 * _ulp(f)
    return Num(k, f, err, None, approx or row.approx, prep)


def extremes_rep(nums) -> tuple[int, int]:
    """(common frac, sentinel class) of a batch of MIN/MAX columns: ``B = 2^(K+1)`` with
    ``K`` the largest class, every column at ``f = min(max frac, WIDTH - K - 2)``."""
    K = max(n.k for n in nums)
    f = min(max(n.frac for n in nums), WIDTH - K - 2)
    return f, K + 1


def extreme_of(row: Num, what: str) -> Num:
    if row.k + 2 > WIDTH:
        raise _refuse(what, row.k, "MIN/MAX of a value exceeding the 64-bit ring")
    return row


def check(n: Num, what: str) -> Num:
    """Refuse ``n`` if its error bound exceeds the precision criterion."""
    if n.width > WIDTH:
        raise _refuse(what, n.k, "exceeds the 64-bit ring")
    if n.dec is None and not n.approx and n.err > REL_TARGET * 2.0 ** n.k and n.k > ZERO + 10:
        raise _refuse(what, n.k, f"its error bound {n.err:.3g} exceeds {REL_TARGET:g} of the bound "
                      "(too little precision left in the 64-bit ring)")
    return n


def decimals_for(n: Num) -> int | None:
    """Decimal places to round a revealed float to: the precision actually carried
    (None: leave as is)."""
    if n.dec is not None or n.err <= 0 or n.approx:
        return None
    # two digits beyond the error bound: rounding adds at most err / 20 (never past the criterion)
    return max(0, min(15, int(math.floor(-math.log10(n.err))) + 2))
