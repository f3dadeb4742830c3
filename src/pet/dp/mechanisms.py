"""Noise-adding mechanisms: CSPRNG randomness and floating-point-safe outputs.

All noise is drawn by the exact integer samplers of :mod:`pet.dp._sampling` from the OS
CSPRNG (``secrets``); nothing here uses the ``random`` module or numpy's generators.

Floating-point safety (Mironov 2012, "On significance of the least significant bits"): a naive
``x + Laplace(b)`` in doubles leaks ``x`` through which doubles can be output. The real-valued
mechanisms here output on a fixed lattice g·Z instead, where the step g = 2^k depends only on the
noise scale (never on the data): the input is clamped to ±2^50·g and rounded to the lattice, and
the noise is an exact discrete Laplace / discrete Gaussian in lattice units. Rounding moves an
input by at most g/2, so the mechanisms are calibrated for sensitivity Δ + g (a relative cost of
about 2^-20). Outputs are exactly representable doubles.

Guarantees:
* :func:`laplace_mechanism`: pure ε-DP, exactly (discrete Laplace on the lattice).
* :func:`gaussian_mechanism`: σ from the analytic Gaussian (Balle & Wang 2018) for (ε, δ) at
  sensitivity Δ + g. The lattice noise is a discrete Gaussian with σ/g >= 2^20 lattice steps; it
  satisfies exactly the Gaussian's RDP/zCDP bound (Canonne–Kamath–Steinke 2020, Thm 4), and its
  (ε, δ) profile matches the continuous one up to terms of order exp(−2π²(σ/g)²) (Poisson
  summation), far below double precision.
* :func:`discrete_laplace_mechanism`: pure ε-DP for integer queries with integer sensitivity.
* :func:`discrete_gaussian_mechanism`: ρ = Δ²/(2σ²)-zCDP (CKS Thm 4); σ is the smallest (on a
  1e-9 relative grid) for which that zCDP implies (ε, δ) by the improved RDP conversion.

Each mechanism takes ``record=``: any object with a ``compose(event)`` method (an accountant, or a
:class:`~pet.dp.budget.ClaimRecorder` charging a claim); the event is recorded *before* the noisy
value is returned, and if recording fails no value is released.

Timing: the samplers' running time depends on the magnitude of the noise they return, so an
observer who times a call *and* sees its output learns more than the DP guarantee allows. The
sampling party knows the input anyway; this matters when someone the noise protects against is
another party that can time the call and also gets the output (see
:mod:`pet.dp._sampling` and docs/dp.md, "Timing side channel of the samplers").
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from pet.dp._sampling import sample_discrete_gaussian, sample_discrete_laplace
from pet.dp.calibration import gaussian_sigma
from pet.dp.events import EpsilonDeltaEvent, GaussianEvent, ZCDPEvent, positive
from pet.errors import InputError

__all__ = [
    "laplace_mechanism",
    "gaussian_mechanism",
    "discrete_laplace_mechanism",
    "discrete_gaussian_mechanism",
    "lattice_step",
    "discrete_gaussian_sigma",
]

_LATTICE_BITS = 20  # lattice step = 2^(floor(log2(scale)) - 20)
_CLAMP_BITS = 50  # inputs are clamped to +-2^50 lattice steps



def _finite(name: str, v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a finite number, got {v!r}") from None
    if not math.isfinite(f):
        raise InputError(f"{name} must be a finite number, got {v!r}")
    return f


def lattice_step(scale: float) -> float:
    """The output lattice step g = 2^(⌊log2 scale⌋ − 20) used for noise of this scale."""
    return math.ldexp(1.0, math.frexp(scale)[1] - 1 - _LATTICE_BITS)


def _to_lattice(value: float, g: float) -> int:
    bound = math.ldexp(g, _CLAMP_BITS)
    v = min(max(value, -bound), bound)
    return round(Fraction(v) / Fraction(g))  # exact: g is a power of two; round half to even


def _from_lattice(k: int, g: float) -> float:
    return math.ldexp(float(k), math.frexp(g)[1] - 1)


def _record(record: Any, event: Any) -> None:
    if record is None:
        return
    compose = getattr(record, "compose", None)
    if compose is None:
        raise InputError(f"record must have a compose(event) method, got {type(record).__name__}")
    compose(event)


def laplace_mechanism(value: float, sensitivity: float, epsilon: float, *, record: Any = None) -> float:
    """``value`` + Laplace noise, ε-DP for a query of L1 ``sensitivity``; floating-point safe.

    Records ``EpsilonDeltaEvent(epsilon, 0)`` on ``record`` (if given) before returning.
    """
    x = _finite("value", value)
    sens = positive("sensitivity", sensitivity)
    eps = positive("epsilon", epsilon)
    g = lattice_step(sens / eps)
    scale = Fraction(sens + g) / Fraction(eps)  # exact rational scale for sensitivity + g
    k = _to_lattice(x, g)
    _record(record, EpsilonDeltaEvent(eps, 0.0))
    return _from_lattice(k + sample_discrete_laplace(scale / Fraction(g)), g)


def gaussian_mechanism(value: float, sensitivity: float, epsilon: float, delta: float, *, record: Any = None) -> float:
    """``value`` + Gaussian noise, (ε, δ)-DP for L2 ``sensitivity`` (analytic calibration); fp-safe.

    Records ``GaussianEvent(sigma / (sensitivity + g))`` on ``record`` before returning.
    """
    x = _finite("value", value)
    sens = positive("sensitivity", sensitivity)
    eps = positive("epsilon", epsilon)
    d = positive("delta", delta)
    if d >= 1:
        raise InputError(f"delta must be in (0, 1), got {delta!r}")
    g = lattice_step(gaussian_sigma(eps, d, sens))
    sigma = gaussian_sigma(eps, d, sens + g)
    k = _to_lattice(x, g)
    _record(record, GaussianEvent(sigma / (sens + g)))
    return _from_lattice(k + sample_discrete_gaussian(Fraction(sigma) ** 2 / Fraction(g) ** 2), g)


def _int(name: str, v: Any, minimum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        try:
            import numpy as np

            if isinstance(v, np.integer):
                v = int(v)
            else:
                raise TypeError
        except TypeError:
            raise InputError(f"{name} must be an int, got {v!r}") from None
    if minimum is not None and v < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {v!r}")
    return int(v)


def discrete_laplace_mechanism(value: int, sensitivity: int, epsilon: float, *, record: Any = None) -> int:
    """``value`` + discrete Laplace noise (P(y) ∝ e^{−ε|y|/Δ}); ε-DP for integer queries.

    Records ``EpsilonDeltaEvent(epsilon, 0)`` before returning.
    """
    x = _int("value", value)
    sens = _int("sensitivity", sensitivity, 1)
    eps = positive("epsilon", epsilon)
    _record(record, EpsilonDeltaEvent(eps, 0.0))
    return x + sample_discrete_laplace(Fraction(sens) / Fraction(eps))


def discrete_gaussian_sigma(sensitivity: int, epsilon: float, delta: float) -> float:
    """σ whose zCDP ρ = Δ²/(2σ²) implies (ε, δ)-DP by the improved RDP conversion.

    For each order α on a dense grid (1.01 … 1e6, 4,000 points) the improved conversion
    ε(α) = ρα + log(1 − 1/α) − log(δα)/(α − 1) <= ε gives a largest admissible ρ; the largest over
    the grid is used (any single α is a valid certificate, so the result is conservative).
    """
    sens = _int("sensitivity", sensitivity, 1)
    eps = positive("epsilon", epsilon)
    d = positive("delta", delta)
    if d >= 1:
        raise InputError(f"delta must be in (0, 1), got {delta!r}")
    import numpy as np

    a = np.geomspace(1.01, 1e6, 4000)
    rho = (eps - np.log1p(-1.0 / a) + np.log(d * a) / (a - 1)) / a
    best = float(rho.max())
    if best <= 0:  # pragma: no cover - cannot happen for eps > 0, delta in (0, 1)
        raise InputError("no discrete Gaussian meets this (epsilon, delta)")
    return sens / math.sqrt(2 * best)


def discrete_gaussian_mechanism(value: int, sensitivity: int, epsilon: float, delta: float, *,
                                record: Any = None) -> int:
    """``value`` + discrete Gaussian noise; (ε, δ)-DP via zCDP for integer queries.

    Records ``ZCDPEvent(Δ²/(2σ²))`` before returning.
    """
    x = _int("value", value)
    sens = _int("sensitivity", sensitivity, 1)
    sigma = discrete_gaussian_sigma(sens, epsilon, delta)
    _record(record, ZCDPEvent(sens * sens / (2 * sigma * sigma)))
    return x + sample_discrete_gaussian(Fraction(sigma) ** 2)
