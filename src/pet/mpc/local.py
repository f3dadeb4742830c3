"""Run both parties (and the dealer, unless dealer-free) as threads of one process
(notebooks and tests)."""

from __future__ import annotations

from pet.mpc import dealer as _dealer
from pet.mpc.session import CORRELATIONS, Session
from pet.transport import run_parties

__all__ = ["run_local"]


def run_local(fn, *args, frac_bits: int = 16, timeout: float | None = 600.0, correlations: str = "dealer",
              link=None, **kwargs) -> list:
    """Run ``fn(session, *args, **kwargs)`` for party 0 and party 1; return
    ``[result_0, result_1]``.

    ``correlations="dealer"`` (default): three threads, the two parties and a dealer.
    ``correlations="ot"``: two threads only, joined by one channel; the parties make their
    correlated randomness with oblivious transfer (no dealer exists).

    The threads are joined by in-memory channels (:func:`pet.transport.run_parties`), so a
    failure in any of them is re-raised here promptly, and a hang becomes
    :class:`~pet.errors.PartyTimeout` after ``timeout`` seconds. ``link`` (a
    :class:`~pet.transport.Link`) shapes every link of the run, peer and dealer alike.
    """
    from pet.errors import InputError, PetTypeError

    if not callable(fn):
        raise PetTypeError("run_local: fn must be callable")
    if correlations not in CORRELATIONS:
        raise InputError(f"run_local: correlations must be one of {', '.join(map(repr, CORRELATIONS))}, "
                         f"got {str(correlations)[:40]!r}")

    if correlations == "ot":
        def peer(p):
            def body(chan):
                with Session(p, chan, correlations="ot", frac_bits=frac_bits) as session:
                    return fn(session, *args, **kwargs)
            return body

        return run_parties(peer(0), peer(1), timeout=timeout, names=["party0", "party1"], link=link)

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
