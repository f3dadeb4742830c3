"""Privacy-loss-distribution (PLD) accounting with pessimistic discretisation.

The privacy loss of a mechanism M between neighbours x, x' is L = log(P(o)/Q(o)) for o ~ P =
M(x), Q = M(x'). Its distribution (the PLD) determines the tightest (ε, δ) curve:
δ(ε) = P[L = ∞] + E[(1 − e^{ε−L})⁺], and PLDs of composed mechanisms are convolutions.

Discretisation on the loss grid h·Z, both pessimistic (every δ or ε reported upper-bounds the
true one, up to the truncated tail below): "connect the dots" (Doroshenko et al. 2022, Alg. 1;
the default) builds the grid PMF whose hockey-stick curve equals the true δ(ε) at each grid
point; "privacy buckets" rounds every loss value **up** to the grid (the mass of (kh − h, kh]
goes to kh), which can only increase δ(ε) but drifts by up to h per composition.
Tails: mass below the grid's first point
moves up to it (pessimistic) and mass above the last point becomes the "infinity" mass, which
counts fully in δ; the grid's ends are placed where the tail mass is below ``tail_mass``.

Neighbouring relation: add-or-remove-one. For Poisson-subsampled mechanisms the two directions
have different PLDs; both are composed and the larger δ (or ε) is reported. Supported leaf
events: Gaussian, Laplace, Poisson-sampled Gaussian or Laplace, and (ε, δ) events.
"""

from __future__ import annotations

import math

import numpy as np

from pet.dp.accountant import Accountant, check_delta, check_epsilon
from pet.dp.events import EpsilonDeltaEvent, GaussianEvent, LaplaceEvent, PoissonSampledEvent
from pet.errors import InputError

__all__ = ["PLDAccountant"]


class _PMF:
    """Loss values (offset + i)·h with probabilities probs, plus an atom at +∞."""

    __slots__ = ("h", "offset", "probs", "inf_mass")

    def __init__(self, h: float, offset: int, probs: np.ndarray, inf_mass: float) -> None:
        self.h, self.offset, self.probs, self.inf_mass = h, offset, probs, inf_mass

    @classmethod
    def identity(cls, h: float) -> _PMF:
        return cls(h, 0, np.ones(1), 0.0)

    def truncate(self, tail: float) -> _PMF:
        p = self.probs
        c = np.cumsum(p)
        lo = int(np.searchsorted(c, tail, side="right"))  # first index whose cumulative > tail
        lo = min(lo, len(p) - 1)
        rc = np.cumsum(p[::-1])
        cut = int(np.searchsorted(rc, tail, side="right"))
        hi = len(p) - min(cut, len(p) - 1 - lo)  # exclusive
        new = p[lo:hi].copy()
        new[0] += c[lo - 1] if lo > 0 else 0.0  # lower tail moves up: pessimistic
        inf = self.inf_mass + float(p[hi:].sum())  # upper tail goes to infinity: pessimistic
        return _PMF(self.h, self.offset + lo, new, min(inf, 1.0))

    def compose(self, other: _PMF, tail: float) -> _PMF:
        from scipy import signal  # lazy: importing pet.dp stays cheap
        if len(self.probs) == 1 or len(other.probs) == 1:
            probs = np.convolve(self.probs, other.probs)
        else:
            probs = np.clip(signal.fftconvolve(self.probs, other.probs), 0.0, None)
        inf = 1.0 - (1.0 - self.inf_mass) * (1.0 - other.inf_mass)
        return _PMF(self.h, self.offset + other.offset, probs, inf).truncate(tail)

    def self_compose(self, count: int, tail: float) -> _PMF:
        result = _PMF.identity(self.h)
        base = self
        while count:
            if count & 1:
                result = result.compose(base, tail)
            count >>= 1
            if count:
                base = base.compose(base, tail)
        return result

    def losses(self) -> np.ndarray:
        return (self.offset + np.arange(len(self.probs))) * self.h

    def delta(self, epsilon: float) -> float:
        l = self.losses()
        m = l > epsilon
        val = self.inf_mass + float(np.sum(self.probs[m] * -np.expm1(epsilon - l[m])))
        return min(max(val, 0.0), 1.0)

    def epsilon(self, delta: float) -> float:
        if self.inf_mass > delta:
            return math.inf
        l = self.losses()
        p = self.probs
        # Suffix sums: A[j] = sum_{k >= j} p_k, B[j] = sum_{k >= j} p_k e^{-l_k}.
        a = np.concatenate([np.cumsum(p[::-1])[::-1], [0.0]])
        b = np.concatenate([np.cumsum((p * np.exp(-l))[::-1])[::-1], [0.0]])
        # delta(l_j) counts mass strictly above l_j.
        d_at = self.inf_mass + a[1:] - np.exp(l) * b[1:]
        ok = np.nonzero(d_at <= delta)[0]
        if ok.size == 0:  # pragma: no cover - the top grid point always satisfies it
            return math.inf
        j = int(ok[0])
        # On (l_{j-1}, l_j]: delta(eps) = inf + A[j] - e^eps B[j].
        if b[j] <= 0:
            return max(float(l[j]), 0.0)
        num = self.inf_mass + a[j] - delta
        eps = math.log(num / b[j]) if num > 0 else -math.inf
        lo = float(l[j - 1]) if j > 0 else -math.inf
        return max(min(max(eps, lo), float(l[j])), 0.0)


def _log_y(l: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """log((e^l - 1 + q)/q) and a mask of where it is defined (the argument > 0)."""
    if q == 1.0:
        return l.copy(), np.ones(l.shape, dtype=bool)
    arg = np.expm1(l) + q
    ok = arg > 0
    out = np.full(l.shape, -np.inf)
    out[ok] = np.log(arg[ok]) - math.log(q)
    return out, ok


class _Noise:
    """A sensitivity-1 additive-noise mechanism: densities p0 = noise at 0, p1 = noise at 1."""

    def cdf(self, x, shift):  # pragma: no cover - abstract
        raise NotImplementedError

    def sf(self, x, shift):  # pragma: no cover - abstract
        raise NotImplementedError


class _GaussNoise(_Noise):
    def __init__(self, sigma: float) -> None:
        self.sigma = sigma

    def cdf(self, x, shift):
        from scipy import special  # lazy: importing pet.dp stays cheap
        return special.ndtr((x - shift) / self.sigma)

    def sf(self, x, shift):
        from scipy import special  # lazy: importing pet.dp stays cheap
        return special.ndtr((shift - x) / self.sigma)

    def threshold(self, log_y: np.ndarray):
        """x* with log r(x*) = log_y (r = p1/p0 is increasing); returns (x*, below, above)."""
        x = self.sigma**2 * log_y + 0.5
        return x, np.zeros(x.shape, bool), np.zeros(x.shape, bool)


class _LaplaceNoise(_Noise):
    def __init__(self, b: float) -> None:
        self.b = b

    def cdf(self, x, shift):
        z = (x - shift) / self.b
        return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0)), 1 - 0.5 * np.exp(-np.maximum(z, 0)))

    def sf(self, x, shift):
        z = (x - shift) / self.b
        return np.where(z > 0, 0.5 * np.exp(-np.maximum(z, 0)), 1 - 0.5 * np.exp(np.minimum(z, 0)))

    def threshold(self, log_y: np.ndarray):
        # log r(x) = (|x| - |x-1|)/b is -1/b for x <= 0, (2x-1)/b on (0, 1), 1/b for x >= 1.
        x = np.clip((self.b * log_y + 1.0) / 2.0, 0.0, 1.0)
        return x, log_y < -1.0 / self.b, log_y >= 1.0 / self.b


def _mixture(noise, q, fn, x):
    if q == 1.0:
        return fn(x, 1.0)
    return (1 - q) * fn(x, 0.0) + q * fn(x, 1.0)


def _remove_dist(noise, q: float, l: np.ndarray):
    """(P(L <= l), P(L > l), Q(L > l)) for the 'remove' pair P = (1-q)p0 + q p1, Q = p0.

    L = log(1 - q + q r(X)) is non-decreasing in X (r = p1/p0), so L <= l iff r(X) <= y(l).
    """
    log_y, ok = _log_y(l, q)
    x, below, above = noise.threshold(np.where(ok, log_y, 0.0))
    cdf = _mixture(noise, q, noise.cdf, x)
    sf = _mixture(noise, q, noise.sf, x)
    sfq = noise.sf(x, 0.0)
    none = below | ~ok  # L > l for every X
    cdf = np.where(none, 0.0, np.where(above, 1.0, cdf))
    sf = np.where(none, 1.0, np.where(above, 0.0, sf))
    sfq = np.where(none, 1.0, np.where(above, 0.0, sfq))
    return cdf, sf, sfq


def _add_dist(noise, q: float, l: np.ndarray):
    """(P(L <= l), P(L > l), Q(L > l)) for the 'add' pair P = p0, Q = (1-q)p0 + q p1.

    L = -log(1 - q + q r(X)); L <= l iff r(X) >= y(-l), i.e. X >= x*.
    """
    log_y, ok = _log_y(-l, q)
    x, below, _ = noise.threshold(np.where(ok, log_y, 0.0))
    ge = noise.sf(x, 0.0)
    lt = noise.cdf(x, 0.0)
    ltq = _mixture(noise, q, noise.cdf, x)
    top = 1.0 / noise.b if isinstance(noise, _LaplaceNoise) else np.inf
    strictly_above = log_y > top  # r(X) >= y is impossible
    allx = ~ok | below  # r(X) >= y for every X
    if isinstance(noise, _LaplaceNoise):
        allx = allx | (log_y <= -1.0 / noise.b)  # r's minimum e^{-1/b} is attained on X <= 0
    cdf = np.where(allx, 1.0, np.where(strictly_above, 0.0, ge))
    sf = np.where(allx, 0.0, np.where(strictly_above, 1.0, lt))
    sfq = np.where(allx, 0.0, np.where(strictly_above, 1.0, ltq))
    return cdf, sf, sfq


def _loss_range(dist, tail: float) -> tuple[float, float]:
    """[lo, hi] with P(L < lo) <= tail and P(L > hi) <= tail, found by doubling and bisection."""

    def f(v):
        c, s, _ = dist(np.array([v], dtype=np.float64))
        return float(c[0]), float(s[0])

    lo, hi = -1.0, 1.0
    while f(lo)[0] > tail and lo > -1e6:
        lo *= 2
    while f(hi)[1] > tail and hi < 1e6:
        hi *= 2
    a, b = lo, min(0.0, hi)
    if f(b)[0] > tail:
        for _ in range(60):
            m = (a + b) / 2
            a, b = (m, b) if f(m)[0] <= tail else (a, m)
        lo = a
    a, b = max(0.0, lo), hi
    if f(a)[1] > tail:
        for _ in range(60):
            m = (a + b) / 2
            a, b = (a, m) if f(m)[1] <= tail else (m, b)
        hi = b
    return lo, hi


def _discretise(dist, h: float, tail: float, method: str) -> _PMF:
    lo, hi = _loss_range(dist, tail)
    k_lo, k_hi = math.floor(lo / h), math.ceil(hi / h)
    if k_hi <= k_lo:
        k_hi = k_lo + 1
    if method == "privacy_buckets":
        # Round every loss up to the grid: mass of (kh - h, kh] goes to kh.
        ks = np.arange(k_lo - 1, k_hi + 1)
        cdf, sf, _ = dist(ks * h)
        probs = np.where(cdf[:-1] < 0.5, np.diff(cdf), -np.diff(sf))
        probs = np.clip(probs, 0.0, None)
        probs[0] += cdf[0]  # everything at or below the first point, rounded up onto it
        return _PMF(h, k_lo, probs, float(max(sf[-1], 0.0)))
    # Pessimistic connect-the-dots (Doroshenko et al. 2022, Alg. 1): a PMF on the grid whose
    # hockey-stick curve equals the true delta(eps) at every grid point and upper-bounds it between.
    ks = np.arange(k_lo, k_hi + 1)
    eps = ks * h
    _, sf, sfq = dist(eps)
    deltas = np.clip(sf - np.exp(eps) * sfq, 0.0, 1.0)
    deltas = np.minimum.accumulate(deltas)
    dd = np.diff(deltas)
    v1 = np.append(1.0 - deltas[0], dd / np.expm1(-h))
    v2 = np.append(dd / np.expm1(h), 0.0)
    probs = np.maximum(0.0, v1 + v2)
    return _PMF(h, k_lo, probs, float(deltas[-1]))


def _eps_delta_pmf(eps: float, delta: float, h: float) -> _PMF:
    # dp-accounting's PLD of an (eps, delta) mechanism: +eps w.p. (1-δ)e^eps/(1+e^eps),
    # -eps w.p. (1-δ)/(1+e^eps), +inf w.p. δ; losses rounded up to the grid.
    hi, lo = math.ceil(eps / h), math.ceil(-eps / h)
    probs = np.zeros(hi - lo + 1)
    w = (1.0 - delta)
    probs[-1] += w * math.exp(eps) / (1 + math.exp(eps)) if eps < 700 else w
    probs[0] += w / (1 + math.exp(eps)) if eps < 700 else 0.0
    return _PMF(h, lo, probs, delta)


class PLDAccountant(Accountant):
    """Privacy-loss-distribution accountant (pessimistic: every reported value is an upper bound).

    Args:
        value_discretization_interval: grid step h of the loss values (default 1e-4, as
            dp-accounting). Smaller is tighter and slower.
        tail_mass: probability mass dropped into the pessimistic tails at each step (1e-15).
        discretization: ``"connect_dots"`` (default, as dp-accounting: exact at grid points,
            pessimistic between) or ``"privacy_buckets"`` (round every loss up; simpler, looser
            for many compositions). Both are pessimistic.
    """

    def __init__(
        self,
        value_discretization_interval: float = 1e-4,
        tail_mass: float = 1e-15,
        discretization: str = "connect_dots",
    ) -> None:
        super().__init__()
        if discretization not in ("connect_dots", "privacy_buckets"):
            raise InputError(f"discretization must be 'connect_dots' or 'privacy_buckets', got {discretization!r}")
        self._method = discretization
        h = float(value_discretization_interval)
        if not (h > 0 and math.isfinite(h)):
            raise InputError(f"value_discretization_interval must be > 0, got {value_discretization_interval!r}")
        t = float(tail_mass)
        if not 0 <= t < 1e-3:
            raise InputError(f"tail_mass must be in [0, 1e-3), got {tail_mass!r}")
        self._h, self._tail = h, t
        self._remove = _PMF.identity(h)
        self._add = _PMF.identity(h)

    def _supports_leaf(self, event) -> str | None:
        if isinstance(event, (GaussianEvent, LaplaceEvent, PoissonSampledEvent, EpsilonDeltaEvent)):
            return None
        return "unknown event"

    def _leaf_pmfs(self, event) -> tuple[_PMF, _PMF]:
        h, tail = self._h, self._tail
        if isinstance(event, EpsilonDeltaEvent):
            pmf = _eps_delta_pmf(event.epsilon, event.delta, h)
            return pmf, pmf
        q, base = (event.sampling_rate, event.event) if isinstance(event, PoissonSampledEvent) else (1.0, event)
        if q == 0.0:
            return _PMF.identity(h), _PMF.identity(h)
        noise = _GaussNoise(base.noise_multiplier) if isinstance(base, GaussianEvent) else _LaplaceNoise(base.scale)
        remove = _discretise(lambda l: _remove_dist(noise, q, l), h, tail, self._method)
        if q == 1.0:  # symmetric noise: both directions have the same PLD
            return remove, remove
        add = _discretise(lambda l: _add_dist(noise, q, l), h, tail, self._method)
        return remove, add

    def _compose_leaf(self, event, count: int) -> None:
        remove, add = self._leaf_pmfs(event)
        self._remove = self._remove.compose(remove.self_compose(count, self._tail), self._tail)
        if add is remove and self._add is self._remove:
            self._add = self._remove
        else:
            self._add = self._add.compose(add.self_compose(count, self._tail), self._tail)

    def get_delta(self, epsilon: float) -> float:
        """Smallest δ (upper bound) such that everything composed so far is (ε, δ)-DP."""
        e = check_epsilon(epsilon)
        return max(self._remove.delta(e), self._add.delta(e))

    def get_epsilon(self, delta: float) -> float:
        """Smallest ε (upper bound) such that everything composed so far is (ε, δ)-DP."""
        d = check_delta(delta)
        return max(self._remove.epsilon(d), self._add.epsilon(d))
