"""Privacy events: immutable descriptions of *what happened*, not of what it cost.

An event records which mechanism ran with which noise, in the spirit of dp-accounting's
``DpEvent``: accountants (:mod:`pet.dp.rdp`, :mod:`pet.dp.pld`) turn events into a privacy
cost. Events are frozen dataclasses validated at construction, so an invalid event can never
reach an accountant. Every noise parameter is *normalised to sensitivity 1*: a Gaussian with
standard deviation ``sigma`` on a query of L2 sensitivity ``D`` is ``GaussianEvent(sigma / D)``.

Neighbouring relation: add-or-remove-one (the relation under which Poisson subsampling
amplifies privacy), as dp-accounting's default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pet.errors import InputError

__all__ = [
    "GaussianEvent",
    "LaplaceEvent",
    "PoissonSampledEvent",
    "EpsilonDeltaEvent",
    "ZCDPEvent",
    "ComposedEvent",
    "SelfComposedEvent",
    "Event",
]


def positive(name: str, value: float) -> float:
    """``value`` as a float, or :class:`~pet.errors.InputError` naming ``name`` unless it is
    a finite number > 0 (shared by events, calibration and mechanisms)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number > 0, got {value!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise InputError(f"{name} must be a finite number > 0, got {value!r}")
    return value


@dataclass(frozen=True)
class GaussianEvent:
    """The Gaussian mechanism with noise standard deviation ``noise_multiplier`` × sensitivity."""

    noise_multiplier: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "noise_multiplier", positive("noise_multiplier", self.noise_multiplier))


@dataclass(frozen=True)
class LaplaceEvent:
    """The Laplace mechanism with scale ``scale`` × L1 sensitivity (pure ε = 1/scale)."""

    scale: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", positive("scale", self.scale))


@dataclass(frozen=True)
class PoissonSampledEvent:
    """``event`` run on a Poisson subsample: each record kept independently w.p. ``sampling_rate``."""

    sampling_rate: float
    event: Event

    def __post_init__(self) -> None:
        try:
            q = float(self.sampling_rate)
        except (TypeError, ValueError):
            raise InputError(f"sampling_rate must be a number, got {self.sampling_rate!r}") from None
        if not 0.0 <= q <= 1.0:
            raise InputError(f"sampling_rate must be in [0, 1], got {self.sampling_rate!r}")
        object.__setattr__(self, "sampling_rate", q)
        if not isinstance(self.event, (GaussianEvent, LaplaceEvent)):
            raise InputError(
                "PoissonSampledEvent.event must be a GaussianEvent or LaplaceEvent, "
                f"got {type(self.event).__name__}"
            )


@dataclass(frozen=True)
class EpsilonDeltaEvent:
    """A mechanism known only by its (ε, δ)-DP guarantee (composed by basic composition)."""

    epsilon: float
    delta: float = 0.0

    def __post_init__(self) -> None:
        eps, delta = float(self.epsilon), float(self.delta)
        if not (eps >= 0 and math.isfinite(eps)):
            raise InputError(f"epsilon must be finite and >= 0, got {self.epsilon!r}")
        if not 0.0 <= delta <= 1.0:
            raise InputError(f"delta must be in [0, 1], got {self.delta!r}")
        object.__setattr__(self, "epsilon", eps)
        object.__setattr__(self, "delta", delta)


@dataclass(frozen=True)
class ZCDPEvent:
    """A mechanism known to be ρ-zCDP: Rényi divergence <= ρ·α at every order α (e.g. the discrete Gaussian)."""

    rho: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "rho", positive("rho", self.rho))


@dataclass(frozen=True)
class ComposedEvent:
    """Sequential composition of several events."""

    events: tuple

    def __post_init__(self) -> None:
        events = tuple(self.events)
        for e in events:
            if not isinstance(e, _EVENT_TYPES):
                raise InputError(f"ComposedEvent.events must hold events, got {type(e).__name__}")
        object.__setattr__(self, "events", events)


@dataclass(frozen=True)
class SelfComposedEvent:
    """``event`` composed with itself ``count`` times."""

    event: Event
    count: int

    def __post_init__(self) -> None:
        if not isinstance(self.event, _EVENT_TYPES):
            raise InputError(f"SelfComposedEvent.event must be an event, got {type(self.event).__name__}")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise InputError(f"count must be an int >= 0, got {self.count!r}")


Event = (
    GaussianEvent | LaplaceEvent | PoissonSampledEvent | EpsilonDeltaEvent | ZCDPEvent | ComposedEvent
    | SelfComposedEvent
)
_EVENT_TYPES = (
    GaussianEvent,
    LaplaceEvent,
    PoissonSampledEvent,
    EpsilonDeltaEvent,
    ZCDPEvent,
    ComposedEvent,
    SelfComposedEvent,
)


def check_count(count: object) -> int:
    """Validate a composition count (an int >= 0) and return it."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InputError(f"count must be an int >= 0, got {count!r}")
    return count


def check_event(event: object) -> None:
    """Raise :class:`InputError` unless ``event`` is one of the event types."""
    if not isinstance(event, _EVENT_TYPES):
        raise InputError(f"event must be a pet.dp event, got {type(event).__name__}")
