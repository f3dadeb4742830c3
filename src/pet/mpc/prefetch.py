"""Record-and-replay prefetch of correlated randomness for repeated blocks of operations.

Over a WAN the party that receives dealer corrections (party 1 with ``pet.mpc.dealer``)
waits a full round trip to the dealer in every operation that needs fresh material, on top
of the half round trip of the exchange with the peer. Many protocols repeat a block of
operations whose requests depend only on public shapes (a level of a tree, a training
iteration). :class:`Prefetcher` records the requests of such a block the first time it
runs under a key, and on every later run under the same key asks the source for all of
them at the start of the block (:meth:`pet.mpc.correlated.DealerClient.prefetch`), so the
dealer's corrections stream in while the block computes and each of its operations then
costs only the exchange with the peer.

Cost: no extra round and no extra byte; the same requests, sent earlier. Memory: the
block's correlated material is held from its start (it is drawn then). What the dealer
and the parties learn: nothing new (the dealer already sees every request's shapes).

Both parties must run the same blocks under the same keys in the same order (as for every
``pet.mpc`` operation). A block whose requests differ from its recording stays correct:
a request that does not match the next prefetched one is fetched as without prefetching,
and the unused prefetched material is consumed (identically by both parties) by later
matching requests. Sources without ``prefetch`` (e.g. a local source) are used as is.
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["Prefetcher"]


class Prefetcher:
    """Per-session record of the correlated-randomness requests of repeated blocks.

    ``with prefetcher.block(key): ...`` records the requests of the block on its first run
    under ``key`` and prefetches them on later runs (see the module docstring)."""

    def __init__(self, session):
        self.session = session
        self._plans: dict = {}

    @contextmanager
    def block(self, key):
        source = self.session.source
        prefetch = getattr(source, "prefetch", None)
        if source is None or prefetch is None:
            yield
            return
        plan = self._plans.get(key)
        if plan is not None:
            for specs in plan:
                prefetch(specs)
            yield
            return
        recorded: list = []
        original = source.get

        def get(specs):
            recorded.append(list(specs))
            return original(specs)

        source.get = get  # this instance only, for the duration of the block
        try:
            yield
        finally:
            del source.get
        self._plans[key] = recorded
