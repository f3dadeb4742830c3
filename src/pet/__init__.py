"""pet: privacy-enhancing technologies for two parties.

Two parties each hold private data; pet lets them compute on the union without revealing it.

Sub-packages (imported on first access, so ``import pet`` stays cheap and side-effect free):

- :mod:`pet.transport` -- channels between parties: in-memory, TCP, TLS; a safe wire codec.
- :mod:`pet.psi`       -- private set intersection (ECDH) and row alignment of two tables.
- :mod:`pet.mpc`       -- 2-party additive secret sharing over Z_2^64 with fixed point.
- :mod:`pet.sql`       -- SQL across two parties' tables: join by PSI, aggregates in MPC.
- :mod:`pet.ml`        -- vertical federated XGBoost (classifier, regressor).
- :mod:`pet.graph`     -- privacy-preserving Leiden community detection.
- :mod:`pet.dp`        -- differential privacy: accountants, mechanisms, budget scheduling.
- :mod:`pet.errors`    -- the exception hierarchy (:class:`pet.errors.PetError`).
"""

from __future__ import annotations

import importlib

from pet._version import __version__

__all__ = ["__version__", "transport", "psi", "mpc", "sql", "ml", "graph", "dp", "errors"]

_SUBMODULES = frozenset({"transport", "psi", "mpc", "sql", "ml", "graph", "dp", "errors", "cli"})


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"pet.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'pet' has no attribute {name!r}")


def __dir__():
    """The public API only: the sub-packages and ``__version__`` (no import machinery)."""
    return sorted(__all__)
