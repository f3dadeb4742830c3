"""Noise calibration: the analytic Gaussian mechanism and a generic "noise for a target ε".

* :func:`gaussian_delta` is the exact privacy profile of the Gaussian mechanism (Balle & Wang
  2018, Thm 8): δ(ε) = Φ(Δ/(2σ) − εσ/Δ) − e^ε Φ(−Δ/(2σ) − εσ/Δ).
* :func:`gaussian_sigma` / :func:`gaussian_epsilon` invert it by bisection (the profile is
  monotone in σ and in ε); results are conservative: the σ returned meets the target δ, the ε
  returned is never below the true one (up to the bisection tolerance).
* :func:`calibrate_noise` finds the smallest noise parameter for which an accountant reports
  ε <= target, for any event family (bracketing then bisection).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pet.dp.accountant import check_delta, check_epsilon
from pet.dp.events import positive
from pet.errors import InputError

__all__ = ["gaussian_delta", "gaussian_epsilon", "gaussian_sigma", "calibrate_noise", "classic_gaussian_sigma"]



def gaussian_delta(sigma: float, epsilon: float, sensitivity: float = 1.0) -> float:
    """Exact δ(ε) of the Gaussian mechanism with std ``sigma`` and L2 ``sensitivity``."""
    from scipy import special  # lazy: importing pet.dp stays cheap
    sigma, sens = positive("sigma", sigma), positive("sensitivity", sensitivity)
    epsilon = check_epsilon(epsilon)
    if math.isinf(epsilon):
        return 0.0
    a = sens / (2 * sigma)
    b = epsilon * sigma / sens
    t1 = float(special.ndtr(a - b))
    t2 = math.exp(epsilon + float(special.log_ndtr(-a - b)))
    return min(1.0, max(0.0, t1 - t2))


def gaussian_epsilon(sigma: float, delta: float, sensitivity: float = 1.0) -> float:
    """Smallest ε with ``gaussian_delta(sigma, ε) <= delta`` (relative tolerance 1e-12)."""
    sigma, sens = positive("sigma", sigma), positive("sensitivity", sensitivity)
    delta = check_delta(delta)
    if delta <= 0:
        return math.inf
    if gaussian_delta(sigma, 0.0, sens) <= delta:
        return 0.0
    hi = 1.0
    while gaussian_delta(sigma, hi, sens) > delta:
        hi *= 2
        if hi > 1e12:
            return math.inf
    lo = 0.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if gaussian_delta(sigma, mid, sens) > delta:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return hi


def gaussian_sigma(epsilon: float, delta: float, sensitivity: float = 1.0) -> float:
    """Smallest σ (relative tolerance 1e-12) with the Gaussian mechanism (ε, δ)-DP (analytic Gaussian)."""
    epsilon = positive("epsilon", epsilon)
    delta = check_delta(delta)
    if not 0 < delta < 1:
        raise InputError(f"delta must be in (0, 1), got {delta!r}")
    sens = positive("sensitivity", sensitivity)
    lo, hi = sens, sens
    while gaussian_delta(hi, epsilon, sens) > delta:
        hi *= 2
    while lo > 1e-300 and gaussian_delta(lo, epsilon, sens) <= delta:
        lo /= 2
    # invariant: delta(lo) > delta >= delta(hi)
    for _ in range(300):
        mid = math.sqrt(lo * hi)
        if gaussian_delta(mid, epsilon, sens) > delta:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return hi


def classic_gaussian_sigma(epsilon: float, delta: float, sensitivity: float = 1.0) -> float:
    """The textbook σ = √(2 ln(1.25/δ))·Δ/ε (valid for ε < 1; looser than :func:`gaussian_sigma`)."""
    epsilon = positive("epsilon", epsilon)
    delta = check_delta(delta)
    if not 0 < delta < 1:
        raise InputError(f"delta must be in (0, 1), got {delta!r}")
    return math.sqrt(2 * math.log(1.25 / delta)) * positive("sensitivity", sensitivity) / epsilon


def calibrate_noise(
    make_accountant: Callable[[float], object],
    target_epsilon: float,
    delta: float,
    *,
    lower: float = 1e-3,
    upper: float = 1.0,
    tol: float = 1e-4,
) -> float:
    """Smallest noise parameter p (to relative ``tol``) with ``make_accountant(p).get_epsilon(delta) <= target``.

    ``make_accountant(p)`` must return an accountant with the events composed at noise ``p``
    (ε must decrease as p grows), e.g.
    ``lambda s: RDPAccountant().compose(PoissonSampledEvent(q, GaussianEvent(s)), steps)``.
    The returned value is on the safe side of the bisection (it meets the target).
    """
    target = positive("target_epsilon", target_epsilon)
    delta = check_delta(delta)
    lo, hi = positive("lower", lower), positive("upper", upper)

    def eps(p: float) -> float:
        return float(make_accountant(p).get_epsilon(delta))

    n = 0
    while eps(hi) > target:
        hi *= 2
        n += 1
        if n > 60:
            raise InputError("no noise level up to 2^60 × upper meets target_epsilon")
    while lo > 1e-12 and eps(lo) <= target:
        lo /= 2
    while hi - lo > tol * hi:
        mid = (lo + hi) / 2
        if eps(mid) > target:
            lo = mid
        else:
            hi = mid
    return hi
