"""``pet demo``: a two-party end-to-end run on embedded data.

:mod:`pet.demo.data` builds the public demo tables, :mod:`pet.demo.steps` holds the steps
(link check, PSI alignment, DP release charged to a budget ledger, and the MPC steps), and
:mod:`pet.demo.party` runs one party's process. The command line is in :mod:`pet.cli.demo`. The
plaintext comparisons need the ``pet[demo]`` extra (:func:`require_demo_extras`).
"""

from __future__ import annotations

import importlib.util

from pet.errors import InputError

__all__ = ["DEMO_EXTRAS", "require_demo_extras"]

#: Optional packages (``pip install 'pet[demo]'``) the demo's *plaintext comparisons* use, by
#: step: the xgb step's reference AUC from plaintext xgboost, the leiden summary's modularity
#: check with igraph. The library itself never imports them.
DEMO_EXTRAS = {"xgb": ("xgboost",), "leiden": ("igraph",)}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_demo_extras(steps=None) -> None:
    """Raise :class:`~pet.errors.InputError` naming ``pip install 'pet[demo]'`` if a package the
    demo ``steps`` (default: all) compare against is not installed -- before anything starts."""
    names = list(DEMO_EXTRAS) if steps is None else list(steps)
    missing = sorted({m for step in names for m in DEMO_EXTRAS.get(step, ()) if not _installed(m)})
    if missing:
        raise InputError(f"pet demo needs the optional package(s) {', '.join(missing)} for its plaintext "
                         f"comparisons; install them with: pip install 'pet[demo]' (from a checkout: "
                         f"pip install -e '.[demo]'), or leave out the step(s) with --steps")
