"""Run both parties and the dealer as threads of one process (notebooks and tests)."""

from __future__ import annotations

from pet.mpc import dealer as _dealer
from pet.mpc.session import Session
from pet.transport import run_parties

__all__ = ["run_local"]


def run_local(fn, *args, frac_bits: int = 16, timeout: float | None = 600.0, link=None,
              **kwargs) -> list:
    """Run ``fn(session, *args, **kwargs)`` for party 0 and party 1 with a dealer thread;
    return ``[result_0, result_1]``.

    The three threads are joined by in-memory channels (:func:`pet.transport.run_parties`),
    so a failure in any of them is re-raised here promptly, and a hang becomes
    :class:`~pet.errors.PartyTimeout` after ``timeout`` seconds. ``link`` (a
    :class:`~pet.transport.Link`) shapes every link of the run, peer and dealer alike.
    """
    if not callable(fn):
        from pet.errors import PetTypeError
        raise PetTypeError("run_local: fn must be callable")

    def party(p):
        def body(chans):
            with Session(p, chans[1 - p], dealer=chans[2], frac_bits=frac_bits) as session:
                return fn(session, *args, **kwargs)
        return body

    def dealer(chans):
        return _dealer.serve(chans[0], chans[1])

    results = run_parties(party(0), party(1), dealer, timeout=timeout,
                          names=["party0", "party1", "dealer"], link=link)
    return results[:2]
