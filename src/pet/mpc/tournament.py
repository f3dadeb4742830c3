"""Argmax / max by a tournament: the one implementation behind :func:`argmax`,
:func:`argmin`, :func:`max`, :func:`min` and the selections of ``pet.sql`` (MIN/MAX per
group), ``pet.ml`` (best split per node) and ``pet.graph`` (best move per node).

:func:`tournament` reduces a shared array along ``axis``, independently for every other
index (the *batch*) and, with ``segments``, for every run of consecutive elements of the
given public lengths. Outputs, any combination of:

* ``"value"``: the extreme value (same ``frac`` as the input);
* ``"index"``: its position (inside its segment) as a shared integer;
* ``"one_hot"``: a shared 0/1 array of the input's shape with a single 1 per reduction.

Ties go to the lower index (numpy's rule), for the maximum and the minimum alike.

Protocol, level by level, until every segment has one survivor; at each level every
segment is cut into consecutive groups of ``arity`` elements (its last group may be
smaller; a group of one is carried to the next level unchanged). All groups of all
segments and batch rows are processed together:

1. **Compare** every pair ``(i, j), i < j`` of every group: ``c_ij = [v_j > v_i]``
   (``[v_j < v_i]`` for the minimum), one batched MSB (:func:`~pet.mpc.boolean.msb`,
   8 rounds) over all ``P`` pairs of the level.
2. **Winner indicators** ``w_i = prod_{a<i} c_ai * prod_{b>i} (1 - c_ib)`` (1 for the first
   maximum, 0 elsewhere): local for a group of 2 (``w = (1 - c, c)``); one round of
   products for a group of 3 (3 products), two rounds for a group of 4 (4 + 4 products);
   groups of 3 and 4 share the rounds.
3. **Select** (1 round): a group of 2 keeps ``v_0 + c (v_1 - v_0)`` (1 product), a group of
   ``s >= 3`` keeps ``sum_i w_i v_i`` (``s`` products). With the ``"index"`` output and
   no ``"one_hot"`` the position is selected along in the same round (positions are
   public on the first level, so there it is local: ``pos_0 + c`` or ``sum_i w_i pos_i``).
   The round is skipped when it has no product to do: on the last level without the
   ``"value"`` output, unless a secret index is carried (level 2 on).

``"one_hot"`` then descends the tree: the top level's indicators are the weights of its
members (no product); each lower level multiplies its indicators by the weight of their
group (1 round per level: 1 product per group of 2, ``s`` per group of ``s >= 3``).
With ``"one_hot"``, ``"index"`` is ``sum onehot * position`` (local).

Cost, per party, ``B`` = number of batch rows, ``L`` = number of levels: every level is
``8 + 1`` rounds (binary) or ``8 + {0, 1, 2} + 1`` rounds (by its largest group) and
sends ``2024 * ceil(B P / 64)`` bytes for the comparisons (``P`` pairs per row; the MSB
works on words of 64 elements, at least one) plus 16 bytes per product (Beaver openings
of ``d`` and ``e``; the product counts above, times ``B``); ``"one_hot"`` adds ``L - 1``
rounds. For ``n = 8`` values (binary): ``max`` 27 rounds, ``argmax`` 27, one-hot 28.
Products with a 0/1 integer need no truncation, so every output is exact.

What a party learns: nothing (every opened value is a dealer-masked MSB input or a
Beaver opening); segment lengths, ``arity`` and shapes are public.

Choosing the arity: :func:`tournament_cost` replays the levels on the public lengths (exact
rounds, estimated bytes, the correlated-randomness requests in order, which
:func:`tournament_specs` turns into specs for :meth:`pet.mpc.Session.prepare`);
:func:`choose_arity` picks the arity with the least ``rounds * rtt / 2 + bytes * (8 /
bandwidth + CPU_SECONDS_PER_BYTE)`` on a declared :class:`pet.transport.Link`, and the
binary tournament without one. Leiden uses it per batch (many short segments: groups of 3
or 4 over a WAN, about 35 % fewer rounds); pet.sql's MIN/MAX (a few segments of up to
500,000 rows) stays binary, as the model says (measured at 50,000 rows x 10 groups over
100 Mbit/s, 20 ms: 144 rounds / 23.8 MB / 5.6 s binary, 88 rounds / 63.6 MB / 8.5 s in
groups of 4).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pet.errors import InputError, PetTypeError
from pet.mpc.arithmetic import mul_raw
from pet.mpc.boolean import msb
from pet.mpc.shared import Shared

__all__ = ["tournament", "Tournament", "argmax", "argmin", "max", "min"]

_OUTPUTS = ("value", "index", "one_hot")
_PAIRS = {s: [(a, b) for a in range(s) for b in range(a + 1, s)] for s in (2, 3, 4)}


class Tournament(NamedTuple):
    """Outputs of :func:`tournament` (``None`` where not requested)."""

    value: Shared | None
    index: Shared | None
    one_hot: Shared | None


class _Groups:
    """The groups of one size ``s`` on one level: member positions ``pos`` (G, s) at this
    level and destinations ``dest`` (G,) at the next; ``c`` and ``w`` are filled by steps
    1 and 2."""

    __slots__ = ("s", "pos", "dest", "c", "w")

    def __init__(self, s, pos, dest):
        self.s, self.pos, self.dest = s, pos, dest
        self.c = self.w = None  # (B, pairs, G) comparison bits / (B, s, G) indicators


def _level_groups(lens: np.ndarray, arity: int):
    """Groups of every size on the level with segment lengths ``lens``; the next lengths."""
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    full, rest = lens // arity, lens % arity
    new_lens = full + (rest > 0)
    new_starts = np.concatenate([[0], np.cumsum(new_lens)[:-1]]).astype(np.int64)
    groups = []
    for s in range(1, arity + 1):
        if s == arity:
            seg = np.repeat(np.arange(lens.size), full)
            rank = np.arange(seg.size) - np.repeat(np.cumsum(full) - full, full)
        else:
            seg = np.flatnonzero(rest == s)
            rank = full[seg]
        if seg.size == 0:
            continue
        first = starts[seg] + arity * rank
        pos = first[:, None] + np.arange(s)[None, :]
        groups.append(_Groups(s, pos, new_starts[seg] + rank))
    return groups, new_lens


def _one(session, shape) -> np.ndarray:
    """Shares of the public constant 1 (party 0 holds it)."""
    return np.full(shape, np.uint64(1 if session.party == 0 else 0), dtype=np.uint64)


def _not(session, c: np.ndarray) -> np.ndarray:
    """Shares of ``1 - c``."""
    out = np.negative(c)
    if session.party == 0:
        out += np.uint64(1)
    return out


def _indicators(session, groups) -> None:
    """Step 2: ``g.w`` (B, s, G) for every group class (groups of 3 and 4 share rounds)."""
    firsts, seconds = [], []
    for g in groups:
        if g.s == 2:
            g.w = np.stack([_not(session, g.c[:, 0]), g.c[:, 0]], axis=1)
        elif g.s == 3:
            c01, c02, c12 = (g.c[:, p] for p in range(3))
            firsts.append((g, np.stack([_not(session, c01), c01, c02], axis=1),
                           np.stack([_not(session, c02), _not(session, c12), c12], axis=1)))
        elif g.s == 4:
            c01, c02, c03, c12, c13, c23 = (g.c[:, p] for p in range(6))
            firsts.append((g, np.stack([_not(session, c01), c01, c02, c03], axis=1),
                           np.stack([_not(session, c02), _not(session, c12), c12, c13], axis=1)))
            seconds.append((g, np.stack([_not(session, c03), _not(session, c13), _not(session, c23), c23], axis=1)))
    if firsts:
        prods = _products(session, [(a, b) for _, a, b in firsts])
        for (g, _, _), p in zip(firsts, prods):
            g.w = p
    if seconds:
        prods = _products(session, [(g.w, f3) for g, f3 in seconds])
        for (g, _), p in zip(seconds, prods):
            g.w = p


def _products(session, pairs):
    """Elementwise products of every ``(x, y)`` share pair in one Beaver round."""
    xs = np.concatenate([x.reshape(-1) for x, _ in pairs])
    ys = np.concatenate([y.reshape(-1) for _, y in pairs])
    z = mul_raw(session, xs, ys, 0)
    out, at = [], 0
    for x, _ in pairs:
        out.append(z[at:at + x.size].reshape(x.shape))
        at += x.size
    return out


def _select(session, groups, quantities, local_pos, B):
    """Step 3: the group winners of every (B, m) share array in ``quantities`` (one Beaver
    round for all), and with ``local_pos`` (public positions inside the segments, (m,))
    the winner's position, computed locally. Returns per group the list of (B, G) arrays
    (the quantities in order, then the position)."""
    pairs = []
    for g in groups:
        if g.s == 1:
            continue
        for q in quantities:
            if g.s == 2:
                pairs.append((g.c[:, 0], q[:, g.pos[:, 1]] - q[:, g.pos[:, 0]]))
            else:
                pairs.append((g.w, np.stack([q[:, g.pos[:, i]] for i in range(g.s)], axis=1)))
    prods = iter(_products(session, pairs) if pairs else ())
    add_public = session.party == 0  # an additive public constant is party 0's alone
    out = []
    for g in groups:
        row = []
        for q in quantities:
            if g.s == 1:
                row.append(q[:, g.pos[:, 0]])
            elif g.s == 2:
                row.append(q[:, g.pos[:, 0]] + next(prods))
            else:
                row.append(next(prods).sum(axis=1, dtype=np.uint64))
        if local_pos is not None:
            pos = local_pos[g.pos]  # (G, s), public
            if g.s == 1:
                row.append(np.broadcast_to(pos[:, 0] if add_public else np.uint64(0), (B, g.dest.size)))
            elif g.s == 2:  # pos_0 + c * (pos_1 - pos_0) = pos_0 + c
                row.append(g.c[:, 0] + pos[None, :, 0] if add_public else g.c[:, 0])
            else:
                row.append((g.w * pos.T[None, :, :]).sum(axis=1, dtype=np.uint64))
        out.append(row)
    return out


def _check(x, axis, arity, segments, outputs):
    if not isinstance(x, Shared):
        raise PetTypeError("argmax/max expect a Shared array")
    if x.ndim == 0:
        raise InputError("argmax/max need at least one dimension")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise InputError(f"axis must be an integer in [-{x.ndim}, {x.ndim}), got {axis!r}")
    if arity not in (2, 3, 4) or isinstance(arity, bool):
        raise InputError(f"arity must be 2, 3 or 4, got {arity!r}")
    outputs = (outputs,) if isinstance(outputs, str) else tuple(outputs)
    if not outputs or any(o not in _OUTPUTS for o in outputs):
        raise InputError(f"outputs must be a non-empty selection of {_OUTPUTS}, got {outputs!r}")
    axis = int(axis) % x.ndim
    n = x.shape[axis]
    if segments is None:
        if n == 0:
            raise InputError("argmax/max of an empty axis")
        lens = np.array([n], dtype=np.int64)
    else:
        lens = np.asarray(segments)
        if lens.ndim != 1 or lens.dtype.kind not in "iu" or lens.size == 0 or np.any(lens < 1):
            raise InputError("segments must be a non-empty 1-D array of integer lengths >= 1")
        lens = lens.astype(np.int64)
        if int(lens.sum()) != n:
            raise InputError(f"segments must add up to the length of axis {axis} ({n}), got {int(lens.sum())}")
    return axis, lens, set(outputs)


def tournament(x: Shared, axis: int = -1, *, outputs=("value",), arity: int = 2, segments=None,
               largest: bool = True, bits: int = 64) -> Tournament:
    """The maximum (``largest=False``: minimum) of ``x`` along ``axis`` and/or its
    position, by a tournament of ``arity`` 2, 3 or 4 (see the module docstring for the
    protocol and its exact cost).

    ``outputs``: any of ``"value"``, ``"index"``, ``"one_hot"``. ``segments``: public
    lengths (each >= 1, sum = length of ``axis``) of consecutive runs reduced separately;
    ``value``/``index`` then have the segments in place of ``axis``, without it they lose
    ``axis``. ``one_hot`` has the shape of ``x``. Ties go to the lower index.

    ``bits``: the width of the comparisons (:func:`pet.mpc.boolean.msb` with ``bits``;
    below 33, a narrow comparison: 7 instead of 8 rounds per level and about half the
    comparison bytes on 32 bits, less on 16 or 8). Exact only when the caller guarantees
    that every difference of two compared encodings fits ``bits`` signed bits (e.g. all of
    ``x * 2^frac`` in ``[0, 2^(bits-1))``); pet.sql's MIN/MAX choose it from their range
    analysis.
    """
    from pet.mpc.boolean import msb_lane

    msb_lane(bits)
    axis, lens, want = _check(x, axis, arity, segments, outputs)
    session = x.session
    moved = np.moveaxis(x.share, axis, -1)
    lead = moved.shape[:-1]
    n = moved.shape[-1]
    B = int(np.prod(lead, dtype=np.int64))
    vals = np.ascontiguousarray(moved).reshape(B, n)
    one_hot = "one_hot" in want
    carry_index = "index" in want and not one_hot
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    local_pos = (np.arange(n, dtype=np.int64) - np.repeat(starts, lens)).astype(np.uint64)
    idx = None  # secret index shares (B, m), once selected on the first level
    levels = []
    while lens.max() > 1:
        groups, new_lens = _level_groups(lens, arity)
        _compare(session, vals, groups, largest, int(bits))
        _indicators(session, groups)
        keep_value = bool(new_lens.max() > 1) or "value" in want
        quantities = [vals] if keep_value else []
        if carry_index and idx is not None:
            quantities.append(idx)
        first_index = carry_index and idx is None
        if quantities or first_index:
            rows = _select(session, groups, quantities, local_pos if first_index else None, B)
            m_new = int(new_lens.sum())
            new = [np.empty((B, m_new), dtype=np.uint64) for _ in rows[0]]
            for g, row in zip(groups, rows):
                for arr, r in zip(new, row):
                    arr[:, g.dest] = r
            if keep_value:
                vals = new[0]
            if carry_index:
                idx = new[-1]
        levels.append(groups)
        lens = new_lens
    value = index = onehot = None
    if "value" in want:
        value = _out(session, vals, lead, axis, segments, x.frac)
    if one_hot:
        weight = _descend(session, levels, B, lens.size)
        onehot = Shared(session, np.ascontiguousarray(np.moveaxis(weight.reshape(lead + (n,)), -1, axis)), 0)
        if "index" in want:
            idx = np.add.reduceat(weight * local_pos[None, :], starts, axis=1, dtype=np.uint64)
    elif "index" in want and idx is None:  # every segment has length 1: position 0
        idx = np.zeros((B, n), dtype=np.uint64)
    if "index" in want:
        index = _out(session, idx, lead, axis, segments, 0)
    return Tournament(value, index, onehot)


def _compare(session, vals, groups, largest, bits=64) -> None:
    """Step 1: ``g.c`` (B, pairs, G) for every group class, in one batched MSB."""
    diffs, shapes = [], []
    for g in groups:
        if g.s == 1:
            continue
        left = np.stack([vals[:, g.pos[:, a]] for a, _ in _PAIRS[g.s]], axis=1)
        right = np.stack([vals[:, g.pos[:, b]] for _, b in _PAIRS[g.s]], axis=1)
        diffs.append(left - right if largest else right - left)  # msb = [right > left] / [right < left]
        shapes.append(g)
    if not diffs:
        return
    flat = np.concatenate([d.reshape(-1) for d in diffs])
    c = msb(session, flat, bits)
    at = 0
    for g, d in zip(shapes, diffs):
        g.c = c[at:at + d.size].reshape(d.shape)
        at += d.size


def _descend(session, levels, B, S) -> np.ndarray:
    """The one-hot (B, n): top-level indicators, then one product round per lower level."""
    weight = None  # None: the public all-ones weight of the top level
    for groups in reversed(levels):
        m = sum(g.pos.size for g in groups)
        pairs = []
        if weight is not None:
            for g in groups:
                if g.s == 2:
                    pairs.append((g.c[:, 0], weight[:, g.dest]))
                elif g.s > 2:
                    pairs.append((g.w, np.broadcast_to(weight[:, g.dest][:, None, :], g.w.shape)))
        prods = iter(_products(session, pairs)) if pairs else None
        nxt = np.empty((B, m), dtype=np.uint64)
        for g in groups:
            if g.s == 1:
                nxt[:, g.pos[:, 0]] = _one(session, (B, g.dest.size)) if weight is None else weight[:, g.dest]
            elif g.s == 2:
                if weight is None:
                    right, left = g.c[:, 0], _not(session, g.c[:, 0])
                else:
                    right = next(prods)
                    left = weight[:, g.dest] - right
                nxt[:, g.pos[:, 0]] = left
                nxt[:, g.pos[:, 1]] = right
            else:
                w = g.w if weight is None else next(prods)
                for i in range(g.s):
                    nxt[:, g.pos[:, i]] = w[:, i]
        weight = nxt
    if weight is None:  # every segment has length 1
        weight = _one(session, (B, S))
    return weight


def _out(session, arr, lead, axis, segments, frac) -> Shared:
    """(B, S) results back to the caller's layout."""
    out = arr.reshape(lead + (arr.shape[-1],))
    if segments is None:
        out = out[..., 0]
    else:
        out = np.moveaxis(out, -1, axis)
    return Shared(session, out.copy(order="C"), frac)  # keeps a 0-d result 0-d, as numpy


def argmax(x: Shared, axis: int = -1, *, one_hot: bool = False, segments=None, arity: int = 2) -> Shared:
    """Index of the (first) maximum along ``axis`` as a shared integer, or with
    ``one_hot=True`` the shared one-hot array (shape of ``x``). Reveal it with
    ``session.reveal`` if the index may be public. Exact when the top two values differ
    by at least ``2^-f``. Binary: ``9 ceil(log2 n)`` rounds for the index,
    ``10 ceil(log2 n) - 2`` for the one-hot (see :func:`tournament`)."""
    out = tournament(x, axis, outputs="one_hot" if one_hot else "index", arity=arity, segments=segments)
    return out.one_hot if one_hot else out.index


def argmin(x: Shared, axis: int = -1, *, one_hot: bool = False, segments=None, arity: int = 2) -> Shared:
    """Like :func:`argmax` for the (first) minimum."""
    out = tournament(x, axis, outputs="one_hot" if one_hot else "index", arity=arity, segments=segments,
                     largest=False)
    return out.one_hot if one_hot else out.index


def max(x: Shared, axis: int = -1, *, segments=None, arity: int = 2, bits: int = 64) -> Shared:  # noqa: A001
    """Maximum along ``axis`` (binary: ``9 ceil(log2 n)`` rounds; 27 for 8 values);
    ``bits``: narrow comparisons under the caller's range guarantee (see :func:`tournament`)."""
    return tournament(x, axis, outputs="value", arity=arity, segments=segments, bits=bits).value


def min(x: Shared, axis: int = -1, *, segments=None, arity: int = 2, bits: int = 64) -> Shared:  # noqa: A001
    """Minimum along ``axis`` (as :func:`max`)."""
    return tournament(x, axis, outputs="value", arity=arity, segments=segments, largest=False, bits=bits).value


# -- choosing the arity for a link ------------------------------------------------------

#: Local work per byte sent, in seconds (measured in-process: about 10 ns per byte sent for
#: every arity, so it ranks the arities like a link of 800 Mbit/s would).
CPU_SECONDS_PER_BYTE = 1e-8
#: Bytes one party sends per batched MSB word of 64 comparisons (see :func:`~pet.mpc.boolean.msb`).
MSB_BYTES_PER_WORD = 2024


class TournamentCost(NamedTuple):
    """Exact online rounds and estimated bytes sent per party of one :func:`tournament`;
    ``ops``: its requests for correlated randomness in call order, ``("msb", n)`` (one
    :func:`~pet.mpc.boolean.msb` of ``n`` elements) or ``("mul", n)`` (one Beaver round of
    ``n`` products), see :func:`tournament_specs`."""

    rounds: int
    comparisons: int
    products: int
    bytes: int
    ops: tuple


def _product_count(sizes: dict) -> int:
    """Products of one select (or one-hot) round per quantity: 1 per pair, ``s`` per group
    of ``s >= 3``."""
    return sum((1 if s == 2 else s) * c for s, c in sizes.items() if s > 1)


def _level_sizes(lens: np.ndarray, arity: int):
    """Number of groups of each size on the level with segment lengths ``lens`` (as
    :func:`_level_groups`, without positions); the next lengths."""
    full, rest = lens // arity, lens % arity
    counts = np.bincount(rest, minlength=arity)
    sizes = {s: int(counts[s]) for s in range(1, arity) if counts[s]}
    if int(full.sum()):
        sizes[arity] = int(full.sum())
    return sizes, full + (rest > 0)


def tournament_cost(segments, arity: int = 2, *, outputs=("index",), batch: int = 1) -> TournamentCost:
    """Rounds (exact: the session's counter advances by this much), comparisons, Beaver
    products and bytes sent per party (MSB words and product openings; a little framing
    on top) of :func:`tournament` over ``segments`` (public lengths) for ``batch`` rows,
    without running it. Local: it replays the level structure on the lengths."""
    lens = np.asarray(segments, dtype=np.int64).reshape(-1)
    want = {outputs} if isinstance(outputs, str) else set(outputs)
    one_hot, carry_index = "one_hot" in want, "index" in want and "one_hot" not in want
    comparisons = msb_bytes = 0
    ops, levels, have_idx = [], [], False
    while lens.size and lens.max() > 1:
        sizes, new_lens = _level_sizes(lens, arity)
        pairs = sum(len(_PAIRS[s]) * c for s, c in sizes.items() if s > 1)
        comparisons += pairs
        msb_bytes += MSB_BYTES_PER_WORD * -(-batch * pairs // 64)
        ops.append(("msb", batch * pairs))
        if sizes.get(3) or sizes.get(4):
            ops.append(("mul", batch * (3 * sizes.get(3, 0) + 4 * sizes.get(4, 0))))
        if sizes.get(4):
            ops.append(("mul", batch * 4 * sizes[4]))
        n_quant = int(bool(new_lens.max() > 1) or "value" in want) + int(carry_index and have_idx)
        if n_quant:  # the first level's index alone is local (public positions)
            ops.append(("mul", batch * n_quant * _product_count(sizes)))
        have_idx = have_idx or carry_index
        levels.append(sizes)
        lens = new_lens
    if one_hot:  # every level below the top, top down: one product round
        ops += [("mul", batch * _product_count(sizes)) for sizes in reversed(levels[:-1])]
    rounds = 8 * len(levels) + sum(1 for kind, _ in ops if kind == "mul")
    products = sum(n for kind, n in ops if kind == "mul")
    return TournamentCost(rounds, comparisons * batch, products, msb_bytes + 16 * products, tuple(ops))


def tournament_specs(segments, arity: int = 2, *, outputs=("index",), batch: int = 1,
                     correlations: str = "dealer") -> list:
    """The correlated randomness :func:`tournament` requests, one spec list per request in
    call order (for :meth:`pet.mpc.Session.prepare`, which then serves the whole
    tournament from one round trip to the dealer instead of one per step)."""
    from pet.mpc.arithmetic import mul_specs
    from pet.mpc.boolean import msb_specs

    ops = tournament_cost(segments, arity, outputs=outputs, batch=batch).ops
    return [msb_specs(n, correlations) if kind == "msb" else mul_specs(n, 0) for kind, n in ops]


def choose_arity(segments, link=None, *, outputs=("index",), batch: int = 1, arities=(2, 3, 4)) -> int:
    """The arity (of ``arities``) with the least modelled time of a :func:`tournament` over
    ``segments`` (public lengths) for ``batch`` rows on ``link`` (a
    :class:`pet.transport.Link`):

        time = rounds * rtt / 2  +  bytes * (8 / bandwidth + CPU_SECONDS_PER_BYTE)

    (an exchange round costs half a round trip: both parties send at once). ``rounds`` and
    ``bytes`` come from :func:`tournament_cost`. Without a link, or with ``rtt == 0``, the
    binary tournament (2: fewest bytes and least work). Ties go to the smaller arity.
    Both parties must pass the same arguments (the result is then the same)."""
    if not arities or any(a not in (2, 3, 4) or isinstance(a, bool) for a in arities):
        raise InputError(f"arities must be a non-empty selection of 2, 3 and 4, got {arities!r}")
    rtt = 0.0 if link is None else float(link.rtt)
    if rtt <= 0:
        return 2
    bw = getattr(link, "bandwidth", None)
    per_byte = CPU_SECONDS_PER_BYTE + (0.0 if bw is None else 8.0 / float(bw))
    best, best_t = 2, None
    for a in arities:
        c = tournament_cost(segments, a, outputs=outputs, batch=batch)
        t = c.rounds * rtt / 2 + c.bytes * per_byte
        if best_t is None or t < best_t:
            best, best_t = a, t
    return best


__all__ += ["TournamentCost", "tournament_cost", "tournament_specs", "choose_arity"]
