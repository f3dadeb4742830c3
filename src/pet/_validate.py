"""Validation of the arguments every package takes: party numbers, receivers, integer and
real options.

One place, so the same mistake gets the same exception everywhere: a value of the wrong
type raises :class:`~pet.errors.PetTypeError`, a value out of range
:class:`~pet.errors.InputError` (both are :class:`~pet.errors.PetError` and
``ValueError``; ``PetTypeError`` is also ``TypeError``). Messages name the argument and
what was expected; they quote the offending value, which is always this party's own
argument, never the peer's data.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from pet.errors import InputError, PetTypeError

__all__ = ["NOT_GIVEN", "check_party", "check_receiver", "check_int", "check_real"]


class _NotGiven:
    """Default of a keyword that has an alias, to tell "not passed" from ``None``."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = _NotGiven()


def check_party(value, name: str = "party") -> int:
    """``value`` as a party number: the int 0 or 1 (``bool`` is refused), else InputError."""
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) not in (0, 1):
        raise InputError(f"{name} must be 0 or 1, got {value!r}")
    return int(value)


def check_receiver(value, name: str = "reveal_to") -> int | None:
    """Who receives a result: ``None`` (both parties) or a party number 0 or 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) not in (0, 1):
        raise InputError(f"{name} must be None (both parties), 0 or 1, got {value!r}")
    return int(value)


def check_int(value, name: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int in ``[lo, hi]`` (either bound optional). A non-integer (or a
    ``bool``) raises PetTypeError, a value out of range InputError."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise PetTypeError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            raise InputError(f"{name} must be >= {lo}, got {value}")
        if lo is None:
            raise InputError(f"{name} must be <= {hi}, got {value}")
        raise InputError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def check_real(value, name: str, *, lo: float | None = None, open_lo: bool = False) -> float:
    """``value`` as a finite float ``>= lo`` (``> lo`` with ``open_lo``). A non-number (or a
    ``bool``) raises PetTypeError; NaN, infinities and values out of range InputError."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise PetTypeError(f"{name} must be a finite number, got {value!r}")
    if not math.isfinite(float(value)):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if lo is not None and (value < lo or (open_lo and value == lo)):
        raise InputError(f"{name} must be {'>' if open_lo else '>='} {lo}, got {value}")
    return value
