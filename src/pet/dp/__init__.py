"""Differential privacy: accounting, safe mechanisms, and privacy budget as a schedulable resource.

Modules (lowest first):

* :mod:`pet.dp.events` — immutable descriptions of mechanisms run (Gaussian, Laplace,
  Poisson-sampled, (ε, δ), zCDP, composed).
* :mod:`pet.dp.accountant`, :mod:`pet.dp.rdp`, :mod:`pet.dp.pld` — the RDP accountant
  (classic and improved conversions) and the pessimistic PLD accountant.
* :mod:`pet.dp.composition` — basic, optimal advanced (Kairouz–Oh–Viswanath) and DRV composition.
* :mod:`pet.dp.calibration` — analytic Gaussian, generic noise calibration.
* :mod:`pet.dp._sampling`, :mod:`pet.dp.mechanisms` — exact CSPRNG samplers and the
  floating-point-safe Laplace / Gaussian / discrete Laplace / discrete Gaussian mechanisms.
* :mod:`pet.dp.budget`, :mod:`pet.dp.schedulers` — blocks, claims, FCFS / RoundRobin / DPF.
* :mod:`pet.dp.ledger` — the durable SQLite :class:`BudgetLedger`.
* :mod:`pet.dp.simulate` — PrivateKube's microbenchmarks.

What leaks: the mechanisms release only their noisy outputs (and the lattice step, which depends
on the noise scale only); accountants, blocks and ledgers hold no data, only budgets.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

#: public name -> the submodule defining it. The submodules are imported on first access
#: (PEP 562), so ``from pet.dp import ZCDPEvent`` does not load scipy.signal for the PLD
#: accountant: pet.sql under DP imports only what it uses (issue 18's overhead benchmark).
_WHERE = {
    "PrivacyWarning": "accountant", "UnsupportedEventError": "accountant",
    "Block": "budget", "Claim": "budget", "ClaimRecorder": "budget", "allocate": "budget",
    "can_allocate": "budget", "consume": "budget", "release": "budget",
    "calibrate_noise": "calibration", "classic_gaussian_sigma": "calibration", "gaussian_delta": "calibration",
    "gaussian_epsilon": "calibration", "gaussian_sigma": "calibration",
    "advanced_composition": "composition", "basic_composition": "composition", "drv_composition": "composition",
    "smallest_epsilon_advanced_composition": "composition",
    "ComposedEvent": "events", "EpsilonDeltaEvent": "events", "GaussianEvent": "events", "LaplaceEvent": "events",
    "PoissonSampledEvent": "events", "SelfComposedEvent": "events", "ZCDPEvent": "events",
    "BudgetLedger": "ledger",
    "discrete_gaussian_mechanism": "mechanisms", "discrete_laplace_mechanism": "mechanisms",
    "gaussian_mechanism": "mechanisms", "laplace_mechanism": "mechanisms",
    "PLDAccountant": "pld",
    "DEFAULT_ORDERS": "rdp", "RDPAccountant": "rdp", "epsilon_delta_to_rdp_budget": "rdp", "rdp_to_delta": "rdp",
    "rdp_to_epsilon": "rdp",
    "DPF": "schedulers", "FCFS": "schedulers", "RoundRobin": "schedulers",
    "simulate": "simulate", "sweep": "simulate", "_simulate_fn": "simulate",
}
_SUBMODULES = frozenset({"accountant", "budget", "calibration", "composition", "events", "ledger", "mechanisms",
                         "pld", "rdp", "schedulers", "simulate"})

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from pet.dp.accountant import PrivacyWarning, UnsupportedEventError
    from pet.dp.budget import Block, Claim, ClaimRecorder, allocate, can_allocate, consume, release
    from pet.dp.calibration import (
        calibrate_noise,
        classic_gaussian_sigma,
        gaussian_delta,
        gaussian_epsilon,
        gaussian_sigma,
    )
    from pet.dp.composition import (
        advanced_composition,
        basic_composition,
        drv_composition,
        smallest_epsilon_advanced_composition,
    )
    from pet.dp.events import (
        ComposedEvent,
        EpsilonDeltaEvent,
        GaussianEvent,
        LaplaceEvent,
        PoissonSampledEvent,
        SelfComposedEvent,
        ZCDPEvent,
    )
    from pet.dp.ledger import BudgetLedger
    from pet.dp.mechanisms import (
        discrete_gaussian_mechanism,
        discrete_laplace_mechanism,
        gaussian_mechanism,
        laplace_mechanism,
    )
    from pet.dp.pld import PLDAccountant
    from pet.dp.rdp import DEFAULT_ORDERS, RDPAccountant, epsilon_delta_to_rdp_budget, rdp_to_delta, rdp_to_epsilon
    from pet.dp.schedulers import DPF, FCFS, RoundRobin
    from pet.dp.simulate import simulate, sweep


def __getattr__(name: str):
    if name in _WHERE:
        attr = "simulate" if name == "_simulate_fn" else name
        value = getattr(importlib.import_module(f"pet.dp.{_WHERE[name]}"), attr)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"pet.dp.{name}")
    else:
        raise AttributeError(f"module 'pet.dp' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(__all__) | _SUBMODULES)


class _Package(types.ModuleType):
    """``pet.dp.simulate`` is the function even after ``import pet.dp.simulate`` (the
    import system then binds the package attribute to the submodule, which this refuses)."""

    @property
    def simulate(self):
        return self.__dict__.get("_simulate_fn") or __getattr__("_simulate_fn")

    @simulate.setter
    def simulate(self, value):
        if not isinstance(value, types.ModuleType):
            self.__dict__["_simulate_fn"] = value


sys.modules[__name__].__class__ = _Package


__all__ = [
    "GaussianEvent",
    "LaplaceEvent",
    "PoissonSampledEvent",
    "EpsilonDeltaEvent",
    "ZCDPEvent",
    "ComposedEvent",
    "SelfComposedEvent",
    "RDPAccountant",
    "PLDAccountant",
    "DEFAULT_ORDERS",
    "rdp_to_epsilon",
    "rdp_to_delta",
    "epsilon_delta_to_rdp_budget",
    "UnsupportedEventError",
    "PrivacyWarning",
    "basic_composition",
    "advanced_composition",
    "smallest_epsilon_advanced_composition",
    "drv_composition",
    "gaussian_delta",
    "gaussian_epsilon",
    "gaussian_sigma",
    "classic_gaussian_sigma",
    "calibrate_noise",
    "laplace_mechanism",
    "gaussian_mechanism",
    "discrete_laplace_mechanism",
    "discrete_gaussian_mechanism",
    "Block",
    "Claim",
    "ClaimRecorder",
    "allocate",
    "can_allocate",
    "consume",
    "release",
    "FCFS",
    "RoundRobin",
    "DPF",
    "BudgetLedger",
    "simulate",
    "sweep",
]
