"""One batched round of secure node moves (used by local moving and by refinement).

A round decides, at once, the best move of a batch of nodes: this party's active private
nodes, the peer's, and a batch of public nodes (the same on both sides). For a node ``X``
in community ``C`` and a candidate community ``D``, with ``w(X, S)`` the weight of X's
edges into ``S``, ``k`` degrees, ``K`` community degree totals, ``m`` the total weight and
resolution ``gamma = gamma_num / 2^gamma_bits``, the modularity gain of the move times the
positive constant ``2^gamma_bits * 2 m^2`` is the integer

    G(D) = 2^gamma_bits * (2m) * (w(X, D) - w(X, C - X))  -  gamma_num * k_X * (K_D - K_C + k_X)

(``G(stay) = 0``; the empty community has ``w = K = 0``). Every term is a sum of the two
parties' local shares, so the differences are shared without communication; the two
products are one batched Beaver multiplication on exact integers (no truncation, so every
run is bit-for-bit the same), and :func:`pet.mpc.argmax` with ``segments=`` picks the
first best candidate of every node (in local moving a node stays on ties and non-positive
gains; in refinement it joins on non-negative gains: "stay" then scores -1).

Protocol of a round (both parties call :func:`batched_round` with the same public batch):

1. each party lists, for its own private batch nodes, the candidate communities (its
   neighbours' communities); for public batch nodes the candidates it sees;
2. one exchange: for each private node, the number of candidates and the *public* labels
   among them (and the public label of its current community), a private community being
   sent as an opaque marker; for each public node, the public labels it sees and
   round-local ids of its own private communities next to it;
3. both build the same candidate layout (stay, [empty], public labels ascending, party 0's
   opaque, party 1's opaque) and their shares of ``2m``, ``k``, ``w`` and ``K`` terms;
4. one Beaver product, then the segmented argmax (:func:`pet.mpc.argmax`, one segment per
   node; the correlated randomness of both requested at once, :func:`_prepare`): a
   tournament of arity 2 (``9 * ceil(log2 longest)`` rounds, the fewest bytes), 3 or 4
   (``10 * ceil(log3 longest)`` / ``11 * ceil(log4 longest)`` rounds, about 1.8x / 2.4x
   the bytes), whichever :func:`pet.mpc.tournament.choose_arity` models fastest on the
   agreed link (``Context.link``: the larger declared round trip and the smaller
   bandwidth of the two parties; without a round trip, arity 2). Ties go to the lower
   position at every arity, so the moves, and the partition, do not depend on it;
5. the winning positions are opened: a private node's only to its owner, a public node's
   to both. A public node moving to a private community makes that label public (a fresh
   public id, allocated in the same order on both sides).

What a party learns in a round beyond its own data: the sizes above; for each of the
peer's private batch nodes (in a fresh secret order every round) the number of candidate
communities and which public labels are among them (and whether its community is public,
and which); for each public batch node the public labels and the number (and round-local
identity) of the peer's private communities next to it, and its move. Gains, degrees,
weights and totals stay secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pet._random import secure_permutation
from pet.errors import ProtocolError
from pet.graph.state import LabelStore, LevelGraph
from pet.mpc import Shared, argmax
from pet.mpc.arithmetic import mul_specs
from pet.mpc.tournament import choose_arity, tournament_specs

__all__ = ["Context", "batched_round"]

_BIGP = np.int64(1 << 40)  # public labels are < 2^40
_NONE = np.iinfo(np.int64).min


@dataclass
class Context:
    """What every round needs: the session, the fixed-point constants, the agreed link
    (chooses the argmax arity), counters: ``rounds`` (batches), ``slots``,
    ``candidates``, ``step_rounds`` (MPC rounds per step of :func:`batched_round`, plus
    ``queue`` for local moving's queue exchange, filled by the caller) and ``arity``
    (argmax calls per arity)."""

    session: object
    gamma_num: int
    gamma_bits: int
    m2: int  # this party's share of 2m (fixed point)
    link: object = None  # pet.transport.Link agreed by both parties, or None
    stats: dict = field(default_factory=lambda: {
        "rounds": 0, "slots": 0, "candidates": 0,
        "step_rounds": {"queue": 0, "structure": 0, "gains": 0, "argmax": 0, "open": 0},
        "arity": {2: 0, 3: 0, 4: 0}})

    @property
    def party(self) -> int:
        return self.session.party


def _u64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64).view(np.uint64)


def _gather(g: LevelGraph, lab: np.ndarray, nodes: np.ndarray, restrict):
    """Weight from each node of ``nodes`` to each neighbouring label, aggregated.

    Returns (slot, label, weight) sorted by slot, then public labels ascending, then
    private labels by ascending private index.
    """
    cnt = g.indptr[nodes + 1] - g.indptr[nodes]
    tot = int(cnt.sum())
    slot = np.repeat(np.arange(nodes.size, dtype=np.int64), cnt)
    off = np.repeat(g.indptr[nodes] - (np.cumsum(cnt) - cnt), cnt) + np.arange(tot, dtype=np.int64)
    nb = g.indices[off]
    w = g.weights[off]
    if restrict is not None:
        keep = restrict[nb] == restrict[nodes][slot]
        slot, nb, w = slot[keep], nb[keep], w[keep]
    lab_nb = lab[nb]
    key = np.where(lab_nb >= 0, lab_nb, _BIGP + (-1 - lab_nb))
    order = np.lexsort((key, slot))
    slot, key, lab_nb, w = slot[order], key[order], lab_nb[order], w[order]
    if slot.size == 0:
        return slot, lab_nb, w
    first = np.ones(slot.size, dtype=bool)
    first[1:] = (slot[1:] != slot[:-1]) | (key[1:] != key[:-1])
    starts = np.flatnonzero(first)
    return slot[starts], lab_nb[starts], np.add.reduceat(w, starts)


def _own_lists(g, lab, nodes, restrict, excluded):
    """Candidates of own batch nodes: (slot, label, w) without the current community and
    excluded labels, plus the weight to the current community per slot."""
    slot, L, w = _gather(g, lab, nodes, restrict)
    cur = lab[nodes]
    in_cur = L == cur[slot]
    wC = np.zeros(nodes.size, dtype=np.int64)
    np.add.at(wC, slot[in_cur], w[in_cur])
    keep = ~in_cur
    if excluded is not None and excluded.size:
        keep &= ~np.isin(L, excluded)
    return slot[keep], L[keep], w[keep], wC


@dataclass
class _Lists:
    """Step 1: this party's candidate lists for its own private batch nodes (``p*``) and
    for the public batch nodes (``q*``), see :func:`_own_lists`."""

    ps: np.ndarray
    pL: np.ndarray
    pw: np.ndarray
    pwC: np.ndarray
    p_n: np.ndarray
    p_cur: np.ndarray
    qs: np.ndarray
    qL: np.ndarray
    qw: np.ndarray
    qwC: np.ndarray
    q_pub: np.ndarray
    q_rid: np.ndarray


@dataclass
class _Peer:
    """Step 2: the peer's public structure (its private nodes' candidate counts, current
    and candidate public labels; its lists for the public nodes)."""

    n: np.ndarray
    cur: np.ndarray
    desc: np.ndarray
    qs_pub: np.ndarray
    qL_pub: np.ndarray
    qs_op: np.ndarray
    rid: np.ndarray


@dataclass
class _Layout:
    """Step 3: the common candidate layout, one segment per slot (own private nodes, the
    peer's, public nodes; in party order), with this party's weights and known labels."""

    base: dict
    n_own: int
    n_peer: int
    n_slots: int
    pub_base: int
    slot: np.ndarray
    key: np.ndarray
    w: np.ndarray
    labs: np.ndarray
    lengths: np.ndarray


def _list_candidates(g, lab, own_nodes, pub_nodes, restrict, excluded) -> _Lists:
    """Step 1: own candidate lists (local)."""
    ps, pL, pw, pwC = _own_lists(g, lab, own_nodes, restrict, excluded)
    p_n = np.bincount(ps, minlength=own_nodes.size).astype(np.int64)
    qs, qL, qw, qwC = _own_lists(g, lab, pub_nodes, restrict, excluded)
    q_pub = qL >= 0
    priv_labels = np.unique(qL[~q_pub])[::-1]  # ascending private index
    rid_of = {int(v): i for i, v in enumerate(priv_labels.tolist())}
    q_rid = np.array([rid_of[int(v)] for v in qL[~q_pub].tolist()], dtype=np.int64)
    return _Lists(ps, pL, pw, pwC, p_n, lab[own_nodes], qs, qL, qw, qwC, q_pub, q_rid)


def _exchange_structure(s, li: _Lists, n_pub: int) -> _Peer:
    """Step 2: one exchange of the public structure of both parties' lists."""
    mine = [li.p_n, np.where(li.p_cur >= 0, li.p_cur, -1), np.where(li.pL >= 0, li.pL, -1),
            li.qs[li.q_pub], li.qL[li.q_pub], li.qs[~li.q_pub], li.q_rid, np.int64(n_pub)]
    peer = s.exchange("graph.round", mine)
    if not (isinstance(peer, list) and len(peer) == 8):
        raise ProtocolError("graph round: malformed message from the peer")
    r_n, r_cur, r_desc, r_qs_pub, r_qL_pub, r_qs_op, r_rid, r_npub = (np.asarray(x, dtype=np.int64) for x in peer)
    if int(r_npub) != n_pub:
        raise ProtocolError("graph round: the parties disagree on the public batch")
    return _Peer(r_n, r_cur, r_desc, r_qs_pub, r_qL_pub, r_qs_op, r_rid)


def _build_layout(me: int, li: _Lists, peer: _Peer, n_own: int, n_pubs: int, e: int) -> _Layout:
    """Step 3: the common layout, records (slot, key) with this party's (w, label), merged
    per (slot, key) (local; both parties get the same slots and keys)."""
    n_peer = peer.n.size
    base = {me: 0, 1 - me: n_own} if me == 0 else {1 - me: 0, me: n_peer}
    n_slots = n_own + n_peer + n_pubs
    pub_base = n_own + n_peer
    slots_all = np.arange(n_slots, dtype=np.int64)
    rec_slot, rec_key, rec_w, rec_lab = [], [], [], []

    def add(slot, key, w, labels):
        rec_slot.append(np.asarray(slot, dtype=np.int64))
        rec_key.append(np.asarray(key, dtype=np.int64))
        rec_w.append(np.asarray(w, dtype=np.int64))
        rec_lab.append(np.asarray(labels, dtype=np.int64))

    zeros = np.zeros(n_slots, dtype=np.int64)
    nones = np.full(n_slots, _NONE, dtype=np.int64)
    add(slots_all, zeros, zeros, nones)  # stay
    if e:
        add(slots_all, zeros + 1, zeros, nones)  # the empty community
    # own private nodes: position within the slot orders the opaque entries
    ps, pL, p_n = li.ps, li.pL, li.p_n
    pos = np.arange(ps.size, dtype=np.int64) - np.repeat(np.cumsum(p_n) - p_n, p_n)
    add(base[me] + ps, np.where(pL >= 0, 2 + pL, 2 + _BIGP + pos), li.pw, pL)
    # the peer's private nodes
    r_n, r_desc = peer.n, peer.desc
    r_slot = np.repeat(np.arange(n_peer, dtype=np.int64), r_n)
    r_pos = np.arange(r_desc.size, dtype=np.int64) - np.repeat(np.cumsum(r_n) - r_n, r_n)
    add(base[1 - me] + r_slot, np.where(r_desc >= 0, 2 + r_desc, 2 + _BIGP + r_pos), np.zeros(r_desc.size),
        np.where(r_desc >= 0, r_desc, _NONE))
    # public nodes: both parties' lists
    qs, qL, qw, q_pub = li.qs, li.qL, li.qw, li.q_pub
    add(pub_base + qs[q_pub], 2 + qL[q_pub], qw[q_pub], qL[q_pub])
    add(pub_base + qs[~q_pub], 2 + _BIGP * (1 + me) + li.q_rid, qw[~q_pub], qL[~q_pub])
    add(pub_base + peer.qs_pub, 2 + peer.qL_pub, np.zeros(peer.qs_pub.size), peer.qL_pub)
    add(pub_base + peer.qs_op, 2 + _BIGP * (2 - me) + peer.rid, np.zeros(peer.qs_op.size),
        np.full(peer.qs_op.size, _NONE))
    slot = np.concatenate(rec_slot)
    key = np.concatenate(rec_key)
    w = np.concatenate(rec_w)
    labs = np.concatenate(rec_lab)
    order = np.lexsort((key, slot))
    slot, key, w, labs = slot[order], key[order], w[order], labs[order]
    first = np.ones(slot.size, dtype=bool)
    first[1:] = (slot[1:] != slot[:-1]) | (key[1:] != key[:-1])
    starts = np.flatnonzero(first)
    w_u = np.add.reduceat(w, starts) if starts.size else w
    labs_u = np.maximum.reduceat(labs, starts) if starts.size else labs  # a known label beats _NONE
    slot_u, key_u = slot[starts], key[starts]
    lengths = np.bincount(slot_u, minlength=n_slots).astype(np.int64)
    return _Layout(base, n_own, n_peer, n_slots, pub_base, slot_u, key_u, w_u, labs_u, lengths)


def _best_moves(ctx: Context, g, lab, store, li: _Lists, peer: _Peer, lay: _Layout,
                own_nodes, pub_nodes, move_on_zero: bool):
    """Step 4: this party's shares of ``2m``, ``k``, ``w`` and ``K`` terms per candidate,
    one Beaver product, the gains and the segmented argmax (shared winning positions)."""
    s, me = ctx.session, ctx.party
    base, n_own, n_peer, pub_base, n_slots = lay.base, lay.n_own, lay.n_peer, lay.pub_base, lay.n_slots
    # this party's per-slot shares: current community, degree, weight into it
    slot_node = np.full(n_slots, -1, dtype=np.int64)
    slot_node[base[me]:base[me] + n_own] = own_nodes
    slot_node[pub_base:] = pub_nodes
    cur = np.full(n_slots, _NONE, dtype=np.int64)
    known = slot_node >= 0
    cur[known] = lab[slot_node[known]]
    cur[base[1 - me]:base[1 - me] + n_peer] = np.where(peer.cur >= 0, peer.cur, _NONE)
    k = np.zeros(n_slots, dtype=np.int64)
    k[known] = g.deg[slot_node[known]]
    wC = np.zeros(n_slots, dtype=np.int64)
    wC[base[me]:base[me] + n_own] = li.pwC
    wC[pub_base:] = li.qwC

    def Kof(labels):
        out = np.zeros(labels.size, dtype=np.int64)
        ok = labels != _NONE
        out[ok] = store.K(labels[ok])
        return out

    slot_u = lay.slot
    n_cand = slot_u.size
    stay = lay.key == 0
    with np.errstate(over="ignore"):
        dw = lay.w - wC[slot_u]
        dK = Kof(lay.labs) - Kof(cur)[slot_u] + k[slot_u]
        dw[stay] = 0
        dK[stay] = 0
        kk = k[slot_u]
        arity = choose_arity(lay.lengths, ctx.link)  # public lengths, agreed link: same at both parties
        _prepare(s, 2 * n_cand, lay.lengths, arity)
        # every factor is a sum of the two parties' local terms: additive shares as they are
        x = Shared.from_shares(s, np.concatenate([np.full(n_cand, ctx.m2, dtype=np.int64), kk]), 0)
        y = Shared.from_shares(s, np.concatenate([dw, dK]), 0)
        prod = x * y
        gains = prod[:n_cand] * (1 << ctx.gamma_bits) - prod[n_cand:] * ctx.gamma_num
        if move_on_zero:
            gains = gains - stay.astype(np.int64)  # stay scores 0 - 1 (a public -1)
    ctx.stats["arity"][arity] += 1
    r0 = s.rounds
    best = argmax(gains, segments=lay.lengths, arity=arity)
    ctx.stats["step_rounds"]["argmax"] += s.rounds - r0
    ctx.stats["step_rounds"]["gains"] -= s.rounds - r0  # counted by the caller around the whole step
    return best


def _prepare(s, n_products: int, lengths, arity: int) -> None:
    """Request the correlated randomness of step 4 (the gains' product and every step of
    the argmax) at once: one round trip to the dealer per batch instead of one per
    tournament step (each of those would stall party 1 about half a round trip on a
    slow link). Both parties call it with the same public arguments."""
    kind = "ot" if getattr(s.source, "kind", None) == "ot" else "dealer"
    specs = [mul_specs(n_products, 0)] + tournament_specs(lengths, arity, outputs="index", correlations=kind)
    s.prepare(specs)


def _open_winners(s, best, lay: _Layout) -> np.ndarray:
    """Step 5: open the winning positions in one round, a private slot's only to its owner
    and the public slots to both; -1 for the peer's slots. Checked to be in range."""
    me = s.party
    base, n_own, pub_base = lay.base, lay.n_own, lay.pub_base
    own_sl = slice(base[me], base[me] + n_own)
    to = np.full(lay.n_slots, -1, dtype=np.int64)  # public slots: both
    to[own_sl] = me
    to[base[1 - me]:base[1 - me] + lay.n_peer] = 1 - me
    got = s.reveal_split(best, to)  # own slots, then public slots (own slots come first)
    win = np.full(lay.n_slots, -1, dtype=np.int64)
    win[own_sl] = got[:n_own]
    win[pub_base:] = got[n_own:]
    lengths = lay.lengths
    if np.any((win[own_sl] < 0) | (win[own_sl] >= lengths[own_sl])) or \
            np.any((win[pub_base:] < 0) | (win[pub_base:] >= lengths[pub_base:])):
        raise ProtocolError("graph round: opened winner out of range")
    return win


def _apply_moves(me: int, g, lab, store, lay: _Layout, win, own_nodes, pub_nodes):
    """Step 6: apply the moves: promotions and fresh public labels first (same order on
    both sides), then this party's own nodes by node index; update ``K`` and counts."""
    base, n_own, pub_base = lay.base, lay.n_own, lay.pub_base
    key_u, labs_u = lay.key, lay.labs
    seg_start = np.concatenate([[0], np.cumsum(lay.lengths)[:-1]]).astype(np.int64)
    moves_node, moves_new = [], []
    pub_win = win[pub_base:]
    promoted = {}
    for j in np.flatnonzero(pub_win > 0).tolist():
        r = int(seg_start[pub_base + j] + pub_win[j])
        kk_ = int(key_u[r])
        if kk_ == 1:  # empty community: a fresh public label
            new = int(store.new_public(1)[0])
        elif kk_ < 2 + _BIGP:
            new = kk_ - 2
        else:
            owner = 0 if kk_ < 2 + 2 * _BIGP else 1
            rid = kk_ - 2 - _BIGP * (1 + owner)
            tag = (owner, rid)
            if tag not in promoted:
                newp = int(store.new_public(1)[0])
                store.cnt_pub[newp] = 1  # has private members
                promoted[tag] = newp
                if owner == me:
                    old_priv = int(labs_u[r])
                    store.K_pub[newp] = store.K(np.array([old_priv]))[0]
                    store.K_priv[-1 - old_priv] = 0
                    store.cnt_priv[-1 - old_priv] = 0
                    relabel = np.flatnonzero(lab == old_priv)
                    lab[relabel] = newp
                    promoted[("lab", old_priv)] = newp
            new = promoted[tag]
        moves_node.append(int(pub_nodes[j]))
        moves_new.append(new)
    own_win = win[base[me]:base[me] + n_own]
    movers = np.flatnonzero(own_win > 0)
    for j in movers[np.argsort(own_nodes[movers], kind="stable")].tolist():  # by node: deterministic labels
        r = int(seg_start[base[me] + j] + own_win[j])
        if key_u[r] == 1:
            new = int(store.new_private(1)[0])
        else:
            new = int(labs_u[r])
            new = promoted.get(("lab", new), new) if new < 0 else new
        moves_node.append(int(own_nodes[j]))
        moves_new.append(new)
    if not moves_node:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    nodes = np.asarray(moves_node, dtype=np.int64)
    new = np.asarray(moves_new, dtype=np.int64)
    old = lab[nodes]
    d = g.deg[nodes]
    store.add_K(old, -d)
    store.add_K(new, d)
    one = np.ones(nodes.size, dtype=np.int64)
    is_pub = nodes < g.n_pub
    # counts: public labels count public members; private labels count own members
    np.add.at(store.cnt_pub, old[is_pub], -one[is_pub])
    np.add.at(store.cnt_pub, new[is_pub], one[is_pub])
    po, pn = old[~is_pub], new[~is_pub]
    np.add.at(store.cnt_priv, -1 - po[po < 0], -1)
    np.add.at(store.cnt_priv, -1 - pn[pn < 0], 1)
    lab[nodes] = new
    return nodes[~is_pub], nodes[is_pub]


def batched_round(ctx: Context, g: LevelGraph, lab: np.ndarray, store: LabelStore,
                  own_nodes: np.ndarray, pub_nodes: np.ndarray, *, allow_empty: bool,
                  restrict=None, excluded=None, move_on_zero: bool = False):
    """Decide and apply the moves of one batch; see the module docstring (one function
    per step: :func:`_list_candidates`, :func:`_exchange_structure`, :func:`_build_layout`,
    :func:`_best_moves`, :func:`_open_winners`, :func:`_apply_moves`).

    ``own_nodes``: this party's private nodes in the batch; ``pub_nodes``: public nodes in
    the batch (identical on both sides). ``restrict``: only neighbours with the same
    ``restrict`` value as the moving node are candidates (refinement). ``excluded``: labels
    that may not be chosen this round. Updates ``lab`` and ``store`` in place and returns
    ``(own_moved, pub_moved)``, the moved nodes (known node indices). A node moves when
    its best gain is positive, or non-negative with ``move_on_zero`` (refinement: "stay"
    then scores -1 instead of 0).
    """
    s = ctx.session
    own_nodes = np.asarray(own_nodes, dtype=np.int64)
    pub_nodes = np.asarray(pub_nodes, dtype=np.int64)
    if own_nodes.size > 1:
        # the peer sees this party's private slots in a fresh secret order (OS CSPRNG),
        # so it cannot link slots to nodes by their position; results do not depend on
        # the order (moves are applied by node)
        own_nodes = own_nodes[secure_permutation(own_nodes.size)]
    steps = ctx.stats["step_rounds"]
    li = _list_candidates(g, lab, own_nodes, pub_nodes, restrict, excluded)
    r0 = s.rounds
    peer = _exchange_structure(s, li, pub_nodes.size)
    steps["structure"] += s.rounds - r0
    lay = _build_layout(ctx.party, li, peer, own_nodes.size, pub_nodes.size, 1 if allow_empty else 0)
    ctx.stats["slots"] += lay.n_slots
    ctx.stats["candidates"] += lay.slot.size
    if lay.n_slots == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    r0 = s.rounds
    best = _best_moves(ctx, g, lab, store, li, peer, lay, own_nodes, pub_nodes, move_on_zero)
    steps["gains"] += s.rounds - r0
    ctx.stats["rounds"] += 1
    r0 = s.rounds
    win = _open_winners(s, best, lay)
    steps["open"] += s.rounds - r0
    return _apply_moves(ctx.party, g, lab, store, lay, win, own_nodes, pub_nodes)
