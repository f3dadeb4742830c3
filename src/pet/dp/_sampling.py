"""Exact samplers from a CSPRNG (Canonne, Kamath, Steinke 2020, "The discrete Gaussian for DP").

Every random bit comes from :func:`secrets.randbelow` (the OS CSPRNG). All arithmetic is on
Python integers and :class:`fractions.Fraction`, so there is no floating-point rounding to leak
through (Mironov 2012): the samples follow the stated distributions exactly.

Timing: the loops run a random number of times, and in the accepted trial that number depends
on the value returned -- the geometric loop of :func:`sample_discrete_laplace` runs about
``|y| / scale`` times, and the acceptance test of :func:`sample_discrete_gaussian` about
``(|y| - sigma^2/t)^2 / (2 sigma^2)`` times -- so the running time reveals the noise's magnitude
(not its sign). Rejected trials are independent of the accepted value. Not padded (that would
change the distribution or still leak in Python); who can exploit it and how to avoid it:
docs/dp.md, "Timing side channel of the samplers".
"""

from __future__ import annotations

import math
import secrets
from fractions import Fraction

__all__ = [
    "bernoulli",
    "bernoulli_exp",
    "sample_discrete_laplace",
    "sample_discrete_gaussian",
    "uniform_bits",
]


def uniform_bits(k: int) -> int:
    """A uniform integer in [0, 2^k)."""
    return secrets.randbits(k) if k > 0 else 0


def bernoulli(p: Fraction) -> bool:
    """True with probability exactly p (0 <= p <= 1, rational)."""
    return secrets.randbelow(p.denominator) < p.numerator


def _bernoulli_exp_le1(gamma: Fraction) -> bool:
    # CKS Alg. 1 for 0 <= gamma <= 1: K = first k with B_k(gamma/k) = 0; return K odd.
    k = 1
    while bernoulli(gamma / k):
        k += 1
    return k % 2 == 1


def bernoulli_exp(gamma: Fraction) -> bool:
    """True with probability exactly exp(−gamma), for rational gamma >= 0."""
    while gamma > 1:
        if not _bernoulli_exp_le1(Fraction(1)):
            return False
        gamma -= 1
    return _bernoulli_exp_le1(gamma)


def _geometric_exp(gamma: Fraction) -> int:
    # Number of successes before the first failure of Bernoulli(exp(-gamma)).
    n = 0
    while bernoulli_exp(gamma):
        n += 1
    return n


def sample_discrete_laplace(scale: Fraction) -> int:
    """One draw Y with P(Y = y) ∝ exp(−|y|/scale) over the integers (CKS Alg. 2), scale > 0 rational."""
    # CKS Alg. 2 samples DLap(t/s) for integers t, s.
    t, s = scale.numerator, scale.denominator
    while True:
        u = secrets.randbelow(t)
        if not bernoulli_exp(Fraction(u, t)):
            continue
        v = _geometric_exp(Fraction(1))
        x = u + t * v
        y = x // s
        negative = secrets.randbelow(2) == 1
        if negative and y == 0:
            continue
        return -y if negative else y


def sample_discrete_gaussian(sigma2: Fraction) -> int:
    """One draw Y with P(Y = y) ∝ exp(−y²/(2σ²)) over the integers (CKS Alg. 3), σ² > 0 rational."""
    t = math.isqrt(sigma2.numerator // sigma2.denominator) + 1
    while True:
        y = sample_discrete_laplace(Fraction(t))
        c = abs(y) - sigma2 / t
        if bernoulli_exp(c * c / (2 * sigma2)):
            return y
