"""The cross-party executor: local DuckDB step, PSI join, group matrices, aggregates,
HAVING / min_group_size, and the reveal.

Protocol (both parties, same order; ``n`` = joined rows, ``g`` = groups):

1. **Local step.** Each party runs its pushed-down query (:mod:`pet.sql.local`) in DuckDB
   on its own tables: its WHERE conjuncts, projections and single-party expressions. The
   parties exchange a status so a failure stops both: ok, or a fixed ``[step, kind]``
   category (:func:`pet.sql.errors.failure_status`) -- never the error text, which may
   quote data; the failing party raises its full error locally.
2. **Join.** Each party checks its join keys for duplicates; the two "has duplicates"
   bits are exchanged. Both unique: ECDH-PSI (:func:`pet.psi.align`, reveal to both) on
   the keys gives both parties their matching rows in one joint order, so row ``i`` of
   party 0 is joined with row ``i`` of party 1. One side with duplicates is rejected
   unless ``duplicate_keys="reveal_counts"``: then the PSI runs on the distinct keys and
   the side with duplicates sends, per intersecting key, its number of rows, and the
   other side repeats its row that many times. Both sides with duplicates: rejected.
3. **Row mask.** A WHERE conjunct that mixes both parties is evaluated in MPC into a
   shared 0/1 mask ``m``; nobody learns which joined rows pass.
4. **Groups.** The owner of the group key columns numbers its distinct key values among
   the joined rows in a random order (CSPRNG permutation) and tells the peer ``g``; its
   one-hot matrix ``H`` (n x g) stays plaintext at the owner and enters MPC only as an
   operand of Beaver products. Keys of both parties: the product groups ``g0 * g1``,
   ``H[r, i*g1 + j] = H0[r, i] * H1[r, j]`` (one Beaver product).
5. **Aggregates.** With the mask folded in (``Hm = H * m``), SUM and COUNT are one matrix
   product ``Hm^T @ V`` for all value columns at once; MIN/MAX build
   ``X = Hm * (v + B) - B`` (``B`` = 2^40, so rows outside a group lose) and run one
   batched tournament over the rows for all groups and all MIN/MAX columns (``ceil(log2
   n)`` levels of comparisons); AVG is SUM times the reciprocal of COUNT. When the values
   and the group keys belong to the same party and there is no cross-party mask, that
   party computes the aggregate in plaintext (it could anyway).
6. **Keep.** ``keep = (count > 0) AND (count >= min_group_size) AND HAVING`` per group,
   in MPC; the number of groups suppressed by ``min_group_size`` (non-empty, passing
   HAVING, fewer rows) is revealed with the result.
7. **Reveal** (:func:`reveal`): only kept groups' values reach the receiver(s).

What each party learns: its peer's row count after local filters and the PSI
intersection of join keys (and, with ``duplicate_keys="reveal_counts"``, the peer's
multiplicity of each intersecting key if the peer is the side with duplicates); the
number of groups of a key owned by the peer (and, when the output goes to it, the
maximal byte length of the peer's string keys, in 4-byte words); the result if it
receives it; if the peer's local step fails, that it failed and a coarse category
(:func:`pet.sql.errors.failure_status`). Nothing else: masks, group sizes, aggregates and
HAVING outcomes stay secret until the reveal. A row-level query never has a mask (a
cross-party WHERE there is refused by the planner: opened in the joint order it would tell
the receiver which of its own rows passed), nor ``min_group_size`` (refused by the query).
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from pet._random import secure_permutation
from pet.errors import InputError, PrecisionError, ProtocolError
from pet.mpc.ring128 import LIMBS, Shared128, join_limbs, split_limbs
from pet.sql.errors import SqlNotSupported, failure_status, peer_failure
from pet.sql.numbers import wide_ring
from pet.sql.ranges import (
    agg_text,
    check_declared,
    column_nums,
    ir_text,
    merge_classes,
    mpc_columns,
    out_text,
    own_classes,
    precheck,
    present,
)
from pet.sql.values import Own, Pub, Sh, evaluate, logical_and, mul_fine, to_shared, trivial

__all__ = ["run_join", "BIG"]

#: Sentinel offset of MIN/MAX: values must satisfy |v| < 2^39.
BIG = float(2 ** 40)
_MAX_ABS = float(2 ** 39)


def _sync_ok(session, op: str) -> None:
    """Tell the peer this step succeeded; raise if the peer's step failed."""
    peer = session.exchange(f"sql.{op}", None)
    if peer is not None:
        raise peer_failure(peer)


def run_checked(session, op, fn):
    """Run local ``fn``; on error tell the peer only a fixed ``[step, kind]`` status
    (:func:`pet.sql.errors.failure_status`, never the exception text, which may quote this
    party's data) and re-raise the full error here."""
    try:
        out = fn()
    except Exception as exc:  # noqa: BLE001 - any local failure must reach the peer
        tell_peer_failed(session, op, failure_status(op, exc))
        raise
    _sync_ok(session, op)
    return out


def tell_peer_failed(session, op, status) -> None:
    """Send the failure ``status`` in place of the ``op`` step's ok (the peer raises)."""
    try:
        session.exchange(f"sql.{op}", status)
    except Exception:  # noqa: BLE001, S110 - the peer may be gone; our own error is raised anyway
        pass


# -- step 1 and 2 ----------------------------------------------------------------------------

def _local_rows(plan, con, party, bounds=None):
    from pet.sql.local import run_local_query

    df = run_local_query(con, plan.local_sql[party])
    if plan.own_filters.get(party):  # dp: WHERE not applied before the PSI (pet.sql.dp.blank_dropped_rows)
        from pet.sql.dp import blank_dropped_rows

        blank_dropped_rows(plan, df, party)
    check_declared(plan, df, party, bounds)
    for name, col in plan.columns.items():
        if col.party != party or name.startswith("_g"):
            continue
        s = df[name]
        if s.isna().any():
            raise InputError(f"NULL values in {col.sql} (party {party}): cross-party computation "
                             "needs non-NULL numbers; filter or COALESCE them in the query")
        if col.kind in ("int", "float", "bool"):
            v = s.to_numpy(dtype=np.float64)
            if not np.all(np.isfinite(v)):
                raise InputError(f"non-finite values (division by zero?) in {col.sql} (party {party})")
    return df


def _align(session, distinct, keys, psi_options):
    """The PSI of step 2: :func:`pet.psi.align`, or with ``psi_options["buckets"]`` the
    bucketed join on Dask (:func:`pet.psi.bucketed_join.align_frame`; same result)."""
    from pet.psi import align
    from pet.psi.bucketed_join import align_frame, split_bucketed_options

    bucketed = split_bucketed_options(psi_options)
    if bucketed is not None:
        return align_frame(session.channel, distinct, keys, party=session.party, **bucketed)
    plain = {k: v for k, v in psi_options.items() if k != "buckets"}
    return align(session.channel, distinct, keys, party=session.party, **plain)


def _join(session, plan, df, duplicate_keys, psi_options):
    """Rows of ``df`` joined with the peer's, in the joint order (steps 2)."""
    keys = [f"_j{i}" for i in range(plan.n_join_keys)]
    dup = bool(df.duplicated(subset=keys).any())
    peer_dup = session.exchange("sql.dupkeys", dup)
    if not isinstance(peer_dup, bool):
        raise ProtocolError("malformed duplicate-key flag from the peer")
    if dup and peer_dup:
        raise SqlNotSupported("many-to-many join (duplicate join keys at both parties)")
    if (dup or peer_dup) and duplicate_keys != "reveal_counts":
        side = "this party's" if dup else "the peer's"
        raise SqlNotSupported(f"one-to-many join (duplicate join keys in {side} table)",
                              hint="pass duplicate_keys='reveal_counts' to allow it; the other party then "
                                   "learns how many rows each matching key has")
    distinct = df[keys].drop_duplicates().reset_index(drop=True)
    distinct["_pos"] = np.arange(len(distinct), dtype=np.int64)
    aligned = _align(session, distinct, keys, psi_options)
    aligned = aligned.reset_index(drop=True)
    if not (dup or peer_dup):
        rows = df.iloc[aligned["_pos"].to_numpy()].reset_index(drop=True)
        return rows, {"intersection": len(aligned)}
    if dup:
        joint = aligned[keys].assign(_joint=np.arange(len(aligned), dtype=np.int64))
        rows = df.merge(joint, on=keys, how="inner", sort=False)
        rows = rows.sort_values("_joint", kind="stable")
        counts = np.bincount(rows["_joint"].to_numpy(), minlength=len(aligned)).astype(np.int64)
        session.send_to_peer("sql.multiplicity", counts)
        return rows.drop(columns="_joint").reset_index(drop=True), {"intersection": len(aligned)}
    counts = session.recv_from_peer("sql.multiplicity")
    if not (isinstance(counts, np.ndarray) and counts.shape == (len(aligned),) and counts.dtype.kind in "iu"
            and (counts.size == 0 or counts.min() >= 1)):
        raise ProtocolError("malformed key multiplicities from the peer")
    base = df.iloc[aligned["_pos"].to_numpy()].reset_index(drop=True)
    rows = base.loc[base.index.repeat(counts)].reset_index(drop=True)
    return rows, {"intersection": len(aligned)}


# -- step 4: groups ---------------------------------------------------------------------------

class Groups:
    """Group structure: ``kind`` none / own / product; ``ids[p]`` (row -> group of party
    ``p``'s key, at ``p`` only), ``sizes[p]`` (public), ``values[p]`` (key values per
    group in group order, at ``p`` only)."""

    def __init__(self, kind, owners, ids, sizes, values):
        self.kind, self.owners, self.ids, self.sizes, self.values = kind, owners, ids, sizes, values

    @property
    def g(self) -> int:
        if self.kind == "none":
            return 1
        out = 1
        for p in self.owners:
            out *= self.sizes[p]
        return out


def _build_groups(session, plan, rows):
    owners = sorted({plan.columns[k].party for k in plan.group_keys})
    ids, sizes, values = {}, {}, {}
    if not owners:
        return Groups("none", [], ids, sizes, values)
    me = session.party
    mine = None
    if me in owners:
        cols = [k for k in plan.group_keys if plan.columns[k].party == me]
        sub = rows[cols]
        codes, uniques = factorize_codes(sub)
        g = len(uniques)
        perm = secure_permutation(g)           # group i of the factorization gets number perm[i]
        ids[me] = perm[codes] if g else codes
        order = np.argsort(perm) if g else perm
        values[me] = {c: uniques[c].to_numpy(dtype=object)[order] for c in cols}
        mine = g
    peer = session.exchange("sql.groups", mine)
    for p in owners:
        sizes[p] = mine if p == me else peer
        if not isinstance(sizes[p], int) or sizes[p] < 0:
            raise ProtocolError("malformed group count from the peer")
    return Groups("own" if len(owners) == 1 else "product", owners, ids, sizes, values)


def factorize_codes(sub):
    import pandas as pd

    if sub.shape[1] == 1:
        codes, uniq = pd.factorize(sub.iloc[:, 0], use_na_sentinel=False)
        return np.asarray(codes, dtype=np.int64), pd.DataFrame({sub.columns[0]: np.asarray(uniq, dtype=object)})
    grouped = sub.groupby(list(sub.columns), dropna=False, sort=False).ngroup().to_numpy().astype(np.int64)
    uniq = sub.drop_duplicates().reset_index(drop=True)
    # map ngroup numbering to the drop_duplicates order (both are first-appearance order)
    return grouped, uniq


def _onehot(ids, g):
    h = np.zeros((len(ids), g), dtype=np.int64)
    if len(ids):
        h[np.arange(len(ids)), ids] = 1
    return h


def group_matrix(session, groups, mask, n):
    """``Hm``: None (all rows, one group, no mask), Own(p, H), or Sh (n x g)."""
    me = session.party
    if groups.kind == "none":
        if isinstance(mask, Pub):
            return None
        return Sh(mask.s.reshape(n, 1), "int")
    if groups.kind == "own":
        p = groups.owners[0]
        g = groups.sizes[p]
        H = _onehot(groups.ids[p], g) if me == p else None
        if isinstance(mask, Pub):
            return Own(p, H, "int")
        Ht = trivial(session, p, H if me == p else np.zeros((n, g), dtype=np.int64), 0)
        return Sh(Ht * mask.s.reshape(n, 1), "int")
    g0, g1 = groups.sizes[0], groups.sizes[1]
    H0 = trivial(session, 0, _onehot(groups.ids[0], g0) if me == 0 else np.zeros((n, g0), np.int64), 0)
    H1 = trivial(session, 1, _onehot(groups.ids[1], g1) if me == 1 else np.zeros((n, g1), np.int64), 0)
    H = (H0.reshape(n, g0, 1) * H1.reshape(n, 1, g1)).reshape(n, g0 * g1)
    if not isinstance(mask, Pub):
        H = H * mask.s.reshape(n, 1)
    return Sh(H, "int")


# -- step 5: aggregates -----------------------------------------------------------------------

def _as_operand(session, v, n, frac=None):
    """A row value as a Shared operand of a Beaver product (owned values: no message),
    with ``frac`` fractional bits (default: its planned representation)."""
    from pet.mpc import constant

    if frac is None:
        frac = v.num.frac if getattr(v, "num", None) is not None else (session.frac_bits if v.kind == "float" else 0)
    if isinstance(v, Sh):
        return v.s.rescale(frac) if v.s.frac != frac else v.s
    if isinstance(v, Pub):
        arr = np.broadcast_to(np.asarray(v.v, dtype=np.float64), (n,))
        return constant(session, arr if frac else np.rint(arr).astype(np.int64), frac)
    arr = None
    if session.party == v.party:
        raw = np.asarray(v.v)
        if frac == 0 and raw.dtype.kind in "iuO":  # exact integers (scaled DECIMALs beyond 2^53)
            arr = raw.astype(np.int64)
        else:
            arr = raw.astype(np.float64)
            if frac == 0:
                arr = np.rint(arr).astype(np.int64)
    return trivial(session, v.party, arr if arr is not None else np.zeros(n, np.int64), frac)


def linear_sums(session, Hm, cols, n, groups, nums=None):
    """Per-group sums of each value in ``cols`` (list of values) and the row count.
    ``nums[i]``: the planned representation of sum ``i`` (pet.sql.numbers): each row value
    is brought to its ``frac`` first, so the sum fits the ring by construction."""
    import pet.mpc as mpc
    from pet.sql.numbers import count_of

    nums = nums or [None] * len(cols)
    me = session.party
    out = [None] * len(cols)
    g = groups.g
    cnum = count_of(n)

    def frac_of(i):
        if nums[i] is not None and nums[i].wide_div:  # AVG of a wide sum: the row as planned (lifted
            return None                                # before any rescaling: _average_wide)
        if nums[i] is None:
            return None
        # an AVG's slot holds its SUM: the rows are brought to the bits the division plans for
        # the sum (``prep``, range-checked for it), not to the average's own ``frac``, which
        # may be finer (an owned count's limbs) and then overflows the sum
        return nums[i].prep if nums[i].prep is not None else nums[i].frac

    def wide_of(i, x):
        return nums[i] is not None and (nums[i].ring == 128 or nums[i].wide_div) and x.ring_bits == 64

    if Hm is None:
        count = Pub(np.array([n], dtype=np.int64), "int", cnum)
        for i, v in enumerate(cols):
            if isinstance(v, Sh):
                x = _as_operand(session, v, n, frac_of(i))
                if wide_of(i, x):
                    x = x.to_ring(128)
                out[i] = Sh(x.sum(axis=0).reshape(1), v.kind, nums[i])
            elif isinstance(v, Own):
                out[i] = Own(v.party, None if v.v is None else np.asarray(v.v).sum(keepdims=True).reshape(1), v.kind,
                             nums[i])
            else:
                out[i] = Pub(np.asarray(v.v) * n, v.kind, nums[i])
        return out, count
    pending = []
    if isinstance(Hm, Own):
        p = Hm.party
        ids = groups.ids.get(p)
        count = Own(p, np.bincount(ids, minlength=g).astype(np.int64) if me == p else None, "int", cnum)
        for i, v in enumerate(cols):
            if isinstance(v, Own) and v.party == p or isinstance(v, Pub):
                if me != p:
                    out[i] = Own(p, None, v.kind, nums[i])
                    continue
                vals = np.broadcast_to(np.asarray(v.v), (n,))
                if v.kind == "float":
                    s = np.bincount(ids, weights=vals.astype(np.float64), minlength=g)
                else:
                    s = np.zeros(g, dtype=np.int64)
                    np.add.at(s, ids, vals.astype(np.int64))
                out[i] = Own(p, s, v.kind, nums[i])
            else:
                pending.append(i)
        H = trivial(session, p, Hm.v if me == p else np.zeros((n, g), np.int64), 0)
    else:
        H = Hm.s
        count = Sh(H.sum(axis=0), "int", cnum)
        pending = list(range(len(cols)))
    if pending:
        ops = [_as_operand(session, cols[i], n, frac_of(i)).reshape(n, 1) for i in pending]
        wide = _wide_sums(ops, [nums[i] for i in pending])
        fracs = [o.frac for o in ops]
        # H is an integer matrix: the product needs no truncation, so columns of different
        # fractional bits share one matrix product (each keeps its own scale); a wide sum
        # enters as five 26-bit limb columns (pet.mpc.ring128.split_limbs)
        V = mpc.concatenate([split_limbs(o.reshape(n)) if w else o.scaled(shift=-o.frac)
                             for o, w in zip(ops, wide)], axis=1)  # the words, read as integers
        S = H.T @ V  # (g, k)
        starts = np.cumsum([0] + [LIMBS if w else 1 for w in wide])
        wide_cols = [j for j, w in enumerate(wide) if w]
        joined = None
        if wide_cols:  # every wide sum's limbs lifted and recombined in one round
            limbs = mpc.stack([S[:, int(starts[j]):int(starts[j]) + LIMBS] for j in wide_cols], axis=1)
            joined = join_limbs(limbs, 0)  # (g, number of wide sums)
        for j, i in enumerate(pending):
            kind = cols[i].kind
            if wide[j]:
                s = joined[:, wide_cols.index(j)]
                s = Shared128(s.session, s.share, fracs[j])
            else:
                s = S[:, int(starts[j])].scaled(shift=fracs[j])  # back to each column's own scale
            out[i] = Sh(s, "float" if s.frac else kind, nums[i])
    return out, count


def _wide_sums(ops, nums):
    """Which pending sums are planned in the wide ring; their 64-bit row operands are
    lifted in place (one round for all)."""
    from pet.sql.values import wide_operands

    wide = [getattr(o, "ring_bits", 64) == 128 or (num is not None and (num.ring == 128 or num.wide_div))
            for o, num in zip(ops, nums)]
    idx = [j for j, w in enumerate(wide) if w]
    for j, v in zip(idx, wide_operands([ops[j] for j in idx])):
        ops[j] = v
    return wide


def _extremes(session, Hm, cols, signs, n, groups, nums=None):
    """Per-group max (sign +1) or min (sign -1) of each value in ``cols``. With planned
    representations (``nums``), every MIN/MAX column is brought to one common ``frac`` and
    the sentinel is ``B = 2^(K+1)`` for the largest class ``K``, so ``Hm * (v + B) - B``
    fits the ring by construction."""
    import pet.mpc as mpc

    me = session.party
    g = groups.g
    out = [None] * len(cols)
    pending = []
    for i, v in enumerate(cols):
        local_party = None
        if Hm is None and isinstance(v, (Own, Pub)):
            local_party = v.party if isinstance(v, Own) else None
        if isinstance(Hm, Own) and (isinstance(v, Own) and v.party == Hm.party or isinstance(v, Pub)):
            local_party = Hm.party
        if Hm is None and isinstance(v, Pub):
            out[i] = Pub(np.asarray(v.v).reshape(1), v.kind)
            continue
        if local_party is not None:
            if me != local_party:
                out[i] = Own(local_party, None, v.kind)
                continue
            vals = np.broadcast_to(np.asarray(v.v, dtype=np.float64), (n,))
            ids = groups.ids[local_party] if Hm is not None else np.zeros(n, dtype=np.int64)
            res = np.full(g, -np.inf if signs[i] > 0 else np.inf)
            (np.maximum if signs[i] > 0 else np.minimum).at(res, ids, vals)
            out[i] = Own(local_party, res.astype(np.int64) if v.kind == "int" else res, v.kind,
                         nums[i] if nums else None)
            continue
        pending.append(i)
    if not pending:
        return out
    f, big, bits = session.frac_bits, BIG, 64
    if nums and all(nums[i] is not None for i in pending):
        from pet.sql.numbers import extremes_rep
        f, kbig = extremes_rep([nums[i] for i in pending])
        f, bits = _narrow_extremes([nums[i] for i in pending], f, kbig)
        big = float(2 ** kbig)
    blocks = []
    for i in pending:
        v = _as_operand(session, cols[i], n, f)
        if v.frac != f:
            v = v.rescale(f)
        if signs[i] < 0:
            v = -v
        shifted = v + big
        if Hm is None:
            X = shifted.reshape(n, 1)
        elif isinstance(Hm, Own):
            Ht = trivial(session, Hm.party, Hm.v if me == Hm.party else np.zeros((n, g), np.int64), 0)
            X = Ht * shifted.reshape(n, 1)
        else:
            X = Hm.s * shifted.reshape(n, 1)
        blocks.append(X)
    X = mpc.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
    top = mpc.max(X, axis=0, bits=bits) - big  # (g * len(pending),): one batched tournament, pet.mpc.tournament
    for j, i in enumerate(pending):
        r = top[j * g:(j + 1) * g]
        if signs[i] < 0:
            r = -r
        num = nums[i] if nums else None
        if bits < 64 and num is not None and f < num.frac:
            num = dataclasses.replace(num, frac=f, err=num.err + 2.0 ** -f)  # its one truncation to f
        out[i] = Sh(r, cols[i].kind, num)
    return out


#: MIN/MAX compare on 32-bit lanes when the common frac can drop to fit them while the
#: truncation's one ulp stays within a quarter of the precision criterion (REL_TARGET 2^k)
EXTREMES_LANE = 32


def _narrow_extremes(nums, f: int, kbig: int) -> tuple[int, int]:
    """``(frac, bits)`` of the MIN/MAX tournament: the compared values are
    ``Hm (v + 2^kbig)`` in ``[0, 2^(kbig+1))`` (plus a truncation's ulp), so on the lattice
    ``2^-f`` every pairwise difference fits ``kbig + 3 + f`` signed bits (with a
    truncation's ulp of slack). If that is above
    :data:`EXTREMES_LANE`, the values are held at a coarser ``f`` (one truncation, folded
    into the existing rescale to the common frac) as long as ``2^-f <= REL_TARGET 2^k / 4``
    for every column's class ``k``; else the full 64-bit comparison at the planned ``f``.
    The maximum of the truncated values is within one ulp of the true maximum (the
    comparisons are exact on them), and that ulp is added to the result's error bound."""
    from pet.mpc.boolean import msb_width
    from pet.sql import numbers as N

    if any(n.approx or n.dec is not None or n.ring != 64 for n in nums):
        return f, 64

    def need(ff):
        return msb_width((1 << (kbig + 1 + ff)) + 2)  # values (and a truncation's ulp) below 2^(kbig+1)

    if f >= 0 and need(f) <= EXTREMES_LANE:
        return f, need(f)
    ff = EXTREMES_LANE - kbig - 3
    floor = max(math.ceil(-math.log2(N.REL_TARGET / 4.0 * 2.0 ** n.k)) for n in nums)
    if 0 <= ff < f and ff >= floor and need(ff) <= EXTREMES_LANE:
        return ff, need(ff)
    return f, 64


# -- the executor -----------------------------------------------------------------------------

def run_join(session, plan, con, *, receivers, min_group_size, duplicate_keys, psi_options, info, bounds=None,
             dp=None):
    """Protocol steps 1-7 for a join plan; returns the output columns (list of arrays) at a
    receiver, None elsewhere, and fills ``info``. With ``dp`` (a :class:`pet.sql.dp.DPRun`)
    steps 4-7 are :func:`pet.sql.dp.run_dp`: public groups, clamped contributions, noisy
    release.

    Steps here (each one call; both parties run them in the same order, exchange for exchange):

    1. the local DuckDB step (protocol step 1): :func:`_local_step`;
    2. the PSI join (protocol step 2): :func:`_psi_join`;
    3. agree on the joined row count and the columns' magnitude classes: :func:`_agree_joined_rows`;
    4. the leaf evaluator of the joined columns: :func:`_col_leaf`;
    5. with ``dp``: the differentially private release, done (:func:`_run_dp`);
    6. range analysis before any MPC work (both parties refuse alike): :func:`_check_ranges`;
    7. the cross-party row mask (protocol step 3): :func:`_row_mask`;
    8. a row-level query: every joined row, done (:func:`_row_output`);
    9. the groups (protocol step 4): :func:`_groups`;
    10. no joined rows: the public empty result, done (:func:`_empty_output`);
    11. the group matrix with the mask folded in: :func:`_masked_groups`;
    12. the aggregates SUM, COUNT, MIN, MAX (protocol step 5): :func:`_aggregate_values`;
    13. which groups exist, and AVG = SUM / COUNT: :func:`_averages`;
    14. keys, HAVING, min_group_size, outputs and NULL flags (protocol step 6): :func:`_group_outputs`;
    15. the reveal (protocol step 7): :func:`_reveal_groups`.
    """
    me = session.party
    df = _local_step(session, plan, con, me, bounds, info)
    rows, clock = _psi_join(session, plan, df, duplicate_keys, psi_options, info)
    n, col_nums = _agree_joined_rows(session, plan, rows, me, bounds, info)
    col_leaf = _col_leaf(plan, rows, me, col_nums)
    if dp is not None:
        return _run_dp(session, plan, dp, rows, col_leaf, n, col_nums, receivers, info)
    agg_nums = _check_ranges(plan, col_nums, n, info)
    with wide_ring(info["ring_bits"] == 128):
        return _mpc_steps(session, plan, rows, col_leaf, n, col_nums, agg_nums, receivers, min_group_size, info,
                          clock)


def _mpc_steps(session, plan, rows, col_leaf, n, col_nums, agg_nums, receivers, min_group_size, info, clock):
    """Steps 7-15 of :func:`run_join` (in the rings the range analysis chose)."""
    mask = _row_mask(session, plan, col_leaf, n)
    if plan.row_level:
        return _row_output(session, plan, mask, col_leaf, n, receivers, info, min_group_size)
    groups = _groups(session, plan, rows, info)
    if n == 0:
        return _empty_output(session, plan, groups, receivers, min_group_size, info)
    Hm, clock = _masked_groups(session, groups, mask, n, info, clock)
    agg_vals, count, avg_idx, clock = _aggregate_values(session, plan, Hm, col_leaf, n, groups, agg_nums, info,
                                                        clock)
    exists = _averages(session, plan, groups, mask, agg_vals, count, avg_idx, agg_nums)
    outs, keep, suppressed, null_flag, nullable = _group_outputs(session, plan, groups, agg_vals, count, exists,
                                                                 col_nums, min_group_size)
    return _reveal_groups(session, plan, outs, keep, groups, suppressed, null_flag, nullable, receivers, info,
                          clock)


def _local_step(session, plan, con, me, bounds, info):
    """Step 1: this party's pushed-down query (failure status exchanged); its rows."""
    clock = time.perf_counter()
    df = run_checked(session, "local", lambda: _local_rows(plan, con, me, bounds))
    info["local_rows"] = len(df)
    info["seconds_local"] = time.perf_counter() - clock
    return df


def _psi_join(session, plan, df, duplicate_keys, psi_options, info):
    """Step 2: the joined rows in the joint order, and the clock after the join."""
    clock = time.perf_counter()
    rows, jinfo = _join(session, plan, df, duplicate_keys, psi_options)
    info.update(jinfo)
    clock = _lap(info, "seconds_join", clock)
    return rows, clock


def _agree_joined_rows(session, plan, rows, me, bounds, info):
    """Step 3: the ``sql.rows`` exchange: both parties check they hold the same number of
    joined rows and merge the magnitude classes of the MPC columns; returns ``(n,
    col_nums)``, the row count and the planned number representation of each column."""
    n = len(rows)
    needed = mpc_columns(plan)
    mine = own_classes(plan, rows, me, needed, bounds)
    peer = session.exchange("sql.rows", [n, mine])
    if not (isinstance(peer, list) and len(peer) == 2):
        raise ProtocolError("malformed joined-rows message from the peer")
    peer_n, theirs = peer
    if peer_n != n:
        raise ProtocolError(f"joined row counts differ ({n} here, {peer_n} at the peer)")
    info["joined_rows"] = n
    classes = merge_classes(plan, needed, me, mine, theirs, bounds)
    info["magnitude_classes"] = {plan.columns[c].sql: k for c, k in sorted(classes.items())}
    col_nums = column_nums(plan, classes)
    info["_col_nums"] = col_nums
    return n, col_nums


def _col_leaf(plan, rows, me, col_nums):
    """Step 4: the leaf function of :func:`pet.sql.values.evaluate` for a column IR: this
    party's joined column (typed by its kind), or the peer's as an opaque :class:`Own`."""

    def col_leaf(ir):
        c = plan.columns[ir[1]]
        num = col_nums.get(ir[1])
        if c.party != me:
            return Own(c.party, None, c.kind, num)
        arr = rows[ir[1]].to_numpy()
        if c.kind == "float" and getattr(c, "dec", None) is not None and num is not None and num.k > 53:
            arr = arr.astype(object)  # exact scaled DECIMAL integers beyond float64's 2^53 (Python ints)
        elif c.kind == "float":
            arr = arr.astype(np.float64)
        elif c.kind in ("int", "bool"):
            arr = arr.astype(np.int64 if c.kind == "int" else bool)
        return Own(c.party, arr, c.kind, num)

    return col_leaf


def _run_dp(session, plan, dp, rows, col_leaf, n, col_nums, receivers, info):
    """Step 5: the DP release (:func:`pet.sql.dp.run_dp`) after its row precheck and the mask."""
    from pet.sql.dp import fold_own_filters, precheck_rows, run_dp

    precheck_rows(plan, col_nums)
    mask = fold_own_filters(session, plan, rows, _row_mask(session, plan, col_leaf, n), n)
    return run_dp(session, plan, dp, rows, mask, col_leaf, n, receivers, info)


def _check_ranges(plan, col_nums, n, info):
    """Step 6: range analysis before any MPC work (both parties refuse alike:
    PrecisionError); the planned representation of each aggregate. ``info["ring_bits"]``:
    64, or 128 when the query needs the wide ring (:func:`pet.sql.numbers.wide_ring`)."""
    try:
        agg_nums = precheck(plan, col_nums, n)
        info["ring_bits"] = 64
    except PrecisionError:
        # the 64-bit ring does not hold it: plan again with the wide ring allowed (values that
        # fit stay 64-bit); a PrecisionError now means no ring holds it
        with wide_ring(True):
            agg_nums = precheck(plan, col_nums, n)
        info["ring_bits"] = 128
    info["_agg_nums"] = agg_nums
    return agg_nums


def _row_mask(session, plan, col_leaf, n):
    """Step 7: the cross-party WHERE mask, shared (public True without one or without rows)."""
    mask = Pub(np.bool_(True), "bool")
    if plan.mask is not None and n > 0:
        mask = evaluate(session, plan.mask, col_leaf, (n,), what=ir_text(plan, plan.mask))
        if isinstance(mask, Own):  # cannot happen for a cross-party conjunct, but be exact
            mask = Sh(to_shared(session, mask), "bool")
    return mask


def _groups(session, plan, rows, info):
    """Step 9: the groups of the joined rows (:func:`_build_groups`); ``info["groups"]``."""
    groups = _build_groups(session, plan, rows)
    info["groups"] = groups.g if groups.kind != "none" else 1
    return groups


def _masked_groups(session, groups, mask, n, info, clock):
    """Step 11: the group matrix with the mask folded in, ``Hm``, and the clock."""
    Hm = group_matrix(session, groups, mask, n)
    clock = _lap(info, "seconds_mask_groups", clock)
    return Hm, clock


def _aggregate_values(session, plan, Hm, col_leaf, n, groups, agg_nums, info, clock):
    """Step 12: every aggregate per group except AVG's division: row expressions, then SUM
    and COUNT (one product), then MIN/MAX (one tournament). Returns ``(agg_vals, count,
    avg_idx, clock)``: AVG's slots in ``agg_vals`` hold its SUM for now."""
    lin_idx, lin_vals, ext_idx, ext_vals, ext_signs = [], [], [], [], []
    avg_idx = []
    for j, a in enumerate(plan.aggs):
        if a.func in ("sum", "avg"):
            v = evaluate(session, a.arg, col_leaf, (n,), what=agg_text(plan, j))
            lin_idx.append(j)
            lin_vals.append(v)
            if a.func == "avg":
                avg_idx.append(j)
        elif a.func in ("min", "max"):
            ext_idx.append(j)
            ext_vals.append(evaluate(session, a.arg, col_leaf, (n,), what=agg_text(plan, j)))
            ext_signs.append(1 if a.func == "max" else -1)
    clock = _lap(info, "seconds_row_expressions", clock)
    sums, count = linear_sums(session, Hm, lin_vals, n, groups, [agg_nums[j] for j in lin_idx])
    clock = _lap(info, "seconds_sum_count", clock)
    agg_vals = [None] * len(plan.aggs)
    for j, v in zip(lin_idx, sums):
        agg_vals[j] = v
    for j, v in zip(ext_idx, _extremes(session, Hm, ext_vals, ext_signs, n, groups,
                                       [agg_nums[j] for j in ext_idx])):
        agg_vals[j] = v
    clock = _lap(info, "seconds_min_max", clock)
    for j, a in enumerate(plan.aggs):
        if a.func == "count":
            agg_vals[j] = count

    info["aggregates"] = [v.party if isinstance(v, Own) else "public" if isinstance(v, Pub) else "shared"
                          for v in agg_vals]
    return agg_vals, count, avg_idx, clock


def _averages(session, plan, groups, mask, agg_vals, count, avg_idx, agg_nums):
    """Step 13: whether each group exists (has >= 1 joined row passing the mask; None for
    the global aggregate), and AVG = SUM / COUNT in place in ``agg_vals``; returns the
    existence flags."""
    shape = (groups.g,)
    if groups.kind == "none":
        exists = None
    elif isinstance(count, (Own, Pub)) and isinstance(mask, Pub) and groups.kind == "own":
        exists = Pub(np.ones(groups.g, dtype=bool), "bool")
    else:
        exists = evaluate(session, ("op", "gt", (("agg", -1), ("lit", 0, "int"))),
                          lambda ir: count, shape)
    for j in avg_idx:
        agg_vals[j] = _average(session, agg_vals[j], count, exists, shape, agg_nums[j])
    return exists


def _group_outputs(session, plan, groups, agg_vals, count, exists, col_nums, min_group_size):
    """Step 14: the key values, the keep flags (exists AND HAVING AND count >=
    min_group_size), the groups suppressed by min_group_size, the outputs and, for the
    global aggregate, the NULL flag of outputs over no rows. Returns ``(outs, keep,
    suppressed, null_flag, nullable)``."""
    g = groups.g
    shape = (g,)
    key_vals = key_values(session, plan, groups, col_nums)

    def leaf(ir):
        if ir[0] == "key":
            return key_vals[ir[1]]
        return agg_vals[ir[1]]

    keep = Pub(np.ones(g, dtype=bool), "bool") if exists is None else exists
    big = None
    if min_group_size is not None and min_group_size > 1:
        big = evaluate(session, ("op", "ge", (("agg", -1), ("lit", int(min_group_size), "int"))),
                       lambda ir: count, shape)
    hav = None
    if plan.having is not None:
        hav = evaluate(session, plan.having, leaf, shape, what="HAVING")
    if hav is not None:
        keep = logical_and(session, keep, hav, shape)
    suppressed = None
    if big is not None:
        pre = keep
        keep = logical_and(session, keep, big, shape)
        small = evaluate(session, ("op", "not", (("agg", -1),)), lambda ir: big, shape)
        supp = logical_and(session, pre, small, shape)
        suppressed = supp
    outs = [evaluate(session, o, leaf, shape, what=out_text(plan, i)) for i, o in enumerate(plan.outputs)]
    null_flag = None
    if groups.kind == "none":
        # SUM/AVG/MIN/MAX over no rows are NULL
        nullable = [_has_nullable_agg(o, plan) for o in plan.outputs]
        if any(nullable):
            null_flag = evaluate(session, ("op", "eq", (("agg", -1), ("lit", 0, "int"))), lambda ir: count, shape)
    else:
        nullable = [False] * len(outs)
    return outs, keep, suppressed, null_flag, nullable


def _reveal_groups(session, plan, outs, keep, groups, suppressed, null_flag, nullable, receivers, info, clock):
    """Step 15: the kept groups' outputs to the receiver(s) (:func:`pet.sql.reveal.reveal_columns`)."""
    from pet.sql.reveal import reveal_columns

    _lap(info, "seconds_avg_having", clock)
    cols = reveal_columns(session, plan, outs, keep, receivers, g=groups.g, suppressed=suppressed,
                          null_flag=null_flag, nullable=nullable, info=info)
    return present(plan, outs, cols)


def _lap(info, key, since):
    now = time.perf_counter()
    info[key] = now - since
    return now


def _has_nullable_agg(ir, plan):
    if ir[0] == "agg":
        a = plan.aggs[ir[1]]
        return a.func in ("sum", "avg", "min", "max") and not a.from_count
    if ir[0] == "op":
        return any(_has_nullable_agg(a, plan) for a in ir[2])
    return False


def _average(session, total, count, exists, shape, num=None):
    """AVG with the planned representation ``num`` (pet.sql.numbers.avg_rep): an exact
    DECIMAL sum becomes a float, and a shared sum is brought to the fractional bits the
    division below can hold without wrapping; then :func:`_average_plain`."""
    from pet.sql.values import to_float_shared

    tn = getattr(total, "num", None)
    if tn is not None and tn.dec is not None:
        if isinstance(total, Sh):
            total = Sh(to_float_shared(session, total.s, tn), "float")
        elif isinstance(total, Own):
            total = Own(total.party, None if total.v is None else np.asarray(total.v, np.float64) / 10.0 ** tn.dec,
                        "float")
        else:
            total = Pub(np.asarray(total.v, np.float64) / 10.0 ** tn.dec, "float")
    if num is not None and num.wide_div and isinstance(total, Sh):
        return _average_wide(session, total, count, num)
    if num is not None and isinstance(total, Sh) and getattr(total.s, "ring_bits", 64) == 128:
        # a sum held in the wide ring: at ``prep`` bits it fits the 64-bit ring (avg_of)
        total = Sh(total.s.rescale(num.prep).to_ring(64), total.kind)
    if num is not None and isinstance(total, Sh) and num.prep is not None and total.s.frac != num.prep:
        total = Sh(total.s.rescale(num.prep), total.kind)
    out = _average_plain(session, total, count, exists, shape, getattr(num, "limbs", None),
                         getattr(num, "prep", None))
    out.num = num
    return out


def _average_wide(session, total, count, num):
    """AVG of a sum too large for the 64-bit ring (pet.sql.numbers._wide_avg): the sum at
    ``num.prep`` bits times the reciprocal of the count in Z_2^128 -- a public reciprocal
    (local product, one truncation) or the count owner's, shared at ``INV_BITS`` bits (a
    wide Beaver product: lift, product, truncation) -- then the quotient in the 64-bit
    ring (it fits: ``|avg| 2^frac < 2^62``)."""
    from pet.sql.numbers import INV_BITS

    x = total.s.to_ring(128)
    if x.frac > num.prep:
        x = x.rescale(num.prep)
    if isinstance(count, Pub):
        q = x.mul(1.0 / np.maximum(np.asarray(count.v, dtype=np.float64), 1.0), frac=num.frac)
    elif isinstance(count, Own):
        inv = None
        if session.party == count.party:
            inv = 1.0 / np.maximum(np.asarray(count.v, dtype=np.float64), 1.0)
        q = x.mul(session.share(inv, owner=count.party, frac_bits=INV_BITS), frac=num.frac)
    else:  # the planner does not choose this path for a secret count
        raise PrecisionError("an average of a wide sum needs a public or owned count")
    return Sh(q.to_ring(64), "float", num)


def _average_plain(session, total, count, exists, shape, limbs=None, prep=None):
    """SUM / COUNT per group (empty groups give 0; they are not output).

    Public count: division by a public number (:func:`pet.sql.values.div_public`). Count
    and sum of one owner: its plaintext. A count owned by one party: it computes 1/count
    and multiplies in MPC (:func:`pet.sql.values.mul_fine`, with the reciprocal's limb
    sizes ``limbs`` planned by pet.sql.numbers.avg_of). A secret count is divided
    securely: ``avg * 2^10 = sum / (count * 2^-10)`` puts counts up to
    2^27 into the domain ``[2^-10, 2^17)`` of :func:`pet.mpc.divide` (relative error
    about 1e-4; ``|avg| < 2^20``); for counts below 2^17 (no scaling) one residual step
    (:func:`_refine_quotient`) brings it to about 1e-7 relative."""
    from pet.mpc import divide
    from pet.sql.numbers import divide_shift
    from pet.sql.values import div_public

    me = session.party
    if isinstance(count, Pub):
        c = np.maximum(np.asarray(count.v, dtype=np.float64), 1.0)
        if isinstance(total, Sh):
            return Sh(div_public(total.s, c), "float")
        if isinstance(total, Own):
            return Own(total.party, None if total.v is None else np.asarray(total.v, np.float64) / c, "float")
        return Pub(np.asarray(total.v, np.float64) / c, "float")
    if isinstance(count, Own):
        p = count.party
        if isinstance(total, Own) and total.party == p:
            inv = None if me != p else 1.0 / np.maximum(np.asarray(count.v, dtype=np.float64), 1.0)
            return Own(p, None if me != p else np.asarray(total.v, np.float64) * inv, "float")
        # the count's owner inverts it; one fine product (3 rounds) instead of a division
        inv = None if me != p else 1.0 / np.maximum(np.asarray(count.v, dtype=np.float64), 1.0)
        return Sh(mul_fine(session, to_shared(session, total, shape), p, inv, limbs), "float")
    else:
        c = count.s
        if exists is not None and isinstance(exists, Sh):
            c = c + (1 - exists.s)
        elif exists is None:
            c = c + (c == 0)
    f = session.frac_bits
    sh = 10 if count.num is None else divide_shift(2 ** count.num.k - 1)
    scaled = c.scaled(1 << (f - sh), shift=f) if f >= sh else c.rescale(f) * (2.0 ** -sh)
    tot = to_shared(session, total, shape)
    p = f if prep is None else prep  # planned: the sum's words at f + t bits (numbers._secret_division)
    if tot.frac != p:
        tot = tot.rescale(p)
    t = p - f
    tot = tot.scaled(shift=-t)  # the same words read at f bits: sum * 2^t
    q = divide(tot, scaled)  # = avg * 2^(sh + t)
    if q.frac == f and c.frac == 0:
        q = _refine_quotient(tot, c, scaled, q, sh)
    out = q.scaled(shift=sh + t)  # avg at f + sh + t bits (the same words)
    return Sh(out if prep is not None else out.rescale(f), "float")


def _refine_quotient(tot, c, scaled, q, sh):
    """One residual step on ``q ~ tot 2^sh / c`` (``c`` the shared integer count, ``scaled
    = c 2^-sh``): ``r = tot 2^sh - q c`` (a Beaver product with an integer: exact, no
    truncation; ``|q c| ~ |tot 2^sh|``, in range as planned) and ``q + 2^-sh r / scaled``.
    The division's relative error (~1e-4) applies only to the small residual, so the
    quotient is within about 2e-8 relative plus a few ulps (1 + 32 more rounds)."""
    from pet.mpc import divide

    r = tot.scaled(1 << sh) - q * c
    d = divide(r, scaled)  # = 2^sh (exact quotient - q)
    return q + (d.scaled(shift=sh).rescale(q.frac) if sh else d.rescale(q.frac))


def key_values(session, plan, groups, col_nums=None):
    """Group key values per group (in group order) as owned values."""
    col_nums = col_nums or {}
    me = session.party
    out = []
    for k in plan.group_keys:
        c = plan.columns[k]
        p = c.party
        if me != p:
            out.append(Own(p, None, c.kind, col_nums.get(k)))
            continue
        vals = groups.values[p][k]
        if groups.kind == "product":
            vals = np.repeat(vals, groups.sizes[1]) if p == 0 else np.tile(vals, groups.sizes[0])
        if c.kind == "float":
            vals = vals.astype(np.float64)
        elif c.kind == "int" and not any(v is None or (isinstance(v, float) and np.isnan(v)) for v in vals):
            vals = vals.astype(np.int64)
        out.append(Own(p, vals, c.kind, col_nums.get(k)))
    return out


def _row_output(session, plan, mask, col_leaf, n, receivers, info, min_group_size=None):
    """Row-level output: every joined row, in the joint order. Never with a secret mask
    (the planner refuses a cross-party WHERE here): opening it positionally would tell the
    receiver which of its own rows passed; nor with ``min_group_size``."""
    from pet.sql.reveal import reveal_columns

    if min_group_size is not None and min_group_size > 1:  # refused by query() already
        raise SqlNotSupported("min_group_size on a row-level query")
    if not isinstance(mask, Pub):  # both parties have the same plan: both refuse
        raise SqlNotSupported("a condition over both parties' columns in a row-level query")
    outs = [evaluate(session, o, col_leaf, (n,), what=out_text(plan, i)) for i, o in enumerate(plan.outputs)]
    keep = Pub(np.ones(n, dtype=bool), "bool")
    cols = reveal_columns(session, plan, outs, keep, receivers, g=n, suppressed=None, null_flag=None,
                          nullable=[False] * len(outs), info=info)
    return present(plan, outs, cols)


def _empty_output(session, plan, groups, receivers, min_group_size, info):
    """No joined rows: grouped queries return no rows; a global aggregate returns one row
    (COUNT 0, other aggregates NULL) unless HAVING rejects it or min_group_size
    suppresses it. Everything here is public (n = 0 is known to both)."""
    info["suppressed_groups"] = 0
    keep_row = groups.kind == "none"
    if keep_row and plan.having is not None:
        if _has_nullable_agg(plan.having, plan):
            keep_row = False  # a comparison with NULL is not true
        else:
            val = evaluate(session, plan.having, lambda ir: Pub(np.zeros(1, dtype=np.int64), "int"), (1,))
            keep_row = bool(np.all(np.asarray(val.v)))
    if keep_row and min_group_size is not None and min_group_size > 1:
        info["suppressed_groups"] = 1
        keep_row = False
    if session.party not in receivers:
        return None
    if not keep_row:
        return [np.zeros(0) for _ in plan.outputs]
    return [_global_empty_value(o, plan) for o in plan.outputs]


def _global_empty_value(ir, plan):
    """An output of the global aggregate over no rows: NULL if it involves SUM/AVG/MIN/MAX,
    else evaluated with every COUNT = 0 (all public)."""
    if _has_nullable_agg(ir, plan):
        return np.array([None], dtype=object)
    val = evaluate(None, ir, lambda node: Pub(np.zeros(1, dtype=np.int64), "int"), (1,))
    return np.broadcast_to(np.asarray(val.v, dtype=object), (1,)).copy()
