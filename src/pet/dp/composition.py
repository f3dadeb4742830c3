"""Composition theorems for k runs of an (ε, δ)-DP mechanism.

* :func:`basic_composition`: (Σε, Σδ).
* :func:`advanced_composition`: the *optimal* homogeneous composition theorem of Kairouz, Oh and
  Viswanath (2015, Thm 3.3): the smallest total ε of the form (k − 2i)ε whose total δ fits.
* :func:`smallest_epsilon_advanced_composition`: its inverse — the largest per-step ε whose
  k-fold optimal composition stays within a total (ε, δ).
* :func:`drv_composition`: Dwork–Rothblum–Vadhan's bound, never reported above basic composition.
"""

from __future__ import annotations

import math

import numpy as np

from pet.dp.accountant import check_delta, check_epsilon
from pet.dp.events import check_count
from pet.errors import InputError

__all__ = [
    "basic_composition",
    "advanced_composition",
    "smallest_epsilon_advanced_composition",
    "drv_composition",
]


def basic_composition(epsilons, deltas=None) -> tuple[float, float]:
    """Basic composition: (Σ εᵢ, min(1, Σ δᵢ)) for mechanisms (εᵢ, δᵢ)."""
    eps = [check_epsilon(e) for e in epsilons]
    ds = [0.0] * len(eps) if deltas is None else [check_delta(d) for d in deltas]
    if len(ds) != len(eps):
        raise InputError(f"deltas must have one value per epsilon ({len(eps)}), got {len(ds)}")
    return float(math.fsum(eps)), min(1.0, float(math.fsum(ds)))


def _kov_delta_i(epsilon: float, k: int, i: int) -> float:
    from scipy import special  # lazy: importing pet.dp stays cheap
    # delta_i = sum_{l < i} C(k, l) (e^{eps (k-l)} - e^{eps (k - 2i + l)}) / (1 + e^eps)^k, in log space.
    if i == 0 or epsilon == 0:
        return 0.0
    l = np.arange(i, dtype=np.float64)
    logc = special.gammaln(k + 1) - special.gammaln(l + 1) - special.gammaln(k - l + 1)
    logt = logc + epsilon * (k - l) + np.log(-np.expm1(-2.0 * epsilon * (i - l)))
    log_norm = k * (epsilon + math.log1p(math.exp(-epsilon)))  # k log(1 + e^eps)
    return float(math.exp(special.logsumexp(logt) - log_norm))


def advanced_composition(epsilon: float, delta: float, k: int, total_delta: float) -> float | None:
    """Total ε of ``k`` runs of an (``epsilon``, ``delta``)-DP mechanism at total δ ``total_delta``.

    Implements the optimal composition theorem (Kairouz–Oh–Viswanath 2015, Thm 3.3): returns the
    smallest (k − 2i)·ε with 1 − (1 − δ)^k (1 − δᵢ) <= total_delta, or ``None`` if even i = 0
    (basic composition, kε) does not fit.
    """
    epsilon = check_epsilon(epsilon)
    if math.isinf(epsilon):
        raise InputError("epsilon must be finite")
    delta = check_delta(delta)
    k = check_count(k)
    total_delta = check_delta(total_delta)
    log_keep = k * math.log1p(-delta) if delta < 1 else -math.inf
    for i in range(k // 2, -1, -1):
        d_i = _kov_delta_i(epsilon, k, i)
        if 1.0 - math.exp(log_keep) * (1.0 - d_i) <= total_delta:
            return epsilon * (k - 2 * i)
    return None


def smallest_epsilon_advanced_composition(total_epsilon: float, total_delta: float, k: int,
                                          delta: float = 0.0) -> float | None:
    """Largest per-step ε such that ``k`` runs of (ε, ``delta``) compose (optimally) within the totals.

    Bisection on ε (:func:`advanced_composition` is monotone in ε); returns ``None`` when even
    ε → 0 does not fit (i.e. the per-step δ alone exceeds ``total_delta``).
    """
    total_epsilon = check_epsilon(total_epsilon)
    total_delta = check_delta(total_delta)
    k = check_count(k)
    if k == 0:
        raise InputError("k must be >= 1")

    def fits(e: float) -> bool:
        t = advanced_composition(e, delta, k, total_delta)
        return t is not None and t <= total_epsilon

    if not fits(0.0):
        return None
    lo, hi = 0.0, max(total_epsilon, 1e-12)
    if fits(hi):  # cannot happen for k >= 1 unless total_epsilon is 0
        return hi
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        if hi - lo <= 1e-12 * hi:
            break
    return lo


def drv_composition(epsilon: float, delta: float, k: int, delta_prime: float) -> tuple[float, float]:
    """Dwork–Rothblum–Vadhan: (√(2k ln(1/δ'))·ε + kε(e^ε − 1), kδ + δ'), capped by basic (kε, kδ)."""
    epsilon = check_epsilon(epsilon)
    delta = check_delta(delta)
    k = check_count(k)
    delta_prime = check_delta(delta_prime)
    if delta_prime <= 0:
        raise InputError("delta_prime must be > 0")
    drv = math.sqrt(2 * k * math.log(1 / delta_prime)) * epsilon + k * epsilon * math.expm1(epsilon)
    if drv >= k * epsilon:
        return k * epsilon, min(1.0, k * delta)
    return drv, min(1.0, k * delta + delta_prime)
