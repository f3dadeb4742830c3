"""Rényi differential privacy (RDP): per-mechanism curves, conversions, and the RDP accountant.

An (α, r)-RDP guarantee bounds the Rényi divergence of order α between the outputs on
neighbouring data sets by r. RDP composes by addition at every order. Curves here are over an
order grid (default: dp-accounting's ``DEFAULT_RDP_ORDERS``).

Formulas:
* Gaussian, noise multiplier σ: r(α) = α / (2σ²).
* Laplace, scale b: r(α) = 1/(α−1) · log(α/(2α−1) e^{(α−1)/b} + (α−1)/(2α−1) e^{−α/b})
  (Mironov 2017, Table II); r(1) = 1/b + e^{−1/b} − 1, r(∞) = 1/b.
* Poisson-subsampled Gaussian: the A_α series of Mironov, Talwar, Zhang (2019) §3.3, exact for
  integer α and a convergent two-sided series for fractional α.

Conversions to (ε, δ)-DP:
* ``"classic"``: ε = min_α r(α) + log(1/δ)/(α−1) (Mironov 2017, Prop. 3);
* ``"improved"``: ε = min_α r(α) + log((α−1)/α) − (log δ + log α)/(α−1)
  (Balle et al. 2020, Thm 21), with the KL bound δ ≤ √(1 − e^{−r}) when it gives ε = 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from pet.dp.accountant import Accountant, PrivacyWarning, check_delta, check_epsilon
from pet.dp.events import EpsilonDeltaEvent, GaussianEvent, LaplaceEvent, PoissonSampledEvent, ZCDPEvent
from pet.errors import InputError

__all__ = [
    "DEFAULT_ORDERS",
    "RDPAccountant",
    "rdp_gaussian",
    "rdp_laplace",
    "rdp_poisson_subsampled_gaussian",
    "rdp_of_event",
    "rdp_to_epsilon",
    "rdp_to_delta",
    "epsilon_delta_to_rdp_budget",
]

#: The usual order grid (dp-accounting's default): 1.1..10.9 by 0.1, 11..63, 128..1024.
DEFAULT_ORDERS: tuple = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024])


def _orders_array(orders: Sequence[float]) -> np.ndarray:
    arr = np.asarray(orders, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise InputError("orders must be a non-empty sequence of numbers >= 1")
    if np.any(np.isnan(arr)) or np.any(arr < 1):
        raise InputError(f"every order must be >= 1, got {list(orders)!r}")
    return arr


def rdp_gaussian(noise_multiplier: float, orders: Sequence[float]) -> np.ndarray:
    """RDP curve α/(2σ²) of the Gaussian mechanism with noise multiplier σ (sensitivity 1)."""
    sigma = GaussianEvent(noise_multiplier).noise_multiplier
    a = _orders_array(orders)
    return a / (2.0 * sigma * sigma)


def _laplace_one(b: float, alpha: float) -> float:
    if math.isinf(alpha):
        return 1.0 / b
    if alpha == 1.0:
        return 1.0 / b + math.expm1(-1.0 / b)
    # log-sum-exp of the two terms for stability at large alpha / small b.
    t1 = math.log(alpha / (2 * alpha - 1)) + (alpha - 1) / b
    t2 = math.log((alpha - 1) / (2 * alpha - 1)) - alpha / b
    return float(np.logaddexp(t1, t2)) / (alpha - 1)


def rdp_laplace(scale: float, orders: Sequence[float]) -> np.ndarray:
    """RDP curve of the Laplace mechanism with scale ``scale`` (L1 sensitivity 1), Mironov Table II."""
    b = LaplaceEvent(scale).scale
    return np.array([_laplace_one(b, float(a)) for a in _orders_array(orders)])


def _log_comb(n: float, k: float) -> float:
    from scipy import special  # lazy: importing pet.dp stays cheap
    return float(special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1))


def _log_erfc(x: float) -> float:
    from scipy import special  # lazy: importing pet.dp stays cheap
    return math.log(2.0) + float(special.log_ndtr(-x * math.sqrt(2.0)))


def _log_a_int(q: float, sigma: float, alpha: int) -> float:
    from scipy import special  # lazy: importing pet.dp stays cheap
    # A_alpha = sum_i C(alpha, i) q^i (1-q)^(alpha-i) exp((i^2 - i) / (2 sigma^2)), in log space.
    i = np.arange(alpha + 1, dtype=np.float64)
    logc = special.gammaln(alpha + 1) - special.gammaln(i + 1) - special.gammaln(alpha - i + 1)
    terms = logc + i * math.log(q) + (alpha - i) * math.log1p(-q) + (i * i - i) / (2 * sigma * sigma)
    return float(special.logsumexp(terms))


def _log_a_frac(q: float, sigma: float, alpha: float) -> float:
    # Mironov, Talwar, Zhang 2019, Sec. 3.3: split the integral at z0 and expand both halves.
    log_a0 = log_a1 = -math.inf
    z0 = sigma * sigma * math.log(1.0 / q - 1.0) + 0.5
    log1mq = math.log1p(-q)
    last0 = last1 = -math.inf
    for i in range(1000):  # as dp-accounting; non-convergence gives +inf (safe)
        log_coef = _log_comb(alpha, i)
        j = alpha - i
        log_t0 = log_coef + i * math.log(q) + j * log1mq
        log_t1 = log_coef + j * math.log(q) + i * log1mq
        log_e0 = math.log(0.5) + _log_erfc((i - z0) / (math.sqrt(2) * sigma))
        log_e1 = math.log(0.5) + _log_erfc((z0 - j) / (math.sqrt(2) * sigma))
        s0 = log_t0 + (i * i - i) / (2 * sigma * sigma) + log_e0
        s1 = log_t1 + (j * j - j) / (2 * sigma * sigma) + log_e1
        log_a0 = float(np.logaddexp(log_a0, s0))
        log_a1 = float(np.logaddexp(log_a1, s1))
        total = float(np.logaddexp(log_a0, log_a1))
        if s0 < last0 and s1 < last1 and max(s0, s1) < total - 30:
            return total
        last0, last1 = s0, s1
    # Not converged: report +inf (a safe, if useless, bound) rather than a wrong number.
    return math.inf


def rdp_poisson_subsampled_gaussian(sampling_rate: float, noise_multiplier: float,
                                    orders: Sequence[float]) -> np.ndarray:
    """RDP curve of the Poisson-subsampled Gaussian (add-or-remove neighbours).

    Exact series for integer orders, the two-sided series of Mironov–Talwar–Zhang 2019 for
    fractional ones; +inf at α = ∞ when 0 < q < 1.
    """
    ev = PoissonSampledEvent(sampling_rate, GaussianEvent(noise_multiplier))
    q, sigma = ev.sampling_rate, ev.event.noise_multiplier
    out = []
    for a in _orders_array(orders):
        a = float(a)
        if q == 0.0:
            out.append(0.0)
        elif math.isinf(a):
            out.append(math.inf)
        elif q == 1.0:
            out.append(a / (2 * sigma * sigma))
        elif a == 1.0:
            # Order 1 (the KL divergence): RDP is non-decreasing in alpha, so the exact value at
            # order 2 is a safe upper bound.
            out.append(_log_a_int(q, sigma, 2))
        elif a.is_integer():
            out.append(_log_a_int(q, sigma, int(a)) / (a - 1))
        else:
            out.append(_log_a_frac(q, sigma, a) / (a - 1))
    return np.array(out, dtype=np.float64)


def rdp_of_event(event, orders: Sequence[float]) -> np.ndarray:
    """RDP curve of one leaf event on ``orders`` (Gaussian, Laplace, Poisson-sampled Gaussian)."""
    if isinstance(event, GaussianEvent):
        return rdp_gaussian(event.noise_multiplier, orders)
    if isinstance(event, LaplaceEvent):
        return rdp_laplace(event.scale, orders)
    if isinstance(event, PoissonSampledEvent) and isinstance(event.event, GaussianEvent):
        return rdp_poisson_subsampled_gaussian(event.sampling_rate, event.event.noise_multiplier, orders)
    if isinstance(event, ZCDPEvent):
        return event.rho * _orders_array(orders)
    if isinstance(event, EpsilonDeltaEvent) and event.delta == 0:
        # Pure eps-DP implies (eps^2/2)-zCDP (Bun & Steinke 2016, Prop. 1.4) and RDP <= eps.
        a = _orders_array(orders)
        return np.minimum(event.epsilon, a * event.epsilon**2 / 2)
    raise InputError(f"no RDP curve for {event!r}")


def _check_conversion(conversion: str) -> str:
    if conversion not in ("classic", "improved"):
        raise InputError(f"conversion must be 'classic' or 'improved', got {conversion!r}")
    return conversion


def rdp_to_epsilon(orders: Sequence[float], rdp: Sequence[float], delta: float,
                   conversion: str = "improved") -> tuple[float, float]:
    """Smallest ε over the grid such that the RDP curve implies (ε, δ)-DP; returns (ε, optimal order)."""
    conversion = _check_conversion(conversion)
    delta = check_delta(delta)
    a = _orders_array(orders)
    r = np.asarray(rdp, dtype=np.float64).reshape(-1)
    if r.shape != a.shape:
        raise InputError(f"rdp must have one value per order ({a.size}), got {r.size}")
    if delta == 0.0:
        return (0.0, float(a[0])) if np.all(r == 0) else (math.inf, float(a[0]))
    eps = np.full(a.shape, math.inf)
    for k, (alpha, rr) in enumerate(zip(a, r)):
        if math.isinf(rr) or math.isnan(rr):
            continue
        rr = max(rr, 0.0)
        if conversion == "classic":
            if alpha > 1:
                eps[k] = rr + math.log(1.0 / delta) / (alpha - 1) if not math.isinf(alpha) else rr
        else:
            if delta * delta + math.expm1(-rr) > 0:
                eps[k] = 0.0
            elif alpha > 1.01:
                eps[k] = (rr + math.log1p(-1.0 / alpha) - math.log(delta * alpha) / (alpha - 1)
                          if not math.isinf(alpha) else rr)
    k = int(np.argmin(eps))
    return max(0.0, float(eps[k])), float(a[k])


def rdp_to_delta(orders: Sequence[float], rdp: Sequence[float], epsilon: float,
                 conversion: str = "improved") -> tuple[float, float]:
    """Smallest δ over the grid such that the RDP curve implies (ε, δ)-DP; returns (δ, optimal order)."""
    conversion = _check_conversion(conversion)
    epsilon = check_epsilon(epsilon)
    a = _orders_array(orders)
    r = np.asarray(rdp, dtype=np.float64).reshape(-1)
    if r.shape != a.shape:
        raise InputError(f"rdp must have one value per order ({a.size}), got {r.size}")
    logd = np.full(a.shape, math.inf)
    for k, (alpha, rr) in enumerate(zip(a, r)):
        if math.isinf(rr) or math.isnan(rr):
            continue
        rr = max(rr, 0.0)
        if math.isinf(alpha):
            logd[k] = 0.0 if rr > epsilon else -math.inf
            continue
        if conversion == "classic":
            if alpha > 1:
                logd[k] = (alpha - 1) * (rr - epsilon)
        else:
            ld = -math.inf if rr == 0 else 0.5 * math.log1p(-math.exp(-rr))
            if alpha > 1.01:
                ld = min(ld, (alpha - 1) * (rr - epsilon + math.log1p(-1.0 / alpha)) - math.log(alpha))
            logd[k] = ld
    k = int(np.argmin(logd))
    return min(math.exp(float(logd[k])), 1.0), float(a[k])


def epsilon_delta_to_rdp_budget(epsilon: float, delta: float, orders: Sequence[float]) -> np.ndarray:
    """A block's Rényi budget curve εG(α) = max(0, εG − log(1/δG)/(α−1)) (PrivateKube Alg. 3).

    Any consumption c with c(α) <= εG(α) at *some* order α implies (εG, δG)-DP by the classic
    conversion, which is what makes the per-block ∃α test of Rényi DPF sound.
    """
    eps = check_epsilon(epsilon)
    d = check_delta(delta)
    if not 0 < d < 1:
        raise InputError(f"delta must be in (0, 1) for a Rényi budget, got {delta!r}")
    a = _orders_array(orders)
    with np.errstate(divide="ignore"):
        curve = np.where(np.isinf(a), eps, eps - math.log(1.0 / d) / (a - 1))
    return np.maximum(curve, 0.0)


class RDPAccountant(Accountant):
    """Rényi-DP accountant over an order grid.

    Args:
        orders: RDP orders (default :data:`DEFAULT_ORDERS`).
        conversion: ``"improved"`` (Balle et al. 2020) or ``"classic"`` RDP→(ε, δ) conversion.

    Supports :class:`GaussianEvent`, :class:`LaplaceEvent`, :class:`PoissonSampledEvent` of a
    Gaussian, :class:`ZCDPEvent`, pure :class:`EpsilonDeltaEvent` (δ = 0, via ε²/2-zCDP), and
    compositions of these. :meth:`get_epsilon` / :meth:`get_delta` emit a
    :class:`PrivacyWarning` when the optimum is at the smallest or largest order (the grid may be
    too narrow, so the answer may be loose — still a valid bound).
    """

    def __init__(self, orders: Sequence[float] | None = None, conversion: str = "improved") -> None:
        super().__init__()
        self._orders = _orders_array(DEFAULT_ORDERS if orders is None else orders)
        self._conversion = _check_conversion(conversion)
        self._rdp = np.zeros_like(self._orders)

    @property
    def orders(self) -> np.ndarray:
        return self._orders.copy()

    @property
    def rdp(self) -> np.ndarray:
        """The composed RDP curve, one value per order (a copy)."""
        return self._rdp.copy()

    def _supports_leaf(self, event) -> str | None:
        if isinstance(event, (GaussianEvent, LaplaceEvent, ZCDPEvent)):
            return None
        if isinstance(event, PoissonSampledEvent):
            if isinstance(event.event, GaussianEvent):
                return None
            return "RDP supports Poisson sampling of Gaussian events only"
        if isinstance(event, EpsilonDeltaEvent):
            if event.delta == 0:
                return None
            return "an (epsilon, delta) guarantee with delta > 0 has no RDP curve (use basic composition)"
        return "unknown event"

    def _compose_leaf(self, event, count: int) -> None:
        self._rdp = self._rdp + count * rdp_of_event(event, self._orders)

    def _warn_edge(self, order: float) -> None:
        finite = self._orders[np.isfinite(self._orders)]
        if len(self._orders) > 1 and finite.size and (order == finite.min() or order == finite.max()):
            warnings.warn(
                f"the optimal RDP order {order} is at the edge of the order grid; "
                "a wider grid may give a tighter bound",
                PrivacyWarning,
                stacklevel=3,
            )

    def get_epsilon_and_order(self, delta: float) -> tuple[float, float]:
        """(ε, optimal order) for the given δ."""
        eps, order = rdp_to_epsilon(self._orders, self._rdp, delta, self._conversion)
        if eps > 0 and math.isfinite(eps):
            self._warn_edge(order)
        return eps, order

    def get_epsilon(self, delta: float) -> float:
        """Smallest ε such that everything composed so far is (ε, δ)-DP."""
        return self.get_epsilon_and_order(delta)[0]

    def get_delta(self, epsilon: float) -> float:
        """Smallest δ such that everything composed so far is (ε, δ)-DP."""
        d, order = rdp_to_delta(self._orders, self._rdp, epsilon, self._conversion)
        if 0 < d < 1:
            self._warn_edge(order)
        return d
