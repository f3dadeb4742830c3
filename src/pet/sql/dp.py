"""Differentially private secure SQL: noisy aggregates nobody knows the noise of, charged
to each party's own budget ledger before anything is revealed (issue 18).

``pet.sql.query(session, sql, tables, dp=DP(epsilon, delta, bounds=..., ledger=..., block=...,
public_groups=...))``.

**Unit of privacy**: one joined row (one join key: the default ``duplicate_keys="reject"``
makes a key one row at each party). Neighbouring inputs differ by adding or removing one
joined row. What is protected: the values of the joined rows and the group they fall in
(e.g. the peer's region of a row, the peer's amounts). What is *not* protected: the join
itself -- PSI reveals the intersection (which keys join, hence the joined row count ``n``)
to both parties exactly as without DP (docs/sql.md). So that this is never a *filtered*
count, one party's WHERE conjuncts are not applied before the PSI under DP: the planner
makes them the owner's 0/1 column (``plan.own_filters``), which :func:`fold_own_filters`
multiplies into the MPC row mask (rows it drops: :func:`blank_dropped_rows`).

**Measurements.** The released noisy quantities are one COUNT per group (if the query has
COUNT(*), AVG or ``min_group_size``) and one SUM per bounded SUM/AVG/COUNT(e) aggregate.
Each contribution is clamped to its bounds inside MPC (or by its owner in plaintext when the
value is one party's) on the fixed-point lattice ``2^-f`` of that measurement, so one row
moves one group's entry by at most ``S = max(|lo_int|, |hi_int|)`` lattice units
(``lo_int = ceil(lo 2^f)``, ``hi_int = floor(hi 2^f)``; COUNT: ``S = 1``, ``f = 0``). ``f`` is
0 for integer values with integer bounds, else ``clamp(30 - k, 0, 40)`` with
``2^k > max(|lo|, |hi|)``.

**Budget split** over the ``m`` measurements: pure ``epsilon`` (``delta = 0``): discrete
Laplace, each measurement ``epsilon / m`` (basic composition: the accountant sums to
``epsilon``); ``delta > 0``: discrete Gaussian, the zCDP budget ``rho`` for which the RDP
accountant's improved conversion certifies ``(epsilon, delta)`` is split equally, each
measurement ``rho / m``, ``sigma = S / sqrt(2 rho / m)`` (zCDP adds up; checked with
:class:`pet.dp.RDPAccountant`).

**Noise nobody knows.** Each party samples, with :mod:`pet.dp._sampling`'s exact CSPRNG
samplers, independent integer noise for every released entry, calibrated so that its noise
*alone* gives the guarantee, and inputs it as a secret sharing (``session.share``); the
sum ``aggregate + noise_0 + noise_1`` is the only thing opened. Against party ``p``, who
knows ``noise_p``, ``noise_{1-p}`` alone protects; the total standard deviation is
``sqrt(2)`` times the central mechanism's at the same ``(epsilon, delta)``. The noise is on
the integer lattice of the fixed-point value, so the released number ``k * 2^-f`` is an
exact function of the noisy integer: no floating-point snapping (Mironov 2012). Should the
noisy integer leave the ring (probability far below ``2^-40`` by the range check), the
opened value wraps -- a post-processing of the noisy value, so privacy is unaffected.

**Budget before release** (:class:`Budget`): after planning, each party allocates a claim
on its own ledger block (all-or-nothing), the parties exchange one bit each (ok / refused);
if either refused, the other releases its claim and both raise ``BudgetExceeded``. A claim
is released if the query fails before the opening; once the opening has started it is
consumed (also on a failure during the opening). A process killed between the allocation
and the consumption leaves the claim allocated: the ledger stays consistent and the budget
stays unavailable (conservative).

**Data-derived groups** (no ``public_groups``; ``delta > 0``, refused under pure DP):
:func:`run_derived`. Each key owner pads its distinct keys among the joined rows with
``max(0, K + Z)`` dummy groups (:func:`padding_shift`; only the padded count is sent), all
candidates are summed in MPC, and a candidate is released iff ``count + sel_0 + sel_1 >=
tau`` -- both parties' discrete Laplace selection noise, a dummy's made hopeless by its
owner, the comparison in MPC, the selection count never opened (:func:`selection_threshold`:
a one-row group passes with probability ``<= delta_sel``). Split by basic composition:
selection ``(eps/4, delta/2)``, padding ``(eps/8, delta/8)`` per key owner, measurements the
rest; charged to a basic ledger block only.

What each party learns beyond the non-DP query: nothing but the noisy released values (the
receivers), whether the peer's budget refused (one bit), and nothing about group sizes
(public groups: no group count is exchanged; data-derived groups: the padded candidate
count of each key owner, DP, and -- the receivers -- which candidates pass the threshold).
"""

from __future__ import annotations

import itertools
import math
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from pet.errors import BudgetExceeded, InputError, PetTypeError, PrecisionError, ProtocolError
from pet.sql.errors import SqlNotSupported

__all__ = ["DP", "plan_dp", "Budget", "run_dp", "start", "precheck_rows"]

#: the largest number of released groups (product of the public group lists)
MAX_GROUPS = 100_000
#: bits kept clear of the ring's top for the noisy sums (``|value| < 2^60``)
_WIDTH = 60
#: tail multiple of the one-party noise std the range check covers
_TAIL = 64


def _finite(name, v, *, positive=False):
    if isinstance(v, bool):
        raise PetTypeError(f"{name} must be a number, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise PetTypeError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(f) or (positive and f <= 0):
        raise InputError(f"{name} must be a finite number{' > 0' if positive else ''}, got {v!r}")
    return f


def _scalar(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


class DP:
    """Differential privacy for one :func:`pet.sql.query`.

    Args:
        epsilon: the query's total epsilon (> 0).
        delta: 0 (pure DP, discrete Laplace) or in (0, 1) (discrete Gaussian).
        bounds: ``{output column name: (lo, hi)}`` for every SUM and AVG output (the clamp
            of each row's contribution); COUNT needs none.
        ledger: this party's :class:`pet.dp.BudgetLedger` or the path of its SQLite file
            (None: nothing is charged here).
        block: the ledger block the query is charged to (required with ``ledger``).
        public_groups: ``{group key column: [values]}`` for every GROUP BY column: exactly
            these groups are released (the product of the lists), missing ones as noisy
            zeros.

    ``epsilon``, ``delta``, ``bounds`` and ``public_groups`` must be identical at both
    parties (compared in the hello: a difference is a SqlMismatch at both); ``ledger`` and
    ``block`` are each party's own.
    """

    def __init__(self, epsilon, delta=0.0, *, bounds=None, ledger=None, block=None, public_groups=None):
        self.epsilon = _finite("epsilon", epsilon, positive=True)
        self.delta = _finite("delta", delta)
        if not 0.0 <= self.delta < 1.0:
            raise InputError(f"delta must be in [0, 1), got {delta!r}")
        self.bounds = _check_bounds(bounds)
        self.public_groups = _check_groups(public_groups)
        if ledger is not None and not (hasattr(ledger, "allocate") or isinstance(ledger, (str, os.PathLike))):
            raise PetTypeError("ledger must be a pet.dp.BudgetLedger or the path of its file")
        if ledger is not None and (not isinstance(block, str) or not block):
            raise InputError("block must name this party's ledger block (a non-empty string) when a ledger is given")
        if ledger is None and block is not None:
            raise InputError("block given without a ledger")
        self.ledger = ledger
        self.block = block

    @property
    def mechanism(self) -> str:
        return "discrete_laplace" if self.delta == 0 else "discrete_gaussian"

    def wire(self) -> dict:
        """What both parties must agree on (compared in the hello)."""
        return {"epsilon": self.epsilon, "delta": self.delta,
                "bounds": [[k, lo, hi] for k, (lo, hi) in sorted(self.bounds.items())],
                "public_groups": [[k, list(v)] for k, v in sorted(self.public_groups.items())]}

    def __repr__(self) -> str:
        return (f"DP(epsilon={self.epsilon}, delta={self.delta}, bounds={self.bounds}, "
                f"public_groups={self.public_groups}, block={self.block!r})")


def _check_bounds(bounds) -> dict:
    if bounds is None:
        return {}
    if not isinstance(bounds, dict):
        raise PetTypeError("bounds must be a dict {output column: (lo, hi)}")
    out = {}
    for name, lh in bounds.items():
        if not isinstance(name, str) or not name:
            raise InputError(f"bounds: keys must be output column names, got {name!r}")
        if not isinstance(lh, (tuple, list)) or len(lh) != 2:
            raise InputError(f"bounds[{name!r}] must be a pair (lo, hi)")
        lo, hi = _finite(f"bounds[{name!r}] lo", lh[0]), _finite(f"bounds[{name!r}] hi", lh[1])
        if not lo < hi:
            raise InputError(f"bounds[{name!r}]: lo must be < hi, got ({lo}, {hi})")
        if name.lower() in out:
            raise InputError(f"bounds: {name!r} given twice")
        out[name.lower()] = (lo, hi)
    return out


def _check_groups(groups) -> dict:
    if groups is None:
        return {}
    if not isinstance(groups, dict):
        raise PetTypeError("public_groups must be a dict {column: [values]}")
    out, total = {}, 1
    for col, vals in groups.items():
        if not isinstance(col, str) or not col:
            raise InputError(f"public_groups: keys must be column names, got {col!r}")
        if isinstance(vals, (str, bytes)) or not hasattr(vals, "__iter__"):
            raise InputError(f"public_groups[{col!r}] must be a list of values")
        vals = [_scalar(v) for v in vals]
        if not vals:
            raise InputError(f"public_groups[{col!r}] is empty")
        for v in vals:
            if isinstance(v, float) and not math.isfinite(v) or not isinstance(v, (str, int, float, bool)):
                raise InputError(f"public_groups[{col!r}]: values must be strings or finite numbers")
        if len(set(vals)) != len(vals):
            raise InputError(f"public_groups[{col!r}] has repeated values")
        total *= len(vals)
        if total > MAX_GROUPS:
            raise InputError(f"public_groups: more than {MAX_GROUPS} groups in total")
        out[col.lower()] = vals
    return out


# -- planning (identical at both parties) ----------------------------------------------------

@dataclass
class Measurement:
    """One released noisy vector (one entry per released group)."""
    kind: str            # "count" or "sum"
    agg: int | None      # the aggregate (sums)
    name: str            # output column (or "COUNT(*)")
    lo: float = 0.0
    hi: float = 1.0
    frac: int = 0        # lattice 2^-frac
    lo_int: int = 0
    hi_int: int = 1
    sens: int = 1        # L1 sensitivity in lattice units
    value_kind: str = "int"
    scale: Fraction | None = None   # discrete Laplace scale (lattice units), one party
    sigma2: Fraction | None = None  # discrete Gaussian variance (lattice units), one party
    std_one: float = 0.0            # one party's noise std, real units

    @property
    def std_total(self) -> float:
        return math.sqrt(2.0) * self.std_one


@dataclass
class DPPlan:
    spec: DP
    measurements: list
    count_index: int | None               # measurement of COUNT(*), if any
    agg_meas: dict                         # aggregate j -> measurement index
    key_lists: list                        # per group key i: its public values
    min_group_size: int | None
    eps_each: float = 0.0
    rho_each: float = 0.0
    accounted_epsilon: float = 0.0
    extra: dict = field(default_factory=dict)
    # data-derived group keys (no public_groups): the noisy-threshold release
    derived: bool = False
    owners: list = field(default_factory=list)   # parties owning a GROUP BY key
    select: Measurement | None = None             # the selection count (never opened)
    tau: int = 0                                   # released iff count + noise >= tau
    pad_shift: int = 0                             # K of the dummy-group padding
    split: dict = field(default_factory=dict)     # part -> (epsilon, delta)
    accounted_delta: float = 0.0

    @property
    def events(self) -> list:
        from pet.dp import EpsilonDeltaEvent, ZCDPEvent

        m = len(self.measurements)
        if self.derived:
            raise BudgetExceeded("a query releasing data-derived groups (a noisy-threshold selection, an "
                                 "(epsilon, delta) event without a Renyi curve) can only be charged to a basic "
                                 "ledger block")
        if self.spec.delta == 0:
            return [EpsilonDeltaEvent(self.eps_each, 0.0)] * m
        return [ZCDPEvent(self.rho_each)] * m


def _out_name(plan, ir) -> str | None:
    for i, o in enumerate(plan.outputs):
        if o == ir:
            return plan.out_names[i]
    return None


def _ir_kind(plan, ir) -> str:
    from pet.sql.values import combine_kind

    tag = ir[0]
    if tag == "col":
        return plan.columns[ir[1]].kind
    if tag == "lit":
        return ir[2]
    op, args = ir[1], ir[2]
    kinds = [_ir_kind(plan, a) for a in args]
    if op in ("neg", "abs"):
        return kinds[0]
    if op in ("not",):
        return "bool"
    if op == "case":
        return "float" if "float" in kinds else "int"
    if len(kinds) == 2:
        return combine_kind(kinds[0], kinds[1], op)
    return "float" if "float" in kinds else "int"


def _lattice(lo, hi, kind) -> int:
    if kind in ("int", "bool") and float(lo).is_integer() and float(hi).is_integer():
        return 0
    k = math.frexp(max(abs(lo), abs(hi)))[1]
    return max(0, min(40, 30 - k))


def check_duplicate_keys(duplicate_keys) -> None:
    """The unit of privacy is one joined row *per join key*: ``duplicate_keys=
    "reveal_counts"`` would let one key contribute many rows (the clamp bounds one row, not
    one key) and reveal its exact multiplicity to the peer, so it is refused under DP."""
    if duplicate_keys != "reject":
        raise SqlNotSupported(f"duplicate_keys={duplicate_keys!r} under differential privacy",
                              hint="the unit of privacy is one row per join key; aggregate each key's rows in "
                                   "its owner's table first (e.g. a view with GROUP BY the key)")


def plan_dp(plan, spec: DP, min_group_size=None) -> DPPlan:
    """Check ``plan`` can be released under ``spec`` and choose the measurements, their
    lattices and noise. Same inputs at both parties, so both accept or refuse alike."""
    if plan.kind == "local":
        raise SqlNotSupported("differential privacy on a query over one party's tables",
                              hint="its owner can compute it alone; use pet.dp's mechanisms there")
    if plan.row_level:
        raise SqlNotSupported("a row-level query under differential privacy",
                              hint="aggregate with COUNT, SUM or AVG and GROUP BY")
    if plan.having is not None:
        raise SqlNotSupported("HAVING under differential privacy",
                              hint="it would select groups by exact aggregates; filter the released noisy "
                                   "result instead")
    names = {n.lower() for n in plan.out_names}
    for i, o in enumerate(plan.outputs):
        if o[0] not in ("key", "agg"):
            raise SqlNotSupported(f"output column {plan.out_names[i]!r}: an expression under differential privacy",
                                  hint="select the aggregates and group keys themselves and compute the "
                                       "expression from the released noisy values")
    for name in spec.bounds:
        if name not in names:
            raise InputError(f"DP bounds name {name!r}, which is not an output column")
    measurements, agg_meas = [], {}
    need_count = bool(min_group_size and min_group_size > 1)
    for j, a in enumerate(plan.aggs):
        name = _out_name(plan, ("agg", j)) or f"aggregate {j}"
        if a.func in ("min", "max"):
            raise SqlNotSupported(f"{a.func.upper()} (output column {name!r}) under differential privacy",
                                  hint="MIN/MAX has no bounded-sensitivity mechanism and is never released "
                                       "exactly under DP; use COUNT, SUM or AVG")
        if a.func not in ("count", "sum", "avg"):
            raise SqlNotSupported(f"{a.func.upper()} under differential privacy")
        if a.func == "count":
            need_count = True
            if name.lower() in spec.bounds:
                raise InputError(f"DP bounds given for {name!r}, a COUNT (it needs none)")
            continue
        if a.func == "avg":
            need_count = True
        if a.from_count:
            lo, hi, kind = 0.0, 1.0, "int"
            if name.lower() in spec.bounds:
                raise InputError(f"DP bounds given for {name!r}, a COUNT (it needs none)")
        else:
            if name.lower() not in spec.bounds:
                raise SqlNotSupported(f"{a.func.upper()} output column {name!r} without bounds under differential "
                                      "privacy", hint=f"pass DP(bounds={{{name!r}: (lo, hi)}}): each row's "
                                                      "contribution is clamped to them")
            lo, hi = spec.bounds[name.lower()]
            kind = _ir_kind(plan, a.arg)
        f = _lattice(lo, hi, kind)
        lo_int, hi_int = math.ceil(Fraction(lo) * 2 ** f), math.floor(Fraction(hi) * 2 ** f)
        if lo_int > hi_int:
            raise InputError(f"DP bounds of {name!r}: the interval holds no value of its lattice 2^-{f}")
        agg_meas[j] = len(measurements)
        measurements.append(Measurement("sum", j, name, lo, hi, f, lo_int, hi_int,
                                        max(abs(lo_int), abs(hi_int), 1), kind))
    count_index = None
    if need_count:
        count_index = len(measurements)
        measurements.append(Measurement("count", None, "COUNT(*)"))
    if not measurements:
        raise SqlNotSupported("a query without aggregates under differential privacy")
    key_lists = _match_groups(plan, spec)
    dplan = DPPlan(spec, measurements, count_index, agg_meas, key_lists or [], min_group_size)
    if key_lists is None:
        dplan.derived = True
        dplan.owners = sorted({plan.columns[k].party for k in plan.group_keys})
    _calibrate(dplan)
    return dplan


def _key_names(plan, i) -> set:
    c = plan.columns[plan.group_keys[i]]
    out = set()
    name = _out_name(plan, ("key", i))
    if name:
        out.add(name.lower())
    parts = [p.strip('"') for p in c.sql.split(".")]
    if parts and all(parts):
        out.add(parts[-1].lower())
        if len(parts) == 2:
            out.add(f"{parts[0]}.{parts[1]}".lower())
            table = plan.alias_tables.get(parts[0])
            if table:
                out.add(f"{table}.{parts[1]}".lower())
    return out


def _match_groups(plan, spec) -> list:
    if not plan.group_keys:
        if spec.public_groups:
            raise InputError("public_groups given but the query has no GROUP BY")
        return []
    if not spec.public_groups:
        if spec.delta == 0:
            raise SqlNotSupported("GROUP BY keys derived from the data under pure epsilon-DP (delta=0)",
                                  hint="pass public_groups={column: [values]}, or delta > 0 for the noisy-"
                                       "threshold release of the groups found in the data")
        return None  # data-derived groups: the noisy-threshold release (delta > 0)
    used, lists = set(), []
    for i, k in enumerate(plan.group_keys):
        hits = [c for c in spec.public_groups if c in _key_names(plan, i)]
        if len(hits) != 1:
            raise InputError(f"public_groups must give the values of GROUP BY key {plan.columns[k].sql} "
                             f"exactly once (by its column or output name)")
        used.add(hits[0])
        lists.append(_typed_list(spec.public_groups[hits[0]], plan.columns[k].kind, hits[0]))
    extra = sorted(set(spec.public_groups) - used)
    if extra:
        raise InputError(f"public_groups names {extra}, which are not GROUP BY keys")
    return lists


def _typed_list(vals, kind, col):
    try:
        if kind == "int":
            out = [int(v) if not isinstance(v, float) or v.is_integer() else None for v in vals]
        elif kind == "float":
            out = [float(v) for v in vals]
        elif kind == "bool":
            out = [v if isinstance(v, bool) else str(v).lower() in ("true", "1") for v in vals]
        else:
            out = [str(v) for v in vals]
    except (TypeError, ValueError):
        raise InputError(f"public_groups[{col!r}]: values must match the column's type ({kind})") from None
    if None in out or len(set(out)) != len(out):
        raise InputError(f"public_groups[{col!r}]: values must be distinct values of the column's type ({kind})")
    return out


# -- calibration ------------------------------------------------------------------------------

def zcdp_budget(epsilon: float, delta: float) -> float:
    """The largest rho (on pet.dp's RDP order grid) whose rho-zCDP the RDP accountant's
    improved conversion turns into (epsilon, delta)-DP."""
    from pet.dp import DEFAULT_ORDERS, RDPAccountant, ZCDPEvent

    a = np.asarray([x for x in DEFAULT_ORDERS if x > 1.01], dtype=np.float64)
    rho = float(np.max((epsilon - np.log1p(-1.0 / a) + np.log(delta * a) / (a - 1)) / a))
    if not rho > 0:
        raise InputError(f"no zCDP budget meets epsilon={epsilon}, delta={delta}")
    rho *= 1 - 1e-9
    while RDPAccountant().compose(ZCDPEvent(rho)).get_epsilon(delta) > epsilon:  # pragma: no cover - safety
        rho *= 0.999
    return rho


def laplace_std(scale: Fraction) -> float:
    """Standard deviation of the discrete Laplace with P(y) ∝ exp(-|y|/scale)."""
    q = math.exp(-1.0 / float(scale))
    return math.sqrt(2.0 * q) / (1.0 - q)


def gaussian_std(sigma2: Fraction) -> float:
    """Standard deviation of the discrete Gaussian with parameter sigma^2 (exact sum for
    small sigma; sigma itself beyond 20, where they differ by < exp(-2 pi^2 400))."""
    s2 = float(sigma2)
    s = math.sqrt(s2)
    if s > 20:
        return s
    ys = np.arange(-int(40 * s) - 10, int(40 * s) + 11, dtype=np.float64)
    w = np.exp(-ys * ys / (2 * s2))
    return math.sqrt(float(np.sum(ys * ys * w) / np.sum(w)))


#: share of (epsilon, delta) of the selection (the noisy-threshold test) with data-derived groups
SELECT_EPSILON, SELECT_DELTA = Fraction(1, 4), Fraction(1, 2)
#: share of (epsilon, delta) of one key owner's dummy-group padding (each owner pays it)
PAD_EPSILON, PAD_DELTA = Fraction(1, 8), Fraction(1, 8)
#: added by a key owner to the selection noise of its dummy groups (never reach tau)
DUMMY_OFFSET = -(2 ** 50)


def two_laplace_tail(epsilon: float, k: int) -> float:
    """``P(N0 + N1 >= k)`` for independent discrete Laplace ``N0, N1`` with ``P(y) ∝
    exp(-epsilon |y|)``, ``k >= 1`` (closed form: the sum is a difference of two negative
    binomials ``NB(2, q)``, ``q = exp(-epsilon)``; ``P(S = s) = (1-q)^4 q^s ((s+1)/(1-q^2)^2
    + 2 q^2/(1-q^2)^3)`` for ``s >= 0``)."""
    if k < 1:
        raise ValueError("k must be >= 1")
    q = math.exp(-epsilon)
    r = q * q
    one_q, one_r = -math.expm1(-epsilon), -math.expm1(-2 * epsilon)  # 1 - q, 1 - q^2 (small epsilon)
    qk = math.exp(-epsilon * k)
    a = qk * ((k + 1) / one_q + q / one_q ** 2)   # sum_{s>=k} (s+1) q^s
    b = qk / one_q                                # sum_{s>=k} q^s
    return one_q ** 4 * (a / one_r ** 2 + 2 * r * b / one_r ** 3)


def selection_threshold(epsilon: float, delta: float) -> int:
    """The smallest integer ``tau`` with ``P(1 + N0 + N1 >= tau) <= delta`` (``N0, N1``
    both parties' discrete Laplace noise at ``epsilon``): a group of one row is released
    with probability at most ``delta``. (The central mechanism's threshold, one Laplace,
    is ``1 + ln(1/(2 delta))/epsilon``; two parties' noise needs a few units more.)"""
    lo, hi = 1, 2
    while two_laplace_tail(epsilon, hi) > delta:
        lo, hi = hi, hi * 2
        if hi > 2 ** 62:
            raise PrecisionError(f"no selection threshold for epsilon={epsilon}, delta={delta}")
    while lo < hi:  # smallest k with tail(k) <= delta
        mid = (lo + hi) // 2
        if two_laplace_tail(epsilon, mid) <= delta:
            hi = mid
        else:
            lo = mid + 1
    return lo + 1


def padding_shift(epsilon: float, delta: float) -> int:
    """``K`` of the padding ``D = max(0, K + Z)``, ``Z`` discrete Laplace at ``epsilon``: the
    smallest ``K >= 1`` with ``P(Z <= -K) = q^K / (1 + q) <= delta``, which makes the padded
    group count ``g + D`` ``(epsilon, delta)``-DP for ``g`` of sensitivity 1."""
    q = math.exp(-epsilon)
    k = max(1, math.ceil(math.log(1.0 / (delta * (1 + q))) / epsilon))
    while k > 1 and q ** (k - 1) / (1 + q) <= delta:
        k -= 1
    while q ** k / (1 + q) > delta:
        k += 1
    return k


def _calibrate(dplan: DPPlan) -> None:
    """Noise of every measurement; with data-derived groups also the selection count, its
    threshold and the padding, splitting ``(epsilon, delta)`` by :data:`SELECT_EPSILON` /
    :data:`SELECT_DELTA` (selection), :data:`PAD_EPSILON` / :data:`PAD_DELTA` per key owner
    (padding) and the rest to the measurements; basic composition adds them up."""
    from pet.dp import RDPAccountant, ZCDPEvent, basic_composition

    spec, ms = dplan.spec, dplan.measurements
    m = len(ms)
    eps_q = Fraction(repr(spec.epsilon))
    eps_m, delta_m = spec.epsilon, spec.delta
    if dplan.derived:
        k = len(dplan.owners)
        rest = 1 - SELECT_EPSILON - k * PAD_EPSILON
        rest_d = 1 - SELECT_DELTA - k * PAD_DELTA
        eps_sel, d_sel = float(eps_q * SELECT_EPSILON), spec.delta * float(SELECT_DELTA)
        eps_pad, d_pad = float(eps_q * PAD_EPSILON), spec.delta * float(PAD_DELTA)
        eps_m, delta_m = float(eps_q * rest), spec.delta * float(rest_d)
        eps_q = eps_q * rest
        sel = Measurement("select", None, "selection count")
        sel.scale = 1 / (Fraction(repr(spec.epsilon)) * SELECT_EPSILON)
        sel.std_one = laplace_std(sel.scale)
        dplan.select = sel
        dplan.tau = selection_threshold(eps_sel, d_sel)
        dplan.pad_shift = padding_shift(eps_pad, d_pad)
        dplan.split = {"selection": (eps_sel, d_sel), **{f"padding_party{p}": (eps_pad, d_pad) for p in dplan.owners}}
    if delta_m == 0:
        dplan.eps_each = eps_m / m
        for x in ms:
            x.scale = Fraction(x.sens) / (eps_q / m)
            x.std_one = laplace_std(x.scale) * 2.0 ** -x.frac
        acc_m = basic_composition([dplan.eps_each] * m)[0]
    else:
        rho = zcdp_budget(eps_m, delta_m)
        dplan.rho_each = rho / m
        for x in ms:
            x.sigma2 = Fraction(x.sens * x.sens) / (2 * Fraction(dplan.rho_each))
            x.std_one = gaussian_std(x.sigma2) * 2.0 ** -x.frac
        acc = RDPAccountant()
        for _ in range(m):
            acc.compose(ZCDPEvent(dplan.rho_each))
        acc_m = acc.get_epsilon(delta_m)
    dplan.split["measurements"] = (eps_m, delta_m)
    if dplan.derived:
        parts = [dplan.split[k] for k in dplan.split if k != "measurements"] + [(acc_m, delta_m)]
        dplan.accounted_epsilon, dplan.accounted_delta = basic_composition([e for e, _ in parts],
                                                                           [d for _, d in parts])
    else:
        dplan.accounted_epsilon, dplan.accounted_delta = acc_m, spec.delta


def sample_noise(m: Measurement, size: int) -> np.ndarray:
    """``size`` independent draws of one party's noise for ``m`` (integers, lattice units),
    from pet.dp's exact CSPRNG samplers."""
    from pet.dp._sampling import sample_discrete_gaussian, sample_discrete_laplace

    if m.scale is not None:
        draws = [sample_discrete_laplace(m.scale) for _ in range(size)]
    else:
        draws = [sample_discrete_gaussian(m.sigma2) for _ in range(size)]
    return np.array(draws, dtype=object)


class NoisePool:
    """This party's noise for every measurement (``size`` entries each), drawn in a
    background thread: with public groups started right after planning, so the samplers run
    while the local step and the PSI do; with data-derived groups right after the group
    counts are exchanged, so they run while the group sums are computed in MPC (their
    noise-dependent running time is hidden behind that work)."""

    def __init__(self, measurements: list, size: int):
        self.groups = size
        self._out = None
        self._err = None
        self._thread = threading.Thread(target=self._run, args=(list(measurements),), daemon=True,
                                        name="pet-sql-dp-noise")
        self._thread.start()

    def _run(self, measurements):
        try:
            self._out = [sample_noise(m, self.groups) for m in measurements]
        except BaseException as exc:  # noqa: BLE001 - re-raised in get()
            self._err = exc

    def get(self) -> list:
        self._thread.join()
        if self._err is not None:
            raise self._err
        return self._out


def released_groups(dplan: DPPlan) -> int:
    return int(np.prod([len(v) for v in dplan.key_lists])) if dplan.key_lists else 1


# -- budget ----------------------------------------------------------------------------------

_after_opening_hook = None  # test hook: called after the opening, before the claim is consumed


class Budget:
    """This party's claim for one DP query on its own ledger block (or nothing without a
    ledger). States: allocated -> opening -> consumed, or allocated -> released."""

    def __init__(self, spec: DP, dplan: DPPlan):
        self.spec, self.dplan = spec, dplan
        self.claim_id = None
        self.state = "none"
        self._ledger = None
        self._own = False

    def _open_ledger(self):
        led = self.spec.ledger
        if led is None:
            return None
        if isinstance(led, (str, os.PathLike)):
            from pet.dp import BudgetLedger

            self._own = True
            return BudgetLedger(led)
        return led

    def demand(self, ledger):
        blk = ledger.block(self.spec.block)
        if blk.kind == "basic":
            # a basic block counts epsilon only; a query's delta must at least fit the
            # block's delta (a pure-epsilon block cannot pay for delta > 0)
            if self.spec.delta > blk.delta:
                raise BudgetExceeded(f"DP query refused: ledger block {self.spec.block!r} has delta={blk.delta}, "
                                     f"below the query's delta={self.spec.delta} (nothing was charged)")
            return self.spec.epsilon
        from pet.dp.rdp import rdp_of_event

        return sum(rdp_of_event(ev, blk.orders) for ev in self.dplan.events)

    def allocate(self) -> bool:
        """Allocate the claim; False if the block cannot cover it (nothing recorded)."""
        self._ledger = self._open_ledger()
        if self._ledger is None:
            self.state = "allocated"
            return True
        self.claim_id = f"pet.sql/{secrets.token_hex(8)}"
        if not self._ledger.allocate(self.claim_id, {self.spec.block: self.demand(self._ledger)}):
            self.claim_id = None
            self.state = "refused"
            return False
        self.state = "allocated"
        return True

    def release(self) -> None:
        if self.state == "allocated" and self.claim_id is not None:
            self._ledger.release(self.claim_id)
        self.state = "released"
        self.close()

    def opening(self) -> None:
        self.state = "opening"

    def consume(self) -> None:
        if _after_opening_hook is not None:
            _after_opening_hook()
        if self.state == "opening" and self.claim_id is not None:
            self._ledger.consume(self.claim_id)
        self.state = "consumed"
        self.close()

    def abort(self) -> None:
        """After a failure: release if nothing was opened, else charge."""
        if self.state == "allocated":
            self.release()
        elif self.state == "opening":
            self.consume()
        else:
            self.close()

    def close(self) -> None:
        if self._own and self._ledger is not None:
            self._ledger.close()
            self._ledger = None
            self._own = False


def start(session, plan, spec: DP, min_group_size):
    """After planning: plan the DP release, start the noise, allocate this party's budget
    and learn the peer's verdict (one bit each way). Returns the :class:`DPRun`; raises
    BudgetExceeded at both parties if either cannot pay (the accepted claim is released)."""
    dplan = plan_dp(plan, spec, min_group_size)
    budget = Budget(spec, dplan)
    error, ok = None, False
    try:
        ok = budget.allocate()
    except Exception as exc:  # noqa: BLE001 - the peer must hear a verdict
        error = exc
    peer_ok = session.exchange("sql.dp.budget", bool(ok))
    if not isinstance(peer_ok, bool):
        budget.abort()
        raise ProtocolError("malformed budget verdict from the peer")
    if error is not None:
        budget.close()
        raise error
    if not (ok and peer_ok):
        budget.release()
        if not ok:
            raise BudgetExceeded(f"DP query refused: ledger block {spec.block!r} cannot cover epsilon="
                                 f"{spec.epsilon}, delta={spec.delta} (nothing was charged; the peer learns "
                                 "only that the query was refused)")
        raise BudgetExceeded("DP query refused by the peer's privacy budget (nothing was charged here)")
    pool = None if dplan.derived else NoisePool(dplan.measurements, released_groups(dplan))
    return DPRun(dplan, budget, pool)


@dataclass
class DPRun:
    dplan: DPPlan
    budget: Budget
    pool: NoisePool | None  # None with data-derived groups (sized after the join)


# -- execution (after the join) ---------------------------------------------------------------

def _public_groups(session, plan, dplan, rows):
    """:class:`pet.sql.execute.Groups` over the public key lists: each owner maps its joined
    rows to their group's index (a row whose key is not listed goes to an extra "other"
    group per party, computed but never released). Nothing is exchanged."""
    import pandas as pd

    from pet.sql.execute import Groups

    me = session.party
    owners = sorted({plan.columns[k].party for k in plan.group_keys})
    ids, sizes, values = {}, {}, {}
    for p in owners:
        keys = [i for i, k in enumerate(plan.group_keys) if plan.columns[k].party == p]
        lens = [len(dplan.key_lists[i]) for i in keys]
        sizes[p] = int(np.prod(lens)) + 1
        if me != p:
            continue
        n = len(rows)
        idx = np.zeros(n, dtype=np.int64)
        other = np.zeros(n, dtype=bool)
        for i, ln in zip(keys, lens):
            col = rows[plan.group_keys[i]]
            pos = pd.Index(dplan.key_lists[i]).get_indexer(_coerce(col, plan.columns[plan.group_keys[i]].kind))
            other |= pos < 0
            idx = idx * ln + np.maximum(pos, 0)
        idx[other] = sizes[p] - 1
        ids[p] = idx
    if not owners:
        return Groups("none", [], ids, sizes, values)
    return Groups("own" if len(owners) == 1 else "product", owners, ids, sizes, values)


def _coerce(col, kind):
    if kind == "int":
        return col.astype("Int64").astype(object).where(col.notna(), None)
    if kind == "float":
        return col.astype(np.float64)
    if kind == "str":
        return col.astype(object).where(col.notna(), None).map(lambda v: v if v is None else str(v))
    return col


def _released(plan, dplan, groups):
    """(internal group index, {key i: value}) of every released group, in output order."""
    if groups.kind == "none":
        return [(0, {})]
    per = {}
    for p in groups.owners:
        keys = [i for i, k in enumerate(plan.group_keys) if plan.columns[k].party == p]
        per[p] = [(j, dict(zip(keys, combo))) for j, combo in
                  enumerate(itertools.product(*[dplan.key_lists[i] for i in keys]))]
    if groups.kind == "own":
        return per[groups.owners[0]]
    out = []
    for i, a in per[0]:
        for j, b in per[1]:
            out.append((i * groups.sizes[1] + j, {**a, **b}))
    return out


def _contributions(session, plan, ms, vals, n):
    """Row contributions of each SUM measurement ``ms[i]`` (row values ``vals[i]``) clamped
    to ``[lo_int, hi_int]`` on its lattice, as int-kind values. Own / Pub: clamped in
    plaintext by whoever knows the value. Sh: clamped in MPC, every measurement in one
    batch (:func:`_clamp_shared`): 7 + 1 rounds for all of them on the narrow 32-bit
    comparison, 8 + 1 on 64 bits (plus one truncation round for a value finer than its
    comparison lattice), ``2 n`` comparisons and ``n`` products each."""
    from pet.sql.numbers import Num
    from pet.sql.values import Own, Pub, Sh

    out, pending = [None] * len(ms), []
    for i, (m, v) in enumerate(zip(ms, vals)):
        num = Num(math.frexp(max(abs(m.lo_int), abs(m.hi_int), 1))[1], 0, 0.0)
        dec = getattr(getattr(v, "num", None), "dec", None)
        if isinstance(v, Pub):
            out[i] = Pub(_clamp_plain(m, v.v, dec), "int", num)
        elif isinstance(v, Own):
            out[i] = Own(v.party, None if v.v is None else _clamp_plain(m, v.v, dec), "int", num)
        else:
            pending.append((i, num, _clamp_operands(session, m, v)))
    if pending:
        clamped = _clamp_shared(session, [ops for _, _, ops in pending])
        for (i, num, _), x in zip(pending, clamped):
            out[i] = Sh(x, "int", num)
    return out


def _clamp_plain(m, arr, dec):
    a = np.asarray(arr, dtype=np.float64)
    if dec:
        a = a / 10.0 ** dec
    return np.clip(np.rint(a * 2.0 ** m.frac), m.lo_int, m.hi_int).astype(np.int64)


#: the narrowest comparison lane the clamps coarsen a value to (pet.mpc.boolean.msb, bits=)
CLAMP_LANE = 32
#: a clamp may compare on a coarser lattice than its measurement's only while that lattice
#: still resolves the larger bound to 2^-CLAMP_RESOLUTION of its magnitude (per-row error
#: below one unit of that lattice, see _clamp_plan)
CLAMP_RESOLUTION = 24


def _encoded_bound(num, f: int) -> int | None:
    """A bound on ``|x|`` for the integer ``x`` holding a value of ``num`` (``|v| < 2^k``,
    held within ``err``) on the lattice ``2^-f``, including one unit for a truncation to
    it; None when the range analysis gives no bound the comparison may rely on (no Num,
    a secret division's approximate value, the wide ring)."""
    if num is None or num.approx or num.ring != 64 or num.dec is not None:
        return None
    exact = (Fraction(2) ** num.k + Fraction(num.err)) * Fraction(2) ** f
    return math.ceil(exact) + 2


def _clamp_plan(m, num, fv: int):
    """``(fc, bits)``: the lattice ``2^-fc`` the clamp of a value of ``num`` (held at
    ``fv`` fractional bits) compares on, and the width of its comparisons
    (:func:`pet.mpc.sign_bit` with ``bits``), exact for every value the range analysis
    allows.

    Start at ``f0 = min(fv, m.frac)`` (today's lattice); the comparisons take the signs of
    ``x - lo_c`` and ``hi_c - x``, so ``bits = msb_width(B + max(|lo_c|, |hi_c|))`` with
    ``B`` the bound of ``|x|`` (:func:`_encoded_bound`). If that exceeds
    :data:`CLAMP_LANE`, coarsen by ``t`` bits (``fc = f0 - t``, the smallest ``t`` that
    fits the lane) provided ``2^-fc`` still resolves the bounds to
    ``2^-CLAMP_RESOLUTION`` of ``max(|lo|, |hi|)``; otherwise compare at ``f0`` on 64 bits
    (as without the narrow comparison)."""
    from pet.mpc.boolean import msb_width

    f0 = min(fv, m.frac)

    def need(f):
        B = _encoded_bound(num, f)
        if B is None:
            return 64
        lo_c, hi_c = math.ceil(Fraction(m.lo) * 2 ** f), math.floor(Fraction(m.hi) * 2 ** f)
        top = B + max(abs(lo_c), abs(hi_c))
        return msb_width(top) if top < 1 << 63 else 65

    bits = need(f0)
    if bits <= CLAMP_LANE or _encoded_bound(num, f0) is None:
        return f0, min(bits, 64)
    kb = math.frexp(max(abs(m.lo), abs(m.hi)))[1]
    for t in range(1, f0 + 1):
        if f0 - t + kb < CLAMP_RESOLUTION:
            break
        if need(f0 - t) <= CLAMP_LANE:
            return f0 - t, need(f0 - t)
    return f0, min(bits, 64)


def _clamp_operands(session, m, v):
    """``(x, lo, hi, value, lo_int, hi_int, bits)`` for one shared row value: the comparisons
    ``x < lo`` and ``x > hi`` (integers, on ``bits``-bit values: :func:`_clamp_plan`)
    decide whether the row is below / above the bounds, and ``value`` is the row on the
    measurement's lattice ``2^-frac`` where it is inside them.

    The comparison lattice is ``2^-fc`` (:func:`_clamp_plan`; ``fc <= frac``) with
    ``lo = ceil(lo 2^fc)``, ``hi = floor(hi 2^fc)``: a value held more finely is first
    truncated to it (1 round, <= 1 ulp up), and ``value`` is the compared ``x`` itself,
    scaled up locally by ``2^(frac - fc)`` -- so where neither bit is set,
    ``lo <= x <= hi`` gives ``lo_int <= value <= hi_int`` whatever the truncation did (a
    value outside the bounds may wrap when scaled; it is replaced by a bound, which the
    ring arithmetic makes exact). ``fc`` is the value's own lattice or ``frac`` (as before
    the narrow comparison) unless the narrow lane needs a coarser one: then a row inside
    the bounds moves by less than one unit of ``2^-fc`` (at most ``2^-CLAMP_RESOLUTION`` of
    the larger bound)."""
    import pet.mpc as mpc
    from pet.sql import numbers as N
    from pet.sql.values import to_float_shared

    s = v.s
    num = getattr(v, "num", None)
    dec = getattr(num, "dec", None)
    if dec:
        s = to_float_shared(session, s, num)
        num = N.to_float(num)
    fv = s.frac
    fc, bits = _clamp_plan(m, num, fv)
    if fv > fc:
        s = s.rescale(fc)
    x = mpc.Shared.from_shares(session, s.share, 0)  # lattice 2^-fc, as integers
    lo_c, hi_c = math.ceil(Fraction(m.lo) * 2 ** fc), math.floor(Fraction(m.hi) * 2 ** fc)
    value = x.scaled(2 ** (m.frac - fc)) if m.frac > fc else x
    return x, lo_c, hi_c, value, m.lo_int, m.hi_int, bits


def _clamp_shared(session, items):
    """Clamp every ``(x, lo, hi, value, lo_int, hi_int, bits)`` of :func:`_clamp_operands`
    (measurement ``i``: ``value`` where ``lo <= x <= hi``, else its ``lo_int`` /
    ``hi_int``), all in one batch: the bits ``b_lo = [x < lo]`` and ``b_hi = [x > hi]`` of
    every row of every measurement in one comparison (:func:`pet.mpc.sign_bit` on the
    widest ``bits`` of the batch: 7 rounds on 32 bits, 8 on 64), then, as at most one
    of the two is set, ``value + b_lo lo_int + b_hi hi_int - (b_lo + b_hi) value``: one
    Beaver product of integers per row (1 round). Nothing is opened unmasked; the clamp
    bits stay shared."""
    import pet.mpc as mpc

    sizes = [it[0].size for it in items]
    xs = mpc.concatenate([it[0].reshape(-1) for it in items])
    vals = mpc.concatenate([it[3].reshape(-1) for it in items])
    lo = np.concatenate([np.full(k, it[1], dtype=np.int64) for k, it in zip(sizes, items)])
    hi = np.concatenate([np.full(k, it[2], dtype=np.int64) for k, it in zip(sizes, items)])
    lo_t = np.concatenate([np.full(k, it[4], dtype=np.int64) for k, it in zip(sizes, items)])
    hi_t = np.concatenate([np.full(k, it[5], dtype=np.int64) for k, it in zip(sizes, items)])
    bits = max(it[6] for it in items)
    both = mpc.sign_bit(mpc.concatenate([xs - lo, -(xs - hi)]), bits=bits)
    total = int(sum(sizes))
    b_lo, b_hi = both[:total], both[total:]
    out = vals + b_lo * lo_t + b_hi * hi_t - (b_lo + b_hi) * vals
    res, at = [], 0
    for k in sizes:
        res.append(out[at:at + k])
        at += k
    return res


def blank_dropped_rows(plan, df, party) -> None:
    """Under DP this party's WHERE conjuncts run on its joined rows, not before the PSI
    (:func:`fold_own_filters`), so its local rows include the ones they drop. Their values
    never count (the mask is 0 there) and must not fail the query: in place, a NULL or
    non-finite value of a dropped row becomes 0 (numbers), False (booleans) or "" (strings).
    Finite values stay, so the magnitude classes (pet.sql.ranges) are over all joined rows
    and do not depend on the WHERE; declared ``bounds=`` ranges are checked on all of them.
    Group keys are kept as they are. Called by the owner only; nothing is sent."""
    drop = ~df[plan.own_filters[party]].to_numpy(dtype=bool)
    if not drop.any():
        return
    for name, col in plan.columns.items():
        if col.party != party or name.startswith("_g") or name == plan.own_filters[party] or name not in df:
            continue
        bad = drop & df[name].isna().to_numpy()
        if col.kind in ("int", "float"):
            bad |= drop & ~np.isfinite(df[name].to_numpy(dtype=np.float64, na_value=np.nan))
        if bad.any():
            fill = {"int": 0, "float": 0.0, "bool": False}.get(col.kind, "")
            if df[name].dtype.kind not in "O" and not (col.kind == "float" and df[name].dtype.kind == "f"):
                df[name] = df[name].astype(object)
            df.loc[bad, name] = fill


def fold_own_filters(session, plan, rows, mask, n):
    """The DP row mask: the cross-party WHERE ``mask`` times each party's own WHERE column
    (``plan.own_filters[p]``, 0/1 evaluated by ``p`` on its joined rows).

    Without DP a one-party WHERE runs before the PSI, so both parties see the *filtered*
    joined row count exactly, whatever the noise. Under DP the PSI joins the unfiltered
    rows (its intersection is the only size revealed) and the owner's 0/1 vector enters
    the MPC as a sharing known to it (:meth:`pet.mpc.Shared.known_to`, no message); folding
    it into a cross-party mask or into the other party's is one Beaver product (1 round,
    ``n`` elements). From then on it is an operand of products only (the group matrix and
    the sums), so nobody learns which joined rows pass, nor how many: only noisy counts and
    sums of the passing rows are opened."""
    import pet.mpc as mpc
    from pet.sql.values import Pub, Sh

    filters = plan.own_filters
    if not filters or n == 0:
        return mask
    for p in sorted(filters):
        w = rows[filters[p]].to_numpy(dtype=bool).astype(np.int64) if session.party == p else None
        ws = mpc.Shared.known_to(session, w, p, frac_bits=0, shape=(n,))
        mask = Sh(ws, "bool") if isinstance(mask, Pub) else Sh(mask.s * ws, "bool")
    return mask


def precheck_rows(plan, col_nums) -> None:
    """The range analysis of the row expressions only (mask and aggregate arguments):
    under DP the sums are of clamped contributions, whose range :func:`check_ranges`
    checks, so a raw sum's class (which may exceed the ring) does not matter."""
    from pet.sql import numbers as N
    from pet.sql.ranges import agg_text, ir_text
    from pet.sql.values import Sh, evaluate

    def leaf(ir):
        c = plan.columns[ir[1]]
        return Sh(None, c.kind, col_nums.get(ir[1]))

    if plan.mask is not None:
        evaluate(None, plan.mask, leaf, what=ir_text(plan, plan.mask))
    for j, a in enumerate(plan.aggs):
        if a.arg is not None:
            row = evaluate(None, a.arg, leaf, what=agg_text(plan, j)).num
            if row is not None:
                N.check(row, agg_text(plan, j))


def check_ranges(dplan: DPPlan, n: int) -> None:
    """PrecisionError at both parties if a noisy sum could leave the ring's safe range:
    ``(n + 1) S + 2 * 64 std`` (lattice units) must stay below 2^60; with data-derived
    groups the noisy selection count (and ``tau``) must stay below 2^48, far above a dummy
    group's :data:`DUMMY_OFFSET`."""
    for m in dplan.measurements:
        top = (n + 1) * m.sens + 2 * _TAIL * m.std_one * 2.0 ** m.frac
        if top >= 2.0 ** _WIDTH:
            raise PrecisionError(f"DP {m.name}: the noisy sum (bound {top:.3g} units of 2^-{m.frac}) exceeds the "
                                 "64-bit ring; use narrower bounds or a larger epsilon")
    if dplan.derived:
        top = (n + 1) + 2 * _TAIL * dplan.select.std_one + dplan.tau
        if top >= 2.0 ** 48:
            raise PrecisionError(f"DP selection count: noise or threshold too large for the ring (bound {top:.3g}); "
                                 "use a larger epsilon or delta")


def _lap(info, key, clock):
    now = time.perf_counter()
    if info is not None:
        info[key] = now - clock
    return now


def _measure(session, plan, ms, groups, mask, col_leaf, n, info=None):
    """Step 1 of both releases: each SUM measurement's clamped contributions
    (:func:`_contributions`), the row mask folded in, and one linear product for all of
    them and the count. Returns ``({id(measurement): value}, count)`` over all ``groups.g``
    groups (values as :mod:`pet.sql.values`, nothing opened).

    A shared mask (a cross-party WHERE, or a one-party WHERE under DP) is folded where it
    costs less (:func:`_mask_in_rows`): into the group matrix (one Beaver product of ``n g``
    elements, as without DP), or -- when the sums are fewer than the groups -- into the
    ``k`` clamped contributions (one product of ``n k`` elements) with the mask itself as
    one more column of the linear product, whose sum is the count. Either way one round;
    what is opened is masked, so nothing about the mask is learnt."""
    from pet.sql.execute import group_matrix, linear_sums
    from pet.sql.numbers import count_of
    from pet.sql.values import Pub, Sh, evaluate

    clock = time.perf_counter()
    sum_ms = [m for m in ms if m.kind == "sum"]
    vals = [evaluate(session, plan.aggs[m.agg].arg, col_leaf, (n,), what=m.name) for m in sum_ms]
    clock = _lap(info, "seconds_dp_row_expressions", clock)
    contribs = _contributions(session, plan, sum_ms, vals, n)
    clock = _lap(info, "seconds_dp_clamps", clock)
    in_rows = _mask_in_rows(groups, mask, len(sum_ms))
    if in_rows:
        Hm = group_matrix(session, groups, Pub(np.bool_(True), "bool"), n)
        cols = [Sh(_integer(session, mask.s), "int", count_of(n))] + _masked(session, mask, contribs, n)
    else:
        Hm = group_matrix(session, groups, mask, n)
        cols = contribs
    clock = _lap(info, "seconds_dp_mask", clock)
    sums, count = linear_sums(session, Hm, cols, n, groups, [c.num for c in cols])
    if in_rows:
        count, sums = sums[0], sums[1:]
    _lap(info, "seconds_dp_sum_count", clock)
    by_meas = dict(zip([id(m) for m in sum_ms], sums))
    for m in ms:
        if m.kind == "count":
            by_meas[id(m)] = count
    return by_meas, count


def _mask_in_rows(groups, mask, k) -> bool:
    """Fold a shared row mask into the ``k`` contributions (True) rather than the group
    matrix: only with groups (without, the matrix is the mask itself) and when ``k + 1 <
    g`` elements per row are fewer than the matrix's ``g``. Public: the group count, ``k``
    and whether a mask exists."""
    from pet.sql.values import Pub

    return not isinstance(mask, Pub) and groups.kind != "none" and k + 1 < groups.g


def _masked(session, mask, contribs, n):
    """``mask * c`` for every contribution (int kind, lattice units), one batched Beaver
    product of integers (1 round, ``n k`` elements; no truncation). An owner-known or
    public contribution enters as a trivial sharing (no message)."""
    import pet.mpc as mpc
    from pet.sql.values import Own, Pub, Sh, trivial

    if not contribs:
        return []
    ops = []
    for c in contribs:
        if isinstance(c, Sh):
            ops.append(_integer(session, c.s))
        elif isinstance(c, Own):
            arr = c.v if session.party == c.party else np.zeros(n, dtype=np.int64)
            ops.append(trivial(session, c.party, np.asarray(arr, dtype=np.int64), 0))
        elif isinstance(c, Pub):
            ops.append(mpc.constant(session, np.broadcast_to(np.asarray(c.v, dtype=np.int64), (n,)).copy(), 0))
    V = mpc.stack([o.reshape(n) for o in ops], axis=1)  # (n, k)
    prod = _integer(session, mask.s).reshape(n, 1) * V
    return [Sh(prod[:, j], "int", c.num) for j, c in enumerate(contribs)]


def _noise_shares(session, noise):
    """Both parties' noise (this party's: a list of integer arrays, lattice units) as one
    shared integer vector ``noise_0 + noise_1``: each party inputs its own as a secret
    sharing, both at once (:meth:`pet.mpc.Session.share_split`, 1 round, 8 bytes per entry
    each way; each learns only the length). A noise beyond 2^63 -- never in practice --
    wraps, which is post-processing of the noisy value."""
    mine = np.array([(int(x) + 2 ** 63) % 2 ** 64 - 2 ** 63 for arr in noise for x in arr], dtype=np.int64)
    both = session.share_split(mine.reshape(1, -1), [0, 1], axis=0, frac_bits=0)  # row p: party p's noise
    return both[0] + both[1]


def _integer(session, x):
    import pet.mpc as mpc

    return x if x.frac == 0 else mpc.Shared.from_shares(session, x.share, 0)


def run_dp(session, plan, run: DPRun, rows, mask, col_leaf, n, receivers, info):
    """Aggregates of the DP query: clamped contributions, per-group sums and counts in MPC,
    plus both parties' noise as secret inputs, one opening to the receivers; charges the
    budget after it. Returns the output columns at a receiver, None elsewhere. Data-derived
    groups: :func:`run_derived`."""
    import pet.mpc as mpc
    from pet.sql.values import to_shared

    dplan = run.dplan
    ms = dplan.measurements
    check_ranges(dplan, n)
    if dplan.derived:
        return run_derived(session, plan, run, rows, mask, col_leaf, n, receivers, info)
    clock = time.perf_counter()
    groups = _public_groups(session, plan, dplan, rows)
    released = _released(plan, dplan, groups)
    sel = np.array([i for i, _ in released], dtype=np.int64)
    g_rel = len(released)
    noise = run.pool.get()
    clock = _lap(info, "seconds_dp_groups_noise", clock)
    info["groups"] = g_rel
    parts = []
    if n == 0:
        zero = mpc.constant(session, np.zeros(g_rel * len(ms), dtype=np.int64), 0)
        parts = [zero]
    else:
        by_meas, _ = _measure(session, plan, ms, groups, mask, col_leaf, n, info)
        for m in ms:
            parts.append(to_shared(session, by_meas[id(m)], (groups.g,)).reshape(-1)[sel])
    clock = time.perf_counter()
    values = _integer(session, mpc.concatenate(parts) if len(parts) > 1 else parts[0])
    noisy = values + _noise_shares(session, noise)
    one = receivers[0] if len(receivers) == 1 else None
    run.budget.opening()
    got = session.reveal(noisy, to=one)
    run.budget.consume()
    _lap(info, "seconds_dp_noise_reveal_charge", clock)
    if got is None:
        return None
    got = np.asarray(got).reshape(len(ms), g_rel)
    return _present(plan, dplan, released, got, info)


# -- data-derived groups: padding, noisy threshold in MPC -------------------------------------

def _padded_groups(session, plan, dplan, rows):
    """:class:`pet.sql.execute.Groups` of the key values found in the joined rows, each
    owner's list padded with dummy groups. Owner ``p`` numbers its ``g_p`` distinct key
    values, draws ``D_p = max(0, K + Z)`` (``Z`` discrete Laplace at the padding epsilon,
    CSPRNG; ``K`` = :func:`padding_shift`), and places the ``g_p + D_p`` groups (dummies:
    no rows, key None) in a uniformly random order (CSPRNG permutation); ``g_p + D_p`` is
    sent to the peer (one message each way, as the exact query's group count). The peer
    learns only this padded count, which is ``(eps_pad, delta_pad)``-DP for ``g_p``."""
    from pet._random import secure_permutation
    from pet.dp._sampling import sample_discrete_laplace
    from pet.sql.execute import Groups, factorize_codes

    me = session.party
    owners = dplan.owners
    ids, sizes, values, real = {}, {}, {}, {}
    mine = None
    if me in owners:
        cols = [k for k in plan.group_keys if plan.columns[k].party == me]
        codes, uniques = factorize_codes(rows[cols])
        g = len(uniques)
        scale = 1 / (Fraction(repr(dplan.spec.epsilon)) * PAD_EPSILON)
        total = g + max(0, dplan.pad_shift + sample_discrete_laplace(scale))
        perm = secure_permutation(total)  # real group i -> slot perm[i]; dummies: perm[g:]
        ids[me] = perm[:g][codes].astype(np.int64)
        values[me] = {}
        for c in cols:
            slot_vals = np.full(total, None, dtype=object)
            slot_vals[perm[:g]] = uniques[c].to_numpy(dtype=object)
            values[me][c] = slot_vals
        real[me] = np.zeros(total, dtype=bool)
        real[me][perm[:g]] = True
        mine = int(total)
    peer = session.exchange("sql.groups", mine)
    for p in owners:
        sizes[p] = mine if p == me else peer
        if not isinstance(sizes[p], int) or isinstance(sizes[p], bool) or sizes[p] < 0:
            raise ProtocolError("malformed group count from the peer")
    groups = Groups("own" if len(owners) == 1 else "product", owners, ids, sizes, values)
    if groups.g > MAX_GROUPS:
        raise InputError(f"differential privacy: {groups.g} candidate groups (padded) exceed {MAX_GROUPS}; "
                         "pass public_groups")
    groups.real = real
    return groups


def _dummy_cells(groups, me) -> np.ndarray | None:
    """Which of the ``groups.g`` cells hold a dummy of this party's (None: it owns no key)."""
    if me not in groups.owners:
        return None
    dummy = ~groups.real[me]
    if groups.kind == "own":
        return dummy
    return np.repeat(dummy, groups.sizes[1]) if me == 0 else np.tile(dummy, groups.sizes[0])


def run_derived(session, plan, run: DPRun, rows, mask, col_leaf, n, receivers, info):
    """The release of data-derived groups (``delta > 0``, no ``public_groups``).

    1. Candidates (:func:`_padded_groups`): each key owner's distinct keys among the joined
       rows plus its dummy groups, in a random order; the padded counts are exchanged.
    2. Both parties start their noise (a background thread): every measurement and the
       selection count (discrete Laplace at the selection epsilon), one draw per candidate;
       a key owner adds :data:`DUMMY_OFFSET` to the selection noise of its dummy cells.
    3. Group sums and counts in MPC over all candidates (:func:`_measure`).
    4. ``keep = count + sel_0 + sel_1 >= tau`` in MPC (one comparison per candidate): the
       selection count is never opened, so nobody learns the exact (or noisy) count of a
       suppressed group.
    5. The budget's opening starts; :func:`pet.sql.reveal.reveal_columns` opens ``keep`` to
       the receivers, then only the kept groups' noisy measurements and keys (a key owner
       that is not a receiver and does not learn ``keep`` inputs its keys as words masked
       by ``keep`` in MPC, padded to a public width). The claim is consumed.

    Rounds: one exchange (counts), the clamps and Beaver products of :func:`_measure`,
    one noise input (both parties at once), one comparison (8 rounds), the reveal. Returns the output columns at a
    receiver, None elsewhere."""
    import pet.mpc as mpc
    from pet.sql.execute import key_values
    from pet.sql.reveal import reveal_columns
    from pet.sql.values import Sh, to_shared

    dplan = run.dplan
    ms = dplan.measurements
    if n == 0:  # public: nothing joined, no group exists; the (empty) release is charged
        info["groups"] = 0
        run.budget.opening()
        run.budget.consume()
        if session.party not in receivers:
            return None
        return _present(plan, dplan, [], np.zeros((len(ms), 0), dtype=np.int64), info)
    groups = _padded_groups(session, plan, dplan, rows)
    g = groups.g
    info["groups"] = g  # candidates, padded
    pool = NoisePool(ms + [dplan.select], g)
    by_meas, count = _measure(session, plan, ms, groups, mask, col_leaf, n)
    parts = [to_shared(session, by_meas[id(m)], (g,)).reshape(-1) for m in ms]
    parts.append(to_shared(session, count, (g,)).reshape(-1))
    values = _integer(session, mpc.concatenate(parts))
    noise = pool.get()
    dummy = _dummy_cells(groups, session.party)
    if dummy is not None:
        noise[-1] = noise[-1] + np.where(dummy, DUMMY_OFFSET, 0).astype(object)
    noisy = values + _noise_shares(session, noise)
    m = len(ms)
    keep = mpc.greater_equal(noisy[m * g:], dplan.tau)
    outs = key_values(session, plan, groups) + [Sh(noisy[i * g:(i + 1) * g], "int") for i in range(m)]
    run.budget.opening()
    cols = reveal_columns(session, plan, outs, Sh(keep, "bool"), receivers, g=g, suppressed=None,
                          null_flag=None, nullable=[False] * len(outs), info=info, pad_words=True)
    run.budget.consume()
    if cols is None:
        return None
    nk = len(plan.group_keys)
    r = len(cols[nk]) if m else 0
    released = [(None, {i: _scalar(cols[i][j]) for i in range(nk)}) for j in range(r)]
    got = np.array([[int(x) for x in cols[nk + i]] for i in range(m)], dtype=np.int64).reshape(m, r)
    return _present(plan, dplan, released, got, info)


def _present(plan, dplan, released, got, info):
    ms = dplan.measurements
    real = [[math.ldexp(int(x), -m.frac) for x in got[i]] for i, m in enumerate(ms)]
    keep = np.ones(len(released), dtype=bool)
    if dplan.count_index is not None and dplan.min_group_size and dplan.min_group_size > 1:
        keep = np.asarray(real[dplan.count_index]) >= dplan.min_group_size
    info["suppressed_groups"] = int((~keep).sum())
    cols, noise_std, avg_parts, frac_bits = [], {}, {}, {}
    for i, o in enumerate(plan.outputs):
        name = plan.out_names[i]
        if o[0] == "key":
            cols.append(np.array([r[1][o[1]] for r, k in zip(released, keep) if k], dtype=object))
            continue
        j = o[1]
        a = plan.aggs[j]
        if a.func == "count":
            m = ms[dplan.count_index]
            vals = real[dplan.count_index]
            noise_std[name] = m.std_total
            frac_bits[name] = 0
        elif a.func == "avg":
            s, c = ms[dplan.agg_meas[j]], ms[dplan.count_index]
            vals = [min(max(x / max(y, 1.0), s.lo), s.hi) for x, y in
                    zip(real[dplan.agg_meas[j]], real[dplan.count_index])]
            noise_std[name] = None
            avg_parts[name] = {"sum_noise_std": s.std_total, "count_noise_std": c.std_total}
            frac_bits[name] = s.frac
        else:
            m = ms[dplan.agg_meas[j]]
            vals = real[dplan.agg_meas[j]]
            noise_std[name] = m.std_total
            frac_bits[name] = m.frac
        cols.append(np.array([v for v, k in zip(vals, keep) if k], dtype=object))
    spec = dplan.spec
    info["dp"] = {
        "epsilon": spec.epsilon, "delta": spec.delta, "mechanism": spec.mechanism,
        "noise_std": noise_std, "avg_noise": avg_parts, "frac_bits": frac_bits,
        "measurements": len(ms),
        "split": (f"epsilon/{len(ms)} per measurement (basic composition)" if spec.delta == 0 else
                  f"zCDP rho={dplan.rho_each * len(ms):.6g} split equally, rho/{len(ms)} per measurement"),
        "accounted_epsilon": dplan.accounted_epsilon,
        "accounted_delta": dplan.accounted_delta,
        "unit": "one joined row",
        "released_groups": len(released),
        "groups": "public" if not plan.group_keys or not dplan.derived else "data-derived",
    }
    if dplan.derived:
        (es, ds), (ep, dp_), (em, dm) = (dplan.split["selection"], dplan.split[_pad_key(dplan)],
                                         dplan.split["measurements"])
        info["dp"]["split"] = (f"selection eps={es:.6g} delta={ds:.3g} (threshold {dplan.tau}); padding per key "
                               f"owner eps={ep:.6g} delta={dp_:.3g}; measurements eps={em:.6g} delta={dm:.3g} "
                               f"(zCDP rho={dplan.rho_each * len(ms):.6g} split equally); basic composition")
        info["dp"]["threshold"] = dplan.tau
        info["dp"]["budget_split"] = {k: list(v) for k, v in dplan.split.items()}
    return cols


def _pad_key(dplan) -> str:
    return next(k for k in dplan.split if k.startswith("padding"))
