"""Comparisons and selection on shared values: ``< <= > >= ==``, sign, where, maximum,
minimum, relu (argmax, max, argmin, min: :mod:`pet.mpc.tournament`, re-exported here).

All comparisons reduce to the most significant bit of a difference
(:func:`pet.mpc.boolean.msb`, 8 rounds; 7 with the dealer-free OT source, whose leaves are
1-out-of-16 OTs) and return shared integers 0/1 (``frac = 0``). Round counts below are
the dealer path's.
``a < b`` is exact whenever ``a - b`` (on the common fixed-point scale) fits in the
signed 64-bit ring, in particular whenever ``|a - b| >= 2^-f`` and both are in the safe
range. A party learns nothing from a comparison (every opened value is masked).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from pet.errors import InputError, PetTypeError
from pet.mpc import arithmetic
from pet.mpc.boolean import msb
from pet.mpc.shared import Shared

__all__ = ["less", "less_equal", "greater", "greater_equal", "equal", "sign_bit", "where",
           "maximum", "minimum", "relu", "argmax", "argmin", "max", "min"]


def _diff(a, b) -> Shared:
    """``a - b`` as a Shared on the common scale (at least one must be Shared)."""
    if isinstance(a, Shared):
        return arithmetic.sub(a, b)
    if isinstance(b, Shared):
        return arithmetic.add(arithmetic.neg(b), a)
    raise PetTypeError("a comparison needs at least one Shared operand")


def sign_bit(x: Shared, *, bits: int | None = None, bound=None) -> Shared:
    """Shared 0/1: 1 where ``x < 0`` (8 rounds).

    Narrow form: ``bits=l`` (1..64) compares on ``l``-bit values
    (:func:`pet.mpc.boolean.msb` with ``bits``; lane ``L`` = ``l`` rounded up to 8, 16
    or 32: ``2 + log2 L`` rounds and about ``L / 2`` bytes per element per party instead
    of 8 rounds and 33 bytes). It is exact only when the integer encoding
    ``X = x * 2^frac`` satisfies ``-2^(l-1) <= X < 2^(l-1)`` -- the caller's guarantee;
    outside it the bit is meaningless (nothing can be checked on shared values).
    ``bound=B`` declares ``|x| <= B`` (real units, public): with ``bits`` it is checked
    and a bound that does not fit is refused with :class:`~pet.errors.PrecisionError`
    before any message; without ``bits`` the narrowest exact width is chosen
    (:func:`pet.mpc.boolean.msb_width`)."""
    from pet.mpc.boolean import check_msb_bound, msb_lane, msb_width

    if bound is not None:
        b = float(bound)
        if not b >= 0 or not np.isfinite(b):
            raise InputError("sign_bit: bound must be a finite number >= 0 (a bound on |x|)")
        enc = math.ceil(Fraction(b) * 2 ** x.frac)
        if bits is None:
            bits = msb_width(enc)
        else:
            check_msb_bound(enc, bits, "sign_bit x")
    if bits is None:
        return Shared(x.session, msb(x.session, x.share), 0)
    msb_lane(bits)
    return Shared(x.session, msb(x.session, x.share, int(bits)), 0)


def less(a, b) -> Shared:
    """``a < b`` as shared 0/1 (8 rounds)."""
    return sign_bit(_diff(a, b))


def greater(a, b) -> Shared:
    """``a > b`` as shared 0/1 (8 rounds)."""
    return sign_bit(_diff(b, a))


def less_equal(a, b) -> Shared:
    """``a <= b`` = ``1 - (b < a)`` (8 rounds)."""
    return 1 - greater(a, b)


def greater_equal(a, b) -> Shared:
    """``a >= b`` = ``1 - (a < b)`` (8 rounds)."""
    return 1 - less(a, b)


def equal(a, b) -> Shared:
    """``a == b`` as shared 0/1: ``1 - [d < 0] - [-d < 0]`` for ``d = a - b``, both signs
    in one batched MSB (8 rounds, twice the traffic of ``<``)."""
    d = _diff(a, b)
    both = Shared(d.session, np.concatenate([d.share.ravel(), np.negative(d.share).ravel()]), d.frac)
    bits = sign_bit(both)
    n = d.size
    s = Shared(d.session, bits.share[:n] + bits.share[n:], 0).reshape(d.shape)
    return 1 - s


def where(cond: Shared, a, b) -> Shared:
    """``cond ? a : b`` elementwise for shared 0/1 ``cond``: ``b + cond * (a - b)``
    (1 round, a Beaver product with an integer bit needs no truncation)."""
    if not isinstance(cond, Shared):
        raise PetTypeError("where: cond must be a Shared 0/1 array (use numpy.where for public conditions)")
    if cond.frac != 0:
        raise InputError("where: cond must be an integer 0/1 Shared (the result of a comparison)")
    if not isinstance(a, Shared) and not isinstance(b, Shared):
        return arithmetic.add(cond * (np.asarray(a) - np.asarray(b)), b)
    diff = _diff(a, b)
    return arithmetic.add(cond * diff, b)


def maximum(a, b) -> Shared:
    """Elementwise maximum (9 rounds)."""
    return where(greater(a, b), a, b)


def minimum(a, b) -> Shared:
    """Elementwise minimum (9 rounds)."""
    return where(less(a, b), a, b)


def relu(x: Shared) -> Shared:
    """``max(x, 0)`` = ``x * [x > 0]`` (9 rounds)."""
    return x * greater(x, 0)


# argmax / max and friends live in pet.mpc.tournament (one implementation for every caller);
# re-exported here, where they have always been importable from
from pet.mpc.tournament import argmax, argmin, max, min  # noqa: E402
