"""The accountant contract shared by :class:`~pet.dp.RDPAccountant` and :class:`~pet.dp.PLDAccountant`.

An accountant holds the privacy cost of everything composed so far. ``compose(event, count)``
first checks, without touching any state, that it supports every sub-event (a dry run), and only
then adds the cost and appends ``(event, count)`` to :attr:`Accountant.ledger`. A failed compose
therefore leaves the accountant exactly as it was.
"""

from __future__ import annotations

from typing import Any

from pet.dp.events import (
    ComposedEvent,
    SelfComposedEvent,
    check_count,
    check_event,
)
from pet.errors import InputError

__all__ = ["Accountant", "UnsupportedEventError", "PrivacyWarning"]


class UnsupportedEventError(InputError):
    """An accountant was given an event it cannot account for (names the sub-event)."""


class PrivacyWarning(UserWarning):
    """A privacy computation may be loose (e.g. the optimal RDP order is at the grid's edge)."""


class Accountant:
    """Base class: event traversal with a dry run before any mutation.

    Subclasses implement ``_supports_leaf(event) -> str | None`` (an error message or None) and
    ``_compose_leaf(event, count)``.
    """

    def __init__(self) -> None:
        self._ledger: list[tuple[Any, int]] = []

    @property
    def ledger(self) -> tuple:
        """Every ``(event, count)`` composed so far, oldest first (read-only)."""
        return tuple(self._ledger)

    def supports(self, event: Any) -> bool:
        """True iff :meth:`compose` would accept ``event``."""
        try:
            check_event(event)
        except InputError:
            return False
        return self._first_unsupported(event) is None

    def _first_unsupported(self, event: Any) -> str | None:
        if isinstance(event, ComposedEvent):
            for e in event.events:
                msg = self._first_unsupported(e)
                if msg is not None:
                    return msg
            return None
        if isinstance(event, SelfComposedEvent):
            return self._first_unsupported(event.event)
        return self._supports_leaf(event)

    def _walk(self, event: Any, count: int) -> None:
        if isinstance(event, ComposedEvent):
            for e in event.events:
                self._walk(e, count)
        elif isinstance(event, SelfComposedEvent):
            self._walk(event.event, event.count * count)
        elif count:
            self._compose_leaf(event, count)

    def compose(self, event: Any, count: int = 1):
        """Add ``count`` runs of ``event`` to the accountant and return the accountant.

        Raises:
            InputError: ``event`` is not an event or ``count`` not an int >= 0.
            UnsupportedEventError: some sub-event is not supported (nothing is changed).
        """
        check_event(event)
        count = check_count(count)
        msg = self._first_unsupported(event)
        if msg is not None:
            raise UnsupportedEventError(f"{type(self).__name__} cannot compose {event!r}: {msg}")
        self._walk(event, count)
        self._ledger.append((event, count))
        return self

    def _supports_leaf(self, event: Any) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _compose_leaf(self, event: Any, count: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_epsilon(self, delta: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_delta(self, epsilon: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


def check_delta(delta: object) -> float:
    """Validate a δ in [0, 1]."""
    try:
        d = float(delta)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"delta must be a number in [0, 1], got {delta!r}") from None
    if not 0.0 <= d <= 1.0:
        raise InputError(f"delta must be in [0, 1], got {delta!r}")
    return d


def check_epsilon(epsilon: object) -> float:
    """Validate an ε >= 0 (may be +inf)."""
    try:
        e = float(epsilon)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"epsilon must be a number >= 0, got {epsilon!r}") from None
    if not e >= 0.0:
        raise InputError(f"epsilon must be >= 0, got {epsilon!r}")
    return e
