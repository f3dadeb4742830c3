"""The range of a noisy DP sum inside MPC (issue 21 item 5), stated with the range
machinery of :mod:`pet.sql.numbers`.

A released DP entry (:mod:`pet.sql.dp`) is opened as ``sum + noise_0 + noise_1`` in
Z_2^64 on the integer lattice ``2^-f`` of its measurement (``frac = 0`` in the ring). Its
magnitude is bounded by

* the **clamped sum**: every joined row contributes at most ``S = max(|lo_int|, |hi_int|)``
  lattice units (COUNT: 1), so ``|sum| <= n S`` over ``n`` joined rows (``n`` is public to
  both parties: PSI reveals it);
* the **noise tails**: each party's noise exceeds ``t`` in magnitude with probability at
  most ``2^-TAIL_BITS`` (64), where ``t`` is exact for the discrete Laplace
  (``P(|Y| >= t) = 2 q^t / (1 + q)``, ``q = exp(-1/scale)``) and from the discrete
  Gaussian's sub-Gaussian tail ``P(|Y| >= t) <= 2 exp(-t^2 / (2 sigma^2))`` (Canonne,
  Kamath, Steinke 2020) for the Gaussian.

So ``|noisy| <= n S + 2 t`` except with probability ``2^-63``; the value is an exact
integer (``frac 0``, error 0) of class ``k = ceil(log2(n S + 2 t + 1))`` and must satisfy
:func:`pet.sql.numbers.check`, i.e. ``k <= WIDTH`` (61 bits). :func:`check_noisy_sums`
raises :class:`~pet.errors.PrecisionError` otherwise -- from public inputs (the DP plan and
``n``), so at both parties alike, before any MPC work. Should the noise exceed its tail
anyway, the opened value wraps: post-processing of the noisy value, so privacy is
unaffected (only that one release's accuracy).

:func:`pet.sql.dp.check_ranges` (called by ``run_dp`` before the MPC sums) enforces the
stricter ``(n + 1) S + 128 std < 2^60``; the tests show that whatever it accepts fits the
bound here, so the DP path needs no second call.
"""

from __future__ import annotations

import math
from fractions import Fraction

from pet.sql import numbers as N

__all__ = ["TAIL_BITS", "laplace_tail", "noise_tail", "noisy_sum_num", "check_noisy_sums"]

#: each party's noise stays within its tail bound except with probability 2^-TAIL_BITS
TAIL_BITS = 64


def laplace_tail(scale, t: int) -> float:
    """``P(|Y| >= t)`` for the discrete Laplace ``P(y) ∝ exp(-|y| / scale)``, ``t >= 1``:
    ``2 q^t / (1 + q)`` with ``q = exp(-1/scale)``."""
    q = math.exp(-1.0 / float(scale))
    return 2.0 * q ** int(t) / (1.0 + q)


def noise_tail(m, tail_bits: int = TAIL_BITS) -> int:
    """Smallest integer ``t >= 1`` (lattice units) with ``P(|noise of one party| >= t)``
    at most ``2^-tail_bits`` for measurement ``m`` (a pet.sql.dp.Measurement)."""
    target = tail_bits * math.log(2.0)
    if m.scale is not None:
        # 2 q^t / (1 + q) <= 2^-b  <=>  t >= (b ln 2 + ln(2 / (1 + q))) * scale
        b = float(m.scale)
        q = math.exp(-1.0 / b)
        return max(1, math.ceil((target + math.log(2.0 / (1.0 + q))) * b))
    s2 = float(Fraction(m.sigma2))
    # 2 exp(-t^2 / (2 s2)) <= 2^-b  <=>  t >= sqrt(2 s2 (b ln 2 + ln 2))
    return max(1, math.ceil(math.sqrt(2.0 * s2 * (target + math.log(2.0)))))


def noisy_sum_num(m, n: int) -> N.Num:
    """The :class:`pet.sql.numbers.Num` of a released noisy entry of ``m`` over ``n``
    joined rows: an exact integer (``frac 0``, error 0) of class
    ``ceil(log2(n S + 2 t + 1))``."""
    top = int(n) * int(m.sens) + 2 * noise_tail(m)
    return N.Num(max(1, top.bit_length()), 0, 0.0)


def check_noisy_sums(dplan, n: int) -> None:
    """PrecisionError (naming the measurement and its bound) if a noisy sum of ``dplan``
    over ``n`` joined rows could leave the 64-bit ring beyond the noise's 2^-64 tail."""
    for m in dplan.measurements:
        N.check(noisy_sum_num(m, n), f"DP noisy {m.name} over {n} rows (clamped sum plus both parties' noise "
                                     f"at its 2^-{TAIL_BITS} tail)")
