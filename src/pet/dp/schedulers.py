"""Schedulers of privacy claims over blocks: FCFS, RoundRobin and DPF (PrivateKube).

All schedulers share one interface::

    s.add_block(block, now)          # register a block (FCFS unlocks it all at once)
    s.submit(claim, now) -> list     # a claim arrives; returns the claims granted this round
    s.advance(now) -> list           # time passes: time-based unlocking, timeouts, retirement
    s.consume(claim_id, amount=None) / s.release(claim_id)
    s.block(block_id), s.claim(claim_id), s.blocks, s.waiting()

Granted claims hold their demand as *allocated* budget; the simulator consumes it at once.

**DPF** (Dominant Private-block Fairness, Luo et al. OSDI'21, Alg. 1-3):

* unlocking: N-based (``n=N``: each of the first N claims demanding a block unlocks ε_G/N of
  it) or time-based (``t=L``: a block unlocks ε_G·τ/L after τ seconds, fully at τ = L);
* a claim's dominant share is max over its blocks (and, for Rényi blocks, orders) of
  demand/ε_G; waiting claims are considered in ascending dominant share, ties broken by the
  next-largest shares (lexicographically on the descending share vector), then by arrival;
* best effort: every waiting claim that fits is granted, scanning on past those that do not;
* all-or-nothing across blocks; for Rényi blocks "fits" means at some order per block;
* retirement: a block retires once fully unlocked (N arrivals, or age >= L) or, if
  ``block_lifetime`` is set, when it reaches that age (without unlocking the rest); a waiting
  claim that cannot fit on a retired block is rejected (reason ``"retired"``).

**FCFS**: every block fully unlocked at creation; a claim is granted on arrival if it fits,
otherwise rejected at once.

**RoundRobin** (the paper's RR baseline; basic budgets only): unlocking as DPF (N or T); the
unlocked budget of a block is poured into its waiting claims by max-min fair water-filling;
a claim is granted when it has received its whole demand on every block. Budget poured into a
claim that is later rejected (timeout, or a retired block it can no longer fill) is lost, as
in PrivateKube's simulator: it is counted as consumed (never returned), which keeps the
block invariant and errs on the safe side.

Efficiency: a waiting claim is indexed under one block it does not fit ("blocked on"), in a
list sorted by its smallest share there; a round only re-examines claims whose blocking block
gained budget and whose smallest share is within that block's largest unlocked share (a
necessary condition to fit), so a round costs about the number of claims that could move.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterable
from typing import Any

import numpy as np

from pet.dp.budget import Block, Claim, allocate, consume, release
from pet.errors import BudgetError, InputError

__all__ = ["Scheduler", "FCFS", "DPF", "RoundRobin"]


class Scheduler:
    """Common bookkeeping: blocks, claims, timeouts. Subclasses implement the policy."""

    name = "scheduler"

    def __init__(self) -> None:
        self._blocks: dict[Any, Block] = {}
        self._claims: dict[Any, Claim] = {}
        self._deadlines: list = []
        self._seq = itertools.count()
        self.now = 0.0
        self.granted: list[Claim] = []
        self.rejected: list[Claim] = []

    # ----- access --------------------------------------------------------------------------
    @property
    def blocks(self) -> dict:
        """Blocks by id (a copy of the mapping; the blocks themselves are live)."""
        return dict(self._blocks)

    def block(self, block_id: Any) -> Block:
        try:
            return self._blocks[block_id]
        except KeyError:
            raise InputError(f"unknown block {block_id!r}") from None

    def claim(self, claim_id: Any) -> Claim:
        try:
            return self._claims[claim_id]
        except KeyError:
            raise InputError(f"unknown claim {claim_id!r}") from None

    def waiting(self) -> list[Claim]:
        """Pending claims, in arrival order."""
        return sorted((c for c in self._claims.values() if c.state == "pending"), key=lambda c: c._seq)

    def check_invariants(self) -> None:
        """Check every block's invariant (raises :class:`BudgetError`)."""
        for b in self._blocks.values():
            b.check_invariant()

    # ----- operations ----------------------------------------------------------------------
    def _time(self, now: float | None) -> float:
        if now is None:
            return self.now
        now = float(now)
        if now < self.now:
            raise InputError(f"time must not go backwards: now={now} < {self.now}")
        self.now = now
        return now

    def add_block(self, block: Block, now: float | None = None) -> Block:
        """Register ``block`` (its id must be new)."""
        if not isinstance(block, Block):
            raise InputError(f"block must be a pet.dp.Block, got {type(block).__name__}")
        if block.block_id in self._blocks:
            raise InputError(f"duplicate block id {block.block_id!r}")
        self._time(now)
        self._blocks[block.block_id] = block
        self._on_block(block)
        return block

    def submit(self, claim: Claim, now: float | None = None) -> list[Claim]:
        """A claim arrives at ``now``; returns the claims granted in the resulting round."""
        if not isinstance(claim, Claim):
            raise InputError(f"claim must be a pet.dp.Claim, got {type(claim).__name__}")
        if claim.claim_id in self._claims:
            raise InputError(f"duplicate claim id {claim.claim_id!r}")
        if claim.state != "pending":
            raise BudgetError(f"claim {claim.claim_id!r} is {claim.state}, not pending")
        now = self._time(now)
        claim.bind(self._blocks)
        if claim.arrival is None:
            claim.arrival = now
        claim._seq = next(self._seq)
        self._claims[claim.claim_id] = claim
        if claim.timeout is not None:
            heapq.heappush(self._deadlines, (claim.arrival + claim.timeout, claim._seq, claim))
        start = len(self.granted)
        self._expire(now)
        self._on_arrival(claim, now)
        return self.granted[start:]

    def advance(self, now: float) -> list[Claim]:
        """Let time pass to ``now``: time-based unlocking, retirement and timeouts."""
        now = self._time(now)
        start = len(self.granted)
        self._expire(now)
        self._on_tick(now)
        return self.granted[start:]

    def consume(self, claim_id: Any, amount: Any = None) -> None:
        """Consume (part of) a granted claim's allocation (see :func:`pet.dp.budget.consume`)."""
        consume(self.claim(claim_id), self._blocks, amount)

    def release(self, claim_id: Any) -> list[Claim]:
        """Return a granted claim's unconsumed budget; waiting claims may then be granted."""
        c = self.claim(claim_id)
        release(c, self._blocks)
        start = len(self.granted)
        self._on_release(c)
        return self.granted[start:]

    # ----- helpers ---------------------------------------------------------------------------
    def _grant(self, claim: Claim, now: float) -> bool:
        if allocate(claim, self._blocks):
            claim.granted_at = now
            self.granted.append(claim)
            return True
        return False

    def _reject(self, claim: Claim, reason: str) -> None:
        claim.state = "rejected"
        claim.reason = reason
        self.rejected.append(claim)

    def _expire(self, now: float) -> None:
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, c = heapq.heappop(self._deadlines)
            if c.state == "pending":
                self._reject(c, "timeout")
                self._on_rejected(c)

    # ----- policy hooks ----------------------------------------------------------------------
    def _on_block(self, block: Block) -> None:
        pass

    def _on_arrival(self, claim: Claim, now: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_tick(self, now: float) -> None:
        pass

    def _on_release(self, claim: Claim) -> None:
        pass

    def _on_rejected(self, claim: Claim) -> None:
        pass


class FCFS(Scheduler):
    """First come, first served: blocks fully unlocked; grant on arrival or reject at once."""

    name = "fcfs"

    def _on_block(self, block: Block) -> None:
        block.unlock()

    def _on_arrival(self, claim: Claim, now: float) -> None:
        if not self._grant(claim, now):
            self._reject(claim, "insufficient")


def _check_mode(n: Any, t: Any) -> tuple[int | None, float | None]:
    if (n is None) == (t is None):
        raise InputError("give exactly one of n (N-based unlocking) or t (time-based unlocking)")
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"n must be an int >= 1, got {n!r}")
        return int(n), None
    try:
        tf = float(t)
    except (TypeError, ValueError):
        raise InputError(f"t must be a number > 0, got {t!r}") from None
    if not tf > 0:
        raise InputError(f"t must be > 0, got {t!r}")
    return None, tf


class _Unlocking(Scheduler):
    """N- or T-based unlocking, retirement, and the blocked-on index shared by DPF and RR."""

    def __init__(self, n: int | None = None, t: float | None = None, *, block_lifetime: float | None = None) -> None:
        super().__init__()
        self.n, self.t = _check_mode(n, t)
        if block_lifetime is not None and not float(block_lifetime) > 0:
            raise InputError(f"block_lifetime must be > 0, got {block_lifetime!r}")
        self.block_lifetime = None if block_lifetime is None else float(block_lifetime)
        self._live: list[Block] = []  # not yet retired, in creation order

    def _on_block(self, block: Block) -> None:
        self._live.append(block)

    def _unlock_on_arrival(self, claim: Claim) -> set:
        """DPF-N / RR-N: each demanded block that has seen < N arrivals unlocks ε_G/N."""
        touched = set()
        if self.n is None:
            return touched
        for b in claim._d:
            blk = self._blocks[b]
            if blk.retired or blk.arrivals >= self.n:
                continue
            blk.arrivals += 1
            blk.unlock_fraction(blk.arrivals, self.n)
            touched.add(b)
            if blk.arrivals >= self.n:
                self._retire(blk)
        return touched

    def _unlock_by_time(self, now: float) -> set:
        """DPF-T / RR-T unlocking, plus the hard block lifetime; returns touched block ids."""
        touched = set()
        keep = []
        for blk in self._live:
            age = now - blk.created_at
            if self.t is not None and age >= 0:
                blk.unlock_fraction(*_ratio(age, self.t))
                touched.add(blk.block_id)
                if age >= self.t:
                    self._retire(blk)
            if self.block_lifetime is not None and age >= self.block_lifetime and not blk.retired:
                self._retire(blk)
                touched.add(blk.block_id)
            if not blk.retired:
                keep.append(blk)
        self._live = keep
        return touched

    def _retire(self, blk: Block) -> None:
        blk.retired = True


def _ratio(age: float, lifetime: float) -> tuple[int, int]:
    # A fraction age/lifetime as integers (microsecond resolution) for exact basic unlocking.
    den = max(1, round(lifetime * 1_000_000))
    return min(round(age * 1_000_000), den), den


class DPF(_Unlocking):
    """Dominant Private-block Fairness scheduler (N-based: ``DPF(n=N)``; time-based: ``DPF(t=L)``).

    Args:
        n: N, the number of claims that share a block's budget (fair share ε_G/N).
        t: L, the data lifetime over which a block's budget unlocks linearly.
        block_lifetime: optional hard age after which a block retires without unlocking more.
    """

    name = "dpf"

    def __init__(self, n: int | None = None, t: float | None = None, *, block_lifetime: float | None = None) -> None:
        super().__init__(n, t, block_lifetime=block_lifetime)
        self._blocked: dict[Any, list] = {}

    def _on_block(self, block: Block) -> None:
        super()._on_block(block)
        self._blocked[block.block_id] = []

    # ordering ---------------------------------------------------------------------------
    def _key(self, claim: Claim) -> tuple:
        if claim._key is None:
            shares = np.concatenate([self._blocks[b].share(x) for b, x in claim._d.items()])
            claim._key = (tuple(-np.sort(-shares)), claim._seq)
        return claim._key

    def _park(self, claim: Claim, b: Any) -> None:
        blk = self._blocks[b]
        s = blk.share(claim._d[b])
        m = float(s.min()) if s.size else 0.0
        claim._blocked_on = b
        bisect.insort(self._blocked[b], (m, claim._seq, claim))

    def _first_misfit(self, claim: Claim):
        retired_misfit = None
        misfit = None
        for b, x in claim._d.items():
            blk = self._blocks[b]
            if not blk.fits(x):
                if blk.retired:
                    retired_misfit = b
                    break
                if misfit is None:
                    misfit = b
        return retired_misfit, misfit

    def _schedule(self, dirty: Iterable, new: Claim | None, now: float) -> None:
        cands = []
        if new is not None:
            cands.append(new)
        for b in dirty:
            lst = self._blocked.get(b)
            if not lst:
                continue
            limit = self._blocks[b].unlocked_share() + 1e-9  # covers the 1e-12 fit slack / eps_G(alpha)
            k = bisect.bisect_right(lst, (limit, float("inf")))
            for _, _, c in lst[:k]:
                if c.state == "pending":
                    cands.append(c)
            del lst[:k]
        if not cands:
            return
        cands.sort(key=self._key)
        for c in cands:
            if c.state != "pending":
                continue
            retired_b, b = self._first_misfit(c)
            if retired_b is None and b is None:
                self._grant(c, now)
            elif retired_b is not None:
                self._reject(c, "retired")
            else:
                self._park(c, b)

    def _reject_on_retired(self, blocks: Iterable) -> None:
        for b in blocks:
            blk = self._blocks[b]
            if not blk.retired:
                continue
            lst = self._blocked[b]
            for _, _, c in lst:
                if c.state == "pending":
                    self._reject(c, "retired")
            lst.clear()

    def _on_arrival(self, claim: Claim, now: float) -> None:
        touched = self._unlock_on_arrival(claim) | self._unlock_by_time(now)
        self._schedule(touched, claim, now)
        self._reject_on_retired(touched)

    def _on_tick(self, now: float) -> None:
        touched = self._unlock_by_time(now)
        self._schedule(touched, None, now)
        self._reject_on_retired(touched)

    def _on_release(self, claim: Claim) -> None:
        self._schedule(list(claim.allocated), None, self.now)


class RoundRobin(_Unlocking):
    """The paper's round-robin baseline (RR-N: ``RoundRobin(n=N)``, RR-T: ``RoundRobin(t=L)``).

    Basic budgets only. Unlocked budget is poured into waiting claims by max-min fair
    water-filling; a claim is granted once its accumulators cover its whole demand.

    Implementation: per block a "water level" λ that rises as budget is poured; a claim that
    joined a block at level λ₀ has received min(d, λ − λ₀) there, so a pour costs O(log W) per
    claim it fills instead of touching every waiting claim. Integer units; a remainder smaller
    than one unit per waiting claim stays unlocked until the next pour.
    """

    name = "rr"

    def __init__(self, n: int | None = None, t: float | None = None, *, block_lifetime: float | None = None) -> None:
        super().__init__(n, t, block_lifetime=block_lifetime)
        self._level: dict[Any, int] = {}
        self._heap: dict[Any, list] = {}
        self._active: dict[Any, dict] = {}

    def _on_block(self, block: Block) -> None:
        if block.kind != "basic":
            raise InputError("RoundRobin supports basic (epsilon) blocks only")
        super()._on_block(block)
        self._level[block.block_id] = 0
        self._heap[block.block_id] = []
        self._active[block.block_id] = {}

    def _received(self, c: Claim, b: Any) -> int:
        if b in c._acc["open"]:
            return min(c._d[b], self._level[b] - c._acc["join"][b])
        return c._d[b]

    def _pour(self, b: Any, now: float) -> None:
        blk = self._blocks[b]
        active = self._active[b]
        pool = blk._u
        if pool <= 0 or not active:
            return
        heap = self._heap[b]
        lvl = self._level[b]
        poured = 0
        finished = []
        while pool > 0 and active:
            while heap[0][2].claim_id not in active:
                heapq.heappop(heap)
            f = heap[0][0]
            k = len(active)
            need = (f - lvl) * k
            if need <= pool:
                pool -= need
                poured += need
                lvl = f
                while heap and heap[0][0] == f:
                    _, _, c = heapq.heappop(heap)
                    if active.pop(c.claim_id, None) is not None:
                        finished.append(c)
            else:
                inc = pool // k
                if inc == 0:
                    break
                lvl += inc
                poured += inc * k
                pool -= inc * k
        self._level[b] = lvl
        blk._u -= poured
        blk._a += poured
        for c in finished:
            c._acc["open"].discard(b)
            if not c._acc["open"] and c.state == "pending":
                c.allocated = dict(c._d)
                c.state = "allocated"
                c.granted_at = now
                self.granted.append(c)

    def _on_rejected(self, c: Claim) -> None:
        # Budget poured into a claim that fails is lost (as in PrivateKube's simulator): count it as consumed.
        for b in c._d:
            lost = self._received(c, b)
            blk = self._blocks[b]
            blk._a -= lost
            blk._c += lost
            self._active[b].pop(c.claim_id, None)
        c._acc["open"] = set()

    def _drop_stopped(self, touched: Iterable) -> None:
        for b in touched:
            blk = self._blocks[b]
            # Stopped: retired, and what is left cannot raise the water level by one unit.
            if not blk.retired or not self._active[b] or blk._u >= len(self._active[b]):
                continue
            for c in list(self._active[b].values()):
                if c.state == "pending":
                    self._reject(c, "retired")
                    self._on_rejected(c)

    def _join(self, claim: Claim) -> None:
        claim._acc = {"join": {}, "open": set(claim._d)}
        for b, d in claim._d.items():
            lvl = self._level[b]
            claim._acc["join"][b] = lvl
            if d == 0:
                claim._acc["open"].discard(b)
                continue
            self._active[b][claim.claim_id] = claim
            heapq.heappush(self._heap[b], (lvl + d, claim._seq, claim))

    def _on_arrival(self, claim: Claim, now: float) -> None:
        touched = self._unlock_on_arrival(claim) | self._unlock_by_time(now)
        if any(self._blocks[b].retired and self._blocks[b]._u < claim._d[b] for b in claim._d):
            claim._acc = {"join": {}, "open": set()}
            self._reject(claim, "retired")
        else:
            self._join(claim)
            if not claim._acc["open"]:
                self._grant(claim, now)
            touched |= set(claim._d)
        for b in touched:
            self._pour(b, now)
        self._drop_stopped(touched)

    def _on_tick(self, now: float) -> None:
        touched = self._unlock_by_time(now)
        for b in touched:
            self._pour(b, now)
        self._drop_stopped(touched)

    def _on_release(self, claim: Claim) -> None:
        for b in claim.allocated:
            self._pour(b, self.now)
