"""Privacy budget as a resource: private data blocks and privacy claims (PrivateKube's model).

A :class:`Block` has a fixed global budget ε_G split into four parts that always add up to it:

    locked + unlocked + allocated + consumed = ε_G

*locked* budget is not yet available, *unlocked* is available to claims, *allocated* is held by
granted claims and *consumed* is spent. Budget moves locked → unlocked (:meth:`Block.unlock`),
unlocked → allocated (:func:`allocate`), allocated → consumed (:func:`consume`) and
allocated → unlocked (:func:`release`). Nothing ever moves back to locked, and consumed never
decreases.

Two budget kinds:

* **basic** (ε under basic composition): kept as Python integers in units of 10⁻¹² ε, so the
  arithmetic is exact and never drifts. Floats are converted through their shortest decimal
  repr (0.01 is exactly 10¹⁰ units); capacities round down and demands round up (safe side).
* **Rényi** (PrivateKube Alg. 3): every quantity is a curve over an order grid; the capacity is
  ε_G(α) = max(0, ε_G − log(1/δ_G)/(α − 1)). A demand fits a block if it fits at *some* order
  (d(α) <= unlocked(α) + 1e-12); allocation subtracts at *every* order, so some orders of the
  unlocked curve may go negative. The invariant holds per order to a tolerance of 1e-9 (float
  sums), and for every block some order keeps allocated + consumed <= ε_G(α), which is what
  preserves (ε_G, δ_G)-DP by the RDP→DP conversion.

A :class:`Claim` demands budget on one or more blocks; :func:`allocate` is all-or-nothing
across them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from pet.dp.rdp import epsilon_delta_to_rdp_budget, rdp_of_event
from pet.errors import BudgetError, BudgetExceeded, InputError

__all__ = [
    "UNITS_PER_EPSILON",
    "RENYI_TOLERANCE",
    "Block",
    "Claim",
    "allocate",
    "can_allocate",
    "consume",
    "release",
    "ClaimRecorder",
    "to_units",
]

#: Basic budgets are integers in units of 1e-12 epsilon.
UNITS_PER_EPSILON = 10**12
#: Slack allowed when comparing Rényi curves (as PrivateKube's Go code).
RENYI_TOLERANCE = 1e-12
#: Tolerance of the per-order Rényi invariant check (float sums over many operations).
_RENYI_INVARIANT_TOL = 1e-9


def to_units(x: Any, name: str, *, round_up: bool) -> int:
    """Convert a non-negative ε (float, int, str or Fraction) to integer 1e-12 units."""
    if isinstance(x, bool):
        raise InputError(f"{name} must be a number, got {x!r}")
    try:
        if isinstance(x, (float, np.floating)):
            x = float(x)
            if not math.isfinite(x):
                raise ValueError
            f = Fraction(repr(x))  # shortest decimal repr: 0.01 -> 1/100 exactly
        elif isinstance(x, np.integer):
            f = Fraction(int(x))
        else:
            f = Fraction(x)
    except (TypeError, ValueError, ZeroDivisionError):
        raise InputError(f"{name} must be a finite number >= 0, got {x!r}") from None
    if f < 0:
        raise InputError(f"{name} must be >= 0, got {x!r}")
    u = f * UNITS_PER_EPSILON
    return math.ceil(u) if round_up else math.floor(u)


def _from_units(u: int) -> float:
    return u / UNITS_PER_EPSILON


class Block:
    """A private data block with a fixed budget.

    Args:
        epsilon: the block's global budget ε_G.
        delta: δ_G (required in (0, 1) for a Rényi block; informational for a basic one).
        orders: an RDP order grid; given → a Rényi block, omitted → a basic block.
        block_id: any hashable id (default: ``id(self)``).
        created_at: creation time (used by time-based unlocking).
        unlocked: ``"none"`` (default; everything starts locked) or ``"all"``.
    """

    __slots__ = (
        "block_id",
        "kind",
        "epsilon",
        "delta",
        "orders",
        "created_at",
        "retired",
        "arrivals",
        "_g",
        "_l",
        "_u",
        "_a",
        "_c",
        "_pos",
    )

    def __init__(
        self,
        epsilon: float,
        delta: float = 0.0,
        *,
        orders: Sequence[float] | None = None,
        block_id: Any = None,
        created_at: float = 0.0,
        unlocked: str = "none",
    ) -> None:
        self.block_id = id(self) if block_id is None else block_id
        self.epsilon = epsilon
        self.delta = delta
        self.created_at = float(created_at)
        self.retired = False
        self.arrivals = 0
        if orders is None:
            self.kind = "basic"
            self.orders = None
            self._g = to_units(epsilon, "epsilon", round_up=False)
            if self._g <= 0:
                raise InputError(f"epsilon must be > 0, got {epsilon!r}")
            self._l, self._u, self._a, self._c = self._g, 0, 0, 0
        else:
            self.kind = "renyi"
            self.orders = np.asarray(orders, dtype=np.float64)
            self._g = epsilon_delta_to_rdp_budget(epsilon, delta, self.orders)
            if not np.any(self._g > 0):
                raise InputError("the Rényi budget curve is 0 at every order; use larger orders or epsilon")
            self._l = self._g.copy()
            self._u = np.zeros_like(self._g)
            self._a = np.zeros_like(self._g)
            self._c = np.zeros_like(self._g)
            self._pos = self._g > 0
        if unlocked == "all":
            self.unlock()
        elif unlocked != "none":
            raise InputError(f"unlocked must be 'none' or 'all', got {unlocked!r}")

    # ----- views -------------------------------------------------------------------------
    def _view(self, v):
        return _from_units(v) if self.kind == "basic" else v.copy()

    @property
    def capacity(self):
        """ε_G (float) or ε_G(α) (array)."""
        return self._view(self._g)

    @property
    def locked(self):
        return self._view(self._l)

    @property
    def unlocked(self):
        return self._view(self._u)

    @property
    def allocated(self):
        return self._view(self._a)

    @property
    def consumed(self):
        return self._view(self._c)

    def describe(self) -> str:
        """What is left of this block, in words (for messages such as a refused claim):
        for a basic block, epsilon available now / still locked / held by claims / spent;
        for a Rényi block, the share of the budget still available at its best order."""
        if self.kind == "basic":
            parts = [f"{_from_units(self._u):g} of epsilon {_from_units(self._g):g} is available now"]
            if self._l:
                parts.append(f"{_from_units(self._l):g} is still locked (not yet unlocked)")
            if self._a:
                parts.append(f"{_from_units(self._a):g} is held by claims not yet spent")
            parts.append(f"{_from_units(self._c):g} is already spent")
        else:
            share = self.unlocked_share()
            parts = [f"Rényi block (epsilon {self.epsilon:g}, delta {self.delta:g}): at its best order "
                     f"{100 * share:.1f}% of the budget is available now"]
            spent = float(np.max(self._c[self._pos] / self._g[self._pos]))
            parts.append(f"up to {100 * spent:.1f}% is already spent")
        state = " (retired)" if self.retired else ""
        return f"block {self.block_id!r}{state}: " + ", ".join(parts)

    def __repr__(self) -> str:
        return (
            f"Block({self.block_id!r}, kind={self.kind}, locked={self.locked}, unlocked={self.unlocked}, "
            f"allocated={self.allocated}, consumed={self.consumed}, retired={self.retired})"
        )

    # ----- demands ----------------------------------------------------------------------
    def demand_of(self, demand: Any):
        """Convert a demand for this block to internal form (int units or a curve)."""
        if self.kind == "basic":
            if isinstance(demand, np.ndarray):
                raise InputError(f"block {self.block_id!r} is basic: its demand must be a number")
            return to_units(demand, "demand", round_up=True)
        d = np.asarray(demand, dtype=np.float64)
        if d.shape != self._g.shape:
            raise InputError(
                f"block {self.block_id!r} is Rényi over {len(self._g)} orders: demand must be a curve of that length"
            )
        if np.any(np.isnan(d)) or np.any(d < 0):
            raise InputError("a Rényi demand must be >= 0 at every order")
        return d

    def share(self, d) -> np.ndarray:
        """Shares d/ε_G of an internal demand (one value; Rényi: one per order with ε_G(α) > 0)."""
        if self.kind == "basic":
            return np.array([d / self._g])
        return d[self._pos] / self._g[self._pos]

    def fits(self, d) -> bool:
        """True iff internal demand ``d`` fits the unlocked budget (Rényi: at some order)."""
        if self.kind == "basic":
            return d <= self._u
        # Only orders with a positive capacity certify (eps_G, delta_G)-DP: an order where the
        # curve was clamped to 0 never counts, even for a zero demand there.
        return bool(np.any((d <= self._u + RENYI_TOLERANCE) & self._pos))

    def unlocked_share(self) -> float:
        """max over orders of unlocked/ε_G (basic: unlocked/ε_G)."""
        if self.kind == "basic":
            return self._u / self._g
        return float(np.max(self._u[self._pos] / self._g[self._pos]))

    # ----- movements ---------------------------------------------------------------------
    def unlock(self, amount: Any = None) -> None:
        """Move ``amount`` (default: everything) from locked to unlocked, capped at what is locked."""
        if amount is None:
            moved = self._l
        elif self.kind == "basic":
            moved = min(to_units(amount, "amount", round_up=False), self._l)
        else:
            moved = np.minimum(self.demand_of(amount), self._l)
        self._l = self._l - moved
        self._u = self._u + moved

    def unlock_fraction(self, num: int, den: int) -> None:
        """Unlock so that in total (at least) num/den of ε_G has ever been unlocked (exact for basic)."""
        if self.kind == "basic":
            target = self._g * min(num, den) // den
            moved = max(0, min(target - (self._g - self._l), self._l))
        else:
            frac = min(num, den) / den
            moved = np.clip(self._g * frac - (self._g - self._l), 0.0, self._l)
            if num >= den:
                moved = self._l.copy()
        self._l = self._l - moved
        self._u = self._u + moved

    def check_invariant(self) -> None:
        """Raise :class:`BudgetError` unless locked + unlocked + allocated + consumed = ε_G etc."""
        if self.kind == "basic":
            if self._l + self._u + self._a + self._c != self._g:
                raise BudgetError(f"block {self.block_id!r}: parts do not add up to epsilon_G: {self!r}")
            if min(self._l, self._u, self._a, self._c) < 0 or self._c > self._g:
                raise BudgetError(f"block {self.block_id!r}: a negative part or over-consumption: {self!r}")
            return
        tot = self._l + self._u + self._a + self._c
        if np.any(np.abs(tot - self._g) > _RENYI_INVARIANT_TOL * np.maximum(1.0, self._g)):
            raise BudgetError(f"block {self.block_id!r}: Rényi parts do not add up to epsilon_G(alpha)")
        if (np.any(self._l < -_RENYI_INVARIANT_TOL) or np.any(self._a < -_RENYI_INVARIANT_TOL)
                or np.any(self._c < -_RENYI_INVARIANT_TOL)):
            raise BudgetError(f"block {self.block_id!r}: a negative locked/allocated/consumed part")
        if not np.any((self._a + self._c <= self._g + _RENYI_INVARIANT_TOL) & self._pos):
            raise BudgetError(f"block {self.block_id!r}: spent budget exceeds epsilon_G(alpha) at every order")


class Claim:
    """A privacy claim: a demand per block.

    Args:
        demand: ``{block_id: ε}`` for basic blocks or ``{block_id: curve}`` for Rényi blocks.
        claim_id: any hashable id (default: ``id(self)``).
        arrival: arrival time (schedulers use it for timeouts and delays; default: the time
            the claim is submitted).
        timeout: give up after waiting this long (None: wait forever).

    ``state`` is ``"pending"``, ``"allocated"``, ``"rejected"`` or ``"released"``; after
    :func:`allocate` ``allocated[block_id]`` holds the granted (internal) amounts and
    ``consumed[block_id]`` what has been spent.
    """

    __slots__ = (
        "claim_id",
        "demand",
        "arrival",
        "timeout",
        "state",
        "granted_at",
        "allocated",
        "consumed",
        "reason",
        "_d",
        "_key",
        "_blocked_on",
        "_seq",
        "_acc",
    )

    def __init__(
        self, demand: Mapping[Any, Any], *, claim_id: Any = None, arrival: float | None = None,
        timeout: float | None = None
    ) -> None:
        if not isinstance(demand, Mapping) or not demand:
            raise InputError("demand must be a non-empty mapping {block_id: amount}")
        self.claim_id = id(self) if claim_id is None else claim_id
        self.demand = dict(demand)
        self.arrival = None if arrival is None else float(arrival)
        if timeout is not None and not (float(timeout) > 0):
            raise InputError(f"timeout must be > 0 or None, got {timeout!r}")
        self.timeout = None if timeout is None else float(timeout)
        self.state = "pending"
        self.granted_at: float | None = None
        self.allocated: dict = {}
        self.consumed: dict = {}
        self.reason: str | None = None
        self._d: dict | None = None
        self._key = None
        self._blocked_on = None
        self._seq = 0
        self._acc = None

    def __repr__(self) -> str:
        return f"Claim({self.claim_id!r}, state={self.state}, demand={self.demand})"

    def bind(self, blocks: Mapping[Any, Block]) -> dict:
        """Internal demands per block (validated against ``blocks``; cached)."""
        if self._d is None:
            d = {}
            for bid, amount in self.demand.items():
                blk = blocks.get(bid)
                if blk is None:
                    raise InputError(f"claim {self.claim_id!r} demands unknown block {bid!r}")
                d[bid] = blk.demand_of(amount)
            self._d = d
        return self._d


def can_allocate(claim: Claim, blocks: Mapping[Any, Block]) -> bool:
    """True iff every demanded block can cover the claim's demand from its unlocked budget."""
    d = claim.bind(blocks)
    return all(blocks[b].fits(x) for b, x in d.items())


def allocate(claim: Claim, blocks: Mapping[Any, Block]) -> bool:
    """All-or-nothing: grant the whole demand on every block, or change nothing and return False.

    Moves the demand unlocked → allocated on every demanded block (Rényi: at every order).
    Raises :class:`BudgetError` if the claim is not pending.
    """
    if claim.state != "pending":
        raise BudgetError(f"claim {claim.claim_id!r} is {claim.state}, not pending")
    if not can_allocate(claim, blocks):
        return False
    for b, x in claim._d.items():
        blk = blocks[b]
        blk._u = blk._u - x
        blk._a = blk._a + x
        claim.allocated[b] = x
    claim.state = "allocated"
    return True


def _consume_amounts(claim: Claim, blocks: Mapping[Any, Block], amount: Any) -> dict:
    out = {}
    for b, held in claim.allocated.items():
        blk = blocks[b]
        if amount is None:
            out[b] = held
            continue
        want = amount.get(b) if isinstance(amount, Mapping) else amount
        if want is None:
            continue
        x = blk.demand_of(want)
        if blk.kind == "basic":
            if x > held:
                raise BudgetExceeded(
                    f"claim {claim.claim_id!r}: consuming epsilon {want!r} on block {b!r} exceeds what the claim "
                    f"holds there (epsilon {_from_units(held):g} left of its allocation)")
        elif np.any(x > held + RENYI_TOLERANCE):
            raise BudgetExceeded(f"claim {claim.claim_id!r}: consume on block {b!r} exceeds its allocation")
        out[b] = x if blk.kind == "basic" else np.minimum(x, held)
    return out


def consume(claim: Claim, blocks: Mapping[Any, Block], amount: Any = None) -> None:
    """Move (part of) a claim's allocation to consumed; ``amount`` None = everything left.

    ``amount`` is one number/curve for every bound block or ``{block_id: amount}``. All-or-
    nothing: if any part exceeds what the claim holds, :class:`BudgetExceeded` is raised and
    nothing changes.
    """
    if claim.state != "allocated":
        raise BudgetError(f"claim {claim.claim_id!r} is {claim.state}, not allocated")
    moves = _consume_amounts(claim, blocks, amount)
    for b, x in moves.items():
        blk = blocks[b]
        blk._a = blk._a - x
        blk._c = blk._c + x
        claim.allocated[b] = claim.allocated[b] - x
        claim.consumed[b] = claim.consumed.get(b, 0) + x


def release(claim: Claim, blocks: Mapping[Any, Block]) -> None:
    """Return a claim's unconsumed allocation to the blocks' unlocked budget (allocated → unlocked)."""
    if claim.state != "allocated":
        raise BudgetError(f"claim {claim.claim_id!r} is {claim.state}, not allocated")
    for b, x in claim.allocated.items():
        blk = blocks[b]
        blk._a = blk._a - x
        blk._u = blk._u + x
        claim.allocated[b] = x - x
    claim.state = "released"


class ClaimRecorder:
    """Charge mechanism events to an allocated claim (pass as ``record=`` to a mechanism).

    ``compose(event)`` converts the event to the claim's budget kind and consumes it on every
    block the claim holds: for a basic block, the event's ε at the block's δ — a pure
    ``EpsilonDeltaEvent`` costs its ε, others are converted by the RDP accountant at δ =
    ``delta`` (default: the block's δ_G); for a Rényi block, the event's RDP curve on the
    block's orders. Raises :class:`BudgetExceeded` (and records nothing) if the claim's
    allocation does not cover it.
    """

    def __init__(self, owner: Any, claim_id: Any, *, delta: float | None = None) -> None:
        self.owner = owner
        self.claim_id = claim_id
        self.delta = delta

    def compose(self, event: Any) -> ClaimRecorder:
        from pet.dp.events import EpsilonDeltaEvent
        from pet.dp.rdp import RDPAccountant

        claim = self.owner.claim(self.claim_id)
        amounts = {}
        for b in claim.allocated:
            blk = self.owner.block(b)
            if blk.kind == "renyi":
                amounts[b] = rdp_of_event(event, blk.orders) if not isinstance(event, EpsilonDeltaEvent) else None
                if amounts[b] is None:
                    raise InputError("an (epsilon, delta) event has no Rényi curve to charge a Rényi block")
            elif isinstance(event, EpsilonDeltaEvent):
                amounts[b] = event.epsilon
            else:
                delta = self.delta if self.delta is not None else blk.delta
                if not delta or delta <= 0:
                    raise InputError("charging a basic block for a non-pure event needs delta > 0")
                amounts[b] = RDPAccountant().compose(event).get_epsilon(delta)
        self.owner.consume(self.claim_id, amounts)
        return self
