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
